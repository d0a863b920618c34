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

/** Whether the process whose stat `fd` is still runs: false once it is a zombie or gone. */
export function stillRuns(fd: number): boolean {
  let n: number;
  try {
    n = fs.readSync(fd, buf, 0, buf.length, 0);
  } catch {
    return false;
  }
  // comm (field 2) may hold blanks and parentheses: the state is the field after the last ")".
  const close = n > 0 ? buf.lastIndexOf(CLOSE_PAREN, n - 1) : -1;
  const state = close < 0 ? DEAD : buf[close + 2];
  return state !== ZOMBIE && state !== DEAD;
}

/** A descriptor through which stillRuns looks at process `pid` from now on; undefined when it does not run. */
export function openProcess(pid: number): number | undefined {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/stat`, "r");
  } catch {
    return undefined;
  }
  if (stillRuns(fd)) return fd;
  fs.closeSync(fd);
  return undefined;
}

export const closeProcess = (fd: number | undefined): void => {
  if (fd !== undefined) fs.closeSync(fd);
};
