// Confinement: the one place where a host path is made from a path an image, a container or a program chose.
// Node has no openat2(RESOLVE_IN_ROOT), so a path is resolved component by component with lstat, the way the
// kernel would inside the container: a symlink is followed within the root (an absolute target starts again at
// the root, ".." stops at it), never out of it. Callers that write never follow the last component (they lstat it
// and replace what is there). This is only safe for a tree nobody changes meanwhile: a layer being unpacked, a
// build step's rootfs, a container's rootfs before it starts. A container's files once it has run are reached
// from inside its own mount namespace and root instead (native/container/copy.ts).
import * as fs from "node:fs";
import * as path from "node:path";

const MAX_LINKS = 40;

/** The host path of container path p in root: symlinks followed inside root (the last one unless told not to). */
export async function resolveInRoot(root: string, p: string, followLast = true): Promise<string> {
  const entry = async (parts: string[]) => {
    const host = path.join(root, ...parts);
    return { host, st: await fs.promises.lstat(host).catch(() => undefined) };
  };
  return path.join(root, ...(await resolveWith(p, followLast, entry)));
}

/**
 * Container path p with its symlinks followed, as path components, where `entry` says where each container path
 * is on the host (a root, or layers and mounts) and what is there (nothing: undefined).
 */
export async function resolveWith(
  p: string,
  followLast: boolean,
  entry: (parts: string[]) => Promise<{ host: string; st?: fs.Stats }>,
): Promise<string[]> {
  const resolved: string[] = [];
  const queue = p.split("/").filter(Boolean);
  let links = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const { host, st } = await entry([...resolved, part]);
    if (st?.isSymbolicLink() && (queue.length > 0 || followLast)) {
      if (++links > MAX_LINKS) throw new Error(`too many levels of symbolic links resolving ${p}`);
      const target = await fs.promises.readlink(host);
      if (target.startsWith("/")) resolved.length = 0;
      queue.unshift(...target.split("/").filter(Boolean));
      continue;
    }
    resolved.push(part);
  }
  return resolved;
}

/**
 * lstat of rel below dir with no symlink followed anywhere: undefined when rel or one of its parents is missing
 * or a parent is not a real directory. For trees berth wrote itself (layers, upper directories). Synchronous: an
 * unpack asks it for every entry, and a few lstat calls cost less than handing each to the thread pool.
 */
export function lstatBelow(dir: string, rel: string): fs.Stats | undefined {
  const parts = rel.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) return undefined;
  const lstat = (p: string) => {
    try {
      return fs.lstatSync(p, { throwIfNoEntry: false });
    } catch {
      return undefined; // ENOTDIR, EACCES: not there either
    }
  };
  let host = dir;
  for (const [i, part] of parts.entries()) {
    host = path.join(host, part);
    const st = lstat(host);
    if (!st || (i < parts.length - 1 && !st.isDirectory())) return undefined;
    if (i === parts.length - 1) return st;
  }
  return lstat(dir);
}

/** The most berth reads of a container's small text file (/etc/passwd, /etc/group), at a check and at a start alike. */
export const SMALL_FILE_MAX = 4 << 20;

/**
 * The text of the regular file at host that `seen` (its lstat, reached without following a link) found; undefined
 * when it is no longer that file, not a regular file, or over SMALL_FILE_MAX. A container sharing the directory (a
 * volume over /etc) can swap the file for a link to a host file or a FIFO after the lstat: the open follows no
 * link and waits on no FIFO, and what it opened must be the inode the lstat saw.
 */
export async function readSmallFile(host: string, seen: fs.Stats): Promise<string | undefined> {
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  const file = await fs.promises.open(host, O_RDONLY | O_NOFOLLOW | O_NONBLOCK).catch(() => undefined);
  if (!file) return undefined;
  try {
    const st = await file.stat();
    if (!st.isFile() || st.dev !== seen.dev || st.ino !== seen.ino || st.size > SMALL_FILE_MAX) return undefined;
    // Bounded by the cap whatever the file grows to meanwhile: one byte more than the cap tells it is over.
    const buf = Buffer.alloc(Math.min(st.size, SMALL_FILE_MAX) + 1);
    let n = 0;
    for (let r; n < buf.length && (r = (await file.read(buf, n, buf.length - n, n)).bytesRead) > 0; ) n += r;
    return n > SMALL_FILE_MAX ? undefined : buf.toString("utf8", 0, n);
  } catch {
    return undefined;
  } finally {
    await file.close();
  }
}
