// Starting the supervisor of a berth root on demand, detached from the caller (it outlives `berth up`), with
// V8 kept small: the supervisor holds a few kilobytes per container.
//
// It runs under a watchdog: a busybox `sh` loop (the host's static busybox, the same file every container's init
// runs, so its pages are shared) that is the supervisor's parent and waits for it. A supervisor killed outright
// is started again at once; one that exits 0 (idle, or another holds the root) ends the loop. The supervisor in
// turn watches its parent: when the watchdog is gone it starts a new pair and steps down. So one fault of either
// process heals by itself; when both die at once, the next berth command on the root starts them again
// (createNativeRuntime ensures a supervisor wherever containers exist).
import * as fs from "node:fs";
import * as path from "node:path";
import { lockHolder } from "../lock";

/** The supervisor holds this lock for its life: its owner is the running supervisor. */
export const supervisorLock = (root: string): string => path.join(path.resolve(root), "locks", "supervisor");

/** The compiled entry point, also when the runtime itself runs from TypeScript sources (tests). */
function mainScript(): string {
  return __filename.endsWith(".js")
    ? path.join(__dirname, "main.js")
    : path.resolve(__dirname, "../../dist/native/supervise/main.js");
}

export const supervisorPid = (root: string): number | undefined => lockHolder(supervisorLock(root))?.pid ?? legacySupervisor(root);

/** A supervisor of an earlier berth (before the lock: a pid in supervisor.pid) still watching this root. */
function legacySupervisor(root: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(path.resolve(root), "supervisor.pid"), "utf8"));
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return cmdline.some((a) => a.endsWith("supervise/main.js")) && cmdline.includes(path.resolve(root)) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export const supervisorRunning = (root: string): boolean => supervisorPid(root) !== undefined;

/**
 * The watchdog loop, `sh -c WATCHDOG berth-watchdog SUPERVISOR-COMMAND…`: the supervisor again right after a
 * kill (exit 128+9), after a back-off doubling to a minute when it failed (so a broken install does not spin),
 * and an end when it exits 0.
 */
const WATCHDOG = `d=1
while :; do
  "$@"; r=$?
  [ $r = 0 ] && exit 0
  if [ $r = 137 ]; then sleep 0.2; else sleep $d; [ $d -lt 60 ] && d=$((d*2)); fi
done`;

const BUSYBOX = "/bin/busybox";

/**
 * The start under way in this process, by root. A supervisor takes its lock only once node has loaded it (tens of
 * ms, more on a loaded host): until then every container made in parallel saw none running and started another
 * (a node process each, stepping down at once; ~8 of them in a 20-container up). Callers meanwhile wait for the
 * one start instead; once its supervisor holds the lock (or its watchdog ended), the lock tells again.
 */
const starting = new Map<string, Promise<void>>();

/** Longest wait for a supervisor started to take its lock: past it the container stays as made, as before. */
const START_WAIT_MS = 5000;

export function ensureSupervisor(root: string): Promise<void> {
  if (supervisorRunning(root)) return Promise.resolve();
  const key = path.resolve(root);
  let start = starting.get(key);
  if (!start) {
    start = launch(key).finally(() => starting.delete(key));
    starting.set(key, start);
  }
  return start;
}

/**
 * The supervisor's environment: this process's, without NODE_EXTRA_CA_CERTS. The supervisor opens no TLS
 * connection, and node parses every certificate that names at its start — hosts that point it at the whole system
 * bundle made that ~40 ms of CPU, more than the rest of the supervisor's start.
 */
function supervisorEnv(): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _, ...env } = process.env;
  return env;
}

async function launch(root: string): Promise<void> {
  const script = mainScript();
  if (!fs.existsSync(script)) throw new Error(`the supervisor ${script} is not built: run npm run build`);
  await fs.promises.mkdir(root, { recursive: true });
  const log = fs.openSync(path.join(root, "supervisor.log"), "a", 0o600);
  // Interpreted only (--jitless): a tick is a few file reads, and the JIT's code space would cost more memory.
  const flags = ["--jitless", "--max-old-space-size=32", "--max-semi-space-size=1"];
  const shell = fs.existsSync(BUSYBOX) ? [BUSYBOX, "sh"] : ["/bin/sh"];
  // Loaded here: the supervisor itself (main.ts) needs it only to hand over to a new pair.
  const { spawn } = require("node:child_process") as typeof import("node:child_process");
  const child = spawn(shell[0], [...shell.slice(1), "-c", WATCHDOG, "berth-watchdog", process.execPath, ...flags, script, path.resolve(root)], {
    detached: true,
    stdio: ["ignore", log, log],
    env: supervisorEnv(),
  });
  fs.closeSync(log);
  child.unref();
  await new Promise<void>((resolve) => {
    const deadline = Date.now() + START_WAIT_MS;
    const timer = setInterval(() => {
      if (supervisorRunning(root) || child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) done();
    }, 10);
    const done = () => (clearInterval(timer), child.off("exit", done), resolve());
    child.once("exit", done);
  });
}
