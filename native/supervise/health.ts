// HEALTHCHECK as Docker runs it: the test command inside the container every interval, failing after timeout;
// `retries` failures in a row make the container unhealthy, a success makes it healthy, and failures during the
// start period do not count.
import type { ContainerState, Healthcheck, HealthProbe } from "../runtime";
import { runcArgs, type RuncRef } from "../container/runc-root";

const DEFAULTS = { interval: 30, timeout: 30, startPeriod: 0, retries: 3 };
/** Probes kept in the state, and bytes of output kept per probe (Docker's figures). */
const LOG_ENTRIES = 5;
const OUTPUT_BYTES = 4096;

export const healthDefaults = (h: Healthcheck): Required<Healthcheck> => ({
  ...DEFAULTS,
  ...Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)),
  test: h.test,
});

/** Runs one probe in the running container c. */
export function probe(c: RuncRef, h: Required<Healthcheck>): Promise<HealthProbe> {
  const start = new Date().toISOString();
  const cmd = h.test[0] === "CMD-SHELL" ? ["/bin/sh", "-c", h.test[1]] : h.test.slice(1);
  return new Promise((resolve) => {
    // Loaded here: the supervisor starts without node:child_process, which only restarts and probes need.
    const { execFile } = require("node:child_process") as typeof import("node:child_process");
    execFile("runc", runcArgs(c, ["exec", c.id, ...cmd]), { timeout: h.timeout * 1000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const timedOut = err?.killed === true;
      const exitCode = !err ? 0 : timedOut ? -1 : typeof err.code === "number" ? err.code : 1;
      const output = timedOut ? `Health check exceeded timeout (${h.timeout}s)` : (stdout + stderr).slice(0, OUTPUT_BYTES);
      resolve({ start, end: new Date().toISOString(), exitCode, output });
    });
  });
}

/** The health after a probe. */
export function judge(state: ContainerState, h: Required<Healthcheck>, result: HealthProbe): ContainerState["health"] {
  const before = state.health ?? { status: "starting", failingStreak: 0, log: [] };
  const log = [...before.log, result].slice(-LOG_ENTRIES);
  if (result.exitCode === 0) return { status: "healthy", failingStreak: 0, log };
  const inStartPeriod = Date.now() - Date.parse(state.startedAt ?? "") < h.startPeriod * 1000;
  if (inStartPeriod && before.status === "starting") return { ...before, log };
  const failingStreak = before.failingStreak + 1;
  return { status: failingStreak >= h.retries ? "unhealthy" : before.status, failingStreak, log };
}
