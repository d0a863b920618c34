// pipework-style declared interfaces on the real host: on a bridge (made if missing) with IP/CIDR@gateway, a MAC and
// pipework's "U:" MAC; changed and removed under the running container; DHCP from busybox udhcpd in a namespace
// this test makes; a macvlan child of a NIC (a veth end this test makes); repaired in place after a hand-made
// deletion; applied again when the container is re-created. Everything made here is removed in afterAll.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type DeclaredInterface, type Runtime } from "../../native";
import { runcId } from "../../native/names";

const REPO = path.join(__dirname, "../..");
const tag = randomBytes(3).toString("hex");
const NET = `tp${tag}`;
const CTR = `tp${tag}c`;
const BR = `btw${tag}`;
const NIC = `btn${tag}`;
const DHCP_NS = `btd${tag}`;
const octet = 200 + (parseInt(tag.slice(0, 2), 16) % 50);
const third = parseInt(tag.slice(2, 4), 16);
const sub = (n: number) => `10.${octet}.${(third + 20 + n) % 256}`;
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8" });
const inside = (args: string[]) => sh("ip", ["-n", runcId(path.join(tmp, "root"), CTR), ...args]);

let tmp: string;
let rt: Runtime;
let udhcpd: ChildProcess | undefined;
// Stops within a second of SIGTERM, so re-creation need not wait out the grace period.
const spec = (interfaces: DeclaredInterface[], command = "sleep 1"): ContainerSpec => ({
  name: CTR,
  image: "bb",
  command: ["sh", "-c", `trap 'exit 0' TERM; while :; do ${command}; done`],
  networks: [{ network: NET }],
  interfaces,
});

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-test-pipework-");
  const tarball = path.join(tmp, "rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  rt = createNativeRuntime({ root: path.join(tmp, "root"), runDir: path.join(tmp, "run") });
  await rt.images.importRootfs({ ref: "bb", tarball, config: {} });
  await rt.networks.create({ name: NET, subnet: `${sub(0)}.0/24`, nat: true });
  sh("ip", ["link", "add", NIC, "type", "veth", "peer", "name", `${NIC}p`]);
  sh("ip", ["link", "set", NIC, "up"]);
});

afterAll(async () => {
  udhcpd?.kill();
  await rt.containers.remove(CTR, { graceSeconds: 0 }).catch(() => undefined);
  await rt.networks.remove(NET).catch(() => undefined);
  for (const l of [BR, NIC]) spawnSync("ip", ["link", "del", l]);
  spawnSync("ip", ["netns", "del", DHCP_NS]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("declared interfaces", () => {
  const first: DeclaredInterface = { host: BR, address: `${sub(1)}.5/24@${sub(1)}.1`, mac: "U:web" };
  let pid: number;

  it("attaches to a bridge it makes, with IP@gateway as the default route and pipework's U: MAC", async () => {
    pid = (await rt.containers.run(spec([]))).pid!;
    const info = await rt.containers.run(spec([first]));
    expect(info.pid).toBe(pid);
    expect(fs.existsSync(`/sys/class/net/${BR}/bridge`)).toBe(true);
    expect(inside(["-o", "-4", "addr", "show", "eth1"])).toContain(`inet ${sub(1)}.5/24`);
    expect(inside(["route", "show", "default"])).toContain(`default via ${sub(1)}.1 dev eth1`);
    const md5 = createHash("md5").update("web\n").digest("hex");
    expect(inside(["link", "show", "eth1"])).toContain(`link/ether 02:${md5.slice(0, 10).match(/../g)!.join(":")}`);
    sh("ip", ["addr", "replace", `${sub(1)}.1/24`, "dev", BR]);
    expect(spawnSync("busybox", ["ping", "-c1", "-W2", `${sub(1)}.5`]).status).toBe(0);
  });

  it("changes an interface's address and adds a macvlan child of a NIC without a restart", async () => {
    const info = await rt.containers.run(
      spec([{ ...first, address: `${sub(1)}.6/24`, mac: "02:00:00:00:00:0a" }, { host: NIC, name: "eth2", address: `${sub(2)}.7/24` }]),
    );
    expect(info.pid).toBe(pid);
    expect(info.faults).toEqual([]);
    expect(inside(["-o", "-4", "addr", "show", "eth1"])).toContain(`inet ${sub(1)}.6/24`);
    expect(inside(["link", "show", "eth1"])).toContain("link/ether 02:00:00:00:00:0a");
    expect(inside(["-d", "link", "show", "eth2"])).toContain("macvlan mode bridge");
  });

  it("repairs an interface deleted by hand, in place", async () => {
    const wanted = spec([{ ...first, address: `${sub(1)}.6/24`, mac: "02:00:00:00:00:0a" }, { host: NIC, name: "eth2", address: `${sub(2)}.7/24` }]);
    inside(["link", "del", "eth2"]);
    expect((await rt.containers.inspect(CTR))!.faults).toEqual(["declared interface eth2 is missing"]);
    const info = await rt.containers.run(wanted);
    expect(info.pid).toBe(pid);
    expect(info.faults).toEqual([]);
  });

  it("removes interfaces in place, and gets one by DHCP from udhcpd", async () => {
    // A DHCP server on the bridge, in its own namespace.
    sh("ip", ["netns", "add", DHCP_NS]);
    sh("ip", ["link", "add", `${BR}d`, "type", "veth", "peer", "name", "eth0", "netns", DHCP_NS]);
    sh("ip", ["link", "set", `${BR}d`, "master", BR, "up"]);
    sh("ip", ["-n", DHCP_NS, "addr", "add", `${sub(1)}.2/24`, "dev", "eth0"]);
    sh("ip", ["-n", DHCP_NS, "link", "set", "eth0", "up"]);
    const conf = path.join(tmp, "udhcpd.conf");
    fs.writeFileSync(conf, `start ${sub(1)}.100\nend ${sub(1)}.110\ninterface eth0\nlease_file ${tmp}/leases\noption subnet 255.255.255.0\noption router ${sub(1)}.2\n`);
    udhcpd = spawn("ip", ["netns", "exec", DHCP_NS, "busybox", "udhcpd", "-f", conf], { stdio: "ignore" });
    const info = await rt.containers.run(spec([{ host: BR, name: "eth3", address: "dhcp" }]));
    expect(info.pid).toBe(pid);
    expect(inside(["link"])).not.toContain("eth1");
    expect(inside(["link"])).not.toContain("eth2");
    expect(inside(["-o", "-4", "addr", "show", "eth3"])).toMatch(new RegExp(`inet ${sub(1).replace(/\./g, "\\.")}\\.1(0\\d|10)/24`));
    expect(inside(["route", "show", "default"])).toContain(`via ${sub(1)}.2 dev eth3`);
  });

  it("applies them again when the container is re-created", async () => {
    const info = await rt.containers.run(spec([first], "sleep 2"));
    expect(info.pid).not.toBe(pid);
    expect(inside(["-o", "-4", "addr", "show", "eth1"])).toContain(`inet ${sub(1)}.5/24`);
  });

  it.each<[DeclaredInterface, string]>([
    [{ host: BR, name: "eth5", address: "10.1.2.3" }, "The IP address should include a netmask"],
    [{ host: NIC, name: "eth5", address: "10.1.2.3/24", vlan: 50 }, "needs 802.1q support, which this kernel lacks"],
    [{ host: BR, name: "eth5", address: "10.1.2.3/24", mac: "nope" }, 'invalid MAC "nope"'],
    [{ host: BR, name: "eth0", address: "0/0" }, "name is taken"],
  ])("refuses %j before changing anything", async (bad, message) => {
    await expect(rt.containers.run(spec([first, bad], "sleep 2"))).rejects.toThrow(message);
    expect(inside(["-o", "-4", "addr", "show", "eth1"])).toContain(`inet ${sub(1)}.5/24`);
  });
});
