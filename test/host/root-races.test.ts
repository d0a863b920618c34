// Root state that two berth processes change at the same moment, a change being several steps over several files:
// one Registry ensured by both (stop, rewrite, start), then removed by one while the other ensures it again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { REPO, freePort, httpGet } from "./helpers";

let tmp: string;
let root: string;
let rt: Runtime;
const REG = `btrace${process.pid}`;

beforeAll(() => {
  tmp = fs.mkdtempSync("/tmp/berth-test-races-");
  root = path.join(tmp, "root");
  rt = createNativeRuntime({ root, runDir: path.join(tmp, "run") });
});
afterAll(async () => {
  await rt.registries.remove(REG).catch(() => undefined);
  fs.rmSync(tmp, { recursive: true, force: true });
}, 60_000);

/** Node processes on the shared root's runtime, each running its body once all have started; their results. */
async function together(bodies: string[]): Promise<unknown[]> {
  const children = bodies.map((body) =>
    spawn(process.execPath, ["-e", `const { createNativeRuntime } = require(${JSON.stringify(path.join(REPO, "dist/native/index.js"))});
const rt = createNativeRuntime({ root: ${JSON.stringify(root)}, runDir: ${JSON.stringify(path.join(tmp, "run"))} });
process.stdin.once("data", () => (async () => { ${body} })().then((r) => { console.log(JSON.stringify(r ?? null)); process.exit(0); }, (e) => { console.error(e.stack); process.exit(1); }));
console.log("ready");`], { stdio: ["pipe", "pipe", "pipe"] }),
  );
  const results = children.map((c) => {
    let out = "";
    let err = "";
    c.stdout!.on("data", (d) => (out += d));
    c.stderr!.on("data", (d) => (err += d));
    return new Promise<unknown>((resolve, reject) =>
      c.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").at(-1)!)) : reject(new Error(`worker failed: ${err}`)))),
    );
  });
  await Promise.all(children.map((c) => new Promise((r) => c.stdout!.once("data", r))));
  for (const c of children) c.stdin!.end("go\n");
  return Promise.all(results);
}

describe("two berth processes on one root", () => {
  it("ensure one registry at once: both succeed and one registry process serves; a removal and an ensure at once leave it whole or gone", async () => {
    const port = await freePort();
    const storage = path.join(tmp, "regdata");
    fs.mkdirSync(storage);
    const ensure = `return (await rt.registries.ensure({ name: ${JSON.stringify(REG)}, address: "127.0.0.1", port: ${port}, storage: ${JSON.stringify(storage)} })).pid;`;
    const pids = await together([ensure, ensure]);
    const info = await rt.registries.inspect(REG);
    expect(info?.status).toBe("running");
    expect(pids).toEqual([info!.pid, info!.pid]);
    expect((await httpGet(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);
    // Whichever goes first, what is left is a registry that runs and answers, or none at all (no record left over a
    // registry that runs, nor a record of one that is not running).
    await together([`await rt.registries.remove(${JSON.stringify(REG)});`, ensure]);
    const after = await rt.registries.inspect(REG);
    if (after) {
      expect(after.status).toBe("running");
      expect((await httpGet(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);
    } else {
      await expect(httpGet(`http://127.0.0.1:${port}/v2/`)).rejects.toThrow();
    }
  }, 120_000);
});
