// A user's program type-checked against the built declarations (dist/sdk) with Pulumi's TypeScript template
// tsconfig: no skipLibCheck, so every .d.ts berth's types reach is checked — they must not reach zod's. Fields
// show their JSDoc, and a wrong value is still refused.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO } from "./helpers";

/** `pulumi new typescript`'s tsconfig.json. */
const PULUMI_TSCONFIG = {
  compilerOptions: {
    strict: true, outDir: "bin", target: "es2020", module: "commonjs", moduleResolution: "node", sourceMap: true,
    experimentalDecorators: true, pretty: true, noFallthroughCasesInSwitch: true, noImplicitReturns: true,
    forceConsistentCasingInFileNames: true,
  },
  files: ["index.ts"],
};

const PROGRAM = `import * as berth from "berth-iac";
const net = new berth.Network("net", { subnet: "10.90.0.0/24", driver: "bridge" });
const img = new berth.Image("img", { name: "web:1", build: { context: "." } });
const args: berth.ContainerArgs = { image: img.imageId, network: net.name, ports: [{ containerPort: 80, hostPort: 8080 }, "9090:90"] };
const c = new berth.Container("c", args);
export const ip = c.ip;
export const ports = c.ports.apply((ps) => ps.map((p) => p.hostPort + 1));
`;

describe("berth's declarations under Pulumi's template tsconfig", () => {
  const proj = fs.mkdtempSync(path.join(os.tmpdir(), "berth-dts-"));
  afterAll(() => fs.rmSync(proj, { recursive: true, force: true }));
  fs.mkdirSync(path.join(proj, "node_modules/@pulumi"), { recursive: true });
  fs.symlinkSync(REPO, path.join(proj, "node_modules/berth-iac"));
  fs.symlinkSync(path.join(REPO, "node_modules/@pulumi/pulumi"), path.join(proj, "node_modules/@pulumi/pulumi"));
  fs.writeFileSync(path.join(proj, "tsconfig.json"), JSON.stringify(PULUMI_TSCONFIG));
  const tsc = (program: string) => {
    fs.writeFileSync(path.join(proj, "index.ts"), program);
    const r = spawnSync(process.execPath, [path.join(REPO, "node_modules/typescript/bin/tsc"), "--noEmit", "--pretty", "false"], { cwd: proj, encoding: "utf8", timeout: 180_000 });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  };

  it("type-checks a program with 0 errors, and refuses a wrong field value", () => {
    const ok = tsc(PROGRAM);
    expect(ok.out).toBe("");
    expect(ok.code).toBe(0);
    const bad = tsc(PROGRAM.replace('driver: "bridge"', 'driver: "overlay"'));
    expect(bad.out).toMatch(/index\.ts\(2,\d+\): error TS2322: Type '"overlay"' is not assignable/);
    expect(bad.out).not.toContain("node_modules");
  }, 240_000);

  it("ships the fields' JSDoc in the declarations", () => {
    const dts = fs.readFileSync(path.join(REPO, "dist/sdk/types.d.ts"), "utf8");
    expect(dts).toMatch(/Docker's --internal[^]*internal\?: pulumi\.Input<boolean>;/);
    expect(dts).toMatch(/Changing this replaces the resource\.\s*\*\/\s*subnet: pulumi\.Input<string>;/);
  });
});
