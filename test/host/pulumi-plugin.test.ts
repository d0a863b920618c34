// The plugin under the real Pulumi CLI: `pulumi import` of every berth type prints code that compiles against the
// SDK (the package schema GetSchema serves), and `pulumi preview`/`up` plan and apply a replaced Network and Volume
// as `berth` does. Runs only when a `pulumi` binary (with pulumi-language-nodejs beside it) is on PATH.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNativeRuntime } from "../../native";
import { PULUMI, QUICKSTART, REPO, berth, clearRoot, ensureQuickstartRootfs, freePort, pulumiCli } from "./helpers";

const skipped = PULUMI ? "" : " (skipped: no `pulumi` binary on PATH)";
const TARBALL = path.join(QUICKSTART, "busybox-rootfs.tar");
const octet = 150 + (process.pid % 40);

/** Type-checks files as a user's program is (strict), resolving "berth-iac" to this package. */
function compile(files: string[]): string {
  try {
    const tsc = path.join(REPO, "node_modules/typescript/bin/tsc");
    execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--skipLibCheck", "--module", "node16", "--moduleResolution", "node16", "--target", "ES2022", "--types", "node", ...files], { encoding: "utf8" });
    return "";
  } catch (err) {
    return (err as { stdout?: string }).stdout || String(err);
  }
}

describe.skipIf(!PULUMI)(`pulumi import of each berth type${skipped}`, () => {
  const scratch = path.join(os.tmpdir(), `berth-pimport-${process.pid}`);
  const root = path.join(scratch, "root");
  const stack = `pimp${process.pid}`;
  const codeDir = path.join(REPO, "test/host/fixtures", `imported-${process.pid}`);
  const tag = `bti${process.pid}`;
  const { run } = pulumiCli(scratch, root);
  const pulumi = (...args: string[]) => run(QUICKSTART, stack, ...args);
  const runtime = () => createNativeRuntime({ root });

  beforeAll(async () => {
    fs.mkdirSync(codeDir, { recursive: true });
    ensureQuickstartRootfs();
    const init = await pulumi("stack", "init", "--secrets-provider", "passphrase");
    expect(init.code, init.stdout + init.stderr).toBe(0);
  });

  afterAll(async () => {
    await pulumi("stack", "rm", "--yes", "--force");
    await clearRoot(root);
    fs.rmSync(path.join(QUICKSTART, `Pulumi.${stack}.yaml`), { force: true });
    fs.rmSync(codeDir, { recursive: true, force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("adopts an Image, Volume, Network, Container and Registry made outside the stack; the code printed compiles", async () => {
    const rt = runtime();
    const image = await rt.images.importRootfs({ ref: `${tag}:latest`, tarball: TARBALL, config: { cmd: ["sh"], env: ["PATH=/bin"] } });
    await rt.volumes.create({ name: `${tag}-v` });
    const regVolume = await rt.volumes.create({ name: `${tag}-rv` });
    await rt.networks.create({ name: `${tag}-n`, subnet: `10.${octet}.91.0/24`, nat: false });
    await rt.containers.run({ name: `${tag}-c`, image: image.id, command: ["sh", "-c", "exec sleep 600"], networks: [{ network: `${tag}-n` }], mounts: [{ volume: `${tag}-v`, target: "/data" }] });
    await rt.registries.ensure({ name: `${tag}-r`, address: "127.0.0.1", port: await freePort(), storage: regVolume.mountpoint });

    const files: string[] = [];
    for (const [type, name, id] of [["Image", "img", `${tag}:latest`], ["Volume", "vol", `${tag}-v`], ["Network", "net", `${tag}-n`], ["Container", "app", `${tag}-c`], ["Registry", "reg", `${tag}-r`]]) {
      const imported = await pulumi("import", `berth:index:${type}`, name, id, "--yes", "--protect=false");
      expect(imported.code, `${type}: ${imported.stdout}${imported.stderr}`).toBe(0);
      const code = imported.stdout.slice(imported.stdout.indexOf("import * as pulumi"));
      expect(code).toContain(`new berth.${type}("${name}", {`);
      const file = path.join(codeDir, `${name}.ts`);
      fs.writeFileSync(file, code);
      files.push(file);
    }
    expect(compile(files)).toBe("");

    // What was read back is what a program would write: no `labels: {}` on a volume without labels, and the
    // container's process, network and mounts.
    const exported = await pulumi("stack", "export");
    const inputs = (type: string) =>
      JSON.parse(exported.stdout).deployment.resources.find((r: { type: string }) => r.type === `berth:index:${type}`).inputs;
    expect(inputs("Volume")).toEqual({ name: `${tag}-v` });
    expect(inputs("Container")).toMatchObject({ name: `${tag}-c`, image: image.id, command: ["sh", "-c", "exec sleep 600"], network: `${tag}-n`, volumes: [{ volume: `${tag}-v`, target: "/data" }] });
    expect(inputs("Registry")).toMatchObject({ name: `${tag}-r`, volume: `${tag}-rv`, address: "127.0.0.1" });
  });
});

describe.skipIf(!PULUMI)(`pulumi preview and up after replacing a Network and a Volume${skipped}`, () => {
  const program = path.join(__dirname, "fixtures/replaced");
  const scratch = path.join(os.tmpdir(), `berth-preplaced-${process.pid}`);
  const root = path.join(scratch, "root");
  const stack = `prep${process.pid}`;
  const { env, run } = pulumiCli(scratch, root);
  const pulumi = (...args: string[]) => run(program, stack, ...args);
  const cli = (...args: string[]) => berth([...args, program, "--stack", stack], env);
  const configure = async (subnet: string, generation: string) => {
    for (const [k, v] of Object.entries({ tarball: TARBALL, subnet, generation })) expect((await pulumi("config", "set", k, v)).code).toBe(0);
  };
  const changed = (json: string) =>
    (JSON.parse(json).steps as Array<{ op: string; urn: string }>).filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);

  beforeAll(async () => {
    fs.mkdirSync(scratch, { recursive: true });
    ensureQuickstartRootfs();
    expect((await pulumi("stack", "init", "--secrets-provider", "passphrase")).code).toBe(0);
  });

  afterAll(async () => {
    await pulumi("destroy", "--yes", "--skip-preview");
    await pulumi("stack", "rm", "--yes", "--force");
    await clearRoot(root); // what a failed or interrupted destroy left
    fs.rmSync(path.join(program, `Pulumi.${stack}.yaml`), { force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("plans the replace of the network, the volume and the container like berth, then applies it", async () => {
    await configure(`10.${octet}.92.0/24`, "1");
    const up = await pulumi("up", "--yes", "--skip-preview");
    expect(up.code, up.stdout + up.stderr).toBe(0);

    // The container's check sees the new (autonamed) network and volume, which the host does not have yet.
    await configure(`10.${octet}.93.0/24`, "2");
    const preview = await pulumi("preview", "--json");
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    const expected = ["replace net", "replace data", "replace app"];
    expect(changed(preview.stdout).sort()).toEqual([...expected].sort());
    const berthPreview = await cli("preview", "--json");
    expect(berthPreview.code, berthPreview.stdout + berthPreview.stderr).toBe(0);
    expect(changed(berthPreview.stdout).sort()).toEqual([...expected].sort());

    const applied = await pulumi("up", "--yes");
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    const noop = await pulumi("preview", "--expect-no-changes");
    expect(noop.code, noop.stdout + noop.stderr).toBe(0);
    expect((await cli("preview", "--expect-no-changes")).code).toBe(0);
  });
});
