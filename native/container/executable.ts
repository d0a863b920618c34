// Finding the container's command before it starts, as runc would (PATH lookup, symlinks resolved inside the
// container), so that a missing executable is refused with Docker's words instead of a container whose init starts
// and exits 127. The container's file system is seen as the process will see it: its mounts (binds, volumes) over
// its image's layers, so a check can run before anything is mounted (a preview) as well as on the made rootfs.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Bind } from "./spec";

const MAX_LINKS = 40;

/** A container's file system: mounts over a stack of directories (image layers top first, or one made rootfs). */
export interface FsView {
  layers: string[];
  mounts: Bind[];
}

/** An overlayfs whiteout: the path is deleted in this layer and every one below. */
const isWhiteout = (st: fs.Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

/** The host path of a container path's entry: in the mount holding it, else in the topmost layer that has it. */
function locate(view: FsView, p: string): { host: string; st: fs.Stats } | undefined {
  const mount = view.mounts
    .filter((m) => p === m.destination || p.startsWith(`${m.destination.replace(/\/$/, "")}/`))
    .sort((a, b) => b.destination.length - a.destination.length)[0];
  // A mount whose source is not made yet (an anonymous volume seeded from the image) shows the image below it.
  const dirs = mount && fs.existsSync(mount.source) ? [path.join(mount.source, path.posix.relative(mount.destination, p))] : view.layers.map((l) => path.join(l, p));
  for (const host of dirs) {
    const st = fs.lstatSync(host, { throwIfNoEntry: false });
    if (st) return isWhiteout(st) ? undefined : { host, st };
  }
  return undefined;
}

/** stat of a container path, symlinks resolved inside the container; undefined when it does not exist. */
function statIn(view: FsView, p: string): fs.Stats | undefined {
  const queue = p.split("/").filter(Boolean);
  const resolved: string[] = [];
  let links = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      resolved.pop();
      continue;
    }
    const here = `/${[...resolved, part].join("/")}`;
    const found = locate(view, here);
    if (!found) return undefined;
    if (found.st.isSymbolicLink()) {
      if (++links > MAX_LINKS) return undefined;
      const target = fs.readlinkSync(found.host);
      if (target.startsWith("/")) resolved.length = 0;
      queue.unshift(...target.split("/").filter(Boolean));
      continue;
    }
    if (queue.length > 0 && !found.st.isDirectory()) return undefined;
    resolved.push(part);
  }
  return locate(view, `/${resolved.join("/")}`)?.st;
}

const runnable = (st: fs.Stats | undefined): boolean => st !== undefined && st.isFile() && (st.mode & 0o111) !== 0;

/** Docker's error when the command cannot be found or run; undefined when it can. */
export function executableProblem(view: FsView, cmd: string, env: string[]): string | undefined {
  if (cmd.includes("/")) {
    const st = statIn(view, cmd);
    if (!st) return `exec: "${cmd}": stat ${cmd}: no such file or directory`;
    if (!runnable(st)) return `exec: "${cmd}": permission denied`;
    return undefined;
  }
  const pathVar = env.find((e) => e.startsWith("PATH="))?.slice("PATH=".length) ?? "";
  const dirs = pathVar.split(":").filter(Boolean);
  if (dirs.some((dir) => runnable(statIn(view, path.posix.join(dir, cmd))))) return undefined;
  return `exec: "${cmd}": executable file not found in $PATH`;
}

/** Throws Docker's error when the command cannot be found or run. */
export async function checkExecutable(view: FsView, cmd: string, env: string[]): Promise<void> {
  const problem = executableProblem(view, cmd, env);
  if (problem) throw new Error(problem);
}
