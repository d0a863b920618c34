// A container's root filesystem: an overlay of the image's unpacked layers (read-only, shared) under a private
// upper directory. Like a containerd snapshotter, prepare() only returns the mount as data; mount() performs it.
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

/** Creates the container's private directories and describes the overlay; lowerDirs are top layer first. */
export async function prepare(lowerDirs: string[], dirs: SnapshotDirs): Promise<Mount> {
  await Promise.all([dirs.upper, dirs.work, dirs.rootfs].map((d) => fs.promises.mkdir(d, { recursive: true })));
  return {
    type: "overlay",
    source: "overlay",
    target: dirs.rootfs,
    options: [`lowerdir=${lowerDirs.join(":")}`, `upperdir=${dirs.upper}`, `workdir=${dirs.work}`],
  };
}

export async function mount(host: Host, m: Mount): Promise<void> {
  await host.run("mount", ["-t", m.type, "-o", m.options.join(","), m.source, m.target]);
}

/** Unmounts target if it is mounted. */
export async function unmount(host: Host, target: string): Promise<void> {
  if (await isMounted(target)) await host.run("umount", [target]);
}
