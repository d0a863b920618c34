// Network options on the real host: ip range, aux addresses, internal and NAT switched in place, MTU, bridge
// name, macvlan parents (a veth pair this test makes), the default network, and Docker's refusals of bad input
// with nothing left behind. Names and subnets are random; everything made here is removed in afterAll.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createNativeRuntime, realHost, type NetworkSpec, type Runtime } from "../../native";
import { BridgeNetworks } from "../../native/network/networks";
import { Iptables } from "../../native/network/iptables";
import { layout } from "../../native/paths";
import { derivedBridge } from "../../native/network/options";
import { networkTag } from "../../native/network/bridge";

const tag = randomBytes(3).toString("hex");
const [A, B, C] = ["a", "b", "c"].map((s) => `to${tag}${s}`);
const MV = `to${tag}mv`;
const PARENT = `btp${tag}`;
const net3 = (n: number) => `10.${200 + (parseInt(tag.slice(0, 2), 16) % 50)}.${(parseInt(tag.slice(2, 4), 16) + n) % 256}`;
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8" });
const tagA = () => networkTag(path.join(tmp, "root"), A);
const rules = (): string => sh("iptables-save", []).split("\n").filter((l) => l.includes(tagA())).join("\n");

let tmp: string;
let rt: Runtime;

beforeAll(() => {
  tmp = fs.mkdtempSync("/tmp/berth-test-netopt-");
  rt = createNativeRuntime({ root: path.join(tmp, "root"), runDir: path.join(tmp, "run") });
  sh("ip", ["link", "add", PARENT, "type", "veth", "peer", "name", `${PARENT}p`]);
  sh("ip", ["link", "set", PARENT, "up"]);
});

afterAll(async () => {
  for (const n of [A, B, C, MV]) await rt.networks.remove(n).catch(() => undefined);
  execFileSync("ip", ["link", "del", PARENT], { stdio: "ignore" });
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("bridge options", () => {
  it("hands out dynamic addresses from the ip range, never an aux address", async () => {
    await rt.networks.create({
      name: A, subnet: `${net3(0)}.0/24`, ipRange: `${net3(0)}.128/30`, auxAddresses: { router: `${net3(0)}.129` }, nat: true,
      mtu: 1400, bridgeName: `btb${tag}`,
    });
    expect(fs.readFileSync(`/sys/class/net/btb${tag}/mtu`, "utf8").trim()).toBe("1400");
    const nets = new BridgeNetworks(realHost, layout(path.join(tmp, "root"), path.join(tmp, "run")), new Iptables(realHost));
    const ipam = nets.ipam((await nets.record(A))!);
    const got = [await ipam.allocate("x"), await ipam.allocate("y"), await ipam.allocate("w")];
    expect(got).toEqual([`${net3(0)}.128`, `${net3(0)}.130`, `${net3(0)}.131`]);
    await expect(ipam.allocate("z")).rejects.toThrow(`no free address left in ${net3(0)}.128/30`);
    await expect(ipam.claim("z", `${net3(0)}.129`)).rejects.toThrow("Address already in use");
    await expect(ipam.claim("z", `${net3(0)}.1`)).rejects.toThrow("Address already in use");
    await expect(ipam.claim("z", `${net3(0)}.130`)).rejects.toThrow('Address already in use: 10');
    await expect(ipam.claim("z", "10.1.1.1")).rejects.toThrow("Invalid address 10.1.1.1: It does not belong to any of this network's subnets");
    expect(await ipam.claim("z", `${net3(0)}.5`)).toBe(`${net3(0)}.5`);
    for (const o of ["x", "y", "w", "z"]) await ipam.release(o);
  });

  it("switches NAT and internal in place, keeping the bridge", async () => {
    const spec: NetworkSpec = { name: A, subnet: `${net3(0)}.0/24`, ipRange: `${net3(0)}.128/30`, auxAddresses: { router: `${net3(0)}.129` }, nat: true, mtu: 1400, bridgeName: `btb${tag}` };
    const ifindex = fs.readFileSync(`/sys/class/net/btb${tag}/ifindex`, "utf8");
    expect(rules()).toContain("masquerade");
    await rt.networks.create({ ...spec, internal: true });
    expect(rules()).not.toContain("masquerade");
    expect(rules()).toContain(`-o btb${tag} -m comment --comment "${tagA()}internal-in" -j DROP`);
    expect(rules()).not.toContain("to-bridge");
    await rt.networks.create({ ...spec, nat: false });
    expect(rules()).not.toContain("masquerade");
    expect(rules()).toContain("to-bridge");
    expect(rules()).not.toContain("DROP");
    expect(fs.readFileSync(`/sys/class/net/btb${tag}/ifindex`, "utf8")).toBe(ifindex);
    expect((await rt.networks.inspect(A))!.faults).toEqual([]);
    await expect(rt.networks.create({ ...spec, ipRange: undefined })).rejects.toThrow(`network "${A}" already exists`);
  });

  it("notices a rule changed by hand (same tag, other match) and puts the right one back", async () => {
    const spec: NetworkSpec = { name: A, subnet: `${net3(0)}.0/24`, ipRange: `${net3(0)}.128/30`, auxAddresses: { router: `${net3(0)}.129` }, nat: true, mtu: 1400, bridgeName: `btb${tag}` };
    await rt.networks.create(spec);
    const tagged = `${tagA()}masquerade`;
    const line = rules().split("\n").find((l) => l.includes(tagged))!;
    sh("iptables", ["-t", "nat", "-D", ...line.slice(3).replace(/"/g, "").split(" ")]);
    sh("iptables", ["-t", "nat", "-A", "BERTH-POSTROUTING", "-s", "10.0.0.0/8", "-m", "comment", "--comment", tagged, "-j", "MASQUERADE"]);
    const faults = (await rt.networks.inspect(A))!.faults;
    expect(faults).toEqual([expect.stringContaining(`${tagged} was changed`)]);
    await rt.networks.create(spec);
    expect((await rt.networks.inspect(A))!.faults).toEqual([]);
    expect(rules()).toContain(`-s ${net3(0)}.0/24 ! -o btb${tag} -m comment --comment "${tagged}" -j MASQUERADE`);
    expect(rules()).not.toContain("10.0.0.0/8");
  });
});

describe("default network", () => {
  it("gets distinct subnets in berth roots that make it at the same moment, and gives them back", async () => {
    const run = path.join(tmp, "run");
    const roots = [0, 1, 2].map((i) => new BridgeNetworks(realHost, layout(path.join(tmp, `dflt${i}`), run), new Iptables(realHost)));
    const made = await Promise.all(roots.map((r) => r.ensureDefault()));
    try {
      expect(new Set(made.map((n) => n.subnet)).size).toBe(3);
      expect(fs.readdirSync(path.join(run, "default-subnets")).length).toBe(3);
    } finally {
      for (const r of roots) await r.releaseDefault();
    }
    expect(fs.readdirSync(path.join(run, "default-subnets"))).toEqual([]);
    for (const n of made) expect(fs.existsSync(`/sys/class/net/${n.bridge}`)).toBe(false);
  });
});

describe("bad input is refused with Docker's meaning, before the host changes", () => {
  const subnet = `${net3(1)}.0/24`;
  it.each<[Partial<NetworkSpec>, string]>([
    [{ subnet: `${net3(1)}.7/24` }, `it should be ${net3(1)}.0/24`],
    [{ gateway: "10.9.9.9" }, "no matching subnet for gateway 10.9.9.9"],
    [{ ipRange: "10.9.9.0/28" }, "no matching subnet for range 10.9.9.0/28"],
    [{ ipRange: `${net3(1).split(".").slice(0, 2).join(".")}.0.0/16` }, "no matching subnet for range"],
    [{ auxAddresses: { r: "10.9.9.9" } }, "no matching subnet for aux-address 10.9.9.9"],
    [{ subnet: `${net3(0)}.0/25` }, "Pool overlaps with other one on this address space"],
    [{ name: "bridge" }, '"bridge" is a predefined network name'],
    [{ driver: "macvlan", parent: "lo" }, "loopback interface is not a valid macvlan parent link"],
    [{ driver: "macvlan", parent: `btq${tag}` }, `parent interface "btq${tag}" does not exist`],
    [{ driver: "macvlan", parent: `${PARENT}.5000` }, "vlan id must be between 1-4094, received: 5000"],
    [{ driver: "macvlan", parent: `${PARENT}.50` }, `failed to create ${PARENT}.50 vlan link: operation not supported`],
    [{ driver: "macvlan", parent: PARENT, macvlanMode: "bogus" as never }, "requested macvlan mode 'bogus' is not valid"],
    [{ driver: "macvlan" }, "needs a parent interface"],
    [{ bridgeName: "this-name-is-too-long" }, "invalid interface name"],
  ])("%j", async (bad, message) => {
    await expect(rt.networks.create({ name: B, subnet, nat: true, ...bad })).rejects.toThrow(message);
    expect(fs.existsSync(`/sys/class/net/${derivedBridge(path.join(tmp, "root"), B)}`)).toBe(false);
    expect(fs.existsSync(`/sys/class/net/${PARENT}.50`)).toBe(false);
    expect(await rt.networks.inspect(B)).toBeUndefined();
  });

  it("refuses a second macvlan network on one parent", async () => {
    await rt.networks.create({ name: MV, driver: "macvlan", parent: PARENT, subnet: `${net3(2)}.0/24`, nat: false });
    await expect(
      rt.networks.create({ name: C, driver: "macvlan", parent: PARENT, subnet: `${net3(3)}.0/24`, nat: false }),
    ).rejects.toThrow(`network ${MV} is already using parent interface ${PARENT}`);
    await rt.networks.remove(MV);
  });
});
