// berth's init, PID 1 of every container: the host's static busybox, bind-mounted read-only at /.berth/busybox,
// running a short sh script that runs the container's command in the foreground, reaps orphans meanwhile (as
// Docker's --init does) and, when the command ends, writes its exit status to /.berth/exit/code — a host
// directory. A container's init is reparented to the host's init once `runc run --detach` returns, so no berth process
// can wait() for it; this file is how the supervisor learns the exit code without being every container's parent.
// Stop and kill signal every process of the container (`runc kill --all`), so the command gets the signal as it
// would as PID 1; the init ignores it (the kernel drops signals to a namespace's init that has no handler). A container killed
// outright (SIGKILL to its init) writes nothing: its status is 137, as Docker reports.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Bind } from "../container/spec";
import type { Runc } from "../container/runc";
import type { RuncRef } from "../container/runc-root";

/** Where every container has berth's busybox (also what `berth cp` runs inside a running container). */
export const BUSYBOX = "/.berth/busybox";
const EXIT_DIR = "/.berth/exit";
/** Docker's status for a container whose init was killed by SIGKILL. */
const KILLED = 137;

// The command is looked up on the container's PATH first: busybox's sh would otherwise prefer its own applets
// (ls, sleep, sh…) to the image's programs of the same name. The lookup is a function (its IFS and loop variable
// local), not a $(…) subshell: no process more per container start.
// sh itself catches SIGINT (and would exit on it without writing the status) and ignores SIGQUIT (which the
// command would inherit, unable to receive it): a no-op trap for both gives the command default dispositions.
const SCRIPT = `trap : INT QUIT
berth_find() { local IFS=: d; for d in $PATH; do [ -f "$d/$1" ] && [ -x "$d/$1" ] && { berth_cmd=$d/$1; return 0; }; done; return 1; }
case $1 in */*) ;; *) berth_find "$1" && shift && set -- "$berth_cmd" "$@";; esac
unset -f berth_find
"$@"
r=$?
echo $r > ${EXIT_DIR}/code
exit $r`;

/** The container's process, under berth's init. */
export function initArgs(args: string[]): string[] {
  return [BUSYBOX, "sh", "-c", SCRIPT, "berth-init", ...args];
}

/** Where the exit status of a container whose bundle is `bundle` lands on the host. */
const exitDir = (bundle: string): string => path.join(bundle, "exit");

export function initBinds(bundle: string): Bind[] {
  return [
    { source: fs.realpathSync("/bin/busybox"), destination: BUSYBOX, readOnly: true },
    { source: exitDir(bundle), destination: EXIT_DIR },
  ];
}

/**
 * Clears the last status before the container (re)starts. The directory belongs to the container's user (`owner`;
 * else the user its bundle's config runs as): the init runs as that user and could not write the status otherwise
 * (every non-root container would read as killed). What the container left there is removed without following
 * links — it may have made `code` a link, a FIFO or a directory.
 */
export async function resetExit(bundle: string, owner?: { uid: number; gid: number }): Promise<void> {
  const dir = exitDir(bundle);
  // Synchronous calls: run on every container's create and start, a thread-pool round trip each through fs.promises.
  fs.mkdirSync(dir, { recursive: true });
  const code = path.join(dir, "code");
  try {
    fs.unlinkSync(code);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code;
    // A directory the container made there (a process of it may live on in a shared PID namespace): GNU rm walks it
    // by descriptor, never through a link swapped in meanwhile, as a walk by path (fs.rm) would follow.
    if (why === "EISDIR" || why === "EPERM") (require("node:child_process") as typeof import("node:child_process")).execFileSync("rm", ["-rf", "--", code]);
    else if (why !== "ENOENT") throw e;
  }
  const { uid, gid } = owner ?? (JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8")) as { process: { user: { uid: number; gid: number } } }).process.user;
  fs.lchownSync(dir, uid, gid);
}

/** When the container's last run ended, as far as the host can tell (the exit status file's time; else now). */
export function exitedAt(bundle: string): string {
  const st = fs.lstatSync(path.join(exitDir(bundle), "code"), { throwIfNoEntry: false });
  return (st?.mtime ?? new Date()).toISOString();
}

/**
 * The exit status of the container's last run; KILLED when its init died without writing one. The file is in a
 * directory the container writes: a symlink there is not followed (it would read a host file), a FIFO not waited
 * on (it would block every reader, the supervisor included), and a few bytes are read at most.
 */
export function exitCode(bundle: string): number {
  let fd: number | undefined;
  try {
    const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
    fd = fs.openSync(path.join(exitDir(bundle), "code"), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!fs.fstatSync(fd).isFile()) return KILLED;
    const buf = Buffer.alloc(16);
    const code = Number(buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString().trim());
    return Number.isInteger(code) ? code : KILLED;
  } catch {
    return KILLED;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Starts a stopped container again from its bundle (same rootfs, network namespace and address). Here rather than
 * with the other verbs (container/lifecycle.ts), whose imports (copy, tar, unpack…) would double what the
 * supervisor loads at its start.
 */
export async function relaunch(runc: Runc, bundle: string, c: RuncRef, log: string, pidFile: string): Promise<void> {
  await runc.delete(c);
  await resetExit(bundle);
  await runc.run(c, bundle, log, pidFile);
}
