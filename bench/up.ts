// `npm run bench [-- --20]`: wall time of `berth up` for 20 and 100 containers on one bridge network, the marginal
// time per container at each (median of three runs of up N and up 0 taken in turns), `berth destroy` of them, and — when a Docker engine answers — `docker run -d` of the
// same image for the same N, run right after, as a ratio. `--20` measures 20 only. Beside each wall time, the CPU
// time of the command run in a cgroup of its own (cpuacct on v1, cpu.stat on v2; needs root): on a busy machine
// (2 cores, other work running) the wall time measures the machine, the CPU time still measures berth. It covers
// the berth process and every process it starts while it runs: the program, the host commands through its shell
// (runc, ip, iptables-restore, mount, sh), a supervisor it starts. Not in it: a supervisor already running from an
// earlier command, and each container's processes from when runc moves them into the container's own cgroup
// (runc init's work after that move, the containers' own).
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { networkBench } from "./network";
import { dockerAvailable } from "./docker";
import { sweepOrphans } from "../native/lock-dir";
import { cgroupFile, cgroupStats } from "../native/supervise/cgroup";

const REPO = path.resolve(__dirname, "../..");
const FLEET = path.join(REPO, "bench/fleet");
const sizes = process.argv.includes("--20") ? [20] : process.argv.includes("--only-100") ? [100] : [20, 100];

/** The cgroup (of the CPU controller) this process is in, relative to the hierarchy's root. */
function ownCgroup(): string {
  const lines = fs.readFileSync("/proc/self/cgroup", "utf8").split("\n");
  const line = lines.find((l) => /^\d+:[^:]*\bcpuacct\b[^:]*:/.test(l)) ?? lines.find((l) => l.startsWith("0::"));
  return line ? line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1) : "/";
}

/** Wall time and CPU time (NaN when no cgroup can be made: not root) of a command, in ms. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Timed {
  const own = ownCgroup();
  const group = path.posix.join(own, `berth-bench-${process.pid}`);
  const procs = (g: string) => cgroupFile(g, "cpuacct", "cgroup.procs", "cgroup.procs");
  let measured = true;
  try {
    fs.mkdirSync(cgroupFile(group, "cpuacct", "", ""));
  } catch {
    measured = false;
  }
  // The shell joins the group before it becomes the command, so every process the command starts is counted.
  const [file, argv] = measured ? ["sh", ["-c", 'echo $$ > "$0" && exec "$@"', procs(group), cmd, ...args]] : [cmd, args];
  const start = process.hrtime.bigint();
  const res = spawnSync(file, argv, { env: { ...process.env, ...env }, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const cpu = measured ? cgroupStats(group).cpuNanos / 1e6 : NaN;
  if (measured) {
    // What outlives the command (a supervisor) goes back to this process's group, so the group can be removed.
    for (let tries = 0; ; tries++) {
      for (const pid of fs.readFileSync(procs(group), "utf8").split("\n").filter(Boolean)) {
        try {
          fs.writeFileSync(procs(own), pid);
        } catch {
          // gone meanwhile
        }
      }
      try {
        fs.rmdirSync(cgroupFile(group, "cpuacct", "", ""));
        break;
      } catch (e) {
        if (tries === 50) throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    }
  }
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${res.stdout}\n${res.stderr}`);
  return { ms, cpu };
}

type Timed = { ms: number; cpu: number };
/** Runs of up N and of up 0 taken in turns for each size (see main). */
const ROUNDS = 3;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** The run of median wall time, its CPU with it. */
const medianOf = (runs: Timed[]): Timed => [...runs].sort((a, b) => a.ms - b.ms)[Math.floor(runs.length / 2)];

const cpuText = (cpu: number) => (Number.isNaN(cpu) ? "" : `, CPU ${cpu.toFixed(0)} ms`);

function berthUp(count: number, root: string, rootfs: string): Timed {
  fs.writeFileSync(path.join(FLEET, "Pulumi.bench.yaml"), `config:\n  fleet:count: "${count}"\n  fleet:rootfs: "${rootfs}"\n`);
  return timed(path.join(REPO, "bin/berth"), ["up", FLEET, "--stack", "bench", "--yes"], { BERTH_ROOT: root });
}

function berthDestroy(root: string): Timed {
  return timed(path.join(REPO, "bin/berth"), ["destroy", FLEET, "--stack", "bench", "--yes"], { BERTH_ROOT: root });
}

/** `docker run -d` of the same busybox rootfs, count times on one user network; returns ms for all runs. */
function dockerRun(count: number, rootfs: string): number {
  execFileSync("docker", ["import", rootfs, "berth-bench-busybox:latest"], { stdio: "ignore" });
  spawnSync("docker", ["network", "create", "berth-bench"], { stdio: "ignore" });
  try {
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      execFileSync("docker", ["run", "-d", "--name", `berth-bench-${i}`, "--network", "berth-bench", "berth-bench-busybox:latest", "sleep", "3600"], { stdio: "ignore" });
    }
    return Number(process.hrtime.bigint() - start) / 1e6;
  } finally {
    const names = Array.from({ length: count }, (_, i) => `berth-bench-${i}`);
    spawnSync("docker", ["rm", "-f", ...names], { stdio: "ignore" });
    spawnSync("docker", ["network", "rm", "berth-bench"], { stdio: "ignore" });
  }
}

function main(): void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-"));
  const rootfs = path.join(root, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [rootfs]);
  const docker = dockerAvailable();
  const rows: string[] = [];
  try {
    // The fixed cost of an up (program start, preview, image import, network) measured with no containers; the
    // first run also fills caches (the program's transpile, the page cache) and is not kept. The marginal is
    // (up N - up 0) / N of runs taken in turns, ROUNDS of each, and the median reported: one up 0 varies by
    // ±0.2 s on this host from run to run, which alone moved the marginal at 20 by ±10 ms.
    berthUp(0, root, rootfs);
    berthDestroy(root);
    const bases: Timed[] = [];
    for (const n of sizes) {
      const rounds: Array<{ total: Timed; down: Timed; marginal: number; cpu: number }> = [];
      let noop: Timed | undefined;
      for (let r = 0; r < ROUNDS; r++) {
        const base = berthUp(0, root, rootfs);
        berthDestroy(root);
        bases.push(base);
        const total = berthUp(n, root, rootfs);
        if (r === 0) noop = berthUp(n, root, rootfs);
        const down = berthDestroy(root);
        rounds.push({ total, down, marginal: (total.ms - base.ms) / n, cpu: (total.cpu - base.cpu) / n });
      }
      const m = median(rounds.map((x) => x.marginal));
      const spread = `${Math.min(...rounds.map((x) => x.marginal)).toFixed(1)}–${Math.max(...rounds.map((x) => x.marginal)).toFixed(1)}`;
      const total = medianOf(rounds.map((x) => x.total));
      const down = medianOf(rounds.map((x) => x.down));
      const cpuMarginal = Number.isNaN(total.cpu) ? "" : `; CPU ${median(rounds.map((x) => x.cpu)).toFixed(1)} ms/container`;
      rows.push(`berth up, ${n} containers:                 ${total.ms.toFixed(0)} ms${cpuText(total.cpu)}  (marginal ${m.toFixed(1)} ms/container, median of ${ROUNDS}: ${spread}; target ≤ 40, flat${cpuMarginal})`);
      rows.push(`berth up again, ${n} containers, no change: ${noop!.ms.toFixed(0)} ms${cpuText(noop!.cpu)}`);
      rows.push(`berth destroy, ${n} containers:            ${down.ms.toFixed(0)} ms${cpuText(down.cpu)}${n === 100 ? "  (target ≤ 3000)" : ""}`);
      if (docker) {
        const d = dockerRun(n, rootfs);
        rows.push(`docker run -d × ${n}:                      ${d.toFixed(0)} ms  (ratio berth/docker ${(total.ms / d).toFixed(2)}; target ≤ 0.25 at 100)`);
      }
    }
    const base = medianOf(bases);
    rows.unshift(`berth up, 0 containers (fixed cost):      ${base.ms.toFixed(0)} ms${cpuText(base.cpu)} (median of ${bases.length})`);
    if (!Number.isNaN(base.cpu)) {
      rows.push("CPU: of a cgroup holding berth and all it started while running (program, host commands: runc, ip, iptables, mount, sh; a new supervisor); not the containers' processes once runc moves them to their own cgroups (runc init from then on), nor a supervisor already running");
    } else rows.push("CPU: not measured (making a cgroup needs root)");
    rows.push(`load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} (2 cores: compare ratios, not times, when it is high)`);
    if (!docker) rows.push("docker: no engine answers `docker info`; the Docker ratio is skipped (start dockerd to compare)");
  } finally {
    spawnSync(path.join(REPO, "bin/berth"), ["destroy", FLEET, "--stack", "bench", "--yes"], { env: { ...process.env, BERTH_ROOT: root } });
    fs.rmSync(path.join(FLEET, "Pulumi.bench.yaml"), { force: true });
    fs.rmSync(path.join(FLEET, ".pulumi"), { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
    sweepOrphans(0);
  }
  console.log(rows.join("\n"));
}

main();
// Network setup and teardown per container, against the CNI plugins.
void networkBench().then((rows) => console.log(rows.join("\n")));
