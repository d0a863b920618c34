// COPY and ADD placing files into a build step's mounted root filesystem. Paths are resolved inside the rootfs the
// way the container would see them (symlinks followed, never above its root), so an image's symlinks cannot
// steer a host-side write elsewhere (native/confine.ts).
import * as fs from "node:fs";
import * as path from "node:path";
import { resolveInRoot } from "../confine";

/** One file, directory or symlink to copy: its host path and its path below the destination ("" is the destination). */
export interface CopyItem {
  src: string;
  rel: string;
  stat: fs.Stats;
}

export interface PlaceOptions {
  owner?: { uid: number; gid: number };
  /** --chmod: replaces every copied entry's permission bits. */
  mode?: number;
}

/** Creates container directory dir (and its parents, root-owned 0755) unless it exists. */
export async function ensureDir(rootfs: string, dir: string, owner?: { uid: number; gid: number }): Promise<string> {
  let current = "/";
  for (const part of dir.split("/").filter(Boolean)) {
    current = path.posix.join(current, part);
    const host = await resolveInRoot(rootfs, current);
    const st = await fs.promises.stat(host).catch(() => undefined);
    if (!st) {
      await fs.promises.mkdir(host, { mode: 0o755 });
      if (owner) await fs.promises.chown(host, owner.uid, owner.gid);
    } else if (!st.isDirectory()) throw new Error(`${current} exists in the image and is not a directory`);
  }
  return resolveInRoot(rootfs, dir);
}

/** Files copied at once: each is several round trips to libuv's pool (4 threads), which one at a time leaves idle. */
const FILES_AT_ONCE = 4;

/**
 * Copies items under container path dest (items in parent-before-child order). Directories are placed one by one,
 * each after everything before it; the files between them several at once.
 */
export async function placeItems(rootfs: string, dest: string, items: CopyItem[], o: PlaceOptions): Promise<void> {
  let files: CopyItem[] = [];
  const flush = async () => {
    const queue = files;
    files = [];
    // Their parents made first, one by one (two files must not race to create one directory), each resolved once:
    // nothing placed between here and the files is a directory, so none of them can move.
    const parents = new Map<string, string>();
    for (const item of queue) {
      const dir = path.posix.dirname(path.posix.join(dest, item.rel));
      if (!parents.has(dir)) parents.set(dir, await ensureDir(rootfs, dir, o.owner));
    }
    const worker = async () => {
      try {
        for (let item = queue.shift(); item; item = queue.shift()) {
          const at = path.posix.join(dest, item.rel);
          await placeFile(path.join(parents.get(path.posix.dirname(at))!, path.posix.basename(at)), item, o);
        }
      } catch (e) {
        queue.length = 0; // the others stop after their current file
        throw e;
      }
    };
    // Every worker ended before a failure is reported: none writes into a sandbox being discarded.
    const ended = await Promise.allSettled(Array.from({ length: Math.min(FILES_AT_ONCE, queue.length) }, worker));
    for (const r of ended) if (r.status === "rejected") throw r.reason;
  };
  for (const item of items) {
    if (!item.stat.isDirectory()) {
      files.push(item);
      continue;
    }
    await flush();
    const at = path.posix.join(dest, item.rel);
    const target = item.rel === "" ? await ensureDir(rootfs, at, o.owner) : path.join(await ensureDir(rootfs, path.posix.dirname(at), o.owner), path.posix.basename(at));
    const existing = await fs.promises.lstat(target).catch(() => undefined);
    if (existing && !existing.isDirectory()) await fs.promises.rm(target, { recursive: true, force: true });
    if (!existing?.isDirectory()) await fs.promises.mkdir(target);
    await finish(target, item, o);
  }
  await flush();
}

/** Places a file or symlink at target (a host path in the rootfs whose parent is resolved), replacing what is there. */
async function placeFile(target: string, item: CopyItem, o: PlaceOptions): Promise<void> {
  if (await fs.promises.lstat(target).catch(() => undefined)) await fs.promises.rm(target, { recursive: true, force: true });
  if (item.stat.isSymbolicLink()) await fs.promises.symlink(await fs.promises.readlink(item.src), target);
  else await fs.promises.copyFile(item.src, target);
  await finish(target, item, o);
}

/** Owner, mode and mtime of a placed entry: root's (or --chown's), the source's (or --chmod's), the source's. */
async function finish(target: string, item: CopyItem, o: PlaceOptions): Promise<void> {
  await fs.promises.lchown(target, o.owner?.uid ?? 0, o.owner?.gid ?? 0);
  if (!item.stat.isSymbolicLink()) await fs.promises.chmod(target, o.mode ?? item.stat.mode & 0o7777);
  const t = item.stat.mtime;
  await fs.promises.lutimes(target, t, t);
}

/** Everything under a host directory, as copy items relative to it (symlinks not followed). */
export async function walkTree(root: string): Promise<CopyItem[]> {
  const out: CopyItem[] = [{ src: root, rel: "", stat: await fs.promises.lstat(root) }];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await fs.promises.readdir(path.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const stat = await fs.promises.lstat(path.join(root, r));
      out.push({ src: path.join(root, r), rel: r, stat });
      if (stat.isDirectory()) await walk(r);
    }
  };
  if (out[0].stat.isDirectory()) await walk("");
  return out;
}
