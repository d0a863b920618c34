// Across hosts, as the seeds' two-host setups: simulated hosts (sim-hosts.ts) on one LAN segment, a macvlan network
// on two of them (each on its own NIC, never the machine's eth0) and, on a third, a pipework-style interface on the
// bridge that carries its NIC; the containers reach each other by address, from inside. Here berth runs on each
// host itself (`ip netns exec`), one stack per host: the LAN part, independent of how berth reaches a host.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { hostObjects, leakedSince } from "./helpers";
import { makeSimHosts, REPO, type SimHost, type SimHosts } from "./sim-hosts";

const PROGRAM = path.join(__dirname, "fixtures/many-hosts");
const tag = randomBytes(2).toString("hex");
let sim: SimHosts;
let tarball: string;
const stacks: string[] = [];
/** Each host's program config (what `up` deploys there) and its berth objects before anything was deployed. */
const programs = new Map<SimHost, object[]>();
const before = new Map<SimHost, Record<string, string[]>>();

/** The web container of each host and its LAN address. */
const web = (i: number) => `tmh${tag}w${i}`;
const ips: string[] = [];

/** `berth <cmd> PROGRAM` on a host, with a stack of its own whose config deploys `hosts` there. */
async function onHost(h: SimHost, cmd: string, hosts: object[], ...flags: string[]) {
  const stack = `${h.name}-${tag}`;
  programs.set(h, hosts);
  if (!stacks.includes(stack)) stacks.push(stack);
  fs.writeFileSync(path.join(PROGRAM, `Pulumi.${stack}.yaml`), `config:\n  many-hosts:tarball: ${JSON.stringify(tarball)}\n  many-hosts:hosts: ${JSON.stringify(JSON.stringify(hosts))}\n`);
  const yes = cmd === "preview" ? [] : ["--yes"];
  return h.berth([cmd, PROGRAM, "--stack", stack, "--backend", `file://${path.join(sim.dir, "state")}`, ...yes, ...flags]);
}

/** The page at http://ip/ as seen from inside a container on host h, or why not. busybox nc, not wget: the static
 * busybox's wget crashes (glibc NSS in a static binary) here. */
async function fetchFrom(h: SimHost, container: string, ip: string): Promise<string> {
  const res = await h.berth(["exec", container, "sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 80`]);
  return res.code === 0 ? res.stdout.split("\r\n\r\n")[1]?.trim() ?? res.stdout : `(exit ${res.code}) ${res.stderr.trim()}`;
}

beforeAll(async () => {
  sim = await makeSimHosts(3, [{}, {}, { bridge: true }]);
  fs.mkdirSync(path.join(sim.dir, "state"));
  tarball = path.join(sim.dir, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  ips.push(sim.addressAt(70), sim.addressAt(100), sim.addressAt(220));
  for (const h of sim.hosts) before.set(h, hostObjects(h.inHost));
});

afterAll(async () => {
  for (const stack of stacks) fs.rmSync(path.join(PROGRAM, `Pulumi.${stack}.yaml`), { force: true });
  await sim?.cleanup();
});

describe("one LAN segment, berth on each host", () => {
  it("macvlan on two hosts' NICs and a pipework interface on a third's NIC bridge: every container reaches the others", async () => {
    const [a, b, c] = sim.hosts;
    const macvlan = (h: SimHost, i: number, range: number) => ({
      name: web(i), macvlan: { network: `tmh${tag}lan`, parent: h.nic, subnet: sim.subnet, ipRange: sim.addressAt(range) + "/27", ip: ips[i] },
    });
    const ups = await Promise.all([
      onHost(a, "up", [macvlan(a, 0, 64)]),
      onHost(b, "up", [macvlan(b, 1, 96)]),
      onHost(c, "up", [{ name: web(2), pipework: { bridge: c.bridge, address: `${ips[2]}/${sim.subnet.split("/")[1]}` } }]),
    ]);
    for (const up of ups) expect(up.code, up.stdout + up.stderr).toBe(0);
    // The macvlan children hang off each host's own NIC, never a device of this machine.
    for (const h of [a, b]) expect(JSON.parse((await h.berth(["network", "inspect", `tmh${tag}lan`])).stdout)[0].bridge).toBe(h.nic);
    expect(fs.readdirSync("/sys/class/net/eth0").filter((f) => f.startsWith("upper_"))).toEqual([]);

    const hosts = [a, b, c];
    for (const [i, from] of hosts.entries()) {
      for (const [j] of hosts.entries()) {
        if (i !== j) expect(await fetchFrom(from, web(i), ips[j]), `${web(i)} → ${ips[j]}`).toBe(web(j));
      }
    }
  });

  it("preview shows nothing to do on any host; a container removed by hand on one is found by refresh and put back by up", async () => {
    for (const h of sim.hosts) {
      const preview = await onHost(h, "preview", programs.get(h)!, "--expect-no-changes");
      expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    }
    const [a, b] = sim.hosts;
    expect((await b.berth(["rm", "-f", web(1)])).code).toBe(0);
    expect(await fetchFrom(a, web(0), ips[1])).not.toBe(web(1));
    const refresh = await onHost(b, "refresh", programs.get(b)!);
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    expect(refresh.stdout).toMatch(new RegExp(`web-${web(1)}\\s+deleted`));
    const up = await onHost(b, "up", programs.get(b)!);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(await fetchFrom(a, web(0), ips[1])).toBe(web(1));
  });

  it("destroy leaves nothing on any host", async () => {
    const destroyed = await Promise.all(sim.hosts.map((h) => onHost(h, "destroy", programs.get(h)!)));
    for (const d of destroyed) expect(d.code, d.stdout + d.stderr).toBe(0);
    for (const h of sim.hosts) {
      expect(leakedSince(before.get(h)!, h.inHost), h.name).toEqual({});
      expect((await h.berth(["ps", "-aq"])).stdout, h.name).toBe("");
    }
  });
});
