// macvlan networks on the real host, each on a veth pair this test makes as the parent NIC (never a host
// interface): bridge-mode children reach each other, vepa and private ones do not, passthru takes one child only,
// and the host shim lets the host reach its macvlan containers. Everything made here is removed in afterAll.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { createNativeRuntime, type MacvlanMode, type Runtime } from "../../native";
import { runcId } from "../../native/names";
import { runcAt } from "./helpers";

const REPO = path.join(__dirname, "../..");
const tag = randomBytes(3).toString("hex");
const MODES: MacvlanMode[] = ["bridge", "vepa", "private", "passthru"];
const parent = (m: MacvlanMode) => `btm${tag}${m.slice(0, 2)}`;
const netName = (m: MacvlanMode) => `tm${tag}${m}`;
const octet = 200 + (parseInt(tag.slice(0, 2), 16) % 50);
const subnet = (i: number) => `10.${octet}.${(parseInt(tag.slice(2, 4), 16) + 10 + i) % 256}`;
const ctr = (m: MacvlanMode, i: number) => `tm${tag}${m}${i}`;
const exec = (name: string, args: string[]) => spawnSync("runc", runcAt(path.join(tmp, "root"), name, ["exec", runcId(path.join(tmp, "root"), name), ...args]), { encoding: "utf8" });

let tmp: string;
let rt: Runtime;

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-test-macvlan-");
  const tarball = path.join(tmp, "rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  rt = createNativeRuntime({ root: path.join(tmp, "root"), runDir: path.join(tmp, "run") });
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sleep", "600"] } });
  for (const [i, m] of MODES.entries()) {
    execFileSync("ip", ["link", "add", parent(m), "type", "veth", "peer", "name", `${parent(m)}p`]);
    execFileSync("ip", ["link", "set", parent(m), "up"]);
    execFileSync("ip", ["link", "set", `${parent(m)}p`, "up"]);
    await rt.networks.create({
      name: netName(m), driver: "macvlan", parent: parent(m), macvlanMode: m, subnet: `${subnet(i)}.0/24`, nat: false,
      hostShim: m === "bridge",
    });
  }
});

afterAll(async () => {
  for (const m of MODES) {
    for (const i of [1, 2]) await rt.containers.remove(ctr(m, i), { graceSeconds: 0 }).catch(() => undefined);
    await rt.networks.remove(netName(m)).catch(() => undefined);
    spawnSync("ip", ["link", "del", parent(m)]);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const run = (m: MacvlanMode, i: number) => rt.containers.run({ name: ctr(m, i), image: "bb", networks: [{ network: netName(m) }] });

describe("macvlan modes", () => {
  it.each<[MacvlanMode, boolean]>([
    ["bridge", true],
    ["vepa", false],
    ["private", false],
  ])("%s: children reach each other: %s", async (m, reach) => {
    const [, b] = [await run(m, 1), await run(m, 2)];
    expect(execFileSync("ip", ["-n", runcId(path.join(tmp, "root"), ctr(m, 1)), "-d", "link", "show", "eth0"], { encoding: "utf8" })).toContain(`macvlan mode ${m}`);
    expect(exec(ctr(m, 1), ["ping", "-c1", "-W1", b.ip!]).status === 0).toBe(reach);
  });

  it("passthru: the parent takes one child; a second is refused before anything is made", async () => {
    await run("passthru", 1);
    await expect(run("passthru", 2)).rejects.toThrow("failed to create the macvlan port: invalid argument");
    expect(await rt.containers.inspect(ctr("passthru", 2))).toBeUndefined();
  });

  it("the host reaches bridge-mode containers through the host shim, and the shim is repaired", async () => {
    const target = (await rt.containers.inspect(ctr("bridge", 1)))!.ip!;
    expect(spawnSync("busybox", ["ping", "-c1", "-W2", target]).status).toBe(0);
    const info = (await rt.networks.inspect(netName("bridge")))!;
    expect(info.faults).toEqual([]);
    const shim = fs.readdirSync("/sys/class/net").find((l) => fs.existsSync(`/sys/class/net/${l}/lower_${parent("bridge")}`) && l.startsWith("bt"))!;
    execFileSync("ip", ["link", "del", shim]);
    expect((await rt.networks.inspect(netName("bridge")))!.faults).toEqual([`host shim ${shim} is missing`]);
    await rt.networks.create({
      name: netName("bridge"), driver: "macvlan", parent: parent("bridge"), macvlanMode: "bridge", subnet: `${subnet(0)}.0/24`,
      nat: false, hostShim: true,
    });
    expect(spawnSync("busybox", ["ping", "-c1", "-W2", target]).status).toBe(0);
  });
});
