// The bad-input suite (fixtures/bad-inputs/cases.ts): programs as users write them, each with one bad field, most
// fed through another resource's output. Every one must be refused by `berth up` before anything on the host
// changes: the error names the resource and the field, a census of the host is the same after as before, and the
// state file is untouched. The cases run together (one preview reports every bad input), and the same programs
// with the good value instead must preview cleanly, so that each refusal is the bad field's doing.
import { createHash } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CASES, type Env } from "./fixtures/bad-inputs/cases";
import { PULUMI, REPO, berth, clearRoot, freePort, hostObjects, pulumiCli } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/bad-inputs");
const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-badinputs-"));
const env = { BERTH_ROOT: root, PULUMI_CONFIG_PASSPHRASE: "badinputs" };
const stack = `bad${process.pid}`;
const neighbor = `nb${process.pid}`;
const late = `late${process.pid}`;
const lateOutputs = `lo${process.pid}`;
/** Veth pairs made for the macvlan cases (their parents), named bt… as everything berth tests make. */
const parents = [0, 1, 2, 3, 4, 5].map((i) => `btbad${process.pid % 100000}${i}`);
const stateFile = (s: string) => path.join(PROGRAM, ".pulumi/stacks/badinputs", `${s}.json`);
const configFile = (s: string) => path.join(PROGRAM, `Pulumi.${s}.yaml`);
let listener: net.Server;
let cases: Env;

const writeConfig = (s: string, values: Record<string, string>) =>
  fs.writeFileSync(configFile(s), `config:\n${Object.entries(values).map(([k, v]) => `  badinputs:${k}: ${JSON.stringify(v)}`).join("\n")}\n`);
const run = (s: string, ...args: string[]) => berth([...args, PROGRAM, "--stack", s], env);

/** What berth has on this host that could be this test's: host objects naming a case or the root, and the root's records. */
function census(): Record<string, string[]> {
  const needles = [root, "badinputs", ...parents, ...CASES.map((c) => c.id)];
  const mine = Object.fromEntries(Object.entries(hostObjects()).map(([kind, items]) => [kind, items.filter((i) => needles.some((n) => i.includes(n)))]));
  const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
  const index = path.join(root, "index.json");
  return {
    ...mine,
    images: fs.existsSync(index) ? [fs.readFileSync(index, "utf8")] : [],
    containers: list(path.join(root, "containers")),
    networks: list(path.join(root, "networks")),
    volumes: list(path.join(root, "volumes")),
  };
}

async function uniqueFreePorts(n: number, taken: Set<number>): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (!taken.has(p)) out.push(p);
    taken.add(p);
  }
  return out;
}

beforeAll(async () => {
  const tarball = path.join(root, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  listener = net.createServer((s) => s.end());
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  const processPort = (listener.address() as net.AddressInfo).port;
  const taken = new Set([processPort]);
  const [neighborPort] = await uniqueFreePorts(1, taken);
  for (const p of parents) execFileSync("ip", ["link", "add", p, "type", "veth", "peer", "name", `${p}p`]);
  cases = {
    tarball,
    tarballDigest: `sha256:${createHash("sha256").update(fs.readFileSync(tarball)).digest("hex")}`,
    builds: path.join(PROGRAM, "builds"),
    neighborImage: `badinputs-neighbor-${process.pid}:1`,
    neighborSubnet: "10.149.0.0/24",
    neighborPort,
    processPort,
    freePorts: await uniqueFreePorts(2 * CASES.length, taken),
    parents,
  };
  writeConfig(neighbor, { env: JSON.stringify(cases), neighbor: "true" });
  const up = await run(neighbor, "up", "--yes");
  expect(up.code, up.stdout + up.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await run(late, "destroy", "--yes");
  for (const which of ["port", "subnet"]) await run(`${lateOutputs}${which}`, "destroy", "--yes");
  await run(neighbor, "destroy", "--yes");
  await clearRoot(root);
  listener?.close();
  for (const p of parents) execFileSync("ip", ["link", "del", p], { stdio: "ignore" });
  for (const s of [stack, neighbor, late, `${lateOutputs}port`, `${lateOutputs}subnet`, `pbad${process.pid}`]) {
    for (const f of [configFile(s), stateFile(s), `${stateFile(s)}.bak`]) fs.rmSync(f, { force: true });
  }
  fs.rmSync(root, { recursive: true, force: true });
}, 120_000);

describe(`${CASES.length} bad inputs, ${CASES.filter((c) => c.fed).length} fed through other resources' outputs`, () => {
  it("are all good programs with the good value: preview reports no error", async () => {
    writeConfig(stack, { env: JSON.stringify(cases), bad: "false" });
    const preview = await run(stack, "preview");
    expect(preview.stdout + preview.stderr).not.toMatch(/error:/);
    expect(preview.code).toBe(0);
  }, 120_000);

  it("are each refused by up before the host or the state changes, naming the resource and the field", async () => {
    writeConfig(stack, { env: JSON.stringify(cases), bad: "true" });
    const before = census();
    const state = fs.existsSync(stateFile(stack)) ? fs.readFileSync(stateFile(stack), "utf8") : undefined;

    const up = await run(stack, "up", "--yes");
    const out = up.stdout + up.stderr;
    expect(up.code, out).toBe(1);
    expect(out).not.toContain("Updating (");
    const missed = CASES.filter((c) => !out.includes(`berth:index:${c.type} "${c.resource ?? c.id}": ${c.property}: `));
    expect(missed.map((c) => `${c.id}: ${c.type} "${c.resource ?? c.id}" ${c.property}`), out).toEqual([]);

    expect(census()).toEqual(before);
    expect(fs.existsSync(stateFile(stack)) ? fs.readFileSync(stateFile(stack), "utf8") : undefined).toBe(state);
  }, 120_000);
});

describe("a refusal that waits for a value made during the update", () => {
  it("stops the update before the resource is made: one error, no stack trace, the image recorded, no container", async () => {
    writeConfig(late, { env: JSON.stringify(cases), late: "true" });
    const up = await run(late, "up", "--yes");
    const out = up.stdout + up.stderr;
    expect(up.code, out).toBe(1);
    const error = 'berth:index:Container "late": command: exec: "/bin/badinputs-nosuch": stat /bin/badinputs-nosuch: no such file or directory';
    expect(out.split(error).length - 1, out).toBe(1);
    expect(out).not.toMatch(/^\s+at /m);
    expect(out).not.toContain("failed to register");
    const state = JSON.parse(fs.readFileSync(stateFile(late), "utf8"));
    const types = state.checkpoint.latest.resources.map((r: { type: string }) => r.type);
    expect(types).toContain("berth:index:Image");
    expect(types).not.toContain("berth:index:Container");
    expect(state.checkpoint.latest.pending_operations ?? []).toEqual([]);
    expect(fs.readdirSync(path.join(root, "containers")).filter((n) => n.startsWith("late"))).toEqual([]);
  }, 120_000);
});

describe("bad values known only once other resources are made (unknown at preview)", () => {
  it.each([
    ["port", 'berth:index:Container "lo-second": ports[0]: ', "containers", "lo-second"],
    ["subnet", 'berth:index:Network "lo-copy": subnet: ', "networks", "lo-copy"],
  ])("a %s is checked in full before anything is made with it: nothing of its resource on the host or in the state", async (which, error, kind, refused) => {
    const s = `${lateOutputs}${which}`;
    writeConfig(s, { env: JSON.stringify(cases), lateOutputs: which });
    const preview = await run(s, "preview");
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    const before = census();
    const up = await run(s, "up", "--yes");
    const out = up.stdout + up.stderr;
    expect(up.code, out).toBe(1);
    expect(out.split(error).length - 1, out).toBe(1);
    expect(out).not.toMatch(/^\s+at /m);
    const state = JSON.parse(fs.readFileSync(stateFile(s), "utf8"));
    const names: string[] = state.checkpoint.latest.resources.map((r: { urn: string }) => r.urn.split("::").pop());
    expect(names).not.toContain(refused);
    expect(state.checkpoint.latest.pending_operations ?? []).toEqual([]);
    // What the update made on the host is what the state records: nothing of the refused resource.
    const made = census()[kind].filter((n) => !before[kind].includes(n));
    expect(made.length).toBe(1);
    expect(made.every((n) => names.some((r) => r !== refused && n.startsWith(`${r}-`)))).toBe(true);
    await run(s, "destroy", "--yes");
  }, 120_000);
});

describe("as another user than root", () => {
  it("says at once that berth needs root", () => {
    const res = spawnSync(path.join(REPO, "bin/berth"), ["preview", PROGRAM, "--stack", stack], { uid: 65534, gid: 65534, encoding: "utf8", env: { ...process.env, ...env } });
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/^error: berth needs root/);
  });
});

/** A sample of the cases under the Pulumi CLI: it stops a preview at its first refused resource, so one at a time. */
const UNDER_PULUMI = ["ctr-ip-gateway", "ctr-cpus", "net-overlap-in-program", "ctr-port-neighbor", "ctr-command-not-in-bind", "img-build-from-stage-missing"];

describe.skipIf(!PULUMI)(`bad inputs under the Pulumi CLI${PULUMI ? "" : " (skipped: no `pulumi` binary on PATH)"}`, () => {
  const pstack = `pbad${process.pid}`;
  const scratch = path.join(root, "pulumi");
  const pulumi = () => pulumiCli(scratch, root).run;

  it.each(UNDER_PULUMI)("%s is refused by pulumi preview, naming the field", async (id) => {
    const c = CASES.find((x) => x.id === id)!;
    const run = pulumi();
    if (!fs.existsSync(scratch)) {
      fs.mkdirSync(scratch, { recursive: true });
      const init = await run(PROGRAM, pstack, "stack", "init", "--secrets-provider", "passphrase");
      expect(init.code, init.stdout + init.stderr).toBe(0);
    }
    writeConfig(pstack, { env: JSON.stringify(cases), bad: "true", only: id });
    const preview = await run(PROGRAM, pstack, "preview");
    expect(preview.code).toBe(1);
    expect(preview.stdout + preview.stderr).toContain(`berth:index:${c.type} resource '${c.resource ?? c.id}': property ${c.property} `);
  }, 120_000);
});
