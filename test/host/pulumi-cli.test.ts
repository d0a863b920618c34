// The quick start under the real Pulumi CLI and berth's own engine on one stack: `pulumi up`, then both engines
// agree there is nothing to do, plan the same steps for the same edit, and either's destroy leaves nothing.
// Runs only when a `pulumi` binary (with pulumi-language-nodejs beside it) is on PATH.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PULUMI, QUICKSTART, berth, clearRoot, ensureQuickstartRootfs, freePort, hostObjects, httpGet, leakedSince, pulumiCli } from "./helpers";

const title = PULUMI ? "berth under the Pulumi CLI" : "berth under the Pulumi CLI (skipped: no `pulumi` binary on PATH)";

describe.skipIf(!PULUMI)(title, () => {
  const stack = `pcli${process.pid}`;
  // Made in beforeAll: a skipped suite's body still runs, and must leave nothing behind.
  const scratch = path.join(os.tmpdir(), `berth-pulumi-${process.pid}`);
  const configFile = path.join(QUICKSTART, `Pulumi.${stack}.yaml`);
  const { env, run } = pulumiCli(scratch, path.join(scratch, "root"));
  const pulumi = (...args: string[]) => run(QUICKSTART, stack, ...args);
  const cli = (...args: string[]) => berth([...args, QUICKSTART, "--stack", stack], env);
  const stepsOf = (json: string) =>
    (JSON.parse(json).steps as Array<{ op: string; urn: string; replaceReasons?: string[]; detailedDiff?: Record<string, { kind: string }> }>)
      .filter((s) => s.op !== "same")
      .map((s) => ({ op: s.op, urn: s.urn, replaceReasons: s.replaceReasons, detailedDiff: s.detailedDiff }));
  const before = hostObjects();
  let port = 0;

  beforeAll(async () => {
    fs.mkdirSync(scratch, { recursive: true });
    ensureQuickstartRootfs();
    port = await freePort();
    for (const args of [["stack", "init", "--secrets-provider", "passphrase"], ["config", "set", "port", String(port)], ["config", "set", "subnet", `10.${120 + (process.pid % 30)}.9.0/24`]]) {
      const done = await pulumi(...args);
      expect(done.code, done.stdout + done.stderr).toBe(0);
    }
  });

  afterAll(async () => {
    const left = await pulumi("stack", "export");
    if (left.code === 0 && JSON.parse(left.stdout).deployment?.resources?.length) await cli("destroy", "--yes");
    await pulumi("stack", "rm", "--yes", "--force");
    await clearRoot(path.join(scratch, "root"));
    fs.rmSync(configFile, { force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("pulumi up → HTTP 200 → no changes under either engine → same plan for an edit → pulumi destroy leaves nothing", async () => {
    const up = await pulumi("up", "--yes", "--skip-preview");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect((await httpGet(`http://127.0.0.1:${port}/`)).status).toBe(200);

    const pulumiNoop = await pulumi("preview", "--expect-no-changes");
    expect(pulumiNoop.code, pulumiNoop.stdout + pulumiNoop.stderr).toBe(0);
    const berthNoop = await cli("preview", "--expect-no-changes");
    expect(berthNoop.code, berthNoop.stdout + berthNoop.stderr).toBe(0);

    // The same edit, planned by both engines: the same steps, operations, replace reasons and property diffs.
    expect((await berth(["config", "set", "greeting", "changed", "-C", QUICKSTART, "--stack", stack], env)).code).toBe(0);
    const pulumiPlan = await pulumi("preview", "--json");
    const berthPlan = await cli("preview", "--json");
    expect(berthPlan.code, berthPlan.stderr).toBe(0);
    const steps = stepsOf(berthPlan.stdout);
    expect(steps.map((s) => [s.op, s.urn.split("::").pop(), s.replaceReasons])).toEqual([["replace", "web", ["env"]]]);
    expect(stepsOf(pulumiPlan.stdout), pulumiPlan.stdout.slice(0, 3000) + pulumiPlan.stderr).toEqual(steps);

    // berth applies it on the state Pulumi wrote; Pulumi then agrees nothing is left to do.
    const berthUp = await cli("up", "--yes");
    expect(berthUp.code, berthUp.stdout + berthUp.stderr).toBe(0);
    const after = await pulumi("preview", "--expect-no-changes");
    expect(after.code, after.stdout + after.stderr).toBe(0);

    // What this stack made on the host, as the state (read by Pulumi) says, must all be gone after its destroy.
    const exported = await pulumi("stack", "export");
    const resources = JSON.parse(exported.stdout).deployment.resources as Array<{ type: string; id: string; outputs: Record<string, string> }>;
    const bridge = resources.find((r) => r.type === "berth:index:Network")!.outputs.bridge;
    const container = resources.find((r) => r.type === "berth:index:Container")!.id;
    expect(hostObjects().links).toContain(bridge);
    const destroy = await pulumi("destroy", "--yes", "--skip-preview");
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    const leaked = leakedSince(before);
    expect(leaked.links ?? []).not.toContain(bridge);
    expect((leaked.iptables ?? []).filter((rule) => rule.includes(bridge))).toEqual([]);
    expect((leaked.runc ?? []).filter((id) => id.includes(container))).toEqual([]);
    expect(fs.readdirSync(path.join(scratch, "root", "volumes"))).toEqual([]);
    await expect(httpGet(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});
