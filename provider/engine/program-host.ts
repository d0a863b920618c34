// The program's process: `node program-host.js PULUMI/cmd/run`, started in the project directory, reading the
// runner's arguments and environment as JSON on stdin (program.ts). It makes the project's .ts files load through
// berth's own TypeScript (transpile-only, the project's tsconfig, cached: transpile.ts), defers what the run does
// not need (lazy.ts), loads @pulumi/pulumi, then, once its stdin ends, hands over to @pulumi/pulumi's runner as
// Pulumi's language host would start it. berth's TypeScript, not the project's:
// a project may have none (Pulumi would fall back to its vendored TypeScript 3.8 and ts-node 7), or TypeScript 7
// for its own tsc, which has no transpile API. An ES-module project ("type": "module") is left to Pulumi's runner.
import * as fs from "node:fs";
import * as path from "node:path";
import { deferInspector, deferPulumiExtras } from "./lazy";
import { register } from "./transpile";

/**
 * @pulumi/pulumi sends the engine three debug messages per resource ("Registering resource", "RPC prepared", "RPC
 * finished"), one round trip at a time, in order, and the program waits for the last before it exits. berth's
 * engine shows none (the Pulumi CLI writes them only to its verbose log): in a 1,000-resource preview those round
 * trips were the last third of the run, both processes idle. They are dropped where they are made, before the
 * message and its request are built (a program's own log.debug too: the engine would not show it).
 */
function dropDebugLogs(pulumiDir: string): void {
  const log = require(path.join(pulumiDir, "log", "index.js"));
  log.debug = () => Promise.resolve();
}

/**
 * @pulumi/pulumi wraps each of the dozens of promises it makes per resource in debuggablePromise, which captures a
 * stack for it (a quarter of a program's CPU per resource, the traces kept alive until the promises go), and
 * formats the whole stack again per resource to send the engine its source position and stack trace. A promise's
 * stack is printed only when a run leaks promises with PULUMI_DEBUG_PROMISE_LEAKS set (the leak message says to
 * re-run so): then the SDK's own debuggablePromise stays. Otherwise promises are tracked for the leak check as it
 * tracks them, without the stack; its first call, which sets up the check at exit, is its own, and shows whether
 * this SDK tracks them so (if not, its own stays). berth's engine reads no source position or trace (monitor.ts):
 * none is computed.
 */
function skipStacks(pulumiDir: string): void {
  const { Resource } = require(path.join(pulumiDir, "resource.js"));
  Resource.stackTrace = () => [];
  const debuggable = require(path.join(pulumiDir, "runtime", "debuggable.js"));
  if (debuggable.debugPromiseLeaks) return;
  const { getStore } = require(path.join(pulumiDir, "runtime", "state.js")) as { getStore(): { leakCandidates?: Set<Promise<unknown>> } };
  const capturing = debuggable.debuggablePromise as <T>(p: Promise<T>, ctx: unknown) => Promise<T>;
  let tracksAsHere: boolean | undefined;
  debuggable.debuggablePromise = <T>(p: Promise<T>, ctx: unknown): Promise<T> => {
    if (!tracksAsHere) {
      const wrapped = capturing(p, ctx);
      tracksAsHere ??= getStore().leakCandidates?.has(p) === true;
      return wrapped;
    }
    const store = getStore() as { leakCandidates: Set<Promise<unknown>> };
    store.leakCandidates.add(p);
    return p
      .then((val) => {
        store.leakCandidates.delete(p);
        return val;
      })
      .catch((err) => {
        store.leakCandidates.delete(p);
        err.promise = p;
        throw err;
      });
  };
}

function main(): void {
  const pulumiRun = process.argv[2];
  const dir = process.cwd();
  const pulumiDir = path.resolve(pulumiRun, "..", "..");
  let esm = false;
  try {
    esm = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).type === "module";
  } catch {
    // No package.json: a CommonJS program.
  }
  if (!esm) {
    deferPulumiExtras(pulumiDir);
    register({ dir, pulumiRun });
  }
  dropDebugLogs(pulumiDir);
  skipStacks(pulumiDir);
  deferInspector(pulumiDir);
  // Loaded while berth starts the engine (this process may start before the monitor listens), so that only the
  // program itself remains to run once its arguments arrive.
  require(pulumiDir);
  let input = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (d: string) => (input += d));
  process.stdin.on("end", () => {
    if (!input) return; // berth ended without running a program.
    const run = JSON.parse(input) as { args: string[]; env: Record<string, string> };
    for (const key of Object.keys(process.env)) if (!(key in run.env)) delete process.env[key];
    Object.assign(process.env, run.env);
    if (esm) process.env.PULUMI_NODEJS_TYPESCRIPT = "true";
    // The runner reads its arguments from process.argv, as if started as `node cmd/run ARGS…`.
    process.argv = [process.argv[0], pulumiRun, ...run.args];
    require(pulumiRun);
  });
}

main();
