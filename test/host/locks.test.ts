// The cross-process lock (native/lock.ts) with real processes: a holder killed, a dead holder's pid reused by a
// live process, a wait that times out naming the holder, and many processes counting under one lock (none taken
// twice, also when they all start on a dead owner's lock); and port claims raced by processes of several roots.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { processStart, withLock, lockHolder } from "../../native/lock";
import { layout } from "../../native/paths";
import { PortClaims } from "../../native/network/portmap";
import { REPO, freePort, waitFor } from "./helpers";

const LOCK_JS = path.join(REPO, "dist/native/lock.js");
let tmp: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  tmp = fs.mkdtempSync("/tmp/berth-locks-");
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A node process running `body` with `lock` (native/lock.js) in scope. */
function node(body: string): ChildProcess {
  const c = spawn(process.execPath, ["-e", `const lock = require(${JSON.stringify(LOCK_JS)});\n${body}`], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(c);
  return c;
}

/** A process that takes the lock and holds it until killed; resolves once it holds it. */
async function holder(file: string): Promise<ChildProcess> {
  const c = node(`lock.withLock(${JSON.stringify(file)}, () => { console.log("held"); return new Promise(() => setInterval(() => {}, 1000)); });`);
  await new Promise<void>((resolve) => c.stdout!.once("data", () => resolve()));
  return c;
}

describe("cross-process lock", () => {
  it("is taken over at once when its holder was killed", async () => {
    const file = path.join(tmp, "killed");
    const c = await holder(file);
    expect(lockHolder(file)?.pid).toBe(c.pid);
    c.kill("SIGKILL");
    await waitFor("the holder to die", () => (c.exitCode !== null || c.signalCode ? true : undefined));
    const t = Date.now();
    expect(await withLock(file, async () => "mine", { timeoutMs: 2000 })).toBe("mine");
    expect(Date.now() - t).toBeLessThan(1000);
    expect(fs.existsSync(file)).toBe(false);
  });

  it("takes a lock whose holder's pid now belongs to another process (same pid, other start time)", async () => {
    const file = path.join(tmp, "reused");
    // A live process with the dead holder's pid: the lock names it, with the start time of the process that died.
    const live = node("setInterval(() => {}, 1000);");
    await waitFor("the process to start", () => processStart(live.pid!));
    fs.writeFileSync(file, JSON.stringify({ pid: live.pid, start: processStart(live.pid!)! - 1, cmd: "berth up (died)" }));
    expect(lockHolder(file)).toBeUndefined();
    expect(await withLock(file, async () => "mine", { timeoutMs: 2000 })).toBe("mine");
    // The same pid with its real start time is a live holder: waited for.
    fs.writeFileSync(file, JSON.stringify({ pid: live.pid, start: processStart(live.pid!), cmd: "berth up (alive)" }));
    await expect(withLock(file, async () => "mine", { timeoutMs: 300 })).rejects.toThrow(/held by pid \d+ \(berth up \(alive\)\)/);
    fs.rmSync(file);
  });

  it("reads the start time of a process whose name holds blanks and parentheses", async () => {
    const exe = path.join(tmp, "x) 1 2 (y");
    fs.copyFileSync("/bin/sleep", exe);
    fs.chmodSync(exe, 0o755);
    const c = spawn(exe, ["30"], { stdio: "ignore" });
    children.push(c);
    // Once exec'd (before, the child is still named node).
    await waitFor("it to run", () => (fs.readFileSync(`/proc/${c.pid}/stat`, "utf8").includes("(x) 1 2 (y)") ? true : undefined));
    const plain = fs.readFileSync(`/proc/${c.pid}/stat`, "utf8").split(" ");
    expect(plain[1]).toContain("x)");
    // Counting fields naively would land 3 fields off; the start time is after the last ")".
    const start = processStart(c.pid!)!;
    expect(start).toBe(Number(plain[21 + 3]));
    expect(start).toBeGreaterThan(0);
    c.kill("SIGKILL");
  });

  it("gives up after its timeout naming the holder: pid, command line and since when", async () => {
    const file = path.join(tmp, "held");
    const c = await holder(file);
    const t = Date.now();
    const err = await withLock(file, async () => undefined, { timeoutMs: 500, what: "the test's record" }).catch((e: Error) => e);
    expect(Date.now() - t).toBeGreaterThanOrEqual(500);
    expect((err as Error).message).toMatch(
      new RegExp(`timed out after 1s waiting for the lock on the test's record: held by pid ${c.pid} \\(.*-e .*\\) since \\d{4}-`),
    );
    c.kill("SIGKILL");
  });

  it("is never held twice: 6 processes × 40 increments of one file, starting on a dead owner's lock", async () => {
    const file = path.join(tmp, "count.lock");
    const counter = path.join(tmp, "count");
    fs.writeFileSync(counter, "0");
    // A dead owner: every process meets it first, and only one may break it.
    const dead = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
    fs.writeFileSync(file, JSON.stringify({ pid: Number(dead.stdout), start: 1 }));
    const body = `
      const fs = require("fs");
      (async () => {
        for (let i = 0; i < 40; i++) {
          await lock.withLock(${JSON.stringify(file)}, async () => {
            const n = Number(fs.readFileSync(${JSON.stringify(counter)}, "utf8"));
            await new Promise((r) => setImmediate(r));
            fs.writeFileSync(${JSON.stringify(counter)}, String(n + 1));
          }, { timeoutMs: 60000 });
        }
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const procs = Array.from({ length: 6 }, () => node(body));
    const codes = await Promise.all(procs.map((p) => new Promise<number | null>((r) => p.on("exit", r))));
    expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Number(fs.readFileSync(counter, "utf8"))).toBe(240);
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith("count.lock"))).toEqual([]);
  });

  it("gives each of 30 published ports to exactly one of 4 processes claiming it at once, in 4 roots", async () => {
    // The kernel may hand out one free port twice in a row; the test needs 30 distinct ones.
    const distinct = new Set<number>();
    while (distinct.size < 30) distinct.add(await freePort());
    const ports = [...distinct];
    const at = Date.now() + 1500;
    const runDir = path.join(tmp, "run");
    const body = (i: number) => `
      const { layout } = require(${JSON.stringify(path.join(REPO, "dist/native/paths.js"))});
      const { PortClaims } = require(${JSON.stringify(path.join(REPO, "dist/native/network/portmap.js"))});
      const fs = require("fs");
      const paths = layout(${JSON.stringify(tmp)} + "/root${i}", ${JSON.stringify(runDir)});
      fs.mkdirSync(paths.container("c${i}").dir, { recursive: true });
      fs.writeFileSync(paths.container("c${i}").record, "{}");
      (async () => {
        // All four start at once, so that their claims of each port overlap.
        while (Date.now() < ${at}) {}
        const won = [];
        for (const port of ${JSON.stringify(ports)}) {
          try {
            await new PortClaims(paths).claim("c${i}", [{ hostIp: "127.0.0.1", hostPort: port, containerPort: 80, protocol: "tcp" }]);
            won.push(port);
          } catch (e) {
            if (!/already allocated by berth container "c\\d"/.test(e.message)) throw e;
          }
        }
        console.log(JSON.stringify(won));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const procs = [0, 1, 2, 3].map((i) => node(body(i)));
    const won = await Promise.all(
      procs.map((p) => new Promise<number[]>((resolve, reject) => {
        let out = "";
        p.stdout!.on("data", (d) => (out += d));
        p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`claimer exited ${code}`))));
      })),
    );
    expect(won.flat().sort()).toEqual([...ports].sort());
    for (const port of ports) {
      const claim = JSON.parse(fs.readFileSync(path.join(runDir, "ports", `tcp-${port}-127.0.0.1`), "utf8"));
      expect(won[Number(claim.container.slice(1))]).toContain(port);
    }
  });

  it("refuses 127.0.0.1:P to a container of another root holding 0.0.0.0:P, whatever their names", async () => {
    const port = await freePort();
    const runDir = path.join(tmp, "run-overlap");
    const claims = ["a", "b"].map((r) => {
      const paths = layout(path.join(tmp, `overlap-${r}`), runDir);
      fs.mkdirSync(paths.container("web").dir, { recursive: true });
      fs.writeFileSync(paths.container("web").record, "{}");
      return new PortClaims(paths);
    });
    await claims[0].claim("web", [{ hostIp: "0.0.0.0", hostPort: port, containerPort: 80, protocol: "tcp" }]);
    await expect(claims[1].claim("web", [{ hostIp: "127.0.0.1", hostPort: port, containerPort: 80, protocol: "tcp" }])).rejects.toThrow(
      `cannot publish 0.0.0.0:${port}/tcp: port is already allocated by berth container "web"`,
    );
  });
});
