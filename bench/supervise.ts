// `npm run bench` (second part): what keeping containers up costs. The supervisor's memory with 50 running
// containers (its RSS divided by 50, and the marginal cost of one more) plus its watchdog's, against the 1 MB
// budget and Docker's containerd-shim (13.2 MB RSS per container, measured on this kind of host); how soon a
// container that dies after the supervisor's SIGKILL is restarted, with no command run; and stop / start latency,
// beside `docker stop` / `docker start` when a Docker engine answers.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createNativeRuntime } from "../native";
import { supervisorPid } from "../native/supervise/launch";
import { statePath } from "../native/supervise/state";
import { layout } from "../native/paths";
import { dockerAvailable } from "./docker";

const REPO = path.resolve(__dirname, "../..");
const COUNT = 50;
const SHIM_MB = 13.2;
const ROUNDS = 10;

const rssMb = (pid: number): number =>
  Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
/** Proportional set size: the node binary's pages shared with other node processes counted in part. */
const pssMb = (pid: number): number =>
  Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))![1]) / 1024;
const parentOf = (pid: number): number => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function watched(root: string, names: string[]): Promise<void> {
  const paths = layout(root, "/run/berth");
  while (!names.every((n) => fs.existsSync(statePath(paths.container(n).dir)))) await sleep(50);
  // A few ticks more, so the figure includes steady-state work (reads, health bookkeeping).
  await sleep(2000);
}

async function timedMs(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function dockerFigures(rootfs: string): { stop: number; start: number } | undefined {
  if (!dockerAvailable()) return undefined;
  execFileSync("docker", ["import", rootfs, "berth-bench-busybox:latest"], { stdio: "ignore" });
  execFileSync("docker", ["run", "-d", "--name", "berth-bench-life", "berth-bench-busybox:latest", "sleep", "3600"], { stdio: "ignore" });
  const stops: number[] = [];
  const starts: number[] = [];
  const time = (args: string[]) => {
    const start = process.hrtime.bigint();
    execFileSync("docker", args, { stdio: "ignore" });
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  try {
    for (let i = 0; i < ROUNDS; i++) {
      stops.push(time(["stop", "-t", "0", "berth-bench-life"]));
      starts.push(time(["start", "berth-bench-life"]));
    }
  } finally {
    spawnSync("docker", ["rm", "-f", "berth-bench-life"], { stdio: "ignore" });
  }
  return { stop: median(stops), start: median(starts) };
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-life-"));
  const root = path.join(tmp, "root");
  const rootfs = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [rootfs]);
  const rt = createNativeRuntime({ root });
  const names = Array.from({ length: COUNT }, (_, i) => `berth-bench-life-${i}`);
  try {
    await rt.images.importRootfs({ ref: "bench", tarball: rootfs, config: { cmd: ["sh"] } });
    await rt.containers.run({ name: names[0], image: "bench", command: ["sleep", "3600"], restart: "always" });
    await watched(root, names.slice(0, 1));
    const one = rssMb(supervisorPid(root)!);
    for (const name of names.slice(1)) {
      await rt.containers.run({ name, image: "bench", command: ["sleep", "3600"], restart: "always" });
    }
    await watched(root, names);
    const all = rssMb(supervisorPid(root)!);
    const pss = pssMb(supervisorPid(root)!);
    const watchdog = parentOf(supervisorPid(root)!);
    const [dogRss, dogPss] = [rssMb(watchdog), pssMb(watchdog)];
    const perContainer = (all + dogRss) / COUNT;
    const marginal = (all - one) / (COUNT - 1);
    console.log(`supervisor RSS: ${one.toFixed(1)} MB with 1 container, ${all.toFixed(1)} MB with ${COUNT} (PSS ${pss.toFixed(1)} MB)`);
    console.log(`watchdog (busybox sh) RSS ${(dogRss * 1024).toFixed(0)} KB, PSS ${(dogPss * 1024).toFixed(0)} KB`);
    console.log(
      `supervision per running container at ${COUNT}: ${perContainer.toFixed(2)} MB (budget 1 MB; ` +
        `Docker's containerd-shim ${SHIM_MB} MB: ${(SHIM_MB / perContainer).toFixed(1)}x less); ` +
        `marginal ${(marginal * 1024).toFixed(0)} KB per extra container`,
    );

    const restarts: number[] = [];
    for (let i = 0; i < 3; i++) {
      // The supervisor killed outright, then a container's command: only the watchdog can bring it back.
      process.kill(supervisorPid(root)!, "SIGKILL");
      const state = () => JSON.parse(fs.readFileSync(statePath(layout(root, "/run/berth").container(names[i]).dir), "utf8"));
      const before = state();
      const command = Number(execFileSync("pgrep", ["-P", String(before.pid)], { encoding: "utf8" }).trim());
      restarts.push(
        await timedMs(async () => {
          process.kill(command, "SIGKILL");
          while (!(state().status === "running" && state().pid !== before.pid)) await sleep(20);
        }),
      );
    }
    console.log(`restart of a dead container after the supervisor's SIGKILL, no command run: ${median(restarts).toFixed(0)} ms (median of 3)`);

    const stops: number[] = [];
    const starts: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      stops.push(await timedMs(() => rt.containers.stop(names[i], { graceSeconds: 0 })));
      starts.push(await timedMs(() => rt.containers.start(names[i])));
    }
    const docker = dockerFigures(rootfs);
    const ratio = (ours: number, theirs: number | undefined) => (theirs ? ` (docker ${theirs.toFixed(0)} ms, ${(theirs / ours).toFixed(1)}x)` : "");
    console.log(
      `stop: ${median(stops).toFixed(0)} ms${ratio(median(stops), docker?.stop)}; ` +
        `start: ${median(starts).toFixed(0)} ms${ratio(median(starts), docker?.start)} (median of ${ROUNDS})` +
        (docker ? "" : "; no Docker engine answers, so no comparison"),
    );
  } finally {
    for (const name of names) await rt.containers.remove(name, { graceSeconds: 0 }).catch(() => undefined);
    const pid = supervisorPid(root);
    if (pid) process.kill(pid, "SIGTERM");
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
