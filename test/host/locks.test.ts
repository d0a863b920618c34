// The cross-process lock (native/lock.ts) with real processes: a holder killed, a dead holder's pid reused by a
// live process, a wait that times out naming the holder, and many processes counting under one lock (none taken
// twice, also when they all start on a dead owner's lock).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { processStart, withLock, lockHolder } from "../../native/lock";
import { REPO, waitFor } from "./helpers";

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
});
