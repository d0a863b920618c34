// `berth import TYPE NAME ID`: an object made outside the stack is adopted (inputs read back from the host), the
// code declaring it is printed, and from then on the stack owns it — destroy deletes it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createNativeRuntime } from "../../native";
import { QUICKSTART, berth, clearRoot } from "./helpers";

describe("berth import", () => {
  const stack = `import${process.pid}`;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-import-"));
  const env = { BERTH_ROOT: root };
  const stateFile = path.join(QUICKSTART, ".pulumi/stacks/quickstart", `${stack}.json`);
  const runtime = createNativeRuntime({ root });
  const volume = `berth-imp-${process.pid}`;
  const cli = (...args: string[]) => berth([...args, "-C", QUICKSTART, "--stack", stack], env);

  afterAll(async () => {
    await clearRoot(root);
    for (const f of [stateFile, `${stateFile}.bak`, path.join(QUICKSTART, `Pulumi.${stack}.yaml`)]) fs.rmSync(f, { force: true });
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("adopts a volume made outside the stack, prints its declaration, and destroys it with the stack", async () => {
    await runtime.volumes.create({ name: volume, labels: { team: "data" } });

    const imported = await cli("import", "berth:index:Volume", "data", volume, "--protect=false");
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    expect(imported.stdout).toContain('new berth.Volume("data", {');
    expect(imported.stdout).toMatch(/=\s+1 imported/); // applied, so not "to import"
    expect(imported.stdout).toContain(`"name": "${volume}"`);
    expect(imported.stdout).toContain('"team": "data"');
    const resources = JSON.parse(fs.readFileSync(stateFile, "utf8")).checkpoint.latest.resources;
    const data = resources.find((r: { type: string }) => r.type === "berth:index:Volume");
    expect(data).toMatchObject({ id: volume, importID: volume, inputs: { name: volume, labels: { team: "data" } } });

    // Adopted: the stack owns it now, so it is not removed behind the stack's back.
    expect((await cli("volume", "rm", volume)).stderr).toContain(`volume ${volume} belongs to stack ${stack} of project quickstart (resource data)`);

    const again = await cli("import", "berth:index:Volume", "data", volume);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain("the stack already has urn:pulumi:");
    const missing = await cli("import", "berth:index:Volume", "other", "no-such-volume");
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain('there is no berth:index:Volume with id "no-such-volume" on this host');
    const unknown = await cli("import", "berth:index:Bucket", "b", "b");
    expect(unknown.stdout).toContain("unknown resource type berth:index:Bucket: berth's types are berth:index:");

    const destroyed = await cli("destroy", "--yes");
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
    expect(await runtime.volumes.inspect(volume)).toBeUndefined();
  });
});
