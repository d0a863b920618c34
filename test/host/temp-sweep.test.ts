// What a berth process leaves behind when it is killed, swept by the next one — and never what a live process is
// still using (native/staging.ts): the spawner's shell directory in /dev/shm, a remote agent's call staging, and
// the temp files of records, locks, port claims and stack checkpoints, each caught mid-write by stopping the
// real process that writes it (SIGSTOP), then killing it (SIGKILL) or letting it go on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { layout } from "../../native/paths";
import { PortClaims } from "../../native/network/portmap";
import { StackStore } from "../../provider/state/store";
import { lockHolder, tryLock } from "../../native/lock";
import { sweepStaging, remoteDirs } from "../../native/remote/files";
import { REPO, freePort, removeLocksDir, waitFor } from "./helpers";

const DIST = path.join(REPO, "dist");
/** A pid no process has (above this machine's pid_max, 32768; checked below). */
const GONE_PID = 4_000_000;
const SHM = fs.existsSync("/dev/shm") ? "/dev/shm" : require("node:os").tmpdir();
let tmp: string;
let root: string;
let runDir: string;
let rt: Runtime;
const children: ChildProcess[] = [];

beforeAll(() => {
  expect(fs.existsSync(`/proc/${GONE_PID}`)).toBe(false);
  tmp = fs.mkdtempSync("/tmp/berth-test-sweep-");
  root = path.join(tmp, "root");
  runDir = path.join(tmp, "run");
  rt = createNativeRuntime({ root, runDir });
});
afterAll(() => {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode) continue;
    c.kill("SIGCONT");
    c.kill("SIGKILL");
  }
  // The root's tmpfs locks directory holds a stopped writer's 64 MB temp, which no sweep can judge dead.
  removeLocksDir(root);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A node process running `body` (`dist` is berth's build), in a process group of its own (its shell with it). */
function node(body: string): ChildProcess {
  const c = spawn(process.execPath, ["-e", `const dist = ${JSON.stringify(DIST)};\n${body}`], { stdio: ["ignore", "pipe", "inherit"], detached: true });
  children.push(c);
  return c;
}

/** A process's command line; "" once it is gone. */
function cmdline(pid: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
}
const ended = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode ? r() : c.once("exit", () => r())));
const firstLine = (c: ChildProcess) => new Promise<string>((r) => c.stdout!.once("data", (d: Buffer) => r(d.toString().trim())));

/**
 * Starts a process writing a large file through `write` (a statement with `file` in scope) and stops it while its
 * temp file beside `file` exists: resolves to the process (stopped, alive) and the temp's name. A writer that was
 * too quick is tried again.
 */
async function stoppedMidWrite(file: string, write: string): Promise<{ child: ChildProcess; temp: string }> {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true });
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = new Set(fs.readdirSync(dir));
    const child = node(`const file = ${JSON.stringify(file)}; const big = "x".repeat(64 << 20);
      console.log("writing"); setTimeout(async () => { ${write}; }, 50);`);
    await firstLine(child);
    // Polled without yielding: the window between the temp's making and its rename is some tens of milliseconds.
    const deadline = Date.now() + 3000;
    let temp: string | undefined;
    while (!temp && Date.now() < deadline) {
      temp = fs.readdirSync(dir).find((n) => !before.has(n) && n.startsWith(`${path.basename(file)}#tmp-`));
    }
    if (temp) {
      child.kill("SIGSTOP");
      // Mid-write: its temp there and nothing in place yet (stopped between the link and the temp's removal, it
      // has made its claim whole).
      if (fs.existsSync(path.join(dir, temp)) && !fs.existsSync(file)) return { child, temp };
      child.kill("SIGCONT");
    }
    await ended(child);
    // Too quick: what it wrote is in place, and would stand in the next writer's way.
    fs.rmSync(file, { force: true });
  }
  throw new Error(`never caught a temp file of ${file} being written`);
}

/** Two writers of `files` caught mid-write: the first killed, the second left alive (stopped). */
async function killedAndLive(files: [string, string], write: string) {
  const killed = await stoppedMidWrite(files[0], write);
  killed.child.kill("SIGKILL");
  await ended(killed.child);
  const live = await stoppedMidWrite(files[1], write);
  const liveTemp = path.join(path.dirname(files[1]), live.temp);
  return {
    killed: path.join(path.dirname(files[0]), killed.temp),
    live: liveTemp,
    /** Lets the live writer finish: its temp must still be there to be renamed into place. */
    finish: async () => {
      live.child.kill("SIGCONT");
      await ended(live.child);
      expect(live.child.exitCode).toBe(0);
      expect(fs.existsSync(liveTemp)).toBe(false);
      expect(fs.statSync(files[1]).size).toBeGreaterThanOrEqual(64 << 20);
    },
  };
}

describe("the spawner's shell directory", () => {
  /** A berth process that has run one host command; resolves to it and its shell's directory. */
  async function berthWithShell(): Promise<{ child: ChildProcess; dir: string }> {
    const child = node(`const { realHost } = require(dist + "/native/host/exec.js");
      realHost.run("true", []).then(() => {
        console.log(require("fs").readdirSync(${JSON.stringify(SHM)}).find((n) => n.startsWith("berth-spawn-" + process.pid + "-")));
        if (process.argv.includes("--exit")) return;
        setInterval(() => {}, 1000);
      });`);
    return { child, dir: path.join(SHM, await firstLine(child)) };
  }

  it("is removed when its berth exits, and when it is ended by a signal (its shell removes it)", async () => {
    const normal = node(`const { realHost } = require(dist + "/native/host/exec.js");
      realHost.run("true", []).then(() => console.log(require("fs").readdirSync(${JSON.stringify(SHM)}).find((n) => n.startsWith("berth-spawn-" + process.pid + "-"))));`);
    const normalDir = path.join(SHM, await firstLine(normal));
    await ended(normal);
    expect(fs.existsSync(normalDir)).toBe(false);
    const termed = await berthWithShell();
    expect(fs.existsSync(termed.dir)).toBe(true);
    termed.child.kill("SIGTERM");
    await ended(termed.child);
    await waitFor("the shell to remove its directory", () => (fs.existsSync(termed.dir) ? undefined : true));
  });

  it("left by a berth killed with its shell is swept by the next berth; a live berth's never", async () => {
    const killed = await berthWithShell();
    const live = await berthWithShell();
    // The shell runs in a session of its own (it would see its pipe close and remove its directory): killed too.
    const shell = fs.readdirSync("/proc").find((p) => /^\d+$/.test(p) && cmdline(p).startsWith(`${killed.dir}\0`));
    expect(shell).toBeDefined();
    process.kill(Number(shell), "SIGKILL");
    process.kill(-killed.child.pid!, "SIGKILL");
    await ended(killed.child);
    // Looked at at once: any berth on this machine starting a shell now sweeps it too (others' tests included).
    expect(fs.existsSync(killed.dir)).toBe(true);
    const next = await berthWithShell();
    expect(fs.existsSync(killed.dir)).toBe(false);
    expect(fs.existsSync(live.dir) && fs.existsSync(next.dir)).toBe(true);
    for (const c of [live.child, next.child]) c.kill("SIGTERM");
    await Promise.all([ended(live.child), ended(next.child)]);
    await waitFor("the shells to remove their directories", () => (fs.existsSync(live.dir) || fs.existsSync(next.dir) ? undefined : true));
  });
});

describe("a remote agent's call staging", () => {
  it("of an agent killed mid-call is swept at the next agent's start; a live agent's never, nor a reused pid's", async () => {
    const { staging } = remoteDirs(root);
    fs.mkdirSync(staging, { recursive: true });
    const agent = () =>
      node(`const { stagingPath } = require(dist + "/native/staging.js");
        const dir = stagingPath(${JSON.stringify(staging)}, "call");
        require("fs").mkdirSync(dir); require("fs").writeFileSync(dir + "/upload", "x");
        console.log(dir); setInterval(() => {}, 1000);`);
    const killed = agent();
    const killedDir = await firstLine(killed);
    const live = agent();
    const liveDir = await firstLine(live);
    killed.kill("SIGKILL");
    await ended(killed);
    // The live agent's pid with another start time: a process that was, under a pid the kernel gave out again.
    const reused = liveDir.replace(/-(\d+)-([0-9a-f]+)$/, (_m, start: string, rnd: string) => `-${Number(start) - 1}-${rnd}`);
    fs.mkdirSync(reused);
    // As an older agent named them: its pid alone (this one's, killed; the live one's).
    const [formerKilled, formerLive] = [killed.pid, live.pid].map((pid) => path.join(staging, `${pid}-0123456789ab`));
    for (const d of [formerKilled, formerLive]) fs.mkdirSync(d);
    await sweepStaging(root);
    expect([killedDir, liveDir, reused, formerKilled, formerLive].map((d) => fs.existsSync(d))).toEqual([false, true, false, false, true]);
    live.kill("SIGKILL");
  });
});

describe("temp files of a process killed mid-write", () => {
  it("records, locks and leases: the next `system prune` (garbage collection) sweeps the killed one's, never a live one's", async () => {
    const records = await killedAndLive(
      [path.join(root, "berth-test-a.json"), path.join(root, "berth-test-b.json")],
      `await require(dist + "/native/json-file.js").writeJson(file, { big })`,
    );
    const locks = await killedAndLive(
      [path.join(root, "locks", "berth-test-a"), path.join(root, "locks", "berth-test-b")],
      `await require(dist + "/native/lock.js").writeLinked(file, big)`,
    );
    // `berth system prune`: the image store's garbage collection runs last.
    // A lease being written (read half-made, it passed for a dead one, and collection removed it under its writer).
    const leases = await killedAndLive(
      [path.join(root, "leases", "ingest-a.json"), path.join(root, "leases", "ingest-b.json")],
      `const { self } = require(dist + "/native/lock.js");
       await require(dist + "/native/json-file.js").writeJson(file, { owner: self(), blobs: [], layers: [], big })`,
    );
    await rt.system.prune();
    for (const t of [records, locks, leases]) {
      expect(fs.existsSync(t.killed), t.killed).toBe(false);
      expect(fs.existsSync(t.live), t.live).toBe(true);
      await t.finish();
    }
  });

  it("an object named like an older temp (registry 'r.json.4000000.tmp'): its held lock is never swept as one", async () => {
    const dir = path.join(root, "locks", "registries");
    const named = path.join(dir, `r.json.${GONE_PID}.tmp`);
    const release = await tryLock(named);
    expect(release).toBeDefined();
    // A dead holder's lock beside it: taking that one breaks it and sweeps the directory's temps.
    fs.writeFileSync(path.join(dir, "gone"), JSON.stringify({ pid: GONE_PID, start: 1 }));
    const other = await tryLock(path.join(dir, "gone"));
    expect(other).toBeDefined();
    other!();
    expect(lockHolder(named)?.pid).toBe(process.pid);
    release!();
  });

  it("a port claim: the next claim sweeps it (it read as a claim of another address), never a live claimer's", async () => {
    const paths = layout(root, runDir);
    const port = await freePort();
    for (const c of ["btsweepa", "btsweepb"]) {
      fs.mkdirSync(paths.container(c).dir, { recursive: true });
      fs.writeFileSync(paths.container(c).record, "{}");
    }
    const claim = (ip: string) => path.join(paths.portClaims, `tcp-${port}-${ip}`);
    const t = await killedAndLive(
      [claim("127.0.0.1"), claim("127.0.0.2")],
      `await require(dist + "/native/lock.js").writeLinked(file, JSON.stringify({ root: ${JSON.stringify(root)}, container: "btsweepa", big }))`,
    );
    const mapping = { hostIp: "0.0.0.0", hostPort: port, containerPort: 80, protocol: "tcp" as const };
    // The live claimer is stopped mid-claim: its half-made claim must not refuse the other container's, either.
    expect(await new PortClaims(paths).claim("btsweepb", [mapping])).toEqual([mapping]);
    expect(fs.existsSync(t.killed)).toBe(false);
    expect(fs.existsSync(t.live)).toBe(true);
    await t.finish();
  });

  it("an image archive (`berth save -o`): the next save of that output sweeps it, never a live writer's nor anyone else's file", async () => {
    // One 64 MB layer, so that a save is slow enough to be caught mid-write.
    const src = path.join(tmp, "save-src");
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, "big"), Buffer.alloc(64 << 20));
    const tarball = path.join(tmp, "save-src.tar");
    execFileSync("tar", ["-C", src, "-cf", tarball, "big"]);
    const ref = "berth-test-save:1";
    await rt.images.importRootfs({ ref, tarball, config: {} });
    const saves = path.join(tmp, "saves");
    const t = await killedAndLive(
      [path.join(saves, "a.tar"), path.join(saves, "b.tar")],
      `await require(dist + "/native/index.js").createNativeRuntime({ root: ${JSON.stringify(root)}, runDir: ${JSON.stringify(runDir)} })
         .images.save([${JSON.stringify(ref)}], file)`,
    );
    // The output's directory is the user's (/tmp perhaps): names anyone planted there, temp-like and of a dead
    // pid, are not this save's — another file's temps, a directory, a symlink to a directory — and stay whole.
    const foreign = ["thesis#tmp-1-1-ab", "other.tar#tmp-1-1-ab", "a.tar#tmp-1-1-cd", "a.tar#tmp-1-1-ef"];
    fs.mkdirSync(path.join(saves, foreign[0]));
    fs.writeFileSync(path.join(saves, foreign[0], "chapter1"), "x");
    fs.writeFileSync(path.join(saves, foreign[1]), "x");
    fs.mkdirSync(path.join(saves, foreign[2]));
    fs.writeFileSync(path.join(saves, foreign[2], "notes"), "x");
    const target = path.join(tmp, "linked");
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, "kept"), "x");
    fs.symlinkSync(target, path.join(saves, foreign[3]));
    await rt.images.save([ref], path.join(saves, "c.tar"));
    expect(fs.existsSync(t.killed), "another output's save leaves a.tar's temps alone").toBe(true);
    await rt.images.save([ref], path.join(saves, "a.tar"));
    expect(fs.existsSync(t.killed), t.killed).toBe(false);
    expect(fs.existsSync(t.live), t.live).toBe(true);
    await t.finish();
    expect(fs.readdirSync(saves).sort()).toEqual(["a.tar", "b.tar", "c.tar", ...foreign].sort());
    expect([path.join(foreign[0], "chapter1"), path.join(foreign[2], "notes")].map((f) => fs.existsSync(path.join(saves, f)))).toEqual([true, true]);
    expect(fs.readdirSync(target)).toEqual(["kept"]);
    await rt.images.remove(ref);
  });

  it("a stack checkpoint: the next update's lock sweeps it, never a live writer's", async () => {
    const ref = (stack: string) => ({ backendDir: tmp, project: "sweep", stack });
    const stores = [new StackStore(ref("a")), new StackStore(ref("b"))];
    const t = await killedAndLive(
      [stores[0].file, stores[1].file],
      `const { StackStore } = require(dist + "/provider/state/store.js");
       const stack = require("path").basename(file, ".json");
       await new StackStore({ backendDir: ${JSON.stringify(tmp)}, project: "sweep", stack })
         .write({ manifest: { time: "", magic: "", version: "" }, resources: [{ urn: "urn:pulumi:" + stack + "::sweep::berth:index:Volume::v", type: "berth:index:Volume", custom: true, id: "v", inputs: {}, outputs: { big } }] })`,
    );
    // An older berth's checkpoint temp ("STACK.json.PID.tmp") of a process that is gone goes too.
    const former = `${stores[0].file}.${GONE_PID}.tmp`;
    fs.writeFileSync(former, "{");
    const release = stores[0].lock();
    release();
    expect(fs.existsSync(former)).toBe(false);
    expect(fs.existsSync(t.killed)).toBe(false);
    expect(fs.existsSync(t.live)).toBe(true);
    await t.finish();
  });
});
