// `npm run bench`: wall time of a no-op `berth preview` of a 1,000-resource program (program start included),
// and — when a `pulumi` binary is on PATH — of `pulumi preview` of the same program on the same state, as a ratio.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const REPO = path.resolve(__dirname, "../..");
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

function main(): void {
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
    const berthTimes = [0, 1, 2].map(() => berth("preview", "--expect-no-changes"));
    console.log(`berth up, ${COUNT} volumes:                       ${up.toFixed(0)} ms`);
    console.log(`berth preview, no-op, ${COUNT} resources (median of 3): ${median(berthTimes).toFixed(0)} ms (target ≤ 1500 ms)`);
    const pulumi = spawnSync("sh", ["-c", "command -v pulumi"], { encoding: "utf8" }).stdout.trim();
    if (pulumi) {
      const args = ["preview", "--expect-no-changes", "--non-interactive", "--stack", STACK, "--cwd", PROGRAM];
      const pulumiTimes = [0, 1, 2].map(() => run(pulumi, args, env));
      console.log(`pulumi preview, same program and state (median of 3): ${median(pulumiTimes).toFixed(0)} ms`);
      console.log(`ratio berth / pulumi: ${(median(berthTimes) / median(pulumiTimes)).toFixed(2)}`);
    } else {
      console.log("pulumi preview: skipped (no `pulumi` binary on PATH)");
    }
  } finally {
    try {
      berth("destroy", "--yes");
    } finally {
      fs.rmSync(configFile, { force: true });
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  }
}

main();
