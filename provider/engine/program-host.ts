// The program's process: `node program-host.js PULUMI/cmd/run ARGS…`, started in the project directory. It makes
// the project's .ts files load through berth's own TypeScript (transpile-only, the project's tsconfig, cached:
// transpile.ts), defers what the run does not need (lazy.ts), then hands
// over to @pulumi/pulumi's runner as Pulumi's language host would start it. berth's TypeScript, not the project's:
// a project may have none (Pulumi would fall back to its vendored TypeScript 3.8 and ts-node 7), or TypeScript 7
// for its own tsc, which has no transpile API. An ES-module project ("type": "module") is left to Pulumi's runner.
import * as fs from "node:fs";
import * as path from "node:path";
import { deferPulumiExtras } from "./lazy";
import { register } from "./transpile";

function main(): void {
  const [pulumiRun, ...args] = process.argv.slice(2);
  const dir = process.cwd();
  let esm = false;
  try {
    esm = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).type === "module";
  } catch {
    // No package.json: a CommonJS program.
  }
  if (esm) process.env.PULUMI_NODEJS_TYPESCRIPT = "true";
  else {
    deferPulumiExtras(path.resolve(pulumiRun, "..", ".."));
    register({ dir, pulumiRun });
  }
  // The runner reads its arguments from process.argv, as if started as `node cmd/run ARGS…`.
  process.argv = [process.argv[0], pulumiRun, ...args];
  require(pulumiRun);
}

main();
