// Whether a container's init still runs, looked at every tick through a descriptor of its /proc/PID/stat kept open
// from when it was first seen running. A read of that descriptor fails (ESRCH) once the process is reaped, also
// after the kernel has handed its pid to a later process: the descriptor names the process, not the number. So a
// look needs no path lookup and no start time compared (a third of the CPU of reading /proc/PID/stat by name,
// which was most of a tick's work per container).
import * as fs from "node:fs";

const buf = Buffer.alloc(4096);
const CLOSE_PAREN = 0x29;
/** States of a process that has ended: a zombie (not reaped yet) and a dead one. */
const ZOMBIE = 0x5a;
const DEAD = 0x58;

/** Whether the process whose stat `fd` is runs; false once it is a zombie or reaped, and throws on any other error. */
function runs(fd: number): boolean {
  let n: number;
  try {
    n = fs.readSync(fd, buf, 0, buf.length, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw e;
  }
  // comm (field 2) may hold blanks and parentheses: the state is the field after the last ")".
  const close = n > 0 ? buf.lastIndexOf(CLOSE_PAREN, n - 1) : -1;
  const state = close < 0 ? DEAD : buf[close + 2];
  return state !== ZOMBIE && state !== DEAD;
}

/**
 * Whether the process whose stat `fd` is (openProcess) still runs. False also when the read fails otherwise: the
 * caller then looks again by pid (openProcess), which tells an ended process from a failure.
 */
export function stillRuns(fd: number): boolean {
  try {
    return runs(fd);
  } catch {
    return false;
  }
}

/**
 * A descriptor through which stillRuns looks at process `pid` from now on; undefined when there is no such process
 * or it has ended. Any other failure (no descriptor left: EMFILE) throws, rather than be taken for an exit.
 */
export function openProcess(pid: number): number | undefined {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/stat`, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  let running = false;
  try {
    running = runs(fd);
  } finally {
    if (!running) fs.closeSync(fd);
  }
  return running ? fd : undefined;
}

export const closeProcess = (fd: number | undefined): void => {
  if (fd !== undefined) fs.closeSync(fd);
};
