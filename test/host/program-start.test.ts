// How berth starts a TypeScript program (provider/engine/transpile.ts): transpiled once and cached by content, the
// cache used when nothing changed and invalidated when a source changes, and a program error still printed with a
// stack trace that points at the .ts line (types above it shift the JavaScript lines).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO, berth } from "./helpers";

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
