// A root's locks directory on tmpfs (native/lock-dir.ts), on the real host: a new root's ROOT/locks links to a
// private directory in /dev/shm; processes opening a new root at once all end on one directory; after a reboot
// (the directory gone) it is made again under the same name; a name another user took meanwhile refuses the root
// and nothing is written into it; a root made before keeps its on-disk directory; a removed root's directory goes,
// but never one whose root moved, one the sweep cannot judge, or one holding a lock; a process with another
// /dev/shm in the same boot is refused.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { ensureLockDir, sweepOrphans } from "../../native/lock-dir";
import { withLock } from "../../native/lock";
import { REPO } from "./helpers";

let tmp: string;
const made: string[] = [];
const bootId = (): string => fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
/** Makes the directory look idle to the sweep. */
const age = (t: string): void => {
  const old = new Date(Date.now() - 120_000);
  fs.utimesSync(t, old, old);
};
const newRoot = (name: string): string => {
  const root = path.join(tmp, name);
  fs.mkdirSync(root, { mode: 0o700 });
  ensureLockDir(root);
  return root;
};
const target = (root: string): string => {
  const t = fs.readlinkSync(path.join(root, "locks"));
  made.push(t);
  return t;
};

beforeAll(() => {
  tmp = fs.mkdtempSync("/tmp/berth-lockdir-");
});
afterEach(() => {
  for (const t of made.splice(0)) fs.rmSync(t, { recursive: true, force: true });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("a root's locks directory", () => {
  it("is a private directory on tmpfs, and the locks taken there", async () => {
    const root = path.join(tmp, "a");
    fs.mkdirSync(root, { mode: 0o700 });
    ensureLockDir(root);
    const t = target(root);
    expect(t.startsWith("/dev/shm/berth-locks-")).toBe(true);
    const st = fs.lstatSync(t);
    expect([st.isDirectory(), st.uid, st.mode & 0o777]).toEqual([true, 0, 0o700]);
    await withLock(path.join(root, "locks", "containers", "web"), async () => {
      expect(fs.readdirSync(path.join(t, "containers"))).toEqual(["web"]);
    });
    expect(fs.readdirSync(path.join(t, "containers"))).toEqual([]);
  });

  it("is one directory for processes opening a new root at once", async () => {
    const root = path.join(tmp, "b");
    fs.mkdirSync(root, { mode: 0o700 });
    const js = `require(${JSON.stringify(path.join(REPO, "dist/native/lock-dir.js"))}).ensureLockDir(${JSON.stringify(root)}); console.log(require("fs").readlinkSync(${JSON.stringify(path.join(root, "locks"))}))`;
    const outs = await Promise.all(
      Array.from({ length: 6 }, () => new Promise<string>((resolve, reject) => {
        const c = spawn(process.execPath, ["-e", js], { stdio: ["ignore", "pipe", "inherit"] });
        let out = "";
        c.stdout.on("data", (d) => (out += d));
        c.on("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}`))));
      })),
    );
    const t = target(root);
    expect(new Set(outs)).toEqual(new Set([t]));
    // The losers removed the directories they made.
    const mine = fs.readdirSync("/dev/shm").filter((n) => fs.existsSync(path.join("/dev/shm", n, ".root")) && fs.readFileSync(path.join("/dev/shm", n, ".root"), "utf8").startsWith(`${root}\n`));
    expect(mine).toEqual([path.basename(t)]);
  });

  it("is made again under its name after a reboot, and refused when another user took that name", () => {
    const root = path.join(tmp, "c");
    fs.mkdirSync(root, { mode: 0o700 });
    ensureLockDir(root);
    const t = target(root);
    const boot = path.join(root, "locks.boot");
    expect(fs.readFileSync(boot, "utf8")).toBe(bootId());
    // A reboot: another boot id, and /dev/shm empty.
    fs.writeFileSync(boot, "0f0f0f0f-0000-0000-0000-000000000000");
    fs.rmSync(t, { recursive: true });
    ensureLockDir(root);
    expect(fs.lstatSync(t).isDirectory()).toBe(true);
    expect(fs.readlinkSync(path.join(root, "locks"))).toBe(t);
    expect(fs.readFileSync(boot, "utf8")).toBe(bootId());
    // Named for the sweep of orphans, which keeps it.
    expect(fs.readFileSync(path.join(t, ".root"), "utf8")).toBe(`${root}\n${fs.readlinkSync("/proc/self/ns/mnt")}`);
    sweepOrphans(0);
    expect(fs.existsSync(t)).toBe(true);
    // Squatted: another user's directory under the name, with a planted link in it.
    fs.rmSync(t, { recursive: true });
    fs.mkdirSync(t, { mode: 0o777 });
    fs.chownSync(t, 65534, 65534);
    fs.chmodSync(t, 0o777);
    fs.symlinkSync("/etc", path.join(t, "containers"));
    expect(() => ensureLockDir(root)).toThrow(new RegExp(`locks directory ${t} .* is not berth's: uid 65534 made it.*rm -r ${t}`));
    expect(fs.readdirSync(t)).toEqual(["containers"]);
  });

  it("stays on disk for a root made before", () => {
    const root = path.join(tmp, "d");
    fs.mkdirSync(path.join(root, "locks"), { recursive: true, mode: 0o700 });
    ensureLockDir(root);
    expect(fs.lstatSync(path.join(root, "locks")).isDirectory()).toBe(true);
  });

  it("goes, once idle, when its root was removed and another root is made", () => {
    const gone = path.join(tmp, "e");
    fs.mkdirSync(gone, { mode: 0o700 });
    ensureLockDir(gone);
    const t = target(gone);
    fs.rmSync(gone, { recursive: true });
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(t, old, old);
    const root = path.join(tmp, "f");
    fs.mkdirSync(root, { mode: 0o700 });
    ensureLockDir(root);
    target(root);
    expect(fs.existsSync(t)).toBe(false);
  });

  it("is kept by the sweep when its root was moved and opened at its new path", () => {
    const moved = newRoot("g");
    const tm = target(moved);
    fs.renameSync(moved, path.join(tmp, "g2"));
    ensureLockDir(path.join(tmp, "g2"));
    age(tm);
    sweepOrphans(0);
    expect(fs.existsSync(tm)).toBe(true);
  });

  it("is kept by the sweep when its .root says no absolute path or was written from another mount namespace", () => {
    // Its .root left empty or relative (a rewrite cut short), or written from another mount namespace: kept.
    for (const says of ["", "g3\nmnt:[1]", `${path.join(tmp, "nowhere")}\nmnt:[1]`]) {
      const root = newRoot("h");
      const t = target(root);
      fs.rmSync(root, { recursive: true });
      fs.writeFileSync(path.join(t, ".root"), says);
      age(t);
      sweepOrphans(0);
      expect(fs.existsSync(t), says).toBe(true);
    }
  });

  it("is kept by the sweep while it holds a lock, and goes once released", async () => {
    // A lock held in it, though its root is not to be seen (renamed with nobody reopening it).
    const held = newRoot("i");
    const th = target(held);
    await withLock(path.join(held, "locks", "containers", "web"), async () => {
      fs.renameSync(held, path.join(tmp, "i2"));
      age(th);
      sweepOrphans(0);
      expect(fs.readdirSync(path.join(th, "containers"))).toEqual(["web"]);
      fs.renameSync(path.join(tmp, "i2"), held);
    });
    // Released, and its root gone: it goes, and the sweep left no other name behind.
    fs.rmSync(held, { recursive: true });
    age(th);
    sweepOrphans(0);
    expect(fs.existsSync(th)).toBe(false);
    const naming = (n: string): boolean => fs.readFileSync(path.join("/dev/shm", n, ".root"), { encoding: "utf8", flag: "r" }).startsWith(`${held}\n`);
    expect(fs.readdirSync("/dev/shm").filter((n) => n.startsWith("berth-locks-") && fs.existsSync(path.join("/dev/shm", n, ".root")) && naming(n))).toEqual([]);
  });

  it("goes when its root is gone though a lock file is left there, once that lock's owner is gone too", () => {
    // A supervisor or berth killed while holding a lock leaves its file: a dead owner's holds nothing.
    const root = newRoot("j");
    const t = target(root);
    const owner = (pid: number, start: number) => JSON.stringify({ pid, start, cmd: "test" });
    fs.writeFileSync(path.join(t, "supervisor"), owner(4_000_000, 1));
    fs.mkdirSync(path.join(t, "containers"), { recursive: true });
    fs.writeFileSync(path.join(t, "containers", "web"), owner(process.pid, Number(fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ")[19])));
    fs.rmSync(root, { recursive: true });
    age(t);
    sweepOrphans(0);
    expect(fs.existsSync(t)).toBe(true); // a live owner's lock is in it
    fs.rmSync(path.join(t, "containers", "web"));
    age(t);
    sweepOrphans(0);
    expect(fs.existsSync(t)).toBe(false);
  });

  it("is refused, naming the cause, by a process with another /dev/shm", () => {
    const root = newRoot("j");
    const t = target(root);
    const js = `require(${JSON.stringify(path.join(REPO, "dist/native/lock-dir.js"))}).ensureLockDir(${JSON.stringify(root)})`;
    // A private tmpfs on /dev/shm in a mount namespace of its own, as systemd's PrivateDevices gives a service.
    const r = spawnSync("unshare", ["-m", "sh", "-c", `mount -t tmpfs berth-test /dev/shm && exec "$0" -e "$1"`, process.execPath, js], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`locks directory ${t} .* is missing, though this machine has not rebooted .*this process's /dev/shm is not the one the root's other processes use.*Run berth with the host's /dev/shm`));
    expect(fs.readdirSync(t)).toEqual([".root"]);
  });
});
