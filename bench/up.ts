// `npm run bench [-- --20]`: wall time of `berth up` for 20 and 100 containers on one bridge network, the marginal
// time per container at each, `berth destroy` of them, and — when a Docker engine answers — `docker run -d` of the
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
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { ms: number; cpu: number } {
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

const cpuText = (cpu: number) => (Number.isNaN(cpu) ? "" : `, CPU ${cpu.toFixed(0)} ms`);

function berthUp(count: number, root: string, rootfs: string): { ms: number; cpu: number } {
  fs.writeFileSync(path.join(FLEET, "Pulumi.bench.yaml"), `config:\n  fleet:count: "${count}"\n  fleet:rootfs: "${rootfs}"\n`);
  return timed(path.join(REPO, "bin/berth"), ["up", FLEET, "--stack", "bench", "--yes"], { BERTH_ROOT: root });
}

function berthDestroy(root: string): { ms: number; cpu: number } {
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
    // first run also fills caches (the program's transpile, the page cache), so the second is the one kept.
    berthUp(0, root, rootfs);
    berthDestroy(root);
    const base = berthUp(0, root, rootfs);
    berthDestroy(root);
    rows.push(`berth up, 0 containers (fixed cost):      ${base.ms.toFixed(0)} ms${cpuText(base.cpu)}`);
    for (const n of sizes) {
      const total = berthUp(n, root, rootfs);
      const noop = berthUp(n, root, rootfs);
      const down = berthDestroy(root);
      const marginal = (total.ms - base.ms) / n;
      const cpuMarginal = Number.isNaN(total.cpu) ? "" : `; CPU ${((total.cpu - base.cpu) / n).toFixed(1)} ms/container`;
      rows.push(`berth up, ${n} containers:                 ${total.ms.toFixed(0)} ms${cpuText(total.cpu)}  (marginal ${marginal.toFixed(1)} ms/container; target ≤ 40, flat${cpuMarginal})`);
      rows.push(`berth up again, ${n} containers, no change: ${noop.ms.toFixed(0)} ms${cpuText(noop.cpu)}`);
      rows.push(`berth destroy, ${n} containers:            ${down.ms.toFixed(0)} ms${cpuText(down.cpu)}${n === 100 ? "  (target ≤ 3000)" : ""}`);
      if (docker) {
        const d = dockerRun(n, rootfs);
        rows.push(`docker run -d × ${n}:                      ${d.toFixed(0)} ms  (ratio berth/docker ${(total.ms / d).toFixed(2)}; target ≤ 0.25 at 100)`);
      }
    }
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
