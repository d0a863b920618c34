// Reads only the directories its caller names (the provider's state directory uses its temp names too).
// Staging entries in a root's ingest directory: what an ingest, build step, ADD download or commit writes before
// it has a name (blob and layer temp files, unpacked archives, build sandboxes with their overlay mount and runc
// state, build network files, container copies). Each is named after its owner, the process that made it (pid
// and start time, as locks are: native/lock.ts), so garbage collection can sweep what a killed process left and
// never touch what a live one uses. Entries named by an older berth carry the pid alone.
import * as fs from "node:fs";
import * as path from "node:path";
import { randomHex } from "./random";
import type { Host } from "./host/exec";
import { ownerAlive, self } from "./lock";
import { listDir } from "./json-file";

/** A fresh staging path in dir, "WHAT-PID-START-RANDOM". */
export const stagingPath = (dir: string, what: string): string =>
  path.join(dir, `${what}-${process.pid}-${self().start}-${randomHex(4)}`);

/** The random part is hex, or mkdtemp's letters and digits in the spawner's directories of an older berth. */
const OWNED = /^[a-z]+(?:-[a-z]+)*-(\d+)-(\d+)-[0-9a-zA-Z]+$/;
/** Older names: "WHAT-PID-HEX", a commit's "commit-CONTAINER-PID-MILLISECONDS", a remote call's "PID-HEX". */
const FORMER = [/^[a-z]+(?:-[a-z]+)*-(\d+)-[0-9a-f]+$/, /^commit-.+-(\d+)-\d{13}$/, /^(\d+)-[0-9a-f]{12}$/];

/** Whether the staging entry `name` was left by a process that is gone; false for what is not a staging name. */
export function abandoned(name: string): boolean {
  const m = OWNED.exec(name);
  if (m) return !ownerAlive({ pid: Number(m[1]), start: Number(m[2]) });
  const pid = FORMER.map((re) => re.exec(name)?.[1]).find((p) => p !== undefined);
  return pid !== undefined && !fs.existsSync(`/proc/${pid}`);
}

/**
 * A temp name beside `file`, for writing it whole before it is renamed or linked into place:
 * "FILE#tmp-PID-START-RANDOM", owned as staging names are. No container, network, volume or registry name holds a
 * "#", so a temp name is never taken for one of theirs (a lock of a container named "x.tmp-1-2-ab" is not a temp).
 */
export const tempBeside = (file: string): string => `${file}#tmp-${process.pid}-${self().start}-${randomHex(4)}`;

const TEMP = /#tmp-(\d+)-(\d+)-[0-9a-f]+$/;

/** Whether `name` is a temp name (tempBeside), of a live process or not: not the thing itself. */
export const isTemp = (name: string): boolean => TEMP.test(name);

/** Whether `name` is the temp name (tempBeside) of a process that still runs. */
export function liveTemp(name: string): boolean {
  const m = TEMP.exec(name);
  return !!m && ownerAlive({ pid: Number(m[1]), start: Number(m[2]) });
}

/** A directory's entries; none when it is not there (or not readable). */
function namesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * Removes the temp files and directories (tempBeside) in dir whose process is gone: killed between writing and
 * renaming. `former` matches, with the pid as its first group, the pid-only temp names an older berth wrote in
 * this very directory; only a directory where no object can be named so may pass one (a registry may be named
 * "r.json.4000000.tmp").
 */
export function sweepTemps(dir: string, former?: RegExp): void {
  for (const name of namesIn(dir)) {
    const pid = isTemp(name) ? undefined : former?.exec(name)?.[1];
    const gone = isTemp(name) ? !liveTemp(name) : pid !== undefined && !fs.existsSync(`/proc/${pid}`);
    if (gone) fs.rmSync(path.join(dir, name), { force: true, recursive: true });
  }
}

/**
 * Removes the temp files (tempBeside) of `file` alone whose process is gone, for a directory a user names (`save -o`
 * into /tmp, where anyone may plant names): only regular files of this user, unlinked, never a directory's content
 * nor what a symlink points to.
 */
export function sweepTempsOf(file: string): void {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}#tmp-`;
  for (const name of namesIn(dir)) {
    if (!name.startsWith(prefix) || !isTemp(name) || liveTemp(name)) continue;
    const entry = path.join(dir, name);
    const st = fs.lstatSync(entry, { throwIfNoEntry: false });
    if (!st?.isFile() || st.uid !== process.getuid?.()) continue;
    try {
      fs.unlinkSync(entry);
    } catch {
      // Gone already, or not ours to remove (a sticky directory): left.
    }
  }
}

/**
 * Removes the directories named `what-…` that processes now gone left in a directory anyone may write to (/dev/shm):
 * only real directories of this user, never what a symlink points to.
 */
export function sweepShared(parent: string, what: string): void {
  for (const name of fs.readdirSync(parent)) {
    if (!name.startsWith(`${what}-`) || !abandoned(name)) continue;
    const dir = path.join(parent, name);
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (st?.isDirectory() && st.uid === process.getuid?.()) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Removes what processes that are gone left in dir. A build sandbox may still have its step's container (runc
 * state under its `runc`) and its overlay mounted: the container is killed and the mounts undone first, so the
 * removal never reaches through a mount into anything else.
 */
export async function sweepStaging(host: Host, dir: string): Promise<void> {
  for (const name of (await listDir(dir)).filter(abandoned)) {
    const entry = path.join(dir, name);
    const runcRoot = path.join(entry, "runc");
    const ids = await fs.promises.readdir(runcRoot).catch(() => []);
    if (ids.length > 0) {
      // The `runc run` of the killed build outlives it, and would write its state back as it ends.
      for (const pid of await processesWith(["--root", runcRoot])) process.kill(pid, "SIGKILL");
      for (const id of ids) await host.tryRun("runc", ["--root", runcRoot, "delete", "--force", id]);
    }
    // Deepest first; one still mounted (busy) keeps the entry for a later sweep.
    for (const m of (await mountsUnder(entry)).reverse()) await host.tryRun("umount", [m]);
    if ((await mountsUnder(entry)).length === 0) await fs.promises.rm(entry, { recursive: true, force: true });
  }
}

/** Live processes whose command line holds these arguments in a row. */
async function processesWith(args: string[]): Promise<number[]> {
  const wanted = `\0${args.join("\0")}\0`;
  const pids: number[] = [];
  for (const pid of (await listDir("/proc")).filter((n) => /^\d+$/.test(n))) {
    const cmdline = await fs.promises.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (`\0${cmdline}`.includes(wanted)) pids.push(Number(pid));
  }
  return pids;
}

async function mountsUnder(dir: string): Promise<string[]> {
  const mounts = (await fs.promises.readFile("/proc/self/mounts", "utf8")).split("\n").map((l) => l.split(" ")[1]);
  return mounts.filter((m) => m?.startsWith(`${dir}/`)).sort();
}
