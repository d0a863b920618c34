// The user side of many hosts over real SSH (simulated hosts, sim-hosts.ts): `berth host check` of a ready host and
// of one without berth; a program whose explicit provider names a host deploys there, both machines publishing the
// same host port (checks within the program are per machine); `-H`/$BERTH_HOST day-2 commands see that host's
// containers as its own admin does; moved to a third host, its resources are made there and deleted on the first;
// destroy reaches every host.
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNativeRuntime } from "../../native";
import { REPO, berth, freePort, stopSupervisor } from "./helpers";
import { makeSimHosts, type SimHosts } from "./sim-hosts";

const PROGRAM = path.join(__dirname, "fixtures/fleet");
const stack = `fleetssh${process.pid}${randomBytes(2).toString("hex")}`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "berth-fleetssh-"));
const root = path.join(scratch, "root");
const tarball = path.join(scratch, "busybox-rootfs.tar");
const configFile = path.join(PROGRAM, `Pulumi.${stack}.yaml`);
const stateFile = path.join(PROGRAM, ".pulumi/stacks/fleet", `${stack}.json`);
const octet = 150 + (process.pid % 40);
let sim: SimHosts;

const cli = (...args: string[]) => berth([...args, PROGRAM, "--stack", stack], { BERTH_ROOT: root });
const outputs = () => JSON.parse(fs.readFileSync(stateFile, "utf8")).checkpoint.latest.resources.find((r: { type: string }) => r.type === "pulumi:pulumi:Stack").outputs as { web: string; web2: string };
const sshFlags = () => ["-i", sim.identityFile, ...sim.sshOptions.flatMap((o) => ["-o", o])];

beforeAll(async () => {
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  sim = await makeSimHosts(3, [{}, { berth: false }, {}]);
}, 120_000);

afterAll(async () => {
  if (fs.existsSync(stateFile)) await cli("destroy", "--yes");
  stopSupervisor(root);
  await sim?.cleanup();
  for (const f of [configFile, stateFile, `${stateFile}.bak`]) fs.rmSync(f, { force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe("many hosts over SSH, the user's side", () => {
  it("berth host check: a ready host passes; a host without berth fails at that stage, with the fix", async () => {
    const [ready, bare] = sim.hosts;
    const ok = await berth(["host", "check", ready.url, ...sshFlags()], {});
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/ok +connection +reachable, host key known/);
    expect(ok.stdout).toMatch(/ok +runc +runc version/);
    expect(ok.stdout).toMatch(/ok +root +\//);
    expect(ok.stdout).toContain("berth can run there.");

    const missing = await berth(["host", "check", bare.url, ...sshFlags()], {});
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/FAIL +berth +.*/);
    expect(missing.stdout).toContain(bare.address);

    const unknownKey = await berth(["host", "check", ready.url, "-i", sim.identityFile, "-o", "UserKnownHostsFile=/nonexistent/known_hosts", "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/nonexistent/k"], {});
    expect(unknownKey.code).toBe(1);
    expect(unknownKey.stdout).toMatch(/FAIL +host key /);
  }, 120_000);

  it("a Provider with host deploys there, the same host port on both machines; -H day-2 commands see it; a move to another host; destroy", async () => {
    const [h1] = sim.hosts;
    const port = await freePort();
    const config = {
      tarball,
      host2: h1.url,
      identityFile2: sim.identityFile,
      sshOptions2: JSON.stringify(sim.sshOptions),
      portA: port,
      portB: port,
      subnetA: `10.${octet}.71.0/24`,
      subnetB: `10.${octet}.72.0/24`,
    };
    const configure = (c: Record<string, string> = {}) => {
      const lines = Object.entries({ ...config, ...c }).map(([k, v]) => `  fleet:${k}: ${JSON.stringify(String(v))}`);
      fs.writeFileSync(configFile, `config:\n  berth:root: ${root}\n${lines.join("\n")}\n`);
    };
    configure();

    const up = await cli("up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(up.stdout).toMatch(/berth:index:Container +web2 +created \[provider=h2\]/);
    const { web, web2 } = outputs();
    expect((await createNativeRuntime({ root }).containers.inspect(web))?.status).toBe("running");
    // On h1, in its own root, answering on the same port number inside that machine.
    const local = await h1.berth(["ps", "--format", "{{.Names}}"]);
    expect(local.stdout.trim()).toBe(web2);
    const page = h1.exec("busybox", ["wget", "-qO-", `http://127.0.0.1:${port}/`]);
    expect(page.stdout.trim()).toBe("web2");

    // Day-2 commands with -H (or $BERTH_HOST), as that machine's own admin sees it.
    const env = { BERTH_IDENTITY_FILE: sim.identityFile, BERTH_SSH_OPTIONS: JSON.stringify(sim.sshOptions) };
    const ps = await berth(["-H", h1.url, "ps", "--format", "{{.Names}} {{.Ports}}"], env);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout.trim()).toBe(`${web2} 127.0.0.1:${port}->80/tcp`);
    const viaEnv = await berth(["images", "--format", "{{.Repository}}"], { ...env, BERTH_HOST: h1.url });
    expect(viaEnv.stdout.trim()).toBe(`fleet-${stack}-web2`);

    // A resource name: found through the host that holds it; elsewhere, refused naming where it is and the command
    // that reaches it (not the local stack's "No such container", nor another object of that name there).
    const scope = ["-C", PROGRAM, "--stack", stack];
    const viaName = await berth(["-H", h1.url, "inspect", "--format", "{{.Name}}", "web2", ...scope], env);
    expect([viaName.code, viaName.stdout.trim()], viaName.stderr).toEqual([0, web2]);
    const notHere = await berth(["logs", "web2", ...scope], { ...env, BERTH_ROOT: root });
    expect(notHere.code).toBe(1);
    expect(notHere.stderr).toContain(`container web2 of stack ${stack} (provider h2) is on ${h1.url}, not on this machine: berth -H ${h1.url} logs web2 ${scope.join(" ")}`);
    const other = sim.hosts[2];
    const wrongHost = await berth(["-H", other.url, "logs", "web2", ...scope], env);
    expect(wrongHost.stderr).toContain(`container web2 of stack ${stack} (provider h2) is on ${h1.url}, not on ${other.url}, which -H/BERTH_HOST names: berth -H ${h1.url} logs web2`);
    const localOne = await berth(["logs", "web", ...scope], { ...env, BERTH_HOST: other.url });
    expect(localOne.code).toBe(1);
    expect(localOne.stderr).toMatch(new RegExp(`container web of stack ${stack} \\(provider default\\S*\\) is on this machine \\(berth root ${root}\\), not on ${other.url.replace(/[.]/g, "\\.")}, which -H/BERTH_HOST names: drop -H and unset BERTH_HOST: BERTH_ROOT=${root} berth logs web -C`));

    // h2 moves to another machine: its resources are made there first, then deleted on h1 (DiffConfig: host).
    const h3 = sim.hosts[2];
    configure({ host2: h3.url });
    const moved = await cli("up", "--yes");
    expect(moved.code, moved.stdout + moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(/berth:index:Container +web2 +replaced \(replace because of provider\) \[provider=h2\]/);
    const movedName = outputs().web2;
    expect((await h3.berth(["ps", "--format", "{{.Names}}"])).stdout.trim()).toBe(movedName);
    expect(h3.exec("busybox", ["wget", "-qO-", `http://127.0.0.1:${port}/`]).stdout.trim()).toBe("web2");
    expect((await h1.berth(["ps", "-a", "-q"])).stdout.trim()).toBe("");
    expect((await h1.berth(["images", "-q"])).stdout.trim()).toBe("");
    expect((await createNativeRuntime({ root }).containers.inspect(web))?.status).toBe("running");

    // A destroy that cannot reach h3 (its host key unknown for now) deletes this machine's part, fails naming h3,
    // and keeps what is on h3 in the state; once h3 can be reached again, the next destroy finishes there.
    const known = fs.readFileSync(sim.knownHosts, "utf8");
    fs.writeFileSync(sim.knownHosts, known.split("\n").filter((line) => !line.startsWith(`${h3.address} `)).join("\n"));
    const blocked = await cli("destroy", "--yes");
    fs.writeFileSync(sim.knownHosts, known);
    expect(blocked.code, blocked.stdout + blocked.stderr).not.toBe(0);
    expect(blocked.stdout + blocked.stderr).toMatch(new RegExp(`berth:index:Container "web2".*${h3.address}`));
    expect(await createNativeRuntime({ root }).containers.inspect(web)).toBeUndefined();
    expect((await h3.berth(["ps", "-a", "--format", "{{.Names}}"])).stdout.trim()).toBe(movedName);
    const kept = JSON.parse(fs.readFileSync(stateFile, "utf8")).checkpoint.latest.resources as Array<{ urn: string; type: string }>;
    expect(kept.map((r) => r.urn.split("::").pop())).toEqual(expect.arrayContaining(["web2", "h2"]));
    expect(kept.map((r) => r.urn.split("::").pop())).not.toContain("web");

    const destroy = await cli("destroy", "--yes");
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    for (const h of [h1, h3]) {
      expect((await h.berth(["ps", "-a", "-q"])).stdout.trim()).toBe("");
      expect((await h.berth(["images", "-q"])).stdout.trim()).toBe("");
    }
  }, 240_000);
});
