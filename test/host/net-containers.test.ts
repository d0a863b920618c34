// Container networking on the real host: names and aliases resolved between containers and still right after a
// replacement, static addresses and MACs, several networks, NAT out to a namespace this test makes, network modes
// none/host/container:NAME/bridge (the default network), every port form on 127.0.0.1 (tcp and udp), dns and
// hosts options, drift repaired, and refusals with nothing applied. Everything made here is removed in afterAll.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as dgram from "node:dgram";
import { randomBytes } from "node:crypto";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type Runtime } from "../../native";
import { httpGet, runcAt } from "./helpers";
import { runcId } from "../../native/names";

const REPO = path.join(__dirname, "../..");
const tag = randomBytes(3).toString("hex");
const N1 = `tk${tag}a`;
const N2 = `tk${tag}b`;
const c = (s: string) => `tk${tag}${s}`;
const FLOCK = ["f0", "f1", "f2", "f3", "f4", "f5"].map(c);
const NAMES = [...["web", "web2", "cli", "two", "side", "host", "none", "dflt", "pub", "bad", "out"].map(c), ...FLOCK];
const octet = 200 + (parseInt(tag.slice(0, 2), 16) % 50);
const third = parseInt(tag.slice(2, 4), 16);
const SUB1 = `10.${octet}.${third}`;
const SUB2 = `10.${octet}.${(third + 1) % 256}`;
const OUTSIDE = `10.${octet}.${(third + 2) % 256}`;
const OUT_NS = `bto${tag}`;
const OUT_IF = `bto${tag}h`;

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8" });
const exec = (name: string, args: string[]) => spawnSync("runc", runcAt(path.join(tmp, "root"), name, ["exec", runcId(path.join(tmp, "root"), name), ...args]), { encoding: "utf8" });
const sleeper = (name: string, extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
  name,
  image: "bb",
  command: ["sleep", "600"],
  ...extra,
});

let tmp: string;
let rt: Runtime;
const started: ChildProcess[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-test-netctr-");
  const tarball = path.join(tmp, "rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  rt = createNativeRuntime({ root: path.join(tmp, "root"), runDir: path.join(tmp, "run") });
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"], exposedPorts: ["80/tcp", "5353/udp"] } });
  await rt.networks.create({ name: N1, subnet: `${SUB1}.0/24`, nat: true });
  await rt.networks.create({ name: N2, subnet: `${SUB2}.0/24`, nat: true });
  // An "outside" address for NAT: a namespace behind a veth pair, with no route back to the container subnets.
  sh("ip", ["netns", "add", OUT_NS]);
  sh("ip", ["link", "add", OUT_IF, "type", "veth", "peer", "name", "eth0", "netns", OUT_NS]);
  sh("ip", ["addr", "add", `${OUTSIDE}.1/30`, "dev", OUT_IF]);
  sh("ip", ["link", "set", OUT_IF, "up"]);
  sh("ip", ["-n", OUT_NS, "addr", "add", `${OUTSIDE}.2/30`, "dev", "eth0"]);
  sh("ip", ["-n", OUT_NS, "link", "set", "eth0", "up"]);
});

afterAll(async () => {
  for (const p of started) p.kill();
  for (const n of NAMES.reverse()) await rt.containers.remove(n, { graceSeconds: 0 }).catch(() => undefined);
  for (const n of [N1, N2]) await rt.networks.remove(n).catch(() => undefined);
  spawnSync("ip", ["link", "del", OUT_IF]);
  spawnSync("ip", ["netns", "del", OUT_NS]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("containers on user networks", () => {
  it("reach each other by address, name and alias; static address and MAC are honoured", async () => {
    const web = await rt.containers.run(
      sleeper(c("web"), { networks: [{ network: N1, ip: `${SUB1}.50`, aliases: ["db"], mac: "02:aa:bb:cc:dd:01" }] }),
    );
    expect(web.ip).toBe(`${SUB1}.50`);
    const cli = await rt.containers.run(sleeper(c("cli"), { networks: [{ network: N1 }], links: [`${c("web")}:primary`] }));
    expect(exec(c("web"), ["cat", "/sys/class/net/eth0/address"]).stdout.trim()).toBe("02:aa:bb:cc:dd:01");
    for (const target of [`${SUB1}.50`, c("web"), "db", "primary"]) {
      expect(exec(c("cli"), ["ping", "-c1", "-W2", target]).status, target).toBe(0);
    }
    // The first container learnt of the second when it joined.
    expect(exec(c("web"), ["ping", "-c1", "-W2", c("cli")]).status).toBe(0);
    expect(fs.readFileSync(`/proc/${web.pid}/root/etc/hosts`, "utf8")).toContain(`${cli.ip}\t${c("cli")}`);
  });

  it("keeps a name right when its container is replaced and gets a new address", async () => {
    await rt.containers.remove(c("web"), { graceSeconds: 0 });
    expect(exec(c("cli"), ["ping", "-c1", "-W1", "db"]).status).not.toBe(0);
    const again = await rt.containers.run(sleeper(c("web"), { networks: [{ network: N1, ip: `${SUB1}.60`, aliases: ["db"] }] }));
    expect(again.ip).toBe(`${SUB1}.60`);
    const got = exec(c("cli"), ["ping", "-c1", "-W2", "db"]);
    expect(got.status).toBe(0);
    expect(got.stdout).toContain(`${SUB1}.60`);
  });

  it("has every container's hosts file right at once after containers are made and removed in parallel", async () => {
    const hosts = (name: string) => fs.readFileSync(path.join(tmp, "root/containers", name, "hosts"), "utf8");
    const made = await Promise.all(FLOCK.map((n) => rt.containers.run(sleeper(n, { networks: [{ network: N2 }] }))));
    for (const a of FLOCK) {
      for (const b of made) expect(hosts(a), `${a} names ${b.name}`).toContain(`${b.ip}\t${b.name}`);
    }
    const [gone, stay] = [FLOCK.slice(0, 3), FLOCK.slice(3)];
    await Promise.all(gone.map((n) => rt.containers.remove(n, { graceSeconds: 0 })));
    for (const a of stay) {
      for (const b of made) {
        if (gone.includes(b.name)) expect(hosts(a), `${a} forgot ${b.name}`).not.toContain(b.name);
        else expect(hosts(a), `${a} names ${b.name}`).toContain(`${b.ip}\t${b.name}`);
      }
    }
    // Seen inside too: the file is the container's /etc/hosts (rewritten in place, never replaced).
    expect(exec(stay[0], ["cat", "/etc/hosts"]).stdout).toBe(hosts(stay[0]));
    await Promise.all(stay.map((n) => rt.containers.remove(n, { graceSeconds: 0 })));
  });

  it("joins several networks, one interface each, with the default route through the first", async () => {
    const two = await rt.containers.run(sleeper(c("two"), { networks: [{ network: N1 }, { network: N2, ip: `${SUB2}.9` }] }));
    expect(two.ips).toEqual({ [N1]: two.ip, [N2]: `${SUB2}.9` });
    expect(exec(c("two"), ["ip", "-o", "-4", "addr"]).stdout).toMatch(new RegExp(`eth1\\s+inet ${SUB2}\\.9/24`));
    expect(exec(c("two"), ["ip", "route"]).stdout).toContain(`default via ${SUB1}.1 dev eth0`);
  });

  it("masquerades traffic leaving the network (the outside has no route back)", async () => {
    expect(exec(c("cli"), ["ping", "-c1", "-W2", `${OUTSIDE}.2`]).status).toBe(0);
  });

  it("shares another container's namespace with container:NAME", async () => {
    const web = (await rt.containers.inspect(c("web")))!;
    await rt.containers.run(sleeper(c("side"), { networkMode: `container:${c("web")}` }));
    expect(exec(c("side"), ["ip", "-o", "-4", "addr"]).stdout).toContain(`inet ${web.ip}/24`);
    expect(exec(c("side"), ["cat", "/etc/hosts"]).stdout).toContain(c("cli"));
  });

  it("runs in the host's namespace with host, and with loopback only with none", async () => {
    const host = await rt.containers.run(sleeper(c("host"), { networkMode: "host" }));
    expect(fs.readlinkSync(`/proc/${host.pid}/ns/net`)).toBe(fs.readlinkSync("/proc/self/ns/net"));
    await rt.containers.run(sleeper(c("none"), { networkMode: "none" }));
    expect(exec(c("none"), ["ls", "/sys/class/net"]).stdout.trim()).toBe("lo");
  });

  it("puts a container naming no network on the default bridge, made on use and gone with its last container", async () => {
    const d = await rt.containers.run(sleeper(c("dflt"), { networkMode: "bridge" }));
    expect(d.ip).toMatch(/^172\.(1[7-9]|2\d|3[01])\.0\.2$/);
    expect(await rt.networks.inspect("bridge")).toMatchObject({ faults: [] });
    await rt.containers.remove(c("dflt"), { graceSeconds: 0 });
    expect(await rt.networks.inspect("bridge")).toBeUndefined();
  });

  it("writes hostname, domain name, dns and extra hosts", async () => {
    await rt.containers.run(
      sleeper(c("out"), {
        networks: [{ network: N2 }],
        hostname: "box",
        domainname: "example.test",
        dns: ["10.0.0.53"],
        dnsSearch: ["example.test"],
        dnsOptions: ["ndots:2"],
        extraHosts: ["gateway.test:10.0.0.1"],
      }),
    );
    expect(exec(c("out"), ["cat", "/etc/resolv.conf"]).stdout).toBe("nameserver 10.0.0.53\nsearch example.test\noptions ndots:2\n");
    const hosts = exec(c("out"), ["cat", "/etc/hosts"]).stdout;
    expect(hosts).toMatch(/\tbox\.example\.test box\n/);
    expect(hosts).toContain("10.0.0.1\tgateway.test");
    expect(exec(c("out"), ["hostname"]).stdout.trim()).toBe("box");
  });
});

describe("published ports", () => {
  it("forwards host:ctr, ip::ctr (a picked port, reported), udp and publish-all on 127.0.0.1", async () => {
    const info = await rt.containers.run({
      name: c("pub"),
      image: "bb",
      command: ["httpd", "-f", "-p", "80", "-h", "/etc"],
      networks: [{ network: N1 }],
      ports: [{ hostIp: "127.0.0.1", hostPort: 0, containerPort: 80, protocol: "tcp" }],
      publishAll: true,
    });
    const ports = info.ports!;
    expect(ports.map((p) => `${p.hostIp}/${p.containerPort}/${p.protocol}`)).toEqual([
      "127.0.0.1/80/tcp",
      "0.0.0.0/5353/udp",
    ]);
    expect(ports.every((p) => p.hostPort > 0)).toBe(true);
    const body = await (async () => {
      for (let i = 0; ; i++) {
        try {
          return await httpGet(`http://127.0.0.1:${ports[0].hostPort}/hostname`);
        } catch (e) {
          if (i === 40) throw e;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    })();
    expect(body.body.trim()).toBe(c("pub"));
    // A udp echo server in the container's network namespace.
    const echo = spawn("ip", ["netns", "exec", runcId(path.join(tmp, "root"), c("pub")), process.execPath, "-e",
      "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(5353,()=>console.log('up'))"]);
    started.push(echo);
    await new Promise((r) => echo.stdout!.once("data", r));
    const reply = await new Promise<string>((resolve, reject) => {
      const s = dgram.createSocket("udp4");
      const timer = setTimeout(() => reject(new Error("no udp reply")), 3000);
      s.on("message", (m) => (clearTimeout(timer), s.close(), resolve(m.toString())));
      s.send("ping", ports[1].hostPort, "127.0.0.1");
    });
    expect(reply).toBe("ping");
    expect((await rt.containers.inspect(c("pub")))!.ports).toEqual(ports);
  });
});

describe("drift", () => {
  it("reports an address removed inside by hand, and run() re-creates the container", async () => {
    // Stops within a second of SIGTERM, so the re-creation need not wait out the grace period.
    const spec = sleeper(c("two"), {
      command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
      networks: [{ network: N1 }, { network: N2, ip: `${SUB2}.9` }],
    });
    await rt.containers.run(spec);
    sh("ip", ["-n", runcId(path.join(tmp, "root"), c("two")), "addr", "del", `${SUB2}.9/24`, "dev", "eth1"]);
    expect((await rt.containers.inspect(c("two")))!.faults).toEqual([`interface eth1 lacks address ${SUB2}.9/24`]);
    const again = await rt.containers.run(spec);
    expect(again.faults).toEqual([]);
    expect(exec(c("two"), ["ip", "-o", "-4", "addr"]).stdout).toContain(`inet ${SUB2}.9/24`);
  });
});

describe("bad input is refused before anything is made", () => {
  it.each<[Partial<ContainerSpec>, string]>([
    [{ networks: [{ network: N1, ip: "10.1.1.1" }] }, "Invalid address 10.1.1.1: It does not belong to any of this network's subnets"],
    [{ networks: [{ network: N1, ip: `${SUB1}.1` }] }, "Address already in use"],
    [{ networks: [{ network: N1, ip: `${SUB1}.60` }] }, `Address already in use by container "${c("web")}"`],
    [{ networkMode: "bridge", networks: [{ network: "bridge", ip: "172.17.0.9" }] }, "network \"bridge\" is given twice"],
    [{ networks: [{ network: "bridge", ip: "172.17.0.9" }] }, "user specified IP address is supported on user defined networks only"],
    [{ networkMode: "host", ports: [{ hostIp: "127.0.0.1", hostPort: 1, containerPort: 80, protocol: "tcp" }] }, "conflicting options: port publishing"],
    [{ networkMode: "host", networks: [{ network: N1 }] }, "conflicting options: networks and network mode"],
    [{ networkMode: `container:${c("nope")}` }, `no container "${c("nope")}"`],
    [{ networkMode: "bogus" }, 'invalid network mode "bogus"'],
    [{ networks: [{ network: N1, mac: "zz" }] }, 'invalid mac "zz"'],
    [{ networks: [{ network: N1 }], links: ["ghost:g"] }, 'link "ghost:g": no container "ghost"'],
    [{ extraHosts: ["nocolon"] }, 'invalid extra host "nocolon"'],
  ])("%j", async (bad, message) => {
    const before = fs.readdirSync(path.join(tmp, "root", "networks", N1, "ips")).sort();
    await expect(rt.containers.run(sleeper(c("bad"), bad))).rejects.toThrow(message);
    expect(await rt.containers.inspect(c("bad"))).toBeUndefined();
    expect(fs.readdirSync(path.join(tmp, "root", "networks", N1, "ips")).sort()).toEqual(before);
    expect(fs.existsSync(`/run/netns/${runcId(path.join(tmp, "root"), c("bad"))}`)).toBe(false);
  });
});
