// A fixed-name object renamed through `aliases` stays its resource's: the owner check knows the state records it
// (the host's owner record still names the old URN), the record then follows the new URN, and another stack
// declaring the name is still refused.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, ensureQuickstartRootfs, QUICKSTART, removeStacks } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/fixed-names-rename");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-fnrename-"));
const env = { BERTH_ROOT: root, PULUMI_CONFIG_PASSPHRASE: "fnrename" };
const [mine, other] = [`fra${process.pid}`, `frb${process.pid}`];
const names = { volume: `rvaliasvol${process.pid}`, container: `rvaliasweb${process.pid}` };
const urn = (stack: string, type: string, name: string) => `urn:pulumi:${stack}::fixedrename::${type.includes(":") ? type : `berth:index:${type}`}::${name}`;
const stackCli = (stack: string, ...args: string[]) => berth([...args, PROGRAM, "--stack", stack], env);
const owner = (kind: string, name: string) => fs.readFileSync(path.join(root, "owners", kind, name), "utf8");
const configure = (stack: string, renamed: boolean) =>
  fs.writeFileSync(
    path.join(PROGRAM, `Pulumi.${stack}.yaml`),
    `config:\n${Object.entries({ ...names, tarball: path.join(QUICKSTART, "busybox-rootfs.tar"), renamed }).map(([k, v]) => `  fixedrename:${k}: "${v}"`).join("\n")}\n`,
  );

beforeAll(() => ensureQuickstartRootfs());

afterAll(() => removeStacks(PROGRAM, "fixedrename", [other, mine], env), 120_000);

describe("a fixed-name Volume and Container renamed (and the Container re-parented) with aliases", () => {
  it("are kept (no change), recorded as the new URN's, removed by its destroy; another stack is still refused", async () => {
    configure(mine, false);
    const up = await stackCli(mine, "up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    fs.writeFileSync(path.join(root, "volumes", names.volume, "_data", "kept"), "data");

    configure(mine, true);
    // Only the new component is made: the image, volume and container are kept as they are.
    const preview = await stackCli(mine, "preview");
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    expect(preview.stdout).toMatch(/\+\s+1 to create\s+4 unchanged/);
    const renamed = await stackCli(mine, "up", "--yes");
    expect(renamed.code, renamed.stdout + renamed.stderr).toBe(0);
    expect(renamed.stdout).toMatch(/\+\s+1 created\s+4 unchanged/);
    expect(owner("volume", names.volume)).toBe(urn(mine, "Volume", "data2"));
    expect(owner("container", names.container)).toBe(urn(mine, "fixedrename:index:Group$berth:index:Container", "web2"));
    expect(fs.readFileSync(path.join(root, "volumes", names.volume, "_data", "kept"), "utf8")).toBe("data");
    expect((await stackCli(mine, "preview", "--expect-no-changes")).code).toBe(0);

    configure(other, true);
    const refused = await stackCli(other, "up", "--yes");
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stdout + refused.stderr).toContain(`name: volume "${names.volume}" already exists and belongs to ${urn(mine, "Volume", "data2")}`);
    expect(refused.stdout + refused.stderr).toContain(`name: container "${names.container}" already exists and belongs to ${urn(mine, "fixedrename:index:Group$berth:index:Container", "web2")}`);

    const destroyed = await stackCli(mine, "destroy", "--yes");
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
    expect(fs.existsSync(path.join(root, "owners", "volume", names.volume))).toBe(false);
    expect(fs.existsSync(path.join(root, "owners", "container", names.container))).toBe(false);
    expect((await berth(["volume", "ls", "-q"], env)).stdout).not.toContain(names.volume);
  }, 240_000);
});
