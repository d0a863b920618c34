// Finding the container's command in its rootfs before it starts, as runc would (PATH lookup, symlinks resolved
// inside the rootfs), so that a missing executable is refused with Docker's words instead of a container whose
// init starts and exits 127.
import * as fs from "node:fs";
import * as path from "node:path";

const MAX_LINKS = 40;

/** The file a path inside the rootfs leads to, symlinks resolved against the rootfs (never the host). */
function statInRootfs(rootfs: string, p: string): fs.Stats | undefined {
  let rel = path.posix.normalize(p);
  for (let links = 0; links < MAX_LINKS; links++) {
    const host = path.join(rootfs, rel);
    const st = fs.lstatSync(host, { throwIfNoEntry: false });
    if (!st?.isSymbolicLink()) return st;
    const target = fs.readlinkSync(host);
    rel = path.posix.normalize(target.startsWith("/") ? target : path.posix.join(path.posix.dirname(rel), target));
  }
  return undefined;
}

const runnable = (st: fs.Stats | undefined): boolean => st !== undefined && st.isFile() && (st.mode & 0o111) !== 0;

/** Throws Docker's error when the command cannot be found or run. */
export function checkExecutable(rootfs: string, cmd: string, env: string[]): void {
  if (cmd.includes("/")) {
    const st = statInRootfs(rootfs, cmd);
    if (!st) throw new Error(`exec: "${cmd}": stat ${cmd}: no such file or directory`);
    if (!runnable(st)) throw new Error(`exec: "${cmd}": permission denied`);
    return;
  }
  const pathVar = env.find((e) => e.startsWith("PATH="))?.slice("PATH=".length) ?? "";
  if (!pathVar.split(":").some((dir) => dir && runnable(statInRootfs(rootfs, path.posix.join(dir, cmd))))) {
    throw new Error(`exec: "${cmd}": executable file not found in $PATH`);
  }
}
