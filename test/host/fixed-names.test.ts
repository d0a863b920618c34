// Two stacks on one root declaring one fixed name: the second must not adopt the first's object (its destroy then
// took the first stack's volume, data and all, and its network). It is refused at preview, naming the owner.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, removeStacks } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/fixed-names");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-fixednames-"));
const env = { BERTH_ROOT: root, PULUMI_CONFIG_PASSPHRASE: "fixednames" };
const [first, second] = [`fna${process.pid}`, `fnb${process.pid}`];
// The stale-olds scenario's stacks: "b" made the volume first, "a" made it again after it was removed outside berth.
const [staleB, staleA] = [`fnsb${process.pid}`, `fnsa${process.pid}`];
const stale = `fnstale${process.pid}`;
const names = { volume: `fnvol${process.pid}`, network: `fnnet${process.pid}`, subnet: `10.${170 + (process.pid % 10)}.${process.pid % 250}.0/24` };
const stackCli = (stack: string, ...args: string[]) => berth([...args, PROGRAM, "--stack", stack], env);
const configure = (stack: string, config: Record<string, string>) =>
  fs.writeFileSync(path.join(PROGRAM, `Pulumi.${stack}.yaml`), `config:\n${Object.entries(config).map(([k, v]) => `  fixednames:${k}: "${v}"`).join("\n")}\n`);

beforeAll(() => {
  for (const s of [first, second]) configure(s, names);
});

afterAll(() => removeStacks(PROGRAM, "fixednames", [second, first, staleB, staleA], env), 120_000);

describe("a fixed name another stack's resource owns", () => {
  it("is refused at preview naming the owner; the other stack's destroy leaves the object and its data", async () => {
    const up = await stackCli(first, "up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const data = path.join(root, "volumes", names.volume, "_data", "kept");
    fs.writeFileSync(data, "the first stack's data");

    const refused = await stackCli(second, "up", "--yes");
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stdout + refused.stderr).toContain(`berth:index:Volume "data": name: volume "${names.volume}" already exists and belongs to urn:pulumi:${first}::fixednames::berth:index:Volume::data`);
    expect(refused.stdout + refused.stderr).toContain(`berth:index:Network "net": name: network "${names.network}" already exists and belongs to urn:pulumi:${first}::`);
    expect(refused.stdout).not.toContain("Updating (");

    const destroyed = await stackCli(second, "destroy", "--yes");
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
    expect(fs.readFileSync(data, "utf8")).toBe("the first stack's data");
    expect((await berth(["network", "ls", "-q"], env)).stdout).toContain(names.network);
    // The owner's own update is untouched by all this.
    expect((await stackCli(first, "preview", "--expect-no-changes")).code).toBe(0);
  }, 180_000);

  // The stack's state still records the name (its old inputs have it), but the object on the host is now another
  // stack's: that state is stale, and its shortcut must not skip the owner check on an update.
  it("is refused when this stack's own volume of that name was removed outside berth and another stack made it", async () => {
    configure(staleB, { volume: stale });
    configure(staleA, { volume: stale });
    const made = await stackCli(staleB, "up", "--yes");
    expect(made.code, made.stdout + made.stderr).toBe(0);
    const removed = await berth(["volume", "rm", "--force", stale], env);
    expect(removed.code, removed.stdout + removed.stderr).toBe(0);
    const taken = await stackCli(staleA, "up", "--yes");
    expect(taken.code, taken.stdout + taken.stderr).toBe(0);
    const data = path.join(root, "volumes", stale, "_data", "kept");
    fs.writeFileSync(data, "stack a's data");

    // A change that replaces the volume (its labels) would delete stack a's volume, data and all.
    configure(staleB, { volume: stale, label: "changed" });
    const refused = await stackCli(staleB, "up", "--yes");
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stdout + refused.stderr).toContain(`name: volume "${stale}" already exists and belongs to urn:pulumi:${staleA}::fixednames::berth:index:Volume::data`);
    expect(fs.readFileSync(data, "utf8")).toBe("stack a's data");

    // A rename through an alias would record stack a's volume as stack b's (its destroy then took it).
    configure(staleB, { volume: stale, renamed: "true" });
    const renamed = await stackCli(staleB, "up", "--yes");
    expect(renamed.code, renamed.stdout + renamed.stderr).toBe(1);
    expect(renamed.stdout + renamed.stderr).toContain(`name: volume "${stale}" already exists and belongs to urn:pulumi:${staleA}::fixednames::berth:index:Volume::data`);
    expect(fs.readFileSync(path.join(root, "owners", "volume", stale), "utf8")).toBe(`urn:pulumi:${staleA}::fixednames::berth:index:Volume::data`);
    expect(fs.readFileSync(data, "utf8")).toBe("stack a's data");
    expect((await stackCli(staleA, "preview", "--expect-no-changes")).code).toBe(0);
  }, 180_000);
});
