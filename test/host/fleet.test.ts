// One program, two providers: the stack's default (berth:root) and `new berth.Provider("h2", { root })`, two berth
// roots standing for two hosts (test/host/sim-hosts.ts and native/remote make the SSH ones). Each root gets its own
// image and web server; preview shows which provider each step goes through; the same host port on both roots of
// this one machine is refused (the machine's ports are shared); a bad host, literal or fed by another resource's
// output, is refused at preview naming the field; refresh and destroy reach each root; moving h2 to another root
// replaces its resources there. Under the Pulumi CLI (when on PATH), the plugin deploys to both roots too.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNativeRuntime } from "../../native";
import { PULUMI, REPO, berth, clearRoot, freePort, httpGet, pulumiCli } from "./helpers";
import { execFileSync } from "node:child_process";

const PROGRAM = path.join(__dirname, "fixtures/fleet");
const stack = `fleet${process.pid}${randomBytes(2).toString("hex")}`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "berth-fleet-"));
const roots = { a: path.join(scratch, "a"), b: path.join(scratch, "b"), c: path.join(scratch, "c") };
const tarball = path.join(scratch, "busybox-rootfs.tar");
const env = { BERTH_ROOT: roots.a };
const configFile = path.join(PROGRAM, `Pulumi.${stack}.yaml`);
const stateFile = path.join(PROGRAM, ".pulumi/stacks/fleet", `${stack}.json`);
let ports: { a: number; b: number };
// Each root its own named network: two roots' default "bridge" networks still share iptables rule tags until the
// per-root work (contract 5) lands.
const octet = 150 + (process.pid % 40);
const subnets = { subnetA: `10.${octet}.61.0/24`, subnetB: `10.${octet}.62.0/24` };

const setConfig = (c: Record<string, string | number | boolean> = {}) => {
  const all = { tarball, root2: roots.b, portA: ports.a, portB: ports.b, ...subnets, ...c };
  const lines = Object.entries(all).map(([k, v]) => `  fleet:${k}: "${v}"`);
  fs.writeFileSync(configFile, `config:\n  berth:root: ${roots.a}\n${lines.join("\n")}\n`);
};
const cli = (...args: string[]) => berth([...args, PROGRAM, "--stack", stack], env);
type State = { resources: Array<{ urn: string; id: string; type: string; provider?: string; outputs: Record<string, unknown>; delete?: boolean }> };
const state = (): State => JSON.parse(fs.readFileSync(stateFile, "utf8")).checkpoint.latest;
const outputs = () => state().resources.find((r) => r.type === "pulumi:pulumi:Stack")!.outputs as { web: string; web2: string };
const running = async (root: string, name: string) => (await createNativeRuntime({ root }).containers.inspect(name))?.status === "running";
/** What the web server on a port answers (its name), waiting for it to start. */
async function answers(port: number): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const body = (await httpGet(`http://127.0.0.1:${port}/`).catch(() => ({ body: "" }))).body.trim();
    if (body || Date.now() > deadline) return body;
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  ports = { a: await freePort(), b: await freePort() };
});

afterAll(async () => {
  await cli("destroy", "--yes");
  for (const root of Object.values(roots)) await clearRoot(root);
  for (const f of [configFile, stateFile, `${stateFile}.bak`]) fs.rmSync(f, { force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe("one program, two providers", () => {
  it("deploys to both roots, shows each step's provider, refuses what two roots of one machine cannot share or a bad host; refresh, a move and destroy reach each root", async () => {
    // Two roots of this machine share its host ports: refused at preview, naming both (once deployed, the second
    // root's port check names the container holding it).
    setConfig({ portB: ports.a });
    const shared = await cli("preview");
    expect(shared.code).toBe(1);
    expect(shared.stdout).toContain(`berth:index:Container "web2": host port 127.0.0.1:${ports.a}/tcp is already taken by berth:index:Container "web" in this program`);

    setConfig();
    const preview = await cli("preview");
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    expect(preview.stdout).toMatch(/\+ +pulumi:providers:berth +h2 +create/);
    expect(preview.stdout).toMatch(/\+ +berth:index:Container +web2 +create \[provider=h2\]/);
    expect(preview.stdout).toMatch(/\+ +berth:index:Container +web +create\n/);

    const up = await cli("up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const { web, web2 } = outputs();
    expect([await running(roots.a, web), await running(roots.b, web2)]).toEqual([true, true]);
    expect([await running(roots.b, web), await running(roots.a, web2)]).toEqual([false, false]);
    expect([await answers(ports.a), await answers(ports.b)]).toEqual(["web", "web2"]);
    // Each resource records its provider, Pulumi's "<urn>::<id>".
    const h2 = state().resources.find((r) => r.type === "pulumi:providers:berth" && r.urn.endsWith("::h2"))!;
    expect(state().resources.find((r) => r.urn.endsWith("::web2"))!.provider).toBe(`${h2.urn}::${h2.id}`);
    const before = fs.readFileSync(stateFile, "utf8");

    // A bad host, literal or through another resource's output, is refused at preview naming the field.
    for (const bad of [{ host2: "tcp://10.0.0.1:2375" }, { hostFromOutput: true }] as Array<Record<string, string | boolean>>) {
      setConfig(bad);
      const refused = await cli("up", "--yes");
      expect(refused.code, JSON.stringify(bad)).toBe(1);
      expect(refused.stdout).toMatch(/pulumi:providers:berth "h2": host: .*ssh:\/\/\[user@\]host\[:port\]/);
    }
    expect(fs.readFileSync(stateFile, "utf8")).toBe(before);

    // A root known only at update is previewed as Pulumi previews an unconfigured provider (its resources shown
    // replaced, with its warning); the update finds the same root, so nothing of h2's changes.
    setConfig({ root2FromOutput: true });
    const blind = await cli("preview");
    expect(blind.code, blind.stdout + blind.stderr).toBe(0);
    expect(blind.stdout).toMatch(/\+- +berth:index:Container +web2 +replace/);
    expect(blind.stdout).toContain("not known during preview");
    const fed = await cli("up", "--yes");
    expect(fed.code, fed.stdout + fed.stderr).toBe(0);
    expect(fed.stdout.split("Updating (")[1]).not.toMatch(/web2.*(replac|creat)/);
    expect(outputs().web2).toBe(web2);
    expect(await running(roots.b, web2)).toBe(true);

    // Removed by hand in the second root: refresh there drops it, up makes it again there.
    setConfig();
    await createNativeRuntime({ root: roots.b }).containers.remove(web2, { graceSeconds: 0 });
    const refresh = await cli("refresh", "--yes");
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    expect(state().resources.some((r) => r.urn.endsWith("::web2"))).toBe(false);
    const repaired = await cli("up", "--yes");
    expect(repaired.code, repaired.stdout + repaired.stderr).toBe(0);
    expect(await running(roots.b, outputs().web2)).toBe(true);

    // h2 moves to another root: its network, image and container are replaced there, deleted first (the same
    // machine). Its host port moves too: the old root's container holds the old one until it is gone, which the
    // new root's port check at preview cannot know.
    const portC = await freePort();
    setConfig({ root2: roots.c, portB: portC });
    const movePlan = await cli("preview");
    expect(movePlan.code, movePlan.stdout + movePlan.stderr).toBe(0);
    expect(movePlan.stdout).toMatch(/\+- +berth:index:Container +web2 +replace \(replace because of provider.*\[provider=h2\]/);
    expect(movePlan.stdout).toMatch(/\+- +berth:index:Image +web2-base +replace/);
    expect(movePlan.stdout).not.toMatch(/berth:index:Container +web +replace/);
    const moved = await cli("up", "--yes");
    expect(moved.code, moved.stdout + moved.stderr).toBe(0);
    const movedName = outputs().web2;
    expect([await running(roots.c, movedName), await running(roots.b, movedName)]).toEqual([true, false]);
    expect(await createNativeRuntime({ root: roots.b }).images.list()).toEqual([]);
    expect(await answers(portC)).toBe("web2");
    expect(await running(roots.a, outputs().web)).toBe(true);

    const destroy = await cli("destroy", "--yes");
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    for (const root of [roots.a, roots.c]) {
      const rt = createNativeRuntime({ root });
      expect([await rt.containers.list(), await rt.images.list()]).toEqual([[], []]);
    }
  }, 240_000);
});

describe.skipIf(!PULUMI)(`the same program under the Pulumi CLI${PULUMI ? "" : " (skipped: no `pulumi` binary on PATH)"}`, () => {
  it("an explicit provider gets its own plugin instance and runtime: both roots are deployed and destroyed", async () => {
    const pscratch = path.join(scratch, "pulumi");
    const proots = { a: path.join(pscratch, "ra"), b: path.join(pscratch, "rb") };
    const { env: penv, run } = pulumiCli(pscratch, proots.a);
    const pstack = `${stack}p`;
    const pconfig = path.join(PROGRAM, `Pulumi.${pstack}.yaml`);
    const pulumi = (...args: string[]) => run(PROGRAM, pstack, ...args);
    const pports = { a: await freePort(), b: await freePort() };
    try {
      expect((await pulumi("stack", "init", "--secrets-provider", "passphrase")).code).toBe(0);
      const psubnets = { subnetA: `10.${octet}.63.0/24`, subnetB: `10.${octet}.64.0/24` };
      const configure = (c: Record<string, string | number> = {}) => {
        const lines = Object.entries({ tarball, root2: proots.b, portA: pports.a, portB: pports.b, ...psubnets, ...c }).map(([k, v]) => `  fleet:${k}: "${v}"`);
        fs.writeFileSync(pconfig, `config:\n  berth:root: ${proots.a}\n${lines.join("\n")}\n`);
      };
      configure();
      const up = await pulumi("up", "--yes", "--skip-preview");
      expect(up.code, up.stdout + up.stderr).toBe(0);
      const outs = JSON.parse((await pulumi("stack", "output", "--json")).stdout) as { web: string; web2: string };
      expect([await running(proots.a, outs.web), await running(proots.b, outs.web2)]).toEqual([true, true]);
      expect(await answers(pports.b)).toBe("web2");
      // One state, two engines: berth reads the provider references and inputs Pulumi recorded and has nothing to
      // do; after berth's refresh and up on that state, neither has Pulumi.
      const berthOn = (...args: string[]) => berth([...args, PROGRAM, "--stack", pstack], penv);
      for (const args of [["preview", "--expect-no-changes"], ["refresh", "--yes"], ["up", "--yes"]]) {
        const r = await berthOn(...args);
        expect(r.code, `berth ${args[0]}: ${r.stdout}${r.stderr}`).toBe(0);
      }
      const agreed = await pulumi("preview", "--expect-no-changes");
      expect(agreed.code, agreed.stdout + agreed.stderr).toBe(0);
      // DiffConfig: another root replaces h2 and what it manages; the default provider's resources stay.
      configure({ root2: path.join(pscratch, "rc"), portB: await freePort() });
      // (Pulumi checks a moved resource with its old inputs first, on the new root, and stops at the first refusal;
      // on this one machine the old root's network still holds its bridge name, which that check may refuse.)
      const moved = await pulumi("preview");
      expect(moved.stdout).toMatch(/\+-\s+(└─ |├─ )?pulumi:providers:berth\s+h2\s+replace\s+\[diff: ~root\]/);
      expect(moved.stdout).toMatch(/\+-\s+(└─ |├─ )?berth:index:(Image|Network)\s+web2-(base|net)\s+replace\s+\[diff: ~provider\]|web2-net.*bridge bt\w+ already exists on this host/);
      expect(moved.stdout).not.toMatch(/berth:index:(Container|Image)\s+web(-base)?\s+replace/);
      // CheckConfig refuses a bad host naming the field.
      configure({ host2: "tcp://10.0.0.1:2375" });
      const refused = await pulumi("preview");
      expect(refused.code).not.toBe(0);
      expect(refused.stdout + refused.stderr).toMatch(/host.*berth reaches another machine over SSH only/);
      configure();
      const destroy = await pulumi("destroy", "--yes", "--skip-preview");
      expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
      expect(await createNativeRuntime({ root: proots.b }).containers.list()).toEqual([]);
    } finally {
      await pulumi("destroy", "--yes", "--skip-preview");
      await pulumi("stack", "rm", "--yes", "--force");
      for (const root of Object.values(proots)) await clearRoot(root);
      fs.rmSync(pconfig, { force: true });
    }
  }, 300_000);
});
