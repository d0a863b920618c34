// Finding the container's command in its rootfs before it starts, as runc would (PATH lookup, symlinks resolved
// inside the rootfs), so that a missing executable is refused with Docker's words instead of a container whose
// init starts and exits 127.
import * as fs from "node:fs";
import * as path from "node:path";

const MAX_LINKS = 40;

/**
 * The host path a path inside the rootfs leads to, every symlink on the way resolved against the rootfs (an
 * absolute link target is the rootfs's, never the host's); undefined past too many links.
 */
export function resolveInRootfs(rootfs: string, p: string): string | undefined {
  const todo = path.posix.normalize(`/${p}`).split("/").filter(Boolean);
  const done: string[] = [];
  for (let links = 0; todo.length > 0; ) {
    const part = todo.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      done.pop();
      continue;
    }
    const host = path.join(rootfs, ...done, part);
    if (!fs.lstatSync(host, { throwIfNoEntry: false })?.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    if (++links > MAX_LINKS) return undefined;
    const target = fs.readlinkSync(host);
    if (target.startsWith("/")) done.length = 0;
    todo.unshift(...target.split("/").filter(Boolean));
  }
  return path.join(rootfs, ...done);
}

function statInRootfs(rootfs: string, p: string): fs.Stats | undefined {
  const host = resolveInRootfs(rootfs, p);
  return host === undefined ? undefined : fs.statSync(host, { throwIfNoEntry: false });
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
