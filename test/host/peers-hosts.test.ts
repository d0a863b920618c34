// Two berth processes on one root making and removing containers on one network at the same moment: each
// container's /etc/hosts must end up naming every peer there is, and none that is gone, whichever process wrote
// it last (ContainerNetworking.refreshPeers under the root's "hosts" lock). Real containers, then the race made
// certain: two processes' passes over records they write and remove themselves, in the order that loses entries.
// Also `system prune` in one process while another makes containers: one being made looks stopped from outside.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { runcId } from "../../native/names";
import { layout } from "../../native/paths";
import { ContainerRecords } from "../../native/container/record";
import type { AttachmentRecord } from "../../native/network/attach";
import { berth, clearRoot, REPO, runcAt, waitFor } from "./helpers";

const tag = randomBytes(3).toString("hex");
const NET = `bth${tag}`;
const PROCS = 2;
const EACH = 5;
const name = (p: number, i: number) => `bth${tag}p${p}c${i}`;
const ALL = Array.from({ length: PROCS }, (_, p) => Array.from({ length: EACH }, (_, i) => name(p, i))).flat();
const SUBNET = `10.${200 + (parseInt(tag.slice(0, 2), 16) % 50)}.${parseInt(tag.slice(2, 4), 16)}`;

let tmp: string;
let root: string;
let runDir: string;
let rt: Runtime;

/**
 * Node processes of their own, each running its script's `main` once all of them have started (node takes long
 * to start on a loaded machine: a start at a set time missed it by up to 0.7 s).
 */
async function together(scripts: string[]): Promise<void> {
  const children = scripts.map((script) =>
    spawn(process.execPath, ["-e", `${script}
process.stdin.once("data", () => main().then(() => process.exit(0), (e) => { console.error(e.stack); process.exit(1); }));
process.stdout.write("ready\\n");`], { stdio: ["pipe", "pipe", "pipe"] }),
  );
  const done = children.map((c) => {
    let err = "";
    c.stderr!.on("data", (d) => (err += d));
    return new Promise<void>((resolve, reject) => c.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`worker failed: ${err}`)))));
  });
  await Promise.all(children.map((c) => new Promise((r) => c.stdout!.once("data", r))));
  for (const c of children) c.stdin!.end("go\\n");
  await Promise.all(done);
}

/** A process on the shared root's runtime, running `body` together with the others. */
const worker = (body: string): string => `const { createNativeRuntime } = require(${JSON.stringify(path.join(REPO, "dist/native/index.js"))});
const rt = createNativeRuntime({ root: ${JSON.stringify(root)}, runDir: ${JSON.stringify(runDir)} });
const sleeper = (name) => ({ name, image: "bb", command: ["sleep", "600"], networks: [{ network: ${JSON.stringify(NET)} }] });
const main = async () => { ${body} };`;

/** The names each container's hosts file gives its peers (its own line and localhost left out). */
function namesIn(container: string): string[] {
  const text = fs.readFileSync(path.join(root, "containers", container, "hosts"), "utf8");
  return text.split("\n").flatMap((l) => l.split("\t")[1]?.split(" ") ?? []).filter((n) => n.startsWith(`bth${tag}p`) && n !== container).sort();
}

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-test-peers-");
  root = path.join(tmp, "root");
  runDir = path.join(tmp, "run");
  rt = createNativeRuntime({ root, runDir });
  const tarball = path.join(tmp, "rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"], env: ["PATH=/bin"] } });
  await rt.networks.create({ name: NET, subnet: `${SUBNET}.0/24`, nat: false });
}, 60_000);

afterAll(async () => {
  await clearRoot(root, runDir);
  fs.rmSync(tmp, { recursive: true, force: true });
}, 120_000);

describe(`${PROCS} berth processes on one network`, () => {
  it(`each making ${EACH} containers at once: every hosts file names every peer`, async () => {
    await together(
      Array.from({ length: PROCS }, (_, p) =>
        worker(`await Promise.all(${JSON.stringify(ALL.filter((n) => n.includes(`p${p}c`)))}.map((n) => rt.containers.run(sleeper(n))));`),
      ),
    );
    for (const c of ALL) expect(namesIn(c), c).toEqual(ALL.filter((n) => n !== c).sort());
    // What the container reads is that file (bind-mounted, rewritten in place).
    const inside = spawnSync("runc", runcAt(root, ALL[0], ["exec", runcId(root, ALL[0]), "cat", "/etc/hosts"]), { encoding: "utf8" });
    expect(inside.stdout).toBe(fs.readFileSync(path.join(root, "containers", ALL[0], "hosts"), "utf8"));
    expect(fs.readdirSync(path.join(root, "locks")).filter((f) => f.startsWith("hosts"))).toEqual([]);
  }, 120_000);

  it("one making containers while the other runs `system prune` over and over: prune takes none of them", async () => {
    const made = Array.from({ length: 4 }, (_, i) => `bth${tag}p9r${i}`);
    ALL.push(...made);
    await together([
      worker(`await Promise.all(${JSON.stringify(made)}.map((n) => rt.containers.run(sleeper(n))));
        require("fs").writeFileSync(${JSON.stringify(path.join(tmp, "made"))}, "");`),
      // A container being made (its record written, not yet running) looks stopped from outside its lock.
      worker(`const pruned = [];
        while (!require("fs").existsSync(${JSON.stringify(path.join(tmp, "made"))})) pruned.push(...(await rt.system.prune()).containers);
        if (pruned.length) throw new Error("pruned " + pruned.join(", "));`),
    ]);
    for (const c of made) expect((await rt.containers.inspect(c))?.status, c).toBe("running");
  }, 120_000);

  it("each removing some of its own while making another: none names one that is gone", async () => {
    const gone = ALL.filter((n) => /c[0-2]$/.test(n));
    const added = Array.from({ length: PROCS }, (_, p) => name(p, EACH));
    ALL.push(...added);
    await together(
      Array.from({ length: PROCS }, (_, p) => {
        const mine = gone.filter((n) => n.includes(`p${p}c`));
        return worker(`await Promise.all([...${JSON.stringify(mine)}.map((n) => rt.containers.remove(n, { graceSeconds: 0 })), rt.containers.run(sleeper(${JSON.stringify(added[p])}))]);`);
      }),
    );
    const left = ALL.filter((n) => !gone.includes(n));
    for (const c of left) expect(namesIn(c), c).toEqual(left.filter((n) => n !== c).sort());
  }, 120_000);

  it("a removal that fails (its rootfs busy) keeps its address: peers name it again, and no other container gets that address", async () => {
    const [busy, other, peer] = [`bth${tag}p9b0`, `bth${tag}p9b1`, `bth${tag}p9b2`];
    const sleeper = (n: string, ip?: string) => ({ name: n, image: "bb", command: ["sleep", "600"], networks: [{ network: NET, ip }] });
    const made = await rt.containers.run(sleeper(busy));
    await rt.containers.run(sleeper(peer));
    // A process of the host's working in the container's rootfs: the unmount fails, "target is busy".
    const holder = spawn("sleep", ["600"], { cwd: path.join(root, "containers", busy, "rootfs"), stdio: "ignore" });
    try {
      await expect(rt.containers.remove(busy, { graceSeconds: 0 })).rejects.toThrow(/busy/);
      expect(namesIn(peer)).toContain(busy);
      await expect(rt.containers.run(sleeper(other, made.ip))).rejects.toThrow(/already in use/);
    } finally {
      holder.kill();
    }
    await new Promise((r) => holder.once("close", r));
    // The removal tried again goes through.
    await rt.containers.remove(busy, { graceSeconds: 0 });
    expect(namesIn(peer)).not.toContain(busy);
  }, 120_000);

  it.each(["container.json", "pinned"])(
    "a removal whose deletion of the container's files fails (%s immutable) keeps it, its record and its address; tried again it goes",
    async (file) => {
      const [stuck, other, peer] = [`bth${tag}p9c0`, `bth${tag}p9c1`, `bth${tag}p9c2`];
      const sleeper = (n: string, ip?: string) => ({ name: n, image: "bb", command: ["sleep", "600"], networks: [{ network: NET, ip }] });
      const made = await rt.containers.run(sleeper(stuck));
      await rt.containers.run(sleeper(peer));
      // A file of its directory that cannot be removed (chattr +i: as a privileged container's own could be made).
      const pinned = path.join(root, "containers", stuck, file);
      fs.appendFileSync(pinned, "");
      execFileSync("chattr", ["+i", pinned]);
      try {
        await expect(rt.containers.remove(stuck, { graceSeconds: 0 })).rejects.toThrow(pinned);
        // Not freed while a record names it: before, the record stayed naming an address the next container got.
        expect((await rt.containers.inspect(stuck))?.ip).toBe(made.ip);
        expect(namesIn(peer)).toContain(stuck);
        await expect(rt.containers.run(sleeper(other, made.ip))).rejects.toThrow(/already in use/);
      } finally {
        execFileSync("chattr", ["-i", pinned]);
      }
      await rt.containers.remove(stuck, { graceSeconds: 0 });
      expect(await rt.containers.inspect(stuck)).toBeUndefined();
      expect(fs.existsSync(path.join(root, "containers", stuck))).toBe(false);
      expect(namesIn(peer)).not.toContain(stuck);
      expect((await rt.containers.run(sleeper(other, made.ip))).ip).toBe(made.ip);
      for (const c of [other, peer]) await rt.containers.remove(c, { graceSeconds: 0 });
    },
    120_000,
  );

  it.each(["berth rm", "a new run of the name"])(
    "a removal killed right after deleting the record (its directory, stop marker and address left): %s finishes it",
    async (how) => {
      const [gone, other] = [`bth${tag}p9d${how.length % 10}`, `bth${tag}p9e${how.length % 10}`];
      const sleeper = (n: string, ip?: string) => ({ name: n, image: "bb", command: ["sleep", "600"], networks: [{ network: NET, ip }] });
      const made = await rt.containers.run(sleeper(gone));
      const p = layout(root, runDir).container(gone);
      // A real removal, its process SIGKILLed the moment the record is deleted.
      const killed = spawnSync(process.execPath, ["-e", `const fs = require("fs");
        const rm = fs.promises.rm;
        fs.promises.rm = async (f, o) => { await rm(f, o); if (f === ${JSON.stringify(p.record)}) process.kill(process.pid, "SIGKILL"); };
        require(${JSON.stringify(path.join(REPO, "dist/native/index.js"))})
          .createNativeRuntime({ root: ${JSON.stringify(root)}, runDir: ${JSON.stringify(runDir)} }).containers.remove(${JSON.stringify(gone)}, { graceSeconds: 0 });`], { encoding: "utf8" });
      expect(killed.signal, killed.stderr).toBe("SIGKILL");
      expect(await rt.containers.inspect(gone)).toBeUndefined();
      expect(fs.readdirSync(p.dir)).toEqual(["stopped"]);
      await expect(rt.containers.run(sleeper(other, made.ip))).rejects.toThrow(/already in use/);
      if (how === "berth rm") {
        const env = { BERTH_ROOT: root, BERTH_RUN: runDir };
        const rm = await berth(["rm", gone], env);
        expect(rm.code, rm.stderr).toBe(0);
        expect(fs.existsSync(p.dir)).toBe(false);
        expect((await berth(["rm", gone], env)).stderr).toMatch(`No such container: ${gone}`);
        expect((await rt.containers.run(sleeper(other, made.ip))).ip).toBe(made.ip);
        await rt.containers.remove(other, { graceSeconds: 0 });
        return;
      }
      // Made again at that address, restarted per its policy: the old stop marker is not its own.
      const again = await rt.containers.run({ ...sleeper(gone, made.ip), restart: "always" });
      expect(again.ip).toBe(made.ip);
      process.kill(again.pid!, "SIGKILL");
      const restarted = await waitFor("the supervisor to restart it", async () => {
        const info = await rt.containers.inspect(gone);
        return info?.status === "running" && info.pid !== again.pid ? info : undefined;
      });
      expect(restarted.state?.restartCount).toBeGreaterThan(0);
      await rt.containers.remove(gone, { graceSeconds: 0 });
      // Its address was the old one's, once: freed with the new one.
      expect((await rt.containers.run(sleeper(other, made.ip))).ip).toBe(made.ip);
      await rt.containers.remove(other, { graceSeconds: 0 });
    },
    120_000,
  );
});

describe("two processes' passes interleaved: one reads the records, the other changes them and passes, then the first writes", () => {
  // The first process holds its pass between reading and writing until the second is done (or 1.5 s have gone by:
  // under the lock, the second cannot be done before the first lets go).
  const interleave = async (action: "make" | "remove") => {
    const dir = path.join(tmp, `interleave-${action}`);
    const script = (who: "a" | "b") => `
      const { layout } = require(${JSON.stringify(path.join(REPO, "dist/native/paths.js"))});
      const { ContainerNetworking } = require(${JSON.stringify(path.join(REPO, "dist/native/network/container-net.js"))});
      const { ContainerRecords } = require(${JSON.stringify(path.join(REPO, "dist/native/container/record.js"))});
      const fs = require("fs");
      const paths = layout(${JSON.stringify(dir)}, ${JSON.stringify(dir)} + "/run");
      const records = new ContainerRecords(paths);
      const net = new ContainerNetworking(undefined, paths, undefined, undefined, undefined);
      const signal = (what) => fs.writeFileSync(${JSON.stringify(dir)} + "/" + what, "");
      const until = async (what, ms) => { for (const t = Date.now(); !fs.existsSync(${JSON.stringify(dir)} + "/" + what) && Date.now() - t < ms; ) await new Promise((r) => setTimeout(r, 10)); };
      const rec = { spec: { name: "btq${who}", image: "bb" }, createdAt: new Date().toISOString(),
        net: { mode: "networks", attachments: [{ network: "n", ip: "10.9.0.${who === "a" ? 2 : 3}", aliases: [] }], ports: [] } };
      const records${who === "a" ? `Held = async () => { const all = await records.list(); signal("a-read"); await until("b-done", 1500); return all; }` : "Held = () => records.list()"};
      const main = async () => {
        ${who === "b" ? 'await until("a-read", 30000);' : ""}
        ${action === "make"
          ? `fs.mkdirSync(paths.container(rec.spec.name).dir, { recursive: true }); await records.write(rec); fs.writeFileSync(paths.container(rec.spec.name).hosts, "");`
          : "fs.rmSync(paths.container(rec.spec.name).dir, { recursive: true });"}
        await net.refreshPeers(rec, recordsHeld);
        signal("${who}-done");
      };`;
    // A third container on the network, and for removal the two that go.
    const paths = layout(dir, path.join(dir, "run"));
    const records = new ContainerRecords(paths);
    for (const [n, ip] of [["c", 4], ...(action === "remove" ? [["a", 2], ["b", 3]] : [])] as const) {
      fs.mkdirSync(paths.container(`btq${n}`).dir, { recursive: true });
      await records.write({ spec: { name: `btq${n}`, image: "bb" }, createdAt: new Date().toISOString(), imageId: "", layers: [],
        net: { mode: "networks", attachments: [{ network: "n", ip: `10.9.0.${ip}`, aliases: [] } as unknown as AttachmentRecord], ports: [] } });
      fs.writeFileSync(paths.container(`btq${n}`).hosts, "");
    }
    await together([script("a"), script("b")]);
    const want = action === "make" ? ["btqa", "btqb", "btqc"] : ["btqc"];
    expect(fs.readdirSync(path.join(dir, "containers")).sort()).toEqual(want);
    for (const c of want) {
      const named = fs.readFileSync(paths.container(c).hosts, "utf8").split("\n").map((l) => l.split("\t")[1]);
      expect(named.filter((n) => n?.startsWith("btq")).sort(), c).toEqual(want);
    }
  };

  it("both making one: every hosts file names all three", () => interleave("make"), 60_000);
  it("both removing one: the one left names neither", () => interleave("remove"), 60_000);
});
