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
