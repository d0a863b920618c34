// `npm run bench` (network part): the network setup berth does per container — address from the pool, namespace,
// veth pair on a bridge or macvlan child of a parent, address and route inside — and its teardown, against the
// CNI reference plugins (bridge + host-local, macvlan + static) doing the same on this host, run the same way.
// Medians of N runs; the parent of the macvlan network is a veth pair made here.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { realHost } from "../native/host/exec";
import { layout } from "../native/paths";
import { Iptables } from "../native/network/iptables";
import { BridgeNetworks } from "../native/network/networks";
import { configure, macFor, plug, unplug, type AttachmentRecord } from "../native/network/attach";
import { hostIfName } from "../native/network/container-net";
import { parseSubnet } from "../native/network/cidr";

const RUNS = 30;
const CNI = "/usr/lib/cni";
const tag = randomBytes(2).toString("hex");
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

async function berthRuns(nets: BridgeNetworks, network: string): Promise<{ add: number; del: number }> {
  const rec = (await nets.record(network))!;
  const ipam = nets.ipam(rec);
  const add: number[] = [];
  const del: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const name = `bench${tag}${i}`;
    const start = now();
    const ip = await ipam.allocate(name);
    const a: AttachmentRecord = {
      network, driver: rec.driver, ifname: "eth0", hostIf: rec.driver === "bridge" ? hostIfName(name, 0) : undefined,
      device: rec.bridge, macvlanMode: rec.macvlanMode, ip, prefix: parseSubnet(rec.subnet).prefix, gateway: rec.gateway,
      mac: macFor(ip), aliases: [], defaultRoute: true,
    };
    const netns = `berth-${name}`;
    await plug(realHost, netns, [a]);
    await configure(realHost, netns, [a]);
    const mid = now();
    await unplug(realHost, { mode: "networks", netns, attachments: [a], ports: [] });
    await ipam.release(name);
    add.push(mid - start);
    del.push(now() - mid);
  }
  return { add: median(add), del: median(del) };
}

function cniRuns(plugin: string, config: object): { add: number; del: number } {
  const add: number[] = [];
  const del: number[] = [];
  const input = JSON.stringify({ cniVersion: "1.0.0", name: `bench${tag}`, ...config });
  for (let i = 0; i < RUNS; i++) {
    const netns = `btcni${tag}${i}`;
    execFileSync("ip", ["netns", "add", netns]);
    const env = (cmd: string) => ({
      ...process.env, CNI_COMMAND: cmd, CNI_CONTAINERID: netns, CNI_NETNS: `/run/netns/${netns}`, CNI_IFNAME: "eth0", CNI_PATH: CNI,
    });
    const start = now();
    const res = spawnSync(path.join(CNI, plugin), { env: env("ADD"), input, encoding: "utf8" });
    const mid = now();
    spawnSync(path.join(CNI, plugin), { env: env("DEL"), input, encoding: "utf8" });
    const end = now();
    execFileSync("ip", ["netns", "del", netns]);
    if (res.status !== 0) throw new Error(`CNI ${plugin} ADD failed: ${res.stdout}${res.stderr}`);
    add.push(mid - start);
    del.push(end - mid);
  }
  return { add: median(add), del: median(del) };
}

export async function networkBench(): Promise<string[]> {
  if (!fs.existsSync(path.join(CNI, "bridge"))) return ["network: no CNI plugins in /usr/lib/cni; skipped"];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-net-"));
  const paths = layout(path.join(tmp, "root"), path.join(tmp, "run"));
  const nets = new BridgeNetworks(realHost, paths, new Iptables(realHost));
  const parent = `btbp${tag}`;
  const cniBridge = `btbc${tag}`;
  const rows: string[] = [];
  try {
    execFileSync("ip", ["link", "add", parent, "type", "veth", "peer", "name", `${parent}p`]);
    execFileSync("ip", ["link", "set", parent, "up"]);
    await nets.create({ name: `bb${tag}`, subnet: "10.93.0.0/24", nat: true });
    await nets.create({ name: `bm${tag}`, driver: "macvlan", parent, subnet: "10.94.0.0/24", nat: false });
    // berth's figures include making and deleting the namespace; the CNI plugins get one made beforehand.
    const rowsFor = (what: string, berth: { add: number; del: number }, cni: { add: number; del: number }) => [
      `network setup, ${what}: berth ${berth.add.toFixed(1)} ms vs CNI ${cni.add.toFixed(1)} ms (ratio ${(berth.add / cni.add).toFixed(2)}; ` +
        `CNI floor in the reference: ${what === "bridge" ? 21 : 7} ms)`,
      `network teardown, ${what}: berth ${berth.del.toFixed(1)} ms vs CNI ${cni.del.toFixed(1)} ms (ratio ${(berth.del / cni.del).toFixed(2)})`,
    ];
    rows.push(
      ...rowsFor(
        "bridge",
        await berthRuns(nets, `bb${tag}`),
        cniRuns("bridge", {
          type: "bridge", bridge: cniBridge, isGateway: true, ipMasq: true,
          ipam: { type: "host-local", subnet: "10.95.0.0/24", dataDir: path.join(tmp, "cni-ipam") },
        }),
      ),
      ...rowsFor(
        "macvlan",
        await berthRuns(nets, `bm${tag}`),
        cniRuns("macvlan", { type: "macvlan", master: parent, mode: "bridge", ipam: { type: "static", addresses: [{ address: "10.96.0.5/24" }] } }),
      ),
    );
  } finally {
    await nets.remove(`bb${tag}`).catch(() => undefined);
    await nets.remove(`bm${tag}`).catch(() => undefined);
    spawnSync("ip", ["link", "del", parent]);
    spawnSync("ip", ["link", "del", cniBridge]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

if (require.main === module) {
  networkBench().then((rows) => console.log(rows.join("\n")));
}
