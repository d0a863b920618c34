// Many hosts, as the seeds' two-host setups: one program, run here, deploys over SSH (berth.Provider, `berth agent`)
// to simulated hosts (sim-hosts.ts) on one LAN segment — a macvlan network on two hosts' own NICs (never this
// machine's eth0) and, on a third, a pipework-style interface on the bridge that carries its NIC — and the
// containers reach each other by address, from inside. Then preview, refresh after a change made by hand on one
// host, the SSH connection killed mid-`up`, destroy leaving nothing anywhere; berth missing on a host, and a host
// whose key changed, each refused with the host named.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { berth, collect, hostObjects, leakedSince, startBerth } from "./helpers";
import { makeSimHosts, REPO, type SimHost, type SimHosts } from "./sim-hosts";

const PROGRAM = path.join(__dirname, "fixtures/many-hosts");
const tag = randomBytes(2).toString("hex");
const STACK = `mh${tag}`;
let sim: SimHosts;
let tarball: string;
let env: NodeJS.ProcessEnv;
const stacks = new Set<string>();
/** Each host's berth objects before anything was deployed. */
const before = new Map<SimHost, Record<string, string[]>>();

/** The web container of host i, and its LAN address. */
const web = (i: number) => `tmh${tag}w${i}`;
const ips: string[] = [];

/** What the program deploys on host i (the first three: the LAN), reached over SSH. */
function hostConfig(i: number, extra = 0): object {
  const h = sim.hosts[i];
  const ssh = { host: h.url, identityFile: h.target.identityFile, sshOptions: h.target.sshOptions, root: h.root, name: web(i), extra };
  const prefix = sim.subnet.split("/")[1];
  if (h.bridge) return { ...ssh, pipework: { bridge: h.bridge, address: `${ips[i]}/${prefix}` } };
  return { ...ssh, macvlan: { network: `tmh${tag}lan`, parent: h.nic, subnet: sim.subnet, ipRange: `${sim.addressAt(64 + 32 * i)}/27`, ip: ips[i] } };
}

/** `berth <cmd>` of the program on a stack whose config deploys to `hosts`, from this machine. */
function cli(cmd: string, hosts: object[], stack = STACK, ...flags: string[]): string[] {
  stacks.add(stack);
  fs.writeFileSync(path.join(PROGRAM, `Pulumi.${stack}.yaml`), `config:\n  many-hosts:tarball: ${JSON.stringify(tarball)}\n  many-hosts:hosts: ${JSON.stringify(JSON.stringify(hosts))}\n`);
  return [cmd, PROGRAM, "--stack", stack, "--backend", `file://${path.join(sim.dir, "state")}`, ...(cmd === "preview" ? [] : ["--yes"]), ...flags];
}
const lan = () => [0, 1, 2].map((i) => hostConfig(i));

/** The page at http://ip/ as seen from inside a container on host h, or why not. busybox nc, not wget: the static
 * busybox's wget crashes (glibc NSS in a static binary) here. */
async function fetchFrom(h: SimHost, container: string, ip: string): Promise<string> {
  const res = await h.berth(["exec", container, "sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80`]);
  return res.code === 0 ? res.stdout.split("\r\n\r\n")[1]?.trim() ?? res.stdout : `(exit ${res.code}) ${res.stderr.trim()}`;
}

/** Every container of the LAN reaches every other by address. */
async function expectLanReach(): Promise<void> {
  for (const [i, from] of sim.hosts.slice(0, 3).entries()) {
    for (let j = 0; j < 3; j++) {
      if (i !== j) expect(await fetchFrom(from, web(i), ips[j]), `${web(i)} on ${from.name} → ${ips[j]}`).toBe(web(j));
    }
  }
}

beforeAll(async () => {
  sim = await makeSimHosts(4, [{}, {}, { bridge: true }, { berth: false }]);
  fs.mkdirSync(path.join(sim.dir, "state"));
  tarball = path.join(sim.dir, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  // This machine's own root: nothing of the program may land here.
  env = { BERTH_ROOT: path.join(sim.dir, "local-root"), BERTH_RUN: path.join(sim.dir, "local-run") };
  ips.push(sim.addressAt(70), sim.addressAt(100), sim.addressAt(220));
  for (const h of sim.hosts) before.set(h, hostObjects(h.inHost));
});

afterAll(async () => {
  for (const stack of stacks) fs.rmSync(path.join(PROGRAM, `Pulumi.${stack}.yaml`), { force: true });
  await sim?.cleanup();
});

describe("one program, three hosts over SSH, one LAN", () => {
  it("deploys to every host; macvlan on two hosts' NICs and pipework on a third's NIC bridge reach each other", async () => {
    const up = await berth(cli("up", lan()), env);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const [a, b, c] = sim.hosts;
    for (const [i, h] of [a, b, c].entries()) {
      expect((await h.berth(["ps", "-q"])).stdout.trim(), h.name).toBe(web(i));
    }
    // The macvlan children hang off each host's own NIC; this machine got nothing.
    for (const h of [a, b]) expect(JSON.parse((await h.berth(["network", "inspect", `tmh${tag}lan`])).stdout)[0].bridge).toBe(h.nic);
    expect(fs.readdirSync("/sys/class/net/eth0").filter((f) => f.startsWith("upper_"))).toEqual([]);
    expect(fs.existsSync(path.join(env.BERTH_ROOT!, "containers")) && fs.readdirSync(path.join(env.BERTH_ROOT!, "containers"))).not.toBeTruthy();
    await expectLanReach();
  });

  it("preview has nothing to do; a container removed by hand on one host is found by refresh and put back by up", async () => {
    const preview = await berth(cli("preview", lan(), STACK, "--expect-no-changes"), env);
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    const [a, b] = sim.hosts;
    expect((await b.berth(["rm", "-f", web(1)])).code).toBe(0);
    const refresh = await berth(cli("refresh", lan()), env);
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    expect(refresh.stdout).toMatch(new RegExp(`web-${web(1)}\\s+deleted`));
    const up = await berth(cli("up", lan()), env);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(await fetchFrom(a, web(0), ips[1])).toBe(web(1));
  });

  it("the SSH connection killed mid-up: up fails naming the host, the next up converges", async () => {
    const [a] = sim.hosts;
    const hosts = [hostConfig(0, 6), hostConfig(1), hostConfig(2)];
    const done = collect(startBerth(cli("up", hosts), env));
    // Killed while the host is making the extra containers, i.e. while their calls are in flight (one killed
    // between calls would only make the next call connect again).
    const containers = path.join(a.root, "containers");
    const making = () => fs.existsSync(containers) && fs.readdirSync(containers).some((n) => n.startsWith(`${web(0)}x`));
    const deadline = Date.now() + 60_000;
    while (!making() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(a.killConnections()).toBeGreaterThan(0);
    const first = await done;
    expect(first.code, first.stdout + first.stderr).not.toBe(0);
    expect(first.stdout + first.stderr).toContain(`connection to ${a.url} lost`);

    const again = await berth(cli("up", hosts), env);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const preview = await berth(cli("preview", hosts, STACK, "--expect-no-changes"), env);
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    const running = (await a.berth(["ps", "-q"])).stdout.split("\n").filter(Boolean);
    expect(running.sort()).toEqual([web(0), ...Array.from({ length: 6 }, (_, k) => `${web(0)}x${k}`)].sort());
  });

  it("destroy leaves nothing on any host", async () => {
    const destroy = await berth(cli("destroy", lan()), env);
    expect(destroy.code, destroy.stdout + destroy.stderr).toBe(0);
    for (const h of sim.hosts) {
      expect(leakedSince(before.get(h)!, h.inHost), h.name).toEqual({});
      if (h.name !== "h4") expect((await h.berth(["ps", "-aq"])).stdout, h.name).toBe("");
    }
  });
});

describe("hosts berth cannot use", () => {
  it("berth missing on a host: preview fails naming the host and the fix, and nothing changes", async () => {
    const h = sim.hosts[3];
    const res = await berth(cli("preview", [hostConfig(3)], `${STACK}m`), env);
    expect(res.code).not.toBe(0);
    expect(res.stdout + res.stderr).toContain(`berth is not installed on ${h.url}`);
    // A resource's error, printed as the others are: no crash of the program, no stack trace.
    expect(res.stdout + res.stderr).not.toMatch(/unhandled exception|\n\s+at /);
    expect(leakedSince(before.get(h)!, h.inHost)).toEqual({});
  });

  it("a host whose key changed is refused, naming the host and the change", async () => {
    const h = sim.hosts[0];
    await h.rekey();
    const res = await berth(cli("preview", [hostConfig(0)], `${STACK}k`), env);
    expect(res.code).not.toBe(0);
    expect(res.stdout + res.stderr).toMatch(new RegExp(`${h.url.replace(/[.]/g, "\\.")}: its host key has changed`));
    expect(res.stdout + res.stderr).not.toMatch(/unhandled exception|\n\s+at /);
    expect(fs.existsSync(h.root) ? (await h.berth(["ps", "-aq"])).stdout : "").toBe("");
  });
});
