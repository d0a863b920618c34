// How berth starts a TypeScript program (provider/engine/transpile.ts): transpiled once and cached by content, the
// cache used when nothing changed and invalidated when a source changes, and a program error still printed with a
// stack trace that points at the .ts line (types above it shift the JavaScript lines). Then what the program's
// process leaves out (lazy.ts, program-host.ts: promise stacks, debug messages) without a program noticing (leaks
// still reported, errors still mapped), and its process started ahead (program.ts): used when the guess of the
// project was right, replaced when wrong, gone when unused; an up's update's started during its preview.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO, berth, collect } from "./helpers";

describe("program start", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-program-"));
  const cache = path.join(dir, ".pulumi", "transpiled");
  const env = { PULUMI_BACKEND_URL: `file://${dir}`, PULUMI_CONFIG_PASSPHRASE: "test", BERTH_ROOT: path.join(dir, "root") };
  const preview = () => berth(["preview", dir, "--stack", "dev"], env);
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: programstart\nruntime: nodejs\nmain: index.ts\n");
  fs.writeFileSync(path.join(dir, "package.json"), '{"name": "programstart"}\n');
  // Line 6 of the .ts is line 5 of the JavaScript (the interface is erased).
  fs.writeFileSync(
    path.join(dir, "index.ts"),
    'import { two } from "./lib";\ninterface A {\n  a: number;\n}\nconst a: A = { a: two() };\nthrow new Error(`value ${a.a}`);\n',
  );
  const setLib = (n: number) => fs.writeFileSync(path.join(dir, "lib.ts"), `export const two = (): number => ${n};\n`);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("prints a program error with its .ts line, and re-transpiles a changed source", async () => {
    setLib(2);
    const first = await preview();
    expect(first.code).not.toBe(0);
    expect(first.stdout + first.stderr).toContain("Error: value 2");
    expect(first.stdout + first.stderr).toMatch(/index\.ts:6:7/);
    expect(fs.readdirSync(cache).filter((f) => f.endsWith(".js"))).toHaveLength(2);

    setLib(3);
    const second = await preview();
    expect(second.stdout + second.stderr).toContain("Error: value 3");
    expect(fs.readdirSync(cache).filter((f) => f.endsWith(".js"))).toHaveLength(3);
  });

  it("runs the cached JavaScript when the sources are unchanged", async () => {
    // Doctor the cached lib.ts: an unchanged source is not transpiled again, so the doctored code is what runs.
    const libJs = fs.readdirSync(cache).map((f) => path.join(cache, f)).find((f) => f.endsWith(".js") && fs.readFileSync(f, "utf8").includes("=> 3"))!;
    fs.writeFileSync(libJs, fs.readFileSync(libJs, "utf8").replace("=> 3", "=> 33"));
    const res = await preview();
    expect(res.stdout + res.stderr).toContain("Error: value 33");
  });

  it("reports a syntax error with the file and line, before running anything", async () => {
    fs.writeFileSync(path.join(dir, "lib.ts"), "export const two = (: number => 2;\n");
    const res = await preview();
    expect(res.code).not.toBe(0);
    expect(res.stdout + res.stderr).toMatch(/lib\.ts\(1,\d+\): error TS\d+/);
    expect(res.stdout + res.stderr).not.toContain("Error: value");
  });
});

/** A project in a temp dir whose program is `index`; `node_modules` is this checkout's. */
function project(name: string, index: string, dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-program-"))): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(dir, "node_modules"));
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${name}\nruntime: nodejs\nmain: index.ts\n`);
  fs.writeFileSync(path.join(dir, "package.json"), `{"name": "${name}"}\n`);
  fs.writeFileSync(path.join(dir, "index.ts"), index);
  return dir;
}

/** Processes whose working directory is `dir` (a program's process runs in its project). */
function processesIn(dir: string): number[] {
  return fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p) && p !== String(process.pid)).flatMap((p) => {
    try {
      return fs.readlinkSync(`/proc/${p}/cwd`) === dir ? [Number(p)] : [];
    } catch {
      return [];
    }
  });
}

async function noneLeftIn(dir: string): Promise<number[]> {
  for (let i = 0; i < 50 && processesIn(dir).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  return processesIn(dir);
}

describe("the program's process", () => {
  const dirs: string[] = [];
  const envFor = (dir: string) => ({ PULUMI_BACKEND_URL: `file://${dir}`, PULUMI_CONFIG_PASSPHRASE: "test", BERTH_ROOT: path.join(dir, "root") });
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it("leaves out zod; closures still serialize (the debugger opened on use), stacks read as Node writes them", async () => {
    const dir = project(
      "lean",
      [
        'import * as pulumi from "@pulumi/pulumi";',
        // berth's SDK, as "berth-iac" resolves inside this checkout.
        `import * as berth from ${JSON.stringify(path.join(REPO, "dist/sdk"))};`,
        'import { debuggablePromise } from "@pulumi/pulumi/runtime/debuggable";',
        "void berth.Volume;",
        "const seven = 7;",
        'export const zod = Object.keys(require.cache).some((f) => f.includes("/node_modules/zod/"));',
        'export const closure = pulumi.runtime.serializeFunction(() => seven).then((f) => f.text.includes("seven: 7"));',
        'export const plain = new RangeError("plain").stack!.split("\\n")[0];',
        'let coded = "";',
        'try { require("fs").readFileSync({}); } catch (e) { coded = (e as Error).stack!.split("\\n")[0]; }',
        "export const nodeError = coded;",
        "const probe = Promise.resolve(1);",
        'void debuggablePromise(probe, "probe");',
        // No stack is captured for the promises @pulumi/pulumi wraps (printed only when leaks are debugged, below).
        'export const leakStack = "_debugStackTrace" in probe;',
        "",
      ].join("\n"),
    );
    dirs.push(dir);
    const res = await berth(["preview", dir, "--stack", "dev"], envFor(dir));
    expect(res.stdout + res.stderr).toContain("zod: false");
    expect(res.stdout).toContain("closure: true");
    expect(res.stdout).toContain('plain: "RangeError: plain"');
    expect(res.stdout).toMatch(/nodeError: "TypeError \[ERR_INVALID_ARG_TYPE\]: The \\"path\\" argument/);
    expect(res.stdout).toContain("leakStack: false");
    expect(res.code).toBe(0);
  });

  it("reports a leaked promise as Pulumi does, with its stack under PULUMI_DEBUG_PROMISE_LEAKS", async () => {
    const dir = project(
      "leak",
      [
        'import { debuggablePromise } from "@pulumi/pulumi/runtime/debuggable";',
        "function leakOne(): void {",
        '  void debuggablePromise(new Promise(() => {}), "never settled");',
        "}",
        "leakOne();",
        "export const x = 1;",
        "",
      ].join("\n"),
    );
    dirs.push(dir);
    const plain = await berth(["preview", dir, "--stack", "dev"], envFor(dir));
    expect(plain.code).not.toBe(0);
    expect(plain.stdout).toContain("The Pulumi runtime detected that 1 promise was still active");
    expect(plain.stdout).not.toContain("STACK_TRACE");
    const debug = await berth(["preview", dir, "--stack", "dev"], { ...envFor(dir), PULUMI_DEBUG_PROMISE_LEAKS: "1" });
    expect(debug.code).not.toBe(0);
    expect(debug.stdout).toMatch(/Promise leak detected:\nCONTEXT\(\d+\): never settled\nSTACK_TRACE:\nError\n/);
    expect(debug.stdout).toMatch(/at leakOne \(.*index\.ts:\d+:\d+\)/);
  });

  it("prints an error thrown in an apply (through the promises berth tracks without stacks) with its .ts line", async () => {
    const dir = project(
      "applyerror",
      [
        'import * as pulumi from "@pulumi/pulumi";',
        "interface A {",
        "  a: number;",
        "}",
        "const a: A = { a: 1 };",
        "export const out = pulumi.output(a.a).apply((v) => {",
        "  if (v === 1) throw new Error(`inside apply ${v}`);",
        "  return v;",
        "});",
        "",
      ].join("\n"),
    );
    dirs.push(dir);
    const res = await berth(["preview", dir, "--stack", "dev"], envFor(dir));
    expect(res.code).not.toBe(0);
    expect(res.stdout).toContain("Error: inside apply 1");
    expect(res.stdout).toMatch(/index\.ts:7:22/);
  });

  it("shows the program's messages as Pulumi does: info (log.info, console.log) and warnings, not debug", async () => {
    const dir = project(
      "messages",
      [
        'import * as pulumi from "@pulumi/pulumi";',
        'pulumi.log.info("told at info");',
        'pulumi.log.debug("told at debug");',
        'pulumi.log.warn("told at warning");',
        'console.log("printed by the program");',
        "export const x = 1;",
        "",
      ].join("\n"),
    );
    dirs.push(dir);
    const res = await berth(["preview", dir, "--stack", "dev"], envFor(dir));
    expect(res.code).toBe(0);
    const shown = res.stdout.slice(res.stdout.indexOf("Diagnostics:"));
    expect(shown).toMatch(/^told at info$/m);
    expect(shown).toMatch(/^warning: told at warning$/m);
    expect(shown).toMatch(/^printed by the program$/m);
    expect(res.stdout).not.toContain("told at debug");
  });

  it("started ahead for a wrongly guessed project is replaced, and leaves nothing running", async () => {
    // `--stack dev` run in a project that has a project directory named dev: the early start guesses dev.
    const dir = project("outer", 'export const which = "outer";\n');
    const decoy = project("decoy", 'export const which = "decoy";\n', path.join(dir, "dev"));
    dirs.push(dir);
    const child = spawn(path.join(REPO, "bin/berth"), ["preview", "--stack", "dev"], { cwd: dir, env: { ...process.env, ...envFor(dir) }, stdio: ["ignore", "pipe", "pipe"] });
    const res = await collect(child);
    expect(res.stdout).toContain('which: "outer"');
    expect(res.code).toBe(0);
    expect(await noneLeftIn(decoy)).toEqual([]);
    expect(await noneLeftIn(dir)).toEqual([]);
  });

  it("is never started in a directory the command may not run: no code of it loads", async () => {
    // `--stack dev` beside a directory dev holding another project, `--help`, a DIR that is no project, and a
    // project named beside a bad flag or word, each run where a project's @pulumi/pulumi is planted: the early
    // start used to load it (then killed it, or not).
    const dir = planted(fs.mkdtempSync(path.join(os.tmpdir(), "berth-program-")));
    const outer = project("outer", 'export const which = "outer";\n');
    const decoy = planted(path.join(outer, "dev"));
    dirs.push(dir, outer);
    const inDir = (cwd: string, args: string[]) =>
      collect(spawn(path.join(REPO, "bin/berth"), args, { cwd, env: { ...process.env, ...envFor(cwd) }, stdio: ["ignore", "pipe", "pipe"] }));
    expect((await inDir(outer, ["preview", "--stack", "dev"])).stdout).toContain('which: "outer"');
    await inDir(dir, ["preview", "--help"]);
    await inDir(dir, ["up", "--stack", "dev", "no-project-here"]);
    // The project named, but on a command line with a usage error: nothing of it loads before the error.
    expect((await inDir(outer, ["preview", dir, "--no-such-flag"])).code).toBe(2);
    expect((await inDir(outer, ["preview", "-s", "dev", dir, "extra"])).code).toBe(2);
    expect(await noneLeftIn(decoy)).toEqual([]);
    expect(await noneLeftIn(dir)).toEqual([]);
    expect(fs.existsSync(path.join(decoy, "LOADED"))).toBe(false);
    expect(fs.existsSync(path.join(dir, "LOADED"))).toBe(false);
  });

  it("an up's update process starts while its preview runs, once the preview finds a change; none when none", async () => {
    // The program counts, during its preview, the processes in its project: itself, and the update's when started.
    const dir = project(
      "ahead",
      [
        'import * as fs from "fs";',
        'import * as pulumi from "@pulumi/pulumi";',
        `import * as berth from ${JSON.stringify(path.join(REPO, "dist/sdk"))};`,
        'new berth.Volume("data", {});',
        "const inDir = () => fs.readdirSync(\"/proc\").filter((p) => {",
        "  try { return /^\\d+$/.test(p) && fs.readlinkSync(`/proc/${p}/cwd`) === process.cwd(); } catch { return false; }",
        "}).length;",
        "export const counted = new Promise((resolve) => setTimeout(() => {",
        '  if (pulumi.runtime.isDryRun()) fs.writeFileSync("during-preview", String(inDir()));',
        "  resolve(true);",
        "}, 1500));",
        "",
      ].join("\n"),
    );
    dirs.push(dir);
    const first = await berth(["up", dir, "--stack", "dev", "--yes"], envFor(dir));
    expect(first.stdout).toContain("+  2 created");
    expect(first.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, "during-preview"), "utf8")).toBe("2");
    const again = await berth(["up", dir, "--stack", "dev", "--yes"], envFor(dir));
    expect(again.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, "during-preview"), "utf8")).toBe("1");
    expect(await noneLeftIn(dir)).toEqual([]);
    expect((await berth(["destroy", dir, "--stack", "dev", "--yes"], envFor(dir))).code).toBe(0);
  });

  it("started ahead and not used (a usage error) exits with berth", async () => {
    const dir = project("unused", "export const x = 1;\n");
    dirs.push(dir);
    const res = await berth(["preview", dir, "--no-such-flag"], envFor(dir));
    expect(res.code).toBe(2);
    expect(await noneLeftIn(dir)).toEqual([]);
  });
});

/** A project whose @pulumi/pulumi writes LOADED in it as soon as the program's process loads it. */
function planted(dir: string): string {
  const pkg = path.join(dir, "node_modules/@pulumi/pulumi");
  fs.mkdirSync(path.join(pkg, "proto"), { recursive: true });
  fs.mkdirSync(path.join(dir, "node_modules/source-map-support"));
  fs.writeFileSync(path.join(dir, "node_modules/source-map-support/index.js"), "exports.install = () => {};\n");
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: planted\nruntime: nodejs\n");
  fs.writeFileSync(path.join(pkg, "package.json"), '{"name": "@pulumi/pulumi"}\n');
  const mark = `require("fs").writeFileSync(${JSON.stringify(path.join(dir, "LOADED"))}, "");\n`;
  for (const f of ["index.js", "proto/engine_grpc_pb.js", "proto/engine_pb.js"]) fs.writeFileSync(path.join(pkg, f), mark);
  return dir;
}
