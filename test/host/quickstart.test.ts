// The quick start as a user runs it, on this host: up, reach it, change it, keep the volume's data, no perpetual
// diff, destroy without leaving anything behind; and an up killed midway that the next up converges.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runcId } from "../../native/names";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUICKSTART, berth, runcAt, clearRoot, ensureQuickstartRootfs, freePort, httpGet, stackObjects, startBerth, waitFor } from "./helpers";

function stackFixture(name: string) {
  const stack = `${name}${process.pid}`;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-"));
  const configFile = path.join(QUICKSTART, `Pulumi.${stack}.yaml`);
  const stateFile = path.join(QUICKSTART, ".pulumi/stacks/quickstart", `${stack}.json`);
  const env = { BERTH_ROOT: root };
  const cli = (...args: string[]) => berth([...args, QUICKSTART, "--stack", stack], env);
  const setConfig = (config: Record<string, string | number>) =>
    fs.writeFileSync(configFile, `config:\n${Object.entries(config).map(([k, v]) => `  quickstart:${k}: "${v}"`).join("\n")}\n`);
  const state = () => JSON.parse(fs.readFileSync(stateFile, "utf8")).checkpoint.latest;
  const cleanup = async () => {
    if (fs.existsSync(stateFile)) await cli("destroy", "--yes");
    await clearRoot(root); // what a failed destroy left
    fs.rmSync(configFile, { force: true });
    fs.rmSync(stateFile, { force: true });
    fs.rmSync(`${stateFile}.bak`, { force: true });
    fs.rmSync(root, { recursive: true, force: true });
  };
  return { stack, root, env, cli, setConfig, state, stateFile, cleanup };
}

const subnetFor = (n: number) => `10.${200 + (process.pid % 50)}.${n}.0/24`;

const nothing = { netns: [], links: [], mounts: [], iptables: [], runc: [] };

describe("quick start on this host", () => {
  const fx = stackFixture("e2e");
  let port = 0;
  // The deployed stack's checkpoint: names what this stack put on the host, to check it is all gone later.
  let deployed: ReturnType<typeof fx.state>;

  beforeAll(async () => {
    ensureQuickstartRootfs();
    port = await freePort();
  });
  afterAll(() => fx.cleanup());

  it("up → HTTP 200 → env change replaces, volume data kept → no perpetual diff → destroy leaves nothing", async () => {
    fx.setConfig({ port, subnet: subnetFor(1) });
    const up = await fx.cli("up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const page = await httpGet(`http://127.0.0.1:${port}/`);
    expect(page).toEqual({ status: 200, body: "<h1>Hello from berth</h1>\n" });

    // Data written into the volume from the host.
    const volumePath = fx.state().resources.find((r: { type: string }) => r.type === "pulumi:pulumi:Stack").outputs.volumePath;
    fs.writeFileSync(path.join(volumePath, "marker.txt"), "kept\n");

    fx.setConfig({ port, subnet: subnetFor(1), greeting: "changed" });
    const preview = await fx.cli("preview", "--json");
    expect(preview.code, preview.stderr).toBe(0);
    const plan = JSON.parse(preview.stdout);
    const changed = plan.steps.filter((s: { op: string }) => s.op !== "same");
    expect(changed.map((s: { op: string; urn: string; replaceReasons: string[] }) => [s.op, s.urn.split("::").pop(), s.replaceReasons])).toEqual([
      ["replace", "web", ["env"]],
    ]);

    const again = await fx.cli("up", "--yes");
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain("replaced [diff: ~env]");
    expect((await httpGet(`http://127.0.0.1:${port}/`)).status).toBe(200);
    expect((await httpGet(`http://127.0.0.1:${port}/marker.txt`)).body).toBe("kept\n");

    const noop = await fx.cli("preview", "--expect-no-changes");
    expect(noop.code, noop.stdout).toBe(0);
    expect(noop.stdout).toContain("5 unchanged");

    // Drift: the container removed by hand. refresh records it, preview says why, up brings it back.
    const container = fx.state().resources.find((r: { type: string }) => r.type === "berth:index:Container");
    execFileSync("runc", runcAt(fx.root, container.id, ["delete", "--force", runcId(fx.root, container.id)]));
    const refreshed = await fx.cli("refresh", "--yes");
    expect(refreshed.code, refreshed.stdout + refreshed.stderr).toBe(0);
    expect(refreshed.stdout).toMatch(/~ +berth:index:Container +web +refreshed \[diff: ~status/);
    const drift = await fx.cli("preview", "--expect-no-changes");
    expect(drift.code).toBe(1);
    expect(drift.stdout).toContain("replace [diff: ~status] (replace because of status)");
    const repaired = await fx.cli("up", "--yes");
    expect(repaired.code, repaired.stdout + repaired.stderr).toBe(0);
    expect((await httpGet(`http://127.0.0.1:${port}/marker.txt`)).body).toBe("kept\n");

    deployed = fx.state();
    expect(stackObjects(deployed, fx.root).runc).toHaveLength(1);
    const destroy = await fx.cli("destroy", "--yes");
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    expect(fx.state().resources).toEqual([]);
    expect(stackObjects(deployed, fx.root)).toEqual(nothing);
    await expect(httpGet(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });

  it("refuses bad input at preview, naming resource and field, before anything changes", async () => {
    fx.setConfig({ port: 70000, subnet: "10.89.0.7/24" });
    const up = await fx.cli("up", "--yes");
    expect(up.code).toBe(1);
    expect(up.stdout).toContain('berth:index:Container "web": ports[0].hostPort: must be between 1 and 65535');
    expect(up.stdout).toContain('berth:index:Network "net": subnet: invalid subnet "10.89.0.7/24": it should be 10.89.0.0/24');
    // The same program makes the same names: none of them is on the host.
    expect(stackObjects(deployed, fx.root)).toEqual(nothing);
    expect(fx.state().resources).toEqual([]);
  });
});

describe("an up killed midway", () => {
  const fx = stackFixture("crash");
  beforeAll(() => ensureQuickstartRootfs());
  afterAll(() => fx.cleanup());

  it("is converged by the next up, and nothing leaks", async () => {
    const port = await freePort();
    fx.setConfig({ port, subnet: subnetFor(2) });
    const child = startBerth(["up", "--yes", QUICKSTART, "--stack", fx.stack], fx.env);
    const exited = new Promise((resolve) => child.on("exit", resolve));
    // Kill it while the container is being created: the state says so before the host is touched.
    await waitFor("the container's create to start", () => {
      try {
        const ops = JSON.parse(fs.readFileSync(fx.stateFile, "utf8")).checkpoint.latest.pending_operations ?? [];
        return ops.some((op: { resource: { type: string } }) => op.resource.type === "berth:index:Container") || undefined;
      } catch {
        return undefined; // not written yet, or being renamed into place
      }
    }, 60_000, 2);
    process.kill(-child.pid!, "SIGKILL");
    await exited;

    const up = await fx.cli("up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toContain("finishing an interrupted creating operation");
    expect((await httpGet(`http://127.0.0.1:${port}/`)).status).toBe(200);
    expect(fx.state().pending_operations ?? []).toEqual([]);
    // Exactly one container of this stack exists: the half-made one was removed, not forgotten.
    const deployed = fx.state();
    expect(stackObjects(deployed, fx.root).runc).toHaveLength(1);

    const destroy = await fx.cli("destroy", "--yes");
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    expect(stackObjects(deployed, fx.root)).toEqual(nothing);
  });
});
