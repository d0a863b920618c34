// Reads only the files its caller names, and /proc for their owners' start times (the stack lock uses it too).
// The one locking discipline for files several berth processes share (the image index and GC, container and
// network records, port and subnet claims, the supervisor's place). Node has no flock, so a lock is a file made
// whole under a temp name and hard-linked into place: link fails when the lock is held, and nobody ever sees a
// lock without its owner. The owner is a pid and that process's start time (/proc/PID/stat field 22): a pid the
// kernel handed to a new process is a different owner, so a dead holder's lock is broken, never honoured forever.
// Breaking takes a second lock (`FILE.break`) and re-reads the owner under it, so two waiters that both saw the
// dead owner cannot remove a lock a third process took in between. A wait that times out names the holder.
import * as fs from "node:fs";
import * as path from "node:path";
import { randomHex } from "./random";
import { KeyedMutex } from "./mutex";
import { sweepTemps, tempBeside } from "./staging";
import { readText } from "./json-file";

export interface Owner {
  pid: number;
  /** Start time of the process in clock ticks after boot (/proc/PID/stat field 22). */
  start: number;
  /** Its command line, for the message of a waiter that gives up. */
  cmd?: string;
  since?: string;
}

/** How long a lock is waited for unless the caller says otherwise. */
export const DEFAULT_LOCK_TIMEOUT_MS = 120_000;

/** A process's /proc stat fields from the state (field 3) on; undefined when there is no such process. */
export function statFields(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm (field 2) may hold blanks and parentheses: fields are counted from the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2);
  } catch {
    return undefined;
  }
}

/**
 * The start time (field 22) of a process, undefined when there is no such process. A zombie still counts: its
 * pid is not free for another process until it is reaped.
 */
export function processStart(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields === undefined ? undefined : Number(fields.split(" ")[19]);
}

let me: Owner | undefined;
/** This process as a lock owner. */
export function self(): Owner {
  if (!me) {
    const cmd = fs.readFileSync("/proc/self/cmdline", "utf8").split("\0").filter(Boolean).join(" ").replace(/\s+/g, " ").slice(0, 200);
    me = { pid: process.pid, start: processStart(process.pid) ?? 0, cmd };
  }
  return me;
}

/** Whether the owner's process still runs (the same process: same pid and same start time). */
export function ownerAlive(o: Pick<Owner, "pid" | "start">): boolean {
  return o.pid === process.pid ? o.start === self().start : processStart(o.pid) === o.start;
}

export const describeOwner = (o: Owner): string =>
  `pid ${o.pid}${o.cmd ? ` (${o.cmd})` : ""}${o.since ? ` since ${o.since}` : ""}`;

/** The owner a lock file names; undefined when there is no such file, null when it is damaged. */
function readOwner(file: string): Owner | null | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    // Only a file that is not there is no lock: one there but unreadable is damaged. (Never judged afterwards by
    // whether it exists: under breakIfDead's guard a lock taken meanwhile would then read as damaged and go.)
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return null;
  }
  try {
    const o = JSON.parse(text) as Owner;
    return Number.isInteger(o.pid) && Number.isInteger(o.start) ? o : null;
  } catch {
    return null;
  }
}

/** Whether file is a lock whose owner is gone (a damaged or unreadable one is not known to be). */
export function deadOwner(file: string): boolean {
  const o = readOwner(file);
  return !!o && !ownerAlive(o);
}

/**
 * Makes `file` with `content` (and `mode`) unless it exists, atomically: written under a temp name, then linked into
 * place. Resolves to false when the file exists already. Synchronous calls: a lock is taken several times per
 * container, and through fs.promises each take cost seven thread-pool round trips for a few bytes on tmpfs.
 */
export async function writeLinked(file: string, content: string, mode?: number): Promise<boolean> {
  const tmp = tempBeside(file);
  fs.writeFileSync(tmp, content, { mode });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** The live holder of a lock, if any. */
export function lockHolder(file: string): Owner | undefined {
  const o = readOwner(file) ?? undefined;
  return o && ownerAlive(o) ? o : undefined;
}

/** Removes the lock when its owner is dead, re-checked under FILE.break so that only a dead owner's lock goes. */
async function breakIfDead(file: string): Promise<void> {
  const guard = `${file}.break`;
  if (!(await writeLinked(guard, JSON.stringify(self())))) {
    // A breaker that died while breaking (a double fault): its guard goes the same way.
    const g = readOwner(guard);
    if (g && !ownerAlive(g)) fs.rmSync(guard, { force: true });
    return;
  }
  try {
    // Under the guard the lock can only be released (by its owner) or taken (when absent): a dead owner read
    // now is still the one in the file when it is removed. An unreadable lock is damaged (locks are linked
    // whole) and goes too; one released meanwhile is left to whoever takes it next.
    const o = readOwner(file);
    if (o === null || (o && !ownerAlive(o))) {
      fs.rmSync(file, { force: true, recursive: true });
      // What a killed holder may have left beside it: its temp names (see writeLinked).
      sweepTemps(path.dirname(file));
    }
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

/** One attempt: a release function when taken, undefined when a live process holds it. */
export async function tryLock(file: string): Promise<(() => void) | undefined> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const token = JSON.stringify({ ...self(), since: new Date().toISOString(), token: randomHex(6) });
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await writeLinked(file, token)) {
      return () => {
        // Only our own lock: after a wrong break (a double fault, see breakIfDead) another's may be in its place;
        // and it may be gone with its whole directory (a root removed).
        if (readText(file) === token) fs.rmSync(file, { force: true });
      };
    }
    if (lockHolder(file)) return undefined;
    await breakIfDead(file);
  }
  return undefined;
}

const local = new KeyedMutex();

/**
 * Runs fn holding the lock `file`, waiting up to timeoutMs for it; the error on timeout names the holder.
 * Not reentrant: fn must not take the same lock again.
 */
export function withLock<T>(file: string, fn: () => Promise<T>, opts: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  // Waiters of one process queue in memory first: the file is then contended only between processes.
  return local.run(file, async () => {
    const timeout = opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    const deadline = Date.now() + timeout;
    let pause = 5;
    let release: (() => void) | undefined;
    while (!(release = await tryLock(file))) {
      if (Date.now() >= deadline) {
        const holder = readOwner(file);
        throw new Error(
          `timed out after ${Math.round(timeout / 1000)}s waiting for the lock on ${opts.what ?? file}: ` +
            (holder ? `held by ${describeOwner(holder)}` : "its holder just let go, try again"),
        );
      }
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 50);
    }
    try {
      return await fn();
    } finally {
      release();
    }
  });
}
