// Apply does exactly what the plan said, on this host: a fixed-name container (replaced delete-first) and a
// container linking to it through its output name. `up --target` refuses to delete the untargeted linker unless
// `--target-dependents`; one tied to it only by dependsOn stays; an up that both drops the link's dependency and
// replaces the target loses nothing the plan does not show.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNativeRuntime } from "../../native";
import { REPO, berth, clearRoot } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/links");
const stack = `links${process.pid}`;
const name = `tln${randomBytes(3).toString("hex")}`;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-links-"));
const tarball = path.join(root, "busybox-rootfs.tar");
const env = { BERTH_ROOT: root };
const configFile = path.join(PROGRAM, `Pulumi.${stack}.yaml`);
const stateFile = path.join(PROGRAM, ".pulumi/stacks/links", `${stack}.json`);
const runtime = createNativeRuntime({ root });
const urnOf = (n: string) => `urn:pulumi:${stack}::links::berth:index:Container::${n}`;

const setConfig = (c: Record<string, string>) =>
  fs.writeFileSync(
    configFile,
    `config:\n${Object.entries({ tarball, name, subnet: `10.${150 + (process.pid % 40)}.7.0/24`, ...c }).map(([k, v]) => `  links:${k}: "${v}"`).join("\n")}\n`,
  );
const cli = (...args: string[]) => berth([...args, PROGRAM, "--stack", stack], env);
type State = { resources: Array<{ urn: string; id: string; type: string; outputs: { name: string } }> };
const state = (): State => JSON.parse(fs.readFileSync(stateFile, "utf8")).checkpoint.latest;
/** Each container of the state: its id, and whether the host has it running. */
async function containers(): Promise<Record<string, { id: string; running: boolean }>> {
  const out: Record<string, { id: string; running: boolean }> = {};
  for (const r of state().resources.filter((r) => r.type === "berth:index:Container")) {
    const info = await runtime.containers.inspect(r.id);
    out[r.urn.split("::").pop()!] = { id: r.id, running: info?.status === "running" };
  }
  return out;
}
const planned = async (...args: string[]) => {
  const preview = await cli("preview", "--json", ...args);
  const steps = JSON.parse(preview.stdout).steps as Array<{ op: string; urn: string }>;
  return steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
};

beforeAll(() => {
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
});

afterAll(async () => {
  await cli("destroy", "--yes");
  await clearRoot(root);
  for (const f of [configFile, stateFile, `${stateFile}.bak`]) fs.rmSync(f, { force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

describe("apply does what the plan said", () => {
  it("--target refuses to delete an untargeted linker; --target-dependents replaces it; a dropped link loses nothing", async () => {
    setConfig({ version: "1" });
    const up = await cli("up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const first = await containers();
    expect(first.target.running && first.linker.running && first.waiter.running).toBe(true);

    // The target's replace would delete the linker first: refused at preview and at up, naming the linker.
    setConfig({ version: "2" });
    const refusal = `Resource '${urnOf("linker")}' will be destroyed but was not specified in --target list.`;
    const preview = await cli("preview", "--target", urnOf("target"));
    expect(preview.code).not.toBe(0);
    expect(preview.stdout + preview.stderr).toContain(refusal);
    const refused = await cli("up", "--yes", "--target", urnOf("target"));
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain("--target-dependents");
    expect(await containers()).toEqual(first);

    expect(await planned("--target", urnOf("target"), "--target-dependents")).toEqual(["replace target", "replace linker"]);
    const taken = await cli("up", "--yes", "--target", urnOf("target"), "--target-dependents");
    expect(taken.code, taken.stdout + taken.stderr).toBe(0);
    const second = await containers();
    expect(second.target.id).toBe(first.target.id); // the same fixed name, a new container
    expect(second.linker.id).not.toBe(first.linker.id);
    expect(second.target.running && second.linker.running).toBe(true);
    expect(second.waiter).toEqual(first.waiter); // only ordered after the target: not replaced with it
    expect((await cli("preview", "--expect-no-changes")).code).toBe(0);

    // One up both drops the linker's dependency (a literal name now) and replaces the target: whatever the host
    // loses is in the plan, the linker is running afterwards, and nothing is left to do.
    setConfig({ version: "3", literal: "true" });
    const plan = await planned();
    expect(plan).toContain("replace target");
    const dropped = await cli("up", "--yes");
    expect(dropped.code, dropped.stdout + dropped.stderr).toBe(0);
    const third = await containers();
    expect(third.linker.running, JSON.stringify(third)).toBe(true);
    if (third.linker.id !== second.linker.id) expect(plan).toContain("replace linker");
    expect(state().resources.filter((r) => r.urn === urnOf("linker"))).toHaveLength(1);
    const noop = await cli("preview", "--expect-no-changes");
    expect(noop.code, noop.stdout + noop.stderr).toBe(0);
  });
});
