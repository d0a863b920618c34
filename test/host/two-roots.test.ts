// Two berth roots on one machine (contract 5 of issue 14: the simulated hosts are such roots): equal container and
// network names in both, running at once, each root seeing and changing only its own — in one network namespace
// (one process, one run dir) and in two namespaces this test makes (one process each, as on two hosts). And the
// upgrade: a container made before runc ids carried the root is still found, stopped, started and removed.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type PortMapping, type Runtime } from "../../native";
import { bridgeName, runcId } from "../../native/names";
import { supervisorPid } from "../../native/supervise/launch";
import { networkTag } from "../../native/network/bridge";
import { readJson, writeJson } from "../../native/json-file";
import type { ContainerRecord } from "../../native/container/record";
import { REPO, clearRoot, ensureQuickstartRootfs, freePort, hostObjects, httpGet, inNetns, QUICKSTART, removeLocksDir, stopSupervisor, waitFor } from "./helpers";

// A container "of the previous version": made while runcId gives the id berth gave before (berth-<name>).
const legacy = vi.hoisted(() => ({ on: false }));
vi.mock("../../native/names", async (importOriginal) => {
  const m = await importOriginal<typeof import("../../native/names")>();
  return { ...m, runcId: (root: string, c: string) => (legacy.on ? `berth-${c}` : m.runcId(root, c)) };
});

const tag = randomBytes(3).toString("hex");
const WEB = `web-${tag}`;
const NET = `net-${tag}`;
const OLD = `old-${tag}`;
const octet = 100 + (parseInt(tag.slice(0, 2), 16) % 100);
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8" });
const tarball = path.join(QUICKSTART, "busybox-rootfs.tar");

let tmp: string;
const roots: string[] = [];
const rts: Runtime[] = [];

/** httpd serving the root's own letter. */
const web = (letter: string, port: number): ContainerSpec => ({
  name: WEB,
  image: "bb",
  network: NET,
  command: ["sh", "-c", `mkdir -p /www && echo ${letter} > /www/index.html && exec httpd -f -p 80 -h /www`],
  ports: [{ hostIp: "127.0.0.1", hostPort: port, containerPort: 80, protocol: "tcp" }],
  stopTimeout: 0,
});

async function served(port: number): Promise<string> {
  for (let i = 0; ; i++) {
    try {
      return (await httpGet(`http://127.0.0.1:${port}/`)).body.trim();
    } catch (e) {
      if (i === 40) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** What the host still has of a runc id: its runc container, its named network namespace. */
const traces = (id: string): string[] => {
  const o = hostObjects();
  return [...o.runc.filter((n) => n === id), ...o.netns.filter((n) => n === id)];
};

beforeAll(async () => {
  ensureQuickstartRootfs();
  tmp = fs.mkdtempSync("/tmp/berth-test-roots-");
  for (const r of ["a", "b"]) {
    const root = path.join(tmp, r);
    roots.push(root);
    // One run dir: both roots are on this one host, so they share its port claims.
    rts.push(createNativeRuntime({ root, runDir: path.join(tmp, "run") }));
  }
  await Promise.all(rts.map((rt) => rt.images.importRootfs({ ref: "bb", tarball, config: {} })));
});

afterAll(async () => {
  // Their supervisors stopped too: a live one's lock kept the root's tmpfs locks directory from the sweep.
  for (const root of roots) await clearRoot(root, path.join(tmp, "run"));
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("two roots in one network namespace", () => {
  it("run a container and a network of the same names at once, each inspecting, exec-ing, stopping and removing its own", async () => {
    const [a, b] = rts;
    const nets = await Promise.all(rts.map((rt, i) => rt.networks.create({ name: NET, subnet: `10.${octet}.${i}.0/24`, nat: false })));
    expect(nets[0].bridge).not.toBe(nets[1].bridge);
    const [pa, pb] = [await freePort(), await freePort()];
    await a.containers.run(web("A", pa));
    // The host port is the host's: the other root may not publish it too.
    await expect(b.containers.run(web("B", pa))).rejects.toThrow(`port is already allocated by berth container "${WEB}"`);
    await b.containers.run(web("B", pb));

    const [ia, ib] = [(await a.containers.inspect(WEB))!, (await b.containers.inspect(WEB))!];
    expect(ia).toMatchObject({ id: runcId(roots[0], WEB), status: "running", faults: [] });
    expect(ib).toMatchObject({ id: runcId(roots[1], WEB), status: "running", faults: [] });
    expect(ia.pid).not.toBe(ib.pid);
    expect(fs.readlinkSync(`/proc/${ia.pid}/ns/net`)).not.toBe(fs.readlinkSync(`/proc/${ib.pid}/ns/net`));
    expect([await served(pa), await served(pb)]).toEqual(["A", "B"]);
    const has = (rt: Runtime, letter: string) => rt.containers.exec(WEB, ["grep", "-q", letter, "/www/index.html"]);
    expect([await has(a, "A"), await has(b, "A"), await has(b, "B")]).toEqual([0, 1, 0]);

    await a.containers.stop(WEB, { graceSeconds: 0 });
    expect((await a.containers.inspect(WEB))!.status).toBe("stopped");
    expect((await b.containers.inspect(WEB))!).toMatchObject({ status: "running", pid: ib.pid, faults: [] });
    await a.containers.start(WEB);
    expect(await served(pa)).toBe("A");

    await a.containers.remove(WEB, { graceSeconds: 0 });
    await a.networks.remove(NET);
    expect(traces(ia.id)).toEqual([]);
    expect(fs.existsSync(`/sys/class/net/${nets[0].bridge}`)).toBe(false);
    // The other root's container, its rules and its network are untouched.
    expect((await b.containers.inspect(WEB))!).toMatchObject({ status: "running", pid: ib.pid, faults: [] });
    expect((await b.networks.inspect(NET))!.faults).toEqual([]);
    expect(await served(pb)).toBe("B");
    await b.containers.remove(WEB, { graceSeconds: 0 });
    await b.networks.remove(NET);
    expect(traces(ib.id)).toEqual([]);
  });
});

describe("upgrade from ids without the root", () => {
  it("finds, stops, starts and removes a container the previous version made, beside a new one of the same name", async () => {
    const [a, b] = rts;
    await a.networks.create({ name: NET, subnet: `10.${octet}.2.0/24`, nat: false });
    const sleeper: ContainerSpec = { name: OLD, image: "bb", network: NET, command: ["sleep", "600"], stopTimeout: 0 };
    legacy.on = true;
    try {
      await a.containers.run(sleeper);
    } finally {
      legacy.on = false;
    }
    // As the previous version wrote it: no runcId in the record.
    const file = path.join(roots[0], "containers", OLD, "container.json");
    const { runcId: made, ...rec } = (await readJson<ContainerRecord>(file))!;
    expect(made).toBe(`berth-${OLD}`);
    await writeJson(file, rec);

    await b.containers.run({ ...sleeper, network: undefined });
    const old = (await a.containers.inspect(OLD))!;
    expect(old).toMatchObject({ id: `berth-${OLD}`, status: "running", faults: [] });
    expect((await b.containers.inspect(OLD))!).toMatchObject({ id: runcId(roots[1], OLD), status: "running", faults: [] });
    await a.containers.stop(OLD, { graceSeconds: 0 });
    expect((await a.containers.inspect(OLD))!.status).toBe("stopped");
    await a.containers.start(OLD);
    expect((await a.containers.inspect(OLD))!).toMatchObject({ status: "running", faults: [] });
    await a.containers.remove(OLD, { graceSeconds: 0 });
    expect(traces(`berth-${OLD}`)).toEqual([]);
    expect((await b.containers.inspect(OLD))!).toMatchObject({ status: "running", faults: [] });
    await b.containers.remove(OLD, { graceSeconds: 0 });
    await a.networks.remove(NET);
  });

  it("keeps a network's bridge named as before, and takes over its rules under their former tags", async () => {
    const [a] = rts;
    const name = `${NET}x`;
    const subnet = `10.${octet}.3.0/24`;
    // What the previous version derived: the bridge from the network's name alone.
    const old = await a.networks.create({ name, subnet, nat: false, bridgeName: bridgeName(name) });
    expect((await a.networks.create({ name, subnet, nat: false })).bridge).toBe(old.bridge);
    // One rule as the previous version tagged it.
    const tagNow = `${networkTag(roots[0], name)}to-bridge`;
    const line = sh("iptables-save", ["-t", "filter"]).split("\n").find((l) => l.includes(tagNow))!;
    sh("iptables", ["-D", ...line.slice(3).replace(/"/g, "").split(" ")]);
    sh("iptables", ["-A", "BERTH-FORWARD", "-o", old.bridge, "-m", "comment", "--comment", `berth:net:${name}:to-bridge`, "-j", "ACCEPT"]);
    expect((await a.networks.inspect(name))!.faults).toEqual([]);
    await a.networks.remove(name);
    expect(sh("iptables-save", ["-t", "filter"])).not.toContain(`berth:net:${name}:`);
    expect(fs.existsSync(`/sys/class/net/${old.bridge}`)).toBe(false);
  });
});

describe("two roots in two network namespaces (two simulated hosts)", () => {
  const spaces = [`btra${tag}`, `btrb${tag}`];

  /** Runs a runtime call in namespace i, as a berth on that host would: its own process, root and run dir. */
  function onHost(i: number, action: "up" | "down"): string {
    const script = `
      const { createNativeRuntime } = require(${JSON.stringify(path.join(REPO, "dist/native"))});
      const rt = createNativeRuntime({ root: ${JSON.stringify(path.join(tmp, `host${i}`))}, runDir: ${JSON.stringify(path.join(tmp, `run${i}`))} });
      const spec = ${JSON.stringify({ ...web(String(i), 8080), network: NET })};
      (async () => {
        if (${JSON.stringify(action)} === "up") {
          await rt.images.importRootfs({ ref: "bb", tarball: ${JSON.stringify(tarball)}, config: {} });
          await rt.networks.create({ name: ${JSON.stringify(NET)}, subnet: "10.${octet}.9.0/24", nat: false });
          const info = await rt.containers.run(spec);
          console.log(JSON.stringify(info));
        } else {
          await rt.containers.remove(spec.name, { graceSeconds: 0 });
          await rt.networks.remove(${JSON.stringify(NET)});
        }
      })().catch((e) => { console.error(e.message); process.exit(1); });`;
    return sh("ip", inNetns(spaces[i], [process.execPath, "-e", script]));
  }

  afterAll(async () => {
    for (const [i, ns] of spaces.entries()) {
      if (fs.existsSync(`/run/netns/${ns}`)) {
        try {
          onHost(i, "down");
        } catch {
          // already gone
        }
      }
      spawnSync("ip", ["netns", "del", ns]);
      // Made from `ip netns exec`'s mount namespace: the sweep after the last test file leaves it.
      const root = path.join(tmp, `host${i}`);
      stopSupervisor(root);
      await waitFor("its supervisor gone", () => (supervisorPid(root) === undefined ? true : undefined), 10_000, 50);
      removeLocksDir(root);
    }
  });

  it("each runs the same container and network, on the same subnet and host port, and removes only its own", async () => {
    for (const ns of spaces) {
      sh("ip", ["netns", "add", ns]);
      sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
    const infos = [0, 1].map((i) => JSON.parse(onHost(i, "up").trim().split("\n").pop()!) as { id: string; ports: PortMapping[] });
    expect(infos[0].id).not.toBe(infos[1].id);
    // The host's busybox wget crashes here (static NSS): node fetches instead.
    const fetch = `require("http").get("http://127.0.0.1:8080/", (r) => r.pipe(process.stdout)).on("error", () => process.exit(1))`;
    const get = (i: number) => sh("ip", ["netns", "exec", spaces[i], process.execPath, "-e", fetch]).trim();
    await waitFor("both hosts serving", () => {
      try {
        return [get(0), get(1)].join() === "0,1" ? true : undefined;
      } catch {
        return undefined;
      }
    }, 10_000, 100);
    onHost(0, "down");
    expect(traces(infos[0].id)).toEqual([]);
    expect(get(1)).toBe("1");
    onHost(1, "down");
    expect(traces(infos[1].id)).toEqual([]);
  });
});
