// The real Supervisor over a fake host that records runc commands, for races a real host cannot time: a restart of
// a crash-looping container waiting for the lock an `up` replacing it holds (the new container must be left alone:
// no runc command, its own restart count), and a run that began and ended between two looks after a first run the
// supervisor never saw running.
import { afterEach, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { Supervisor } from "../../native/supervise/supervisor";
import { layout } from "../../native/paths";
import { writeJson } from "../../native/json-file";
import { withLock } from "../../native/lock";
import { lockPath, readState, statePath, writeState } from "../../native/supervise/state";
import { closeProcess, openProcess, stillRuns } from "../../native/supervise/alive";
import type { Host } from "../../native/host/exec";
import type { ContainerRecord } from "../../native/container/record";

let tmp: string | undefined;
afterEach(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(restart: string) {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-sup-race-"));
  const paths = layout(path.join(tmp, "root"), path.join(tmp, "run"));
  const p = paths.container("web");
  fs.mkdirSync(p.dir, { recursive: true });
  const record = (createdAt: string): ContainerRecord => ({
    spec: { name: "web", image: "bb", restart },
    runcId: "berth-test-web",
    imageId: "sha256:" + "0".repeat(64),
    layers: [],
    createdAt,
  });
  const commands: string[] = [];
  const host: Host = {
    run: async (cmd, args) => (commands.push([cmd, ...args].join(" ")), ""),
    tryRun: async (cmd, args) => (commands.push([cmd, ...args].join(" ")), { code: 0, stdout: "", stderr: "" }),
    writeSysctl: async () => {},
  };
  return { p, record, commands, sup: new Supervisor(paths, () => host, 1 << 20) };
}

/** The pid of a process that has ended. */
const deadPid = (): number => spawnSync("true").pid!;

it("records a run that began and ended between two looks, after a first run it never saw running", async () => {
  const { p, record, sup } = setup("no");
  await writeJson(p.record, record("2026-01-01T00:00:00.000Z"));
  fs.writeFileSync(p.pid, String(deadPid()));
  await sup.tick();
  expect(await readState(p.dir)).toMatchObject({ status: "exited", exitCode: 137 });
  // A start (another process) ran it again; it wrote its status and ended before the next look.
  fs.writeFileSync(p.pid, String(deadPid()));
  fs.mkdirSync(path.join(p.dir, "exit"));
  fs.writeFileSync(path.join(p.dir, "exit", "code"), "3\n");
  await sup.tick();
  expect(await readState(p.dir)).toMatchObject({ status: "exited", exitCode: 3 });
});

it("does not restart a container that an up replaced while the restart waited for its lock", async () => {
  const { p, record, commands, sup } = setup("always");
  // The old container: crash-looping, its init (a process that has ended) seen running last.
  const dead = deadPid();
  await writeJson(p.record, record("2026-01-01T00:00:00.000Z"));
  fs.writeFileSync(p.pid, String(dead));
  await writeState(p.dir, { status: "running", pid: dead, restartCount: 4, startedAt: new Date(Date.now() - 1000).toISOString() });
  await sup.tick();
  expect((await readState(p.dir))?.status).toBe("restarting");

  let tick: Promise<number> | undefined;
  await withLock(lockPath(p.dir), async () => {
    // The back-off (100 ms) is due: the tick waits for the lock the replacement holds.
    await sleep(150);
    tick = sup.tick();
    await sleep(100);
    // The replacement: a new record, no state yet, its init running (this process stands for it).
    fs.rmSync(statePath(p.dir));
    await writeJson(p.record, record("2026-01-01T00:00:05.000Z"));
    fs.writeFileSync(p.pid, String(process.pid));
  });
  await tick;
  expect(commands).toEqual([]);
  await sup.tick();
  expect(commands).toEqual([]);
  expect(await readState(p.dir)).toMatchObject({ status: "running", pid: process.pid, restartCount: 0 });
});

it("applies a restart policy updated while the container ran, though a running init's record is not looked at each tick", async () => {
  const { p, record, sup } = setup("no");
  const init = spawn("sleep", ["30"]);
  try {
    await writeJson(p.record, record("2026-01-01T00:00:00.000Z"));
    fs.writeFileSync(p.pid, String(init.pid));
    await sup.tick();
    expect(await readState(p.dir)).toMatchObject({ status: "running", pid: init.pid, restartCount: 0 });
    // An update (same container, same createdAt) while it runs; a tick in between sees the same init.
    await writeJson(p.record, { ...record("2026-01-01T00:00:00.000Z"), spec: { name: "web", image: "bb", restart: "always" } });
    await sup.tick();
    expect((await readState(p.dir))?.status).toBe("running");
    init.kill("SIGKILL");
    await new Promise((r) => init.once("exit", r));
    await sup.tick();
    expect(await readState(p.dir)).toMatchObject({ status: "restarting", exitCode: 137 });
  } finally {
    init.kill("SIGKILL");
  }
});

it("tells a running process from a zombie and from one reaped, through the descriptor it opened", async () => {
  // A zombie: the shell's child ends once the shell has become a sleep, which never waits for it.
  const parent = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
  // Reaped: a child of this process, which node waits for.
  const direct = spawn("sleep", ["30"]);
  const fds: (number | undefined)[] = [];
  try {
    const child = Number(await new Promise<string>((r) => parent.stdout!.once("data", (b: Buffer) => r(b.toString()))));
    fds.push(openProcess(child), openProcess(direct.pid!));
    expect(fds.every((fd) => fd !== undefined && stillRuns(fd))).toBe(true);
    for (let i = 0; i < 100 && stillRuns(fds[0]!); i++) await sleep(10);
    expect(fs.readFileSync(`/proc/${child}/stat`, "utf8")).toMatch(/\) Z /);
    expect(stillRuns(fds[0]!)).toBe(false);
    expect(openProcess(child)).toBeUndefined();
    direct.kill("SIGKILL");
    await new Promise((r) => direct.once("exit", r));
    expect(fs.existsSync(`/proc/${direct.pid}`)).toBe(false);
    // Its reads fail (ESRCH), whatever process the pid names next.
    expect(stillRuns(fds[1]!)).toBe(false);
    expect(openProcess(direct.pid!)).toBeUndefined();
  } finally {
    fds.forEach(closeProcess);
    parent.kill("SIGKILL");
    direct.kill("SIGKILL");
  }
});

it("takes no failure to look at an init (no descriptor left) for its exit", () => {
  // A node with 64 descriptors at most, all taken: the look throws (the tick reports it) rather than say "ended".
  const alive = path.resolve(__dirname, "../../dist/native/supervise/alive.js");
  const script = `const fs = require("fs"); const { openProcess } = require(${JSON.stringify(alive)});
    try { for (;;) fs.openSync("/dev/null", "r"); } catch {}
    try { console.log(openProcess(process.pid)); } catch (e) { console.log(e.code); }`;
  const out = spawnSync("sh", ["-c", 'ulimit -n 64 && exec "$0" -e "$1"', process.execPath, script], { encoding: "utf8" });
  expect(out.stdout.trim()).toBe("EMFILE");
});
