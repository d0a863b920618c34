// Two stacks on one root declaring one fixed name: the second must not adopt the first's object (its destroy then
// took the first stack's volume, data and all, and its network). It is refused at preview, naming the owner.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, clearRoot } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/fixed-names");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-fixednames-"));
const env = { BERTH_ROOT: root, PULUMI_CONFIG_PASSPHRASE: "fixednames" };
const [first, second] = [`fna${process.pid}`, `fnb${process.pid}`];
const names = { volume: `fnvol${process.pid}`, network: `fnnet${process.pid}`, subnet: `10.${170 + (process.pid % 10)}.${process.pid % 250}.0/24` };
const stackCli = (stack: string, ...args: string[]) => berth([...args, PROGRAM, "--stack", stack], env);
const stateFile = (stack: string) => path.join(PROGRAM, ".pulumi/stacks/fixednames", `${stack}.json`);

beforeAll(() => {
  for (const s of [first, second]) {
    fs.writeFileSync(path.join(PROGRAM, `Pulumi.${s}.yaml`), `config:\n${Object.entries(names).map(([k, v]) => `  fixednames:${k}: "${v}"`).join("\n")}\n`);
  }
});

afterAll(async () => {
  for (const s of [second, first]) {
    await stackCli(s, "destroy", "--yes");
    fs.rmSync(path.join(PROGRAM, `Pulumi.${s}.yaml`), { force: true });
    for (const f of [stateFile(s), `${stateFile(s)}.bak`]) fs.rmSync(f, { force: true });
  }
  await clearRoot(root);
  fs.rmSync(root, { recursive: true, force: true });
}, 120_000);

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
});
