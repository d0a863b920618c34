// The files through which the runtime and the supervisor share a container's lifecycle, beside its bundle:
// state.json (written by the supervisor only), `stopped` (a stop the user asked for: the restart policy leaves
// the container down) and the lock both take before changing the container.
import * as fs from "node:fs";
import * as path from "node:path";
import type { ContainerState } from "../runtime";
import { readJson, writeJson } from "../json-file";

export const statePath = (bundle: string): string => path.join(bundle, "state.json");
export const stopMarker = (bundle: string): string => path.join(bundle, "stopped");
/** Outside the bundle, which removal deletes while holding the lock; apart from the root's own locks (locks/images…). */
export const lockPath = (bundle: string): string =>
  path.join(path.dirname(path.dirname(bundle)), "locks", "containers", path.basename(bundle));
/**
 * Held by a kill from before its signal until its event is recorded: the supervisor records the "die" that kill
 * caused only once it is let go, so kill comes first, as in Docker (whose kill and exit handling share a lock).
 */
export const killLockPath = (bundle: string): string =>
  path.join(path.dirname(path.dirname(bundle)), "locks", "kills", path.basename(bundle));

export const readState = (bundle: string): Promise<ContainerState | undefined> => readJson<ContainerState>(statePath(bundle));
export const writeState = (bundle: string, s: ContainerState): Promise<void> => writeJson(statePath(bundle), s);

export const stoppedByUser = (bundle: string): boolean => fs.existsSync(stopMarker(bundle));

export async function markStopped(bundle: string, stopped: boolean): Promise<void> {
  if (stopped) await fs.promises.writeFile(stopMarker(bundle), "");
  else await fs.promises.rm(stopMarker(bundle), { force: true });
}
