// A container's root filesystem: an overlay of the image's unpacked layers and berth's init layer (init-layer.ts;
// read-only, shared) under a private upper directory. Like a containerd snapshotter, prepare() only returns the mount as data; mount() performs it.
import * as fs from "node:fs";
import type { Host } from "../host/exec";
import { isMounted } from "../host/probe";

export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface SnapshotDirs {
  upper: string;
  work: string;
  rootfs: string;
}

/**
 * Creates the container's private directories and describes the overlay; lowerDirs are top layer first. Synchronous
 * calls: three mkdirs through fs.promises are three thread-pool round trips, on the main thread's path per container.
 */
export function prepare(lowerDirs: string[], dirs: SnapshotDirs): Mount {
  for (const d of [dirs.upper, dirs.work, dirs.rootfs]) fs.mkdirSync(d, { recursive: true });
  return {
    type: "overlay",
    source: "overlay",
    target: dirs.rootfs,
    options: [`lowerdir=${lowerDirs.join(":")}`, `upperdir=${dirs.upper}`, `workdir=${dirs.work}`],
  };
}

// The host's static busybox (every container's init needs it already) mounts and unmounts: util-linux's mount
// loads five shared libraries and the locale first, about a millisecond of CPU per container. -n: no /etc/mtab.
const BUSYBOX = "/bin/busybox";

export async function mount(host: Host, m: Mount): Promise<void> {
  // In "/": busybox sets up a loop device when the source names a regular file, and "overlay" is a relative name
  // (a file of that name in the directory berth was started from would be mounted).
  await host.run(BUSYBOX, ["mount", "-n", "-t", m.type, "-o", m.options.join(","), m.source, m.target], { cwd: "/" });
}

/** Unmounts target if it is mounted. */
export async function unmount(host: Host, target: string): Promise<void> {
  if (await isMounted(target)) await host.run(BUSYBOX, ["umount", "-n", target]);
}
