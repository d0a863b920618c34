// Confinement: the one place where a host path is made from a path an image, a container or a program chose.
// Node has no openat2(RESOLVE_IN_ROOT), so a path is resolved component by component with lstat, the way the
// kernel would inside the container: a symlink is followed within the view (an absolute target starts again at
// the view's root, ".." stops at it), never out of it. A path that is written is never followed in its last
// component. This is only safe against a tree nobody else changes meanwhile (a layer being unpacked, a build
// step's rootfs, a stopped container); a running container's files are reached from inside its own mount
// namespace instead (native/container/copy.ts).
import * as fs from "node:fs";
import * as path from "node:path";

const MAX_LINKS = 40;

/** A container's view of the host: its root filesystem and the host directories mounted into it. */
export interface View {
  root: string;
  /** Container path (absolute, normalized) → host directory. */
  mounts?: Array<{ target: string; source: string }>;
}

const asView = (v: string | View): View => (typeof v === "string" ? { root: v } : v);

/** The host path of container path parts (already free of "." and ".."), through the view's mounts. */
function hostOf(view: View, parts: string[]): { host: string; mountPoint: boolean } {
  const p = `/${parts.join("/")}`;
  let best: { target: string; source: string } | undefined;
  for (const m of view.mounts ?? []) {
    if ((p === m.target || p.startsWith(`${m.target}/`)) && (!best || m.target.length > best.target.length)) best = m;
  }
  if (!best) return { host: path.join(view.root, ...parts), mountPoint: false };
  return { host: path.join(best.source, path.posix.relative(best.target, p)), mountPoint: p === best.target };
}

/** The container path (normalized, absolute) that container path p names once symlinks are followed in view. */
async function resolveParts(view: View, p: string, followLast: boolean): Promise<string[]> {
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
    const { host, mountPoint } = hostOf(view, [...resolved, part]);
    const st = mountPoint ? undefined : await fs.promises.lstat(host).catch(() => undefined);
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

/** The host path of container path p: symlinks followed inside the view (the last one unless told not to). */
export async function resolveInRoot(view: string | View, p: string, followLast = true): Promise<string> {
  const v = asView(view);
  const { host } = hostOf(v, await resolveParts(v, p, followLast));
  return host;
}

/**
 * Where container path p is written: its directory resolved inside the view, its last component never followed
 * (a symlink there is what gets replaced, not where the write goes). Refuses the view's root itself.
 */
export async function resolveForWrite(view: string | View, p: string): Promise<string> {
  const v = asView(view);
  const norm = path.posix.normalize(`/${p}`).replace(/\/+$/, "");
  if (norm === "" || norm === "/") throw new Error(`cannot write over the root of the filesystem`);
  const dir = await resolveParts(v, path.posix.dirname(norm), true);
  return hostOf(v, [...dir, path.posix.basename(norm)]).host;
}

/**
 * lstat of rel below dir with no symlink followed anywhere: undefined when rel or one of its parents is missing
 * or a parent is not a real directory. For trees berth wrote itself (layers, upper directories).
 */
export async function lstatBelow(dir: string, rel: string): Promise<fs.Stats | undefined> {
  const parts = rel.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) return undefined;
  let host = dir;
  for (const [i, part] of parts.entries()) {
    host = path.join(host, part);
    const st = await fs.promises.lstat(host).catch(() => undefined);
    if (!st || (i < parts.length - 1 && !st.isDirectory())) return undefined;
    if (i === parts.length - 1) return st;
  }
  return fs.promises.lstat(dir).catch(() => undefined);
}
