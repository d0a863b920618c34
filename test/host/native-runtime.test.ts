// The native runtime on the real host: a bridge network, a busybox httpd container with a volume and a port
// published on 127.0.0.1, faults, repair, refusals, and a clean host after removal. Names are random so that
// nothing here meets another test's (or another user's) objects; everything is removed in afterAll.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as net from "node:net";
import * as http from "node:http";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type PortMapping, type Runtime } from "../../native";
import { runcId } from "../../native/names";
import { derivedBridge } from "../../native/network/options";
import { networkTag } from "../../native/network/bridge";
import { hostIfName } from "../../native/network/container-net";
import { containerTag } from "../../native/network/portmap";
import { freePort, runcAt, runcIds } from "./helpers";

const REPO = path.join(__dirname, "../..");
const tag = randomBytes(3).toString("hex");
const NET = `tn${tag}`;
const OTHER_NET = `tn${tag}x`;
const VOL = `tv${tag}`;
const WEB = `tc${tag}web`;
const FLEET = [0, 1, 2, 3, 4, 5].map((i) => `tc${tag}f${i}`);
const containers = [WEB, `tc${tag}dup`, `tc${tag}busy`, `tc${tag}bad`, `tc${tag}child`, `tc${tag}lo`, ...FLEET];
const [, DUP, BUSY, BAD, CHILD, LOOPBACK] = containers;
// A random /24 in 10.200-249.x: unlikely to meet a network someone else has on this host.
const SUBNET = `10.${200 + (parseInt(tag.slice(0, 2), 16) % 50)}.${parseInt(tag.slice(2, 4), 16)}.0/24`;

let tmp: string;
let root: string;
let rt: Runtime;
let port: number;

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8" });

function get(p: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port: p, path: "/", timeout: 1000, agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/** The server inside may need a moment after start to listen. */
async function getEventually(p: number): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return await get(p);
    } catch (e) {
      if (i === 40) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const veth = (c: string): string => hostIfName(runcId(root, c), 0);
const runcExists = (name: string): boolean => runcIds().includes(runcId(root, name));
const berthRules = (): string[] =>
  sh("iptables-save", [])
    .split("\n")
    .filter((l) => /berth/i.test(l));

/** The host objects that the given container and network names lead to and that still exist. */
function leftovers(names: string[] = containers, networks: string[] = [NET, OTHER_NET]): string[] {
  const out: string[] = [];
  const netns = sh("ip", ["netns", "list"]).split("\n").map((l) => l.split(" ")[0]);
  const mounts = fs.readFileSync("/proc/mounts", "utf8").split("\n");
  const rules = berthRules();
  const claims = "/run/berth/ports";
  const claimFiles = fs.existsSync(claims) ? fs.readdirSync(claims) : [];
  const claimed = claimFiles.map((f) => fs.readFileSync(path.join(claims, f), "utf8"));
  for (const c of names) {
    if (netns.includes(runcId(root, c))) out.push(`netns ${runcId(root, c)}`);
    if (fs.existsSync(`/sys/class/net/${veth(c)}`)) out.push(`veth ${veth(c)}`);
    if (runcExists(c)) out.push(`runc ${runcId(root, c)}`);
    out.push(...mounts.filter((l) => l.includes(`${root}/containers/${c}/`)));
    out.push(...rules.filter((l) => l.includes(containerTag(root, c))));
    out.push(...claimed.filter((text) => text.includes(`"container":"${c}"`)).map((text) => `port claim ${text}`));
  }
  for (const n of networks) {
    if (fs.existsSync(`/sys/class/net/${derivedBridge(root, n)}`)) out.push(`bridge ${n}`);
    out.push(...rules.filter((l) => l.includes(networkTag(root, n))));
  }
  return out;
}

const published = (p: number): PortMapping => ({
  hostIp: "127.0.0.1",
  hostPort: p,
  containerPort: 80,
  protocol: "tcp",
});
const sleeper = (name: string, extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
  name,
  image: "bb",
  command: ["sleep", "600"],
  network: NET,
  ...extra,
});

function webSpec(p: number) {
  return {
    name: WEB,
    image: "bb",
    command: ["httpd", "-f", "-p", "80", "-h", "/www"],
    env: { GREETING: "hello from berth" },
    hostname: "web-host",
    network: NET,
    ports: [published(p)],
    mounts: [{ volume: VOL, target: "/www" }],
  };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-test-");
  root = path.join(tmp, "root");
  const tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  rt = createNativeRuntime({ root });
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
  port = await freePort();
});

afterAll(async () => {
  for (const c of containers) await rt.containers.remove(c, { graceSeconds: 0 }).catch(() => undefined);
  for (const n of [NET, OTHER_NET]) await rt.networks.remove(n).catch(() => undefined);
  await rt.volumes.remove(VOL).catch(() => undefined);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("networks", () => {
  it("creates a bridge with the gateway address, NAT and forwarding rules", async () => {
    const info = await rt.networks.create({ name: NET, subnet: SUBNET, nat: true });
    const gateway = SUBNET.replace(/0\/24$/, "1");
    expect(info).toEqual({ name: NET, driver: "bridge", bridge: derivedBridge(root, NET), subnet: SUBNET, gateway, nat: true, faults: [] });
    expect(info.bridge.length).toBeLessThanOrEqual(15);
    expect(sh("ip", ["-4", "addr", "show", "dev", info.bridge])).toContain(`inet ${gateway}/24`);
    const rules = berthRules().join("\n");
    expect(rules).toContain(
      `-s ${SUBNET} ! -o ${info.bridge} -m comment --comment "${networkTag(root, NET)}masquerade" -j MASQUERADE`,
    );
    expect(rules).toContain(`-o ${info.bridge} -m comment --comment "${networkTag(root, NET)}to-bridge" -j ACCEPT`);
    expect(fs.readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim()).toBe("1");
  });

  it("is an ensure: the same spec again changes nothing, a different one is refused", async () => {
    expect((await rt.networks.create({ name: NET, subnet: SUBNET, nat: true })).faults).toEqual([]);
    await expect(rt.networks.create({ name: NET, subnet: "10.250.0.0/24", nat: true })).rejects.toThrow(
      `network "${NET}" already exists with driver bridge, subnet ${SUBNET}`,
    );
  });

  it("names what is wrong with bad input", async () => {
    await expect(rt.networks.create({ name: OTHER_NET, subnet: "10.1.2.3/24", nat: false })).rejects.toThrow(
      'invalid subnet "10.1.2.3/24": it should be 10.1.2.0/24',
    );
    await expect(
      rt.networks.create({ name: OTHER_NET, subnet: SUBNET.replace("/24", "/25"), nat: false }),
    ).rejects.toThrow(`overlaps ${SUBNET} of network "${NET}"`);
    await expect(
      rt.networks.create({ name: OTHER_NET, subnet: "10.251.0.0/24", gateway: "10.9.9.9", nat: false }),
    ).rejects.toThrow("no matching subnet for gateway 10.9.9.9");
    await expect(rt.networks.create({ name: "bad/name", subnet: "10.251.0.0/24", nat: false })).rejects.toThrow(
      'invalid network name "bad/name"',
    );
    expect(leftovers([], [OTHER_NET])).toEqual([]);
  });
});

describe("containers", () => {
  it("runs busybox httpd with a volume, reachable on a port published on 127.0.0.1", async () => {
    const vol = await rt.volumes.create({ name: VOL, labels: { app: "web" } });
    fs.writeFileSync(path.join(vol.mountpoint, "index.html"), "<h1>berth works</h1>\n");
    const started = performance.now();
    const info = await rt.containers.run(webSpec(port));
    console.log(`run() of the web container: ${(performance.now() - started).toFixed(1)} ms`);
    expect(info).toMatchObject({ name: WEB, id: runcId(root, WEB), status: "running", faults: [] });
    expect(info.ip?.startsWith(SUBNET.replace(/0\/24$/, ""))).toBe(true);
    expect(await getEventually(port)).toBe("<h1>berth works</h1>\n");
    expect(sh("runc", runcAt(root, WEB, ["list"]))).toContain(runcId(root, WEB));
    // On ext4 each container's directory is spread over the block groups (native/host/spread.ts).
    if (fs.statfsSync(root).type === 0xef53) expect(sh("lsattr", ["-d", path.join(root, "containers")]).split(" ")[0]).toContain("T");
  });

  it("puts the process in its own pid, mount, uts, ipc and network namespaces", async () => {
    const { pid } = (await rt.containers.inspect(WEB))!;
    for (const ns of ["pid", "mnt", "uts", "ipc", "net"]) {
      expect(fs.readlinkSync(`/proc/${pid}/ns/${ns}`), ns).not.toBe(fs.readlinkSync(`/proc/self/ns/${ns}`));
    }
    // It is the named namespace berth made, not one runc made up.
    expect(fs.statSync(`/proc/${pid}/ns/net`).ino).toBe(fs.statSync(`/run/netns/${runcId(root, WEB)}`).ino);
  });

  it("sets hostname, env, /etc/hosts and the address inside", async () => {
    const { pid, ip } = (await rt.containers.inspect(WEB))!;
    const environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    expect(environ).toContain("GREETING=hello from berth");
    expect(environ).toContain("HOSTNAME=web-host");
    expect(environ.some((e) => e.startsWith("PATH="))).toBe(true);
    expect(sh("runc", runcAt(root, WEB, ["exec", runcId(root, WEB), "hostname"])).trim()).toBe("web-host");
    expect(sh("runc", runcAt(root, WEB, ["exec", runcId(root, WEB), "cat", "/etc/hosts"]))).toContain(`${ip}\tweb-host`);
    expect(sh("ip", ["-n", runcId(root, WEB), "-4", "addr", "show", "dev", "eth0"])).toContain(`inet ${ip}/24`);
  });

  it("returns the running container when run again with the same spec", async () => {
    const before = (await rt.containers.inspect(WEB))!;
    const again = await rt.containers.run(webSpec(port));
    expect(again.pid).toBe(before.pid);
    expect(again.faults).toEqual([]);
  });

  it("lets another berth root use the same names, touching nothing of this one's", async () => {
    const otherRoot = path.join(tmp, "other-root");
    const other = createNativeRuntime({ root: otherRoot });
    try {
      const net = await other.networks.create({ name: NET, subnet: "10.252.0.0/24", nat: false });
      expect(net.bridge).not.toBe((await rt.networks.inspect(NET))!.bridge);
      await other.images.importRootfs({ ref: "bb", tarball: path.join(tmp, "busybox-rootfs.tar"), config: {} });
      const theirs = await other.containers.run({ name: WEB, image: "bb", network: NET, command: ["sleep", "600"], stopTimeout: 0 });
      expect(theirs).toMatchObject({ status: "running", id: runcId(otherRoot, WEB), faults: [] });
      await other.containers.remove(WEB, { graceSeconds: 0 });
      await other.networks.remove(NET);
    } finally {
      await other.containers.remove(WEB, { graceSeconds: 0 }).catch(() => undefined);
      await other.networks.remove(NET).catch(() => undefined);
      fs.rmSync(otherRoot, { recursive: true, force: true });
    }
    const info = (await rt.containers.inspect(WEB))!;
    expect(info.status).toBe("running");
    expect(info.faults).toEqual([]);
    expect((await rt.networks.inspect(NET))!.faults).toEqual([]);
    expect(await getEventually(port)).toBe("<h1>berth works</h1>\n");
  });

  it("refuses a host port another berth container publishes, leaving nothing behind", async () => {
    await expect(rt.containers.run(sleeper(DUP, { ports: [published(port)] }))).rejects.toThrow(
      `cannot publish 127.0.0.1:${port}/tcp: port is already allocated by berth container "${WEB}"`,
    );
    expect(await rt.containers.inspect(DUP)).toBeUndefined();
    expect(fs.existsSync(path.join(root, "containers", DUP))).toBe(false);
    expect(leftovers([DUP], [])).toEqual([]);
  });

  it("refuses a host port another process listens on", async () => {
    const server = net.createServer();
    const busyPort = await freePort();
    await new Promise<void>((r) => server.listen(busyPort, "127.0.0.1", r));
    try {
      await expect(rt.containers.run(sleeper(BUSY, { ports: [published(busyPort)] }))).rejects.toThrow(
        `cannot publish 127.0.0.1:${busyPort}/tcp: address already in use by another process`,
      );
    } finally {
      server.close();
    }
    expect(leftovers([BUSY], [])).toEqual([]);
  });

  it("names what is wrong with bad input", async () => {
    const base = { name: BAD, image: "bb", command: ["true"] };
    await expect(rt.containers.run({ ...base, network: "nonet" })).rejects.toThrow('network "nonet" not found');
    await expect(rt.containers.run({ ...base, image: "nope:1" })).rejects.toThrow('image "nope:1" not found');
    await expect(rt.containers.run({ ...base, mounts: [{ volume: "novol", target: "/x" }] })).rejects.toThrow(
      'volume "novol" not found',
    );
    await expect(
      rt.containers.run({ ...base, network: NET, ports: [{ ...published(port), hostPort: 70000 }] }),
    ).rejects.toThrow("invalid hostPort 70000");
    await expect(rt.containers.run({ ...base, name: "-x" })).rejects.toThrow('invalid container name "-x"');
    expect(leftovers([BAD], [])).toEqual([]);
  });

  it("undoes everything when the container cannot start", async () => {
    const spec = sleeper(BAD, { command: ["/no/such/binary"], ports: [published(await freePort())] });
    await expect(rt.containers.run(spec)).rejects.toThrow('exec: "/no/such/binary": stat /no/such/binary: no such file');
    expect(leftovers([BAD], [])).toEqual([]);
    const runcFails = { ...spec, command: ["sleep", "1"], sysctls: { "net.ipv4.tcp_keepalive_time": "abc" } };
    await expect(rt.containers.run(runcFails)).rejects.toThrow(/runc run .*failed.*tcp_keepalive_time/s);
    expect(await rt.containers.inspect(BAD)).toBeUndefined();
    expect(leftovers([BAD], [])).toEqual([]);
  });

  it("refuses to remove a network or volume in use", async () => {
    await expect(rt.networks.remove(NET)).rejects.toThrow(`network "${NET}" still has containers attached (${WEB})`);
    await expect(rt.volumes.remove(VOL)).rejects.toThrow(`volume "${VOL}" is in use by container(s) ${WEB}`);
  });

  it("reports a deleted port rule as a fault, and run() puts it back under the running process", async () => {
    const rule = berthRules().find((l) => l.includes(containerTag(root, WEB)))!;
    expect(rule).toBeDefined();
    sh("iptables", ["-t", "nat", ...rule.replace(/^-A/, "-D").replace(/"/g, "").split(" ")]);
    const info = (await rt.containers.inspect(WEB))!;
    expect(info.status).toBe("running");
    expect(info.faults).toEqual([expect.stringMatching(/^iptables rule nat\/BERTH-DNAT .* is missing$/)]);

    const repaired = await rt.containers.run(webSpec(port));
    expect(repaired.faults).toEqual([]);
    expect(repaired.pid).toBe(info.pid);
    expect(await getEventually(port)).toBe("<h1>berth works</h1>\n");
  });

  it("reports a deleted veth as a fault", async () => {
    sh("ip", ["link", "del", veth(WEB)]);
    const info = (await rt.containers.inspect(WEB))!;
    expect(info.faults).toEqual([
      `veth ${veth(WEB)} is missing`,
      `interface eth0 is missing inside ${runcId(root, WEB)}`,
      expect.stringMatching(/^default route via .* is missing$/),
    ]);
  });

  it("re-creates a half-made container whose runc container is gone", async () => {
    sh("runc", runcAt(root, WEB, ["delete", "--force", runcId(root, WEB)]));
    const info = (await rt.containers.inspect(WEB))!;
    expect(info.status).toBe("missing");
    expect(info.faults).toContain(`runc container ${runcId(root, WEB)} is missing`);
    const again = await rt.containers.run(webSpec(port));
    expect(again.status).toBe("running");
    expect((await rt.containers.inspect(WEB))!.faults).toEqual([]);
    // The address is reused with the same MAC and a seeded neighbour entry: no ARP retry (1 s) in the way.
    const started = performance.now();
    expect(await getEventually(port)).toBe("<h1>berth works</h1>\n");
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("runs without a network in a loopback-only namespace", async () => {
    const info = await rt.containers.run({
      name: LOOPBACK,
      image: "bb",
      command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"],
    });
    expect(info.ip).toBeUndefined();
    expect(info.faults).toEqual([]);
    const links = sh("runc", runcAt(root, LOOPBACK, ["exec", runcId(root, LOOPBACK), "ip", "-o", "link"]));
    expect(links).toMatch(/lo:.*UP/);
    expect(links).not.toContain("eth0");
  });

  it("keeps running after the process that started it exits", async () => {
    const script = `
      const { createNativeRuntime } = require("./native");
      createNativeRuntime({ root: ${JSON.stringify(root)} }).containers
        .run(${JSON.stringify(sleeper(CHILD))})
        .then((i) => console.log(JSON.stringify(i)), (e) => { console.error(e); process.exit(1); });`;
    const out = execFileSync(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], {
      cwd: REPO,
      encoding: "utf8",
      timeout: 60_000,
    });
    const started = JSON.parse(out.trim().split("\n").pop()!) as { pid: number };
    await new Promise((r) => setTimeout(r, 300));
    const info = (await rt.containers.inspect(CHILD))!;
    expect(info.status).toBe("running");
    expect(info.pid).toBe(started.pid);
    // The command runs under berth's init.
    const command = sh("pgrep", ["-P", String(info.pid)]).trim();
    expect(fs.readFileSync(`/proc/${command}/cmdline`, "utf8").split("\0")).toEqual(["/bin/sleep", "600", ""]);
  });

  it("runs containers one after another and at once on one network, each with its own address (and ports)", async () => {
    const times: number[] = [];
    for (const name of FLEET.slice(0, 4)) {
      const started = performance.now();
      await rt.containers.run(sleeper(name));
      times.push(performance.now() - started);
    }
    const started = performance.now();
    // Made at once, their port rules go in one iptables-restore; each container's rules are checked (faults).
    const ports = await Promise.all(FLEET.slice(4).map(() => freePort()));
    await Promise.all(FLEET.slice(4).map((name, i) => rt.containers.run(sleeper(name, { ports: [published(ports[i])] }))));
    const together = performance.now() - started;
    const each = times.map((t) => t.toFixed(0)).join(", ");
    console.log(`run() one after another: ${each} ms; 2 at once: ${together.toFixed(0)} ms`);
    const infos = await Promise.all(FLEET.map((name) => rt.containers.inspect(name)));
    expect(infos.every((i) => i?.status === "running" && i.faults.length === 0)).toBe(true);
    expect(new Set(infos.map((i) => i?.ip)).size).toBe(FLEET.length);

    for (const name of FLEET.slice(4)) expect(berthRules().filter((l) => l.includes(containerTag(root, name))).length).toBeGreaterThan(0);

    const removeStarted = performance.now();
    for (const name of FLEET.slice(0, 4)) await rt.containers.remove(name, { graceSeconds: 0 });
    console.log(`remove() each, no grace: ${((performance.now() - removeStarted) / 4).toFixed(0)} ms`);
    // Together: their rules leave in one restore, and each one's peers drop it.
    await Promise.all(FLEET.slice(4).map((name) => rt.containers.remove(name, { graceSeconds: 0 })));
    expect(leftovers(FLEET, [])).toEqual([]);
  });

  it("keeps the layers of a running container when its image is removed", async () => {
    const image = (await rt.images.inspect("bb"))!;
    await rt.images.remove("bb");
    expect(fs.existsSync(path.join(root, "layers", image.layers[0].slice(7), "bin/busybox"))).toBe(true);
    expect((await rt.containers.inspect(WEB))!.status).toBe("running");
  });

  it("stops a container that handles SIGTERM within the grace period", async () => {
    const started = performance.now();
    await rt.containers.remove(LOOPBACK, { graceSeconds: 10 });
    expect(performance.now() - started).toBeLessThan(3000);
    expect(leftovers([LOOPBACK], [])).toEqual([]);
  });

  it("removes every host object, and a second remove is fine", async () => {
    // httpd and sleep ignore SIGTERM as pid 1: this goes through SIGKILL after the grace period.
    let started = performance.now();
    await rt.containers.remove(WEB, { graceSeconds: 1 });
    console.log(`remove() of the web container, 1 s grace: ${(performance.now() - started).toFixed(1)} ms`);
    started = performance.now();
    await rt.containers.remove(CHILD, { graceSeconds: 0 });
    console.log(`remove() of a container, no grace: ${(performance.now() - started).toFixed(1)} ms`);
    for (const c of [WEB, CHILD]) {
      expect(await rt.containers.inspect(c)).toBeUndefined();
      await rt.containers.remove(c);
    }
    await expect(get(port)).rejects.toThrow();
    await rt.volumes.remove(VOL);
    expect(await rt.volumes.inspect(VOL)).toBeUndefined();
    await rt.networks.remove(NET);
    await rt.networks.remove(NET);
    expect(await rt.networks.inspect(NET)).toBeUndefined();
    expect(leftovers()).toEqual([]);
    // berth's chains and hooks go with the last network; another berth user on this host may still have one.
    if (!berthRules().some((l) => l.includes("berth:net"))) expect(berthRules()).toEqual([]);
    expect(fs.readdirSync(path.join(root, "containers"))).toEqual([]);
    expect(fs.readdirSync(path.join(root, "layers"))).toEqual([]);
  });
});
