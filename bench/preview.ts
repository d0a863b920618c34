// `npm run bench`: wall time of a no-op `berth preview` and `berth up` of the quick start, and of a no-op preview of
// a 1,000-resource program (program start included), and — when a `pulumi` binary is on PATH — of `pulumi preview`
// of the same program on the same state, as a ratio. CPU time (user + sys, the program's process included) is
// printed beside wall time: on a loaded machine it is the steadier figure.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const REPO = path.resolve(__dirname, "../..");
const QUICKSTART = path.join(REPO, "examples/quickstart");
const PROGRAM = path.join(REPO, "bench/volumes");
const COUNT = 1000;
const STACK = `bench${process.pid}`;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  const res = spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${res.stdout}\n${res.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** CPU time (ms, user + sys) of the children this process has waited for so far (all of them: berth's and its program's). */
function childCpu(): number {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  // After "(comm) ", fields start at field 3; cutime and cstime are fields 16 and 17, in ticks of 10 ms.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** Median wall and CPU time of `times` runs of fn. */
function sample(times: number, fn: () => number): { wall: number; cpu: number } {
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < times; i++) {
    const before = childCpu();
    walls.push(fn());
    cpus.push(childCpu() - before);
  }
  return { wall: median(walls), cpu: median(cpus) };
}

/** Destroys a bench stack, then removes its files; after a failed destroy they are kept (and named), so the stack
 * can still be destroyed by hand rather than leaving host objects no state knows. */
function teardown(destroy: () => unknown, files: string[]): void {
  try {
    destroy();
  } catch (err) {
    console.error(`${err}\nkept ${files.join(", ")} to destroy it by hand`);
    return;
  }
  for (const f of files) fs.rmSync(f, { recursive: true, force: true });
}

/** No-op preview and up of the quick start (targets ≤ 800 / ≤ 900 ms). */
function quickstart(): void {
  const tar = path.join(QUICKSTART, "busybox-rootfs.tar");
  if (!fs.existsSync(tar)) spawnSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar], { stdio: "inherit" });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-qs-"));
  const stack = `benchqs${process.pid}`;
  const env = { ...process.env, BERTH_ROOT: scratch };
  const configFile = path.join(QUICKSTART, `Pulumi.${stack}.yaml`);
  const berth = (...args: string[]) => run(path.join(REPO, "bin/berth"), [...args, QUICKSTART, "--stack", stack], env);
  fs.writeFileSync(configFile, `config:\n  quickstart:port: "${18000 + (process.pid % 1000)}"\n  quickstart:subnet: "10.239.${process.pid % 250}.0/24"\n`);
  try {
    berth("up", "--yes");
    const preview = sample(5, () => berth("preview", "--expect-no-changes"));
    const up = sample(3, () => berth("up", "--yes", "--expect-no-changes"));
    console.log(`berth preview, no-op, quick start (median of 5): ${preview.wall.toFixed(0)} ms, CPU ${preview.cpu.toFixed(0)} ms (target ≤ 800 ms)`);
    console.log(`berth up, no-op, quick start (median of 3):      ${up.wall.toFixed(0)} ms, CPU ${up.cpu.toFixed(0)} ms (target ≤ 900 ms)`);
  } finally {
    const state = [`${stack}.json`, `${stack}.json.bak`].map((f) => path.join(QUICKSTART, ".pulumi/stacks/quickstart", f));
    teardown(() => berth("destroy", "--yes"), [configFile, ...state, scratch]);
  }
}

function main(): void {
  quickstart();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-preview-"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.join(REPO, "bin")}:${process.env.PATH}`,
    BERTH_ROOT: path.join(scratch, "root"),
    PULUMI_BACKEND_URL: `file://${scratch}`,
    PULUMI_HOME: path.join(scratch, "home"),
    PULUMI_CONFIG_PASSPHRASE: "bench",
    PULUMI_SKIP_UPDATE_CHECK: "true",
  };
  const configFile = path.join(PROGRAM, `Pulumi.${STACK}.yaml`);
  const berth = (...args: string[]) => run(path.join(REPO, "bin/berth"), [...args, PROGRAM, "--stack", STACK], env);
  try {
    fs.writeFileSync(configFile, `config:\n  volumes:count: "${COUNT}"\n`);
    const up = berth("up", "--yes");
    const berthRun = sample(3, () => berth("preview", "--expect-no-changes"));
    console.log(`berth up, ${COUNT} volumes:                       ${up.toFixed(0)} ms`);
    console.log(`berth preview, no-op, ${COUNT} resources (median of 3): ${berthRun.wall.toFixed(0)} ms, CPU ${berthRun.cpu.toFixed(0)} ms (target ≤ 0.4× pulumi)`);
    const pulumi = spawnSync("sh", ["-c", "command -v pulumi"], { encoding: "utf8" }).stdout.trim();
    if (pulumi) {
      const args = ["preview", "--expect-no-changes", "--non-interactive", "--stack", STACK, "--cwd", PROGRAM];
      const pulumiTimes = [0, 1, 2].map(() => run(pulumi, args, env));
      console.log(`pulumi preview, same program and state (median of 3): ${median(pulumiTimes).toFixed(0)} ms`);
      console.log(`ratio berth / pulumi: ${(berthRun.wall / median(pulumiTimes)).toFixed(2)}`);
    } else {
      console.log("pulumi preview: skipped (no `pulumi` binary on PATH)");
    }
  } finally {
    teardown(() => berth("destroy", "--yes"), [configFile, scratch]);
  }
}

main();
