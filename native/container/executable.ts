// Finding the container's command in its rootfs before it starts, as runc would (PATH lookup, symlinks resolved
// inside the rootfs), so that a missing executable is refused with Docker's words instead of a container whose
// init starts and exits 127.
import * as fs from "node:fs";
import * as path from "node:path";
import { resolveInRoot } from "../confine";

async function statInRootfs(rootfs: string, p: string): Promise<fs.Stats | undefined> {
  const host = await resolveInRoot(rootfs, p).catch(() => undefined);
  return host === undefined ? undefined : fs.statSync(host, { throwIfNoEntry: false });
}

const runnable = (st: fs.Stats | undefined): boolean => st !== undefined && st.isFile() && (st.mode & 0o111) !== 0;

/** Throws Docker's error when the command cannot be found or run. */
export async function checkExecutable(rootfs: string, cmd: string, env: string[]): Promise<void> {
  if (cmd.includes("/")) {
    const st = await statInRootfs(rootfs, cmd);
    if (!st) throw new Error(`exec: "${cmd}": stat ${cmd}: no such file or directory`);
    if (!runnable(st)) throw new Error(`exec: "${cmd}": permission denied`);
    return;
  }
  const pathVar = env.find((e) => e.startsWith("PATH="))?.slice("PATH=".length) ?? "";
  const dirs = pathVar.split(":").filter(Boolean);
  const found = await Promise.all(dirs.map(async (dir) => runnable(await statInRootfs(rootfs, path.posix.join(dir, cmd)))));
  if (!found.includes(true)) {
    throw new Error(`exec: "${cmd}": executable file not found in $PATH`);
  }
}
