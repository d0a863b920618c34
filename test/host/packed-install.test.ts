// berth as a user installs it: the packed package in a scratch project that `berth new` wrote, installed from the
// npm registry with the newest packages this Node can run; type-checked by the project's own tsc; previewed,
// applied, reached and destroyed through the installed CLI; and still run when the project takes TypeScript 7
// for its own tsc. Skipped, saying so, when the npm registry does not answer.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNativeRuntime } from "../../native";
import { REPO, clearRoot, freePort, httpGet } from "./helpers";

const NPM_OPTS = ["--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"];

function registryAnswers(): boolean {
  return spawnSync("npm", ["view", "@pulumi/pulumi", "version"], { encoding: "utf8", timeout: 30_000 }).status === 0;
}

const online = registryAnswers();
const skipped = online ? "" : " (skipped: the npm registry does not answer)";

describe.skipIf(!online)(`the packed package in a new project${skipped}`, () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "berth-packed-"));
  const proj = path.join(scratch, "proj");
  const root = path.join(scratch, "root");
  const env = { ...process.env, BERTH_ROOT: root, PULUMI_CONFIG_PASSPHRASE: "packed" };
  const run = (cmd: string, args: string[], timeout = 120_000) => {
    const r = spawnSync(cmd, args, { cwd: proj, env, encoding: "utf8", timeout });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ""}` };
  };
  const berth = (...args: string[]) => run(path.join(proj, "node_modules/.bin/berth"), args);
  const installed = (name: string, from = proj) => JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`, { paths: [from] }), "utf8"));
  let tarball = "";

  beforeAll(() => {
    tarball = path.join(scratch, execFileSync("npm", ["pack", "--pack-destination", scratch, "--silent"], { cwd: REPO, encoding: "utf8" }).trim().split("\n").pop()!);
    execFileSync(path.join(REPO, "bin/berth"), ["new", proj, "--name", "packed"], { encoding: "utf8" });
    const install = run("npm", ["install", ...NPM_OPTS, tarball], 300_000);
    expect(install.code, install.out).toBe(0);
  }, 360_000);

  afterAll(async () => {
    if (fs.existsSync(path.join(proj, "node_modules/.bin/berth"))) berth("destroy", "--yes");
    await clearRoot(root);
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("ships what a project needs and nothing that builds on install", () => {
    const files = execFileSync("tar", ["tzf", tarball], { encoding: "utf8" }).split("\n");
    expect(files).toContain("package/scripts/busybox-rootfs.sh");
    expect(files).toContain("package/dist/provider/engine/program-host.js");
    expect(files.filter((f) => f.startsWith("package/dist/bench/") || f.startsWith("package/test/"))).toEqual([]);
    const pkg = installed("berth-iac");
    expect(pkg.scripts.prepare).toBeUndefined();
    expect(Object.keys(pkg.dependencies)).not.toContain("ts-node");
    // The skeleton's project resolved beside the newest @pulumi/pulumi: TypeScript 6 (Pulumi's peer range ends at 7).
    expect(installed("typescript").version).toMatch(/^[56]\./);
    expect(installed("@pulumi/pulumi").version).toMatch(/^3\./);
  });

  it("type-checks with the project's own tsc and berth new's tsconfig", () => {
    const tsc = run(process.execPath, [path.join(proj, "node_modules/typescript/bin/tsc"), "--noEmit", "--pretty", "false"], 180_000);
    expect(tsc.code, tsc.out).toBe(0);
  }, 200_000);

  it("previews, applies, serves and destroys the first program through the installed CLI", async () => {
    const port = await freePort();
    expect(berth("config", "set", "port", String(port)).code).toBe(0);
    const preview = berth("preview");
    expect(preview.code, preview.out).toBe(0);
    expect(preview.out).toMatch(/to create/);
    const up = berth("up", "--yes");
    expect(up.code, up.out).toBe(0);
    const res = await httpGet(`http://127.0.0.1:${port}/`).catch((err) => ({ status: 0, body: `${err}\n${berth("ps", "-a").out}` }));
    expect(res).toMatchObject({ status: 200, body: expect.stringContaining("Hello from berth") });
    // A program's error points at its TypeScript line: the program ran through berth's TypeScript with maps.
    const index = path.join(proj, "index.ts");
    const text = fs.readFileSync(index, "utf8");
    fs.writeFileSync(index, `${text}throw new Error("stop here");\n`);
    const failing = berth("preview");
    fs.writeFileSync(index, text);
    expect(failing.code).not.toBe(0);
    expect(failing.out).toContain(`${index}:${text.split("\n").length}:7`);
    const destroy = berth("destroy", "--yes");
    expect(destroy.code, destroy.out).toBe(0);
    expect(await createNativeRuntime({ root }).containers.list()).toEqual([]);
  }, 240_000);

  it("still runs programs when the project takes TypeScript 7 (no transpile API) for its own tsc", () => {
    // @pulumi/pulumi's optional peer stops below 7, so npm needs --legacy-peer-deps to put 7 at the top.
    const install = run("npm", ["install", ...NPM_OPTS, "--legacy-peer-deps", "--save-dev", "typescript@7"], 300_000);
    expect(install.code, install.out).toBe(0);
    expect(installed("typescript").version).toMatch(/^7\./);
    expect(installed("typescript", path.join(proj, "node_modules/berth-iac")).version).toMatch(/^[56]\./);
    const preview = berth("preview");
    expect(preview.code, preview.out).toBe(0);
  }, 360_000);
});
