// Finding the container's command before it starts, as runc would (PATH lookup, symlinks resolved inside the
// container), so that a missing executable is refused with Docker's words instead of a container whose init starts
// and exits 127. The container's file system is seen as the process will see it: its mounts (binds, volumes) over
// its image's layers, so a check can run before anything is mounted (a preview) as well as on the made rootfs.
import * as fs from "node:fs";
import * as path from "node:path";
import { lstatBelow, readSmallFile, resolveWith } from "../confine";
import type { Bind } from "./spec";

/** A container's file system: mounts over a stack of directories (image layers top first, or one made rootfs). */
export interface FsView {
  layers: string[];
  mounts: Bind[];
}

/** An overlayfs whiteout: the path is deleted in this layer and every one below. */
const isWhiteout = (st: fs.Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

/** Where a container path's entry is: in the mount holding it, else in the topmost layer that has it. */
async function entryIn(view: FsView, parts: string[]): Promise<{ host: string; st?: fs.Stats }> {
  const p = `/${parts.join("/")}`;
  const mount = view.mounts
    .filter((m) => p === m.destination || p.startsWith(`${m.destination.replace(/\/$/, "")}/`))
    .sort((a, b) => b.destination.length - a.destination.length)[0];
  // A mount whose source is not made yet (an anonymous volume seeded from the image) shows the image below it.
  const roots = mount && fs.existsSync(mount.source) ? [[mount.source, path.posix.relative(mount.destination, p)]] : view.layers.map((l) => [l, p]);
  // Layers and volumes hold what images and containers wrote: no symlink on the way is followed on the host.
  for (const [root, rel] of roots) {
    // The mount point itself is its source as mount(2) sees it: a host path the user named, its links followed.
    const st = mount && rel === "" ? fs.statSync(root, { throwIfNoEntry: false }) : lstatBelow(root, rel);
    if (st) return isWhiteout(st) ? { host: path.join(root, rel) } : { host: path.join(root, rel), st };
  }
  return { host: roots[0] ? path.join(...roots[0]) : p };
}

/** Container path p with its symlinks followed inside the view (a mount's target as runc resolves it). */
export function resolveIn(view: FsView, p: string): Promise<string[]> {
  return resolveWith(p, true, (parts) => entryIn(view, parts));
}

/** stat of a container path, symlinks resolved inside the container; undefined when it does not exist. */
async function statIn(view: FsView, p: string): Promise<fs.Stats | undefined> {
  const entry = (parts: string[]) => entryIn(view, parts);
  const parts = await resolveWith(p, true, entry).catch(() => undefined);
  return parts && (await entry(parts)).st;
}

/** A small text file of the view (its symlinks followed inside it), as /etc/passwd is read; undefined when it is none. */
export async function readTextIn(view: FsView, p: string): Promise<string | undefined> {
  const entry = (parts: string[]) => entryIn(view, parts);
  const parts = await resolveWith(p, true, entry).catch(() => undefined);
  const found = parts && (await entry(parts));
  return found?.st ? readSmallFile(found.host, found.st) : undefined;
}

const runnable = (st: fs.Stats | undefined): boolean => st !== undefined && st.isFile() && (st.mode & 0o111) !== 0;

/**
 * Answers for views that never change: image layers alone (unpacked once per diff id, then only read), or the
 * rootfs of a container not started yet (those layers under an empty upper directory). 100 containers of one image
 * and command looked the command up 200 times, a hundred-odd lstats each.
 */
const answers = new Map<string, string | undefined>();
const ANSWERS_KEPT = 1000;

/**
 * Docker's error when the command cannot be found or run; undefined when it can. `freshOf`: the view's one layer
 * is the rootfs of a container not started yet, made of these image layers.
 */
export async function executableProblem(view: FsView, cmd: string, env: string[], freshOf?: string[]): Promise<string | undefined> {
  if (view.mounts.length > 0) return lookUp(view, cmd, env);
  // Keyed apart: overlayfs's answer (the rootfs) is the exact one where the layers alone are read without it.
  const key = JSON.stringify([freshOf ? "rootfs" : "layers", freshOf ?? view.layers, cmd, env.find((e) => e.startsWith("PATH="))]);
  if (answers.has(key)) return answers.get(key);
  const answer = await lookUp(view, cmd, env);
  if (answers.size >= ANSWERS_KEPT) answers.clear();
  answers.set(key, answer);
  return answer;
}

async function lookUp(view: FsView, cmd: string, env: string[]): Promise<string | undefined> {
  if (cmd.includes("/")) {
    const st = await statIn(view, cmd);
    if (!st) return `exec: "${cmd}": stat ${cmd}: no such file or directory`;
    if (!runnable(st)) return `exec: "${cmd}": permission denied`;
    return undefined;
  }
  const pathVar = env.find((e) => e.startsWith("PATH="))?.slice("PATH=".length) ?? "";
  const dirs = pathVar.split(":").filter(Boolean);
  const found = await Promise.all(dirs.map(async (dir) => runnable(await statIn(view, path.posix.join(dir, cmd)))));
  if (found.includes(true)) return undefined;
  return `exec: "${cmd}": executable file not found in $PATH`;
}

/** Throws Docker's error when the command cannot be found or run. */
export async function checkExecutable(view: FsView, cmd: string, env: string[], freshOf?: string[]): Promise<void> {
  const problem = await executableProblem(view, cmd, env, freshOf);
  if (problem) throw new Error(problem);
}
