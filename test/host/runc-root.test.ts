// runc's state root (native/container/runc-root.ts): a new container's state lives on tmpfs beside the root's locks,
// every verb (and the supervisor's restart and health probe) finds it there and nothing of it lands in /run/runc; a
// container an older berth made (no runcRoot in its record, its state in /run/runc) is still found, stopped, started
// and removed; a state root another user made or can change is refused, naming what to do, before anything is made.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type Runtime } from "../../native";
import { runcId } from "../../native/names";
import { containerPaths } from "../../native/paths";
import { readJson } from "../../native/json-file";
import type { ContainerRecord } from "../../native/container/record";
import { runcArgs, runcRefOf } from "../../native/container/runc-root";
import { QUICKSTART, clearRoot, ensureQuickstartRootfs, runcAt, runcIds, waitFor } from "./helpers";

// A container "of the previous version": made while berth chose no state root (runc's default, /run/runc).
const legacy = vi.hoisted(() => ({ on: false }));
vi.mock("../../native/container/runc-root", async (importOriginal) => {
  const m = await importOriginal<typeof import("../../native/container/runc-root")>();
  return { ...m, runcRootFor: (p: Parameters<typeof m.runcRootFor>[0]) => (legacy.on ? undefined : m.runcRootFor(p)) };
});

const tag = randomBytes(3).toString("hex");
const NEW = `rr-new-${tag}`;
const OLD = `rr-old-${tag}`;
const SQ = `rr-sq-${tag}`;
const NOBODY = 65534;
const TMPFS_MAGIC = 0x01021994;
const tarball = path.join(QUICKSTART, "busybox-rootfs.tar");

let tmp: string;
let root: string;
let rt: Runtime;
/** A root whose locks are on its disk (made before lock-dir.ts), its run dir a sticky tmpfs directory as /dev/shm is. */
let sqRoot: string;
let shm: string;
let sq: Runtime;

const sleeper = (name: string, extra: Partial<ContainerSpec> = {}): ContainerSpec => ({ name, image: "bb", command: ["sleep", "600"], stopTimeout: 0, ...extra });
const record = async (r: string, name: string) => (await readJson<ContainerRecord>(containerPaths(r, name).record))!;
const inRunRunc = (id: string) => fs.existsSync(path.join("/run/runc", id));

async function output(rt: Runtime, name: string, command: string[]): Promise<string> {
  let out = "";
  const code = await rt.containers.exec(name, command, { stdout: (c) => void (out += Buffer.from(c).toString()) });
  expect(code).toBe(0);
  return out;
}

beforeAll(async () => {
  ensureQuickstartRootfs();
  tmp = fs.mkdtempSync("/tmp/berth-test-runcroot-");
  root = path.join(tmp, "root");
  rt = createNativeRuntime({ root, runDir: path.join(tmp, "run") });
  sqRoot = path.join(tmp, "sq");
  fs.mkdirSync(path.join(sqRoot, "locks"), { recursive: true, mode: 0o700 });
  shm = fs.mkdtempSync("/dev/shm/berth-test-runc-");
  fs.chmodSync(shm, 0o1777);
  sq = createNativeRuntime({ root: sqRoot, runDir: shm });
  await Promise.all([rt, sq].map((r) => r.images.importRootfs({ ref: "bb", tarball, config: {} })));
});

afterAll(async () => {
  fs.chmodSync(shm, 0o1777);
  await clearRoot(root, path.join(tmp, "run"));
  await clearRoot(sqRoot, shm);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(shm, { recursive: true, force: true });
});

describe("runc's state root", () => {
  it("keeps a new container's state on tmpfs beside the root's locks, for every verb and the supervisor, none in /run/runc", async () => {
    const id = runcId(root, NEW);
    await rt.containers.run(sleeper(NEW, { restart: "always", healthcheck: { test: ["CMD", "true"], interval: 0.2 } }));
    const rec = await record(root, NEW);
    expect(rec.runcRoot).toBe(path.join(fs.readlinkSync(path.join(root, "locks")), "runc"));
    expect(fs.statfsSync(rec.runcRoot!).type).toBe(TMPFS_MAGIC);
    expect(fs.existsSync(path.join(rec.runcRoot!, id, "state.json"))).toBe(true);
    expect(inRunRunc(id)).toBe(false);
    expect(runcIds()).toContain(id);

    // Each verb that runs runc: exec, top (ps), update, pause/unpause, commit (paused), copy (exec).
    expect(await output(rt, NEW, ["echo", "hi"])).toBe("hi\n");
    expect(await rt.containers.top(NEW)).toContain("sleep 600");
    await rt.containers.update(NEW, { limits: { pidsLimit: 30 }, restart: "always" });
    await rt.containers.pause(NEW);
    expect((await rt.containers.inspect(NEW))!.paused).toBe(true);
    await rt.containers.unpause(NEW);
    await rt.containers.commit(NEW, `rr-commit-${tag}`);
    await rt.images.remove(`rr-commit-${tag}`);
    await rt.containers.copy(NEW, "from", "/etc/hostname", path.join(tmp, "hostname"));
    expect(fs.readFileSync(path.join(tmp, "hostname"), "utf8")).toBe(`${NEW}\n`);

    // The supervisor's probe (runc exec) and its restart (runc delete + run) find it in the same root.
    await waitFor("healthy", async () => ((await rt.containers.inspect(NEW))!.state?.health?.status === "healthy" ? true : undefined), 15_000, 50);
    const pid = (await rt.containers.inspect(NEW))!.pid;
    execFileSync("runc", runcAt(root, NEW, ["kill", "--all", id, "KILL"]));
    await waitFor("the supervisor's restart", async () => {
      const i = (await rt.containers.inspect(NEW))!;
      return i.status === "running" && i.pid !== pid && (i.state?.restartCount ?? 0) > 0 ? true : undefined;
    }, 20_000, 50);
    expect(inRunRunc(id)).toBe(false);

    await rt.containers.stop(NEW);
    expect((await rt.containers.inspect(NEW))!.status).toBe("stopped");
    await rt.containers.start(NEW);
    expect((await rt.containers.inspect(NEW))!).toMatchObject({ status: "running", faults: [] });
    await rt.containers.remove(NEW, { graceSeconds: 0 });
    expect(fs.readdirSync(rec.runcRoot!)).not.toContain(id);
    expect(runcIds()).not.toContain(id);
    expect(inRunRunc(id)).toBe(false);
  });

  it("finds, stops, starts and removes a container an older berth made: no runcRoot in its record, its state in /run/runc", async () => {
    const id = runcId(root, OLD);
    legacy.on = true;
    try {
      await rt.containers.run(sleeper(OLD));
    } finally {
      legacy.on = false;
    }
    expect(Object.keys(await record(root, OLD))).not.toContain("runcRoot");
    expect(fs.existsSync(path.join("/run/runc", id, "state.json"))).toBe(true);

    // Opened afresh, as by the next berth, with a new container beside it in the new place.
    const now = createNativeRuntime({ root, runDir: path.join(tmp, "run") });
    await now.containers.run(sleeper(NEW));
    expect(inRunRunc(runcId(root, NEW))).toBe(false);
    expect(await now.containers.list()).toEqual(expect.arrayContaining([OLD, NEW]));
    expect((await now.containers.inspect(OLD))!).toMatchObject({ id, status: "running", faults: [] });
    expect(await output(now, OLD, ["echo", "old"])).toBe("old\n");
    await now.containers.stop(OLD);
    expect((await now.containers.inspect(OLD))!.status).toBe("stopped");
    await now.containers.start(OLD);
    expect((await now.containers.inspect(OLD))!).toMatchObject({ status: "running", faults: [] });
    expect(inRunRunc(id)).toBe(true); // started again where it was made
    await now.containers.remove(OLD, { graceSeconds: 0 });
    await now.containers.remove(NEW, { graceSeconds: 0 });
    expect(inRunRunc(id)).toBe(false);
    expect(runcIds().filter((i) => i === id || i === runcId(root, NEW))).toEqual([]);
  });

  it("refuses a state root another user made or can change, naming the fix, before anything is made", async () => {
    const dir = path.join(shm, "runc");
    const nothingMade = async () => {
      expect(await sq.containers.list()).toEqual([]);
      expect(fs.existsSync(containerPaths(sqRoot, SQ).dir)).toBe(false);
    };
    // Made first by another user in the sticky, world-writable run dir.
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chownSync(dir, NOBODY, NOBODY);
    await expect(sq.containers.run(sleeper(SQ))).rejects.toThrow(
      new RegExp(`runc state directory ${dir} is not berth's: uid ${NOBODY} made it, mode 755.*remove it \\(rm -r ${dir}\\) and run berth again`),
    );
    await nothingMade();
    // A link to another user's directory.
    fs.rmdirSync(dir);
    const theirs = path.join(shm, "theirs");
    fs.mkdirSync(theirs, { mode: 0o700 });
    fs.chownSync(theirs, NOBODY, NOBODY);
    fs.symlinkSync(theirs, dir);
    await expect(sq.containers.run(sleeper(SQ))).rejects.toThrow(`runc state directory ${dir} is not berth's: it is not a directory`);
    await nothingMade();
    // Its own, in a directory anyone may rename it out of (no sticky bit).
    fs.rmSync(dir);
    fs.chmodSync(shm, 0o777);
    await expect(sq.containers.run(sleeper(SQ))).rejects.toThrow(`runc state directory ${dir} is in ${shm}, which others can change (uid 0, mode 777)`);
    await nothingMade();

    fs.chmodSync(shm, 0o1777);
    await sq.containers.run(sleeper(SQ));
    expect((await record(sqRoot, SQ)).runcRoot).toBe(dir);
    expect(inRunRunc(runcId(sqRoot, SQ))).toBe(false);
    // Taken over later: every runc call checks it again.
    fs.chownSync(dir, NOBODY, NOBODY);
    await expect(sq.containers.stop(SQ)).rejects.toThrow(`runc state directory ${dir} is not berth's: uid ${NOBODY} made it`);
    fs.chownSync(dir, 0, 0);
    await sq.containers.remove(SQ, { graceSeconds: 0 });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("refuses a state root below a directory another user owns, however far up", async () => {
    const theirs = fs.mkdtempSync("/dev/shm/berth-test-theirs-");
    const nested = path.join(tmp, "nested");
    fs.mkdirSync(path.join(nested, "locks"), { recursive: true, mode: 0o700 });
    try {
      fs.chownSync(theirs, NOBODY, NOBODY);
      fs.chmodSync(theirs, 0o755);
      const runDir = path.join(theirs, "run");
      fs.mkdirSync(runDir, { mode: 0o755 }); // root's, as root made it there: only its parent is another user's
      const other = createNativeRuntime({ root: nested, runDir });
      await other.images.importRootfs({ ref: "bb", tarball, config: {} });
      await expect(other.containers.run(sleeper(`rr-up-${tag}`))).rejects.toThrow(
        `runc state directory ${runDir}/runc is in ${theirs}, which others can change (uid ${NOBODY}, mode 755)`,
      );
      expect(await other.containers.list()).toEqual([]);
    } finally {
      await clearRoot(nested, path.join(theirs, "run"));
      fs.rmSync(theirs, { recursive: true, force: true });
    }
  });

  it("makes BERTH_RUN again where it holds the state root, as after a reboot, and starts the container there", async () => {
    const onDisk = path.join(tmp, "ondisk");
    fs.mkdirSync(path.join(onDisk, "locks"), { recursive: true, mode: 0o700 });
    const run = fs.mkdtempSync("/dev/shm/berth-test-run-");
    const runDir = path.join(run, "run");
    const name = `rr-reboot-${tag}`;
    const r = createNativeRuntime({ root: onDisk, runDir });
    try {
      await r.images.importRootfs({ ref: "bb", tarball, config: {} });
      await r.containers.run(sleeper(name));
      expect((await record(onDisk, name)).runcRoot).toBe(path.join(runDir, "runc"));
      await r.containers.stop(name, { graceSeconds: 0 });
      fs.rmSync(runDir, { recursive: true }); // a reboot takes BERTH_RUN (a tmpfs) and runc's state in it
      await r.containers.start(name);
      expect((await r.containers.inspect(name))?.status).toBe("running");
      await r.containers.remove(name, { graceSeconds: 0 });
    } finally {
      await clearRoot(onDisk, runDir);
      fs.rmSync(run, { recursive: true, force: true });
    }
  });

  it("does not make again, empty, a state root whose locks directory was moved away while its containers run", async () => {
    const name = `rr-moved-${tag}`;
    await rt.containers.run(sleeper(name));
    const state = (await record(root, name)).runcRoot!;
    const locks = path.dirname(state);
    const away = `${locks}-away`;
    fs.renameSync(locks, away); // as the orphan sweep moves one it judges orphaned (native/lock-dir.ts)
    try {
      // What every runc call for it goes through (a health probe of the supervisor takes no lock first).
      expect(() => runcArgs(runcRefOf({ spec: { name }, runcId: runcId(root, name), runcRoot: state }), ["state"])).toThrow(
        `runc state directory ${state} is gone with the directory it was in`,
      );
      expect(fs.existsSync(locks)).toBe(false);
    } finally {
      fs.renameSync(away, locks);
    }
    await rt.containers.remove(name, { graceSeconds: 0 });
    expect(fs.readdirSync(state)).toEqual([]);
  });
});
