// Init layers (native/snapshot/init-layer.ts) on the real host: one goes with the last image and container built on
// its image's layers, kept while a container of a removed image still runs on it or another process is making one
// on it (its record, written under the store's lock, names the layers before the init layer is made); each is on
// disk (fsynced) whole before it gets its name.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { initLayersDir } from "../../native/snapshot/init-layer";
import { ContentStore } from "../../native/image/store";
import { layout } from "../../native/paths";
import { realHost } from "../../native/host/exec";
import { clearRoot, REPO } from "./helpers";

let tmp: string;
let root: string;
let runDir: string;
let rt: Runtime;
let tarball: string;

/** The overlay's top lower directory of a container's rootfs, as the kernel has it: its init layer. */
const initOf = (c: string): string => {
  const at = path.join(root, "containers", c, "rootfs");
  const line = fs.readFileSync("/proc/self/mounts", "utf8").split("\n").find((l) => l.split(" ")[1] === at);
  return /lowerdir=([^,:]+)/.exec(line ?? "")![1];
};
const layers = (): string[] => fs.readdirSync(initLayersDir(root)).sort();

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-test-init-");
  root = path.join(tmp, "root");
  runDir = path.join(tmp, "run");
  rt = createNativeRuntime({ root, runDir });
  tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
  await importShape("other", 1_000_000);
});

/** The same files with another /etc time, imported as `ref`: an image of another shape, whose init layer is its own. */
function importShape(ref: string, etcTime: number) {
  const rootfs = path.join(tmp, ref);
  fs.mkdirSync(rootfs);
  execFileSync("tar", ["-C", rootfs, "-xf", tarball]);
  fs.utimesSync(path.join(rootfs, "etc"), etcTime, etcTime);
  execFileSync("tar", ["-C", rootfs, "-cf", path.join(tmp, `${ref}.tar`), "."]);
  return rt.images.importRootfs({ ref, tarball: path.join(tmp, `${ref}.tar`), config: { cmd: ["sh"] } });
}

afterAll(async () => {
  await clearRoot(root, runDir);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sleeper = (name: string, image: string) => ({ name, image, command: ["sleep", "600"], stopTimeout: 0 });

describe("init layers", () => {
  it("go with the last image and container built on them, and stay while a container of a removed image runs", async () => {
    await rt.containers.run(sleeper("btinitb", "bb"));
    await rt.containers.run(sleeper("btinito", "other"));
    const [b, o] = [initOf("btinitb"), initOf("btinito")];
    expect(b).not.toBe(o);
    expect(layers()).toEqual([path.basename(b), path.basename(o)].sort());
    // The image removed: its container still runs on the layer.
    await rt.images.remove("other"); // and garbage collection
    expect(layers()).toContain(path.basename(o));
    expect(fs.readdirSync(path.join(root, "containers", "btinito", "rootfs"))).toContain("proc");
    // Its last container removed: the layer goes; the one of an image stored stays, with no container on it too.
    await rt.containers.remove("btinito", { graceSeconds: 0 });
    expect(layers()).toEqual([path.basename(b)]);
    await rt.containers.remove("btinitb", { graceSeconds: 0 });
    await rt.system.prune();
    expect(layers()).toEqual([path.basename(b)]);
    // Removed by hand (or pruned meanwhile): the next container makes it again.
    fs.rmSync(b, { recursive: true });
    await rt.containers.run(sleeper("btinitb", "bb"));
    expect(initOf("btinitb")).toBe(b);
    expect(fs.readdirSync(b)).toContain(".berth");
    await rt.containers.remove("btinitb", { graceSeconds: 0 });
  }, 60_000);

  it("of a container being made stays through a removal of its image meanwhile (its record names its layers first), and goes after", async () => {
    // Yet another shape; the maker is another process, stopped between naming the layers in its record (under the
    // store's lock, as a create does) and mounting the init layer it made.
    await importShape("third", 2_000_000);
    const dist = path.join(REPO, "dist/native");
    const maker = spawn(process.execPath, ["-e", `
      const fs = require("node:fs");
      const path = require("node:path");
      const { ContentStore } = require(${JSON.stringify(`${dist}/image/store.js`)});
      const { layout } = require(${JSON.stringify(`${dist}/paths.js`)});
      const { realHost } = require(${JSON.stringify(`${dist}/host/exec.js`)});
      const { initLayer } = require(${JSON.stringify(`${dist}/snapshot/init-layer.js`)});
      const paths = layout(${JSON.stringify(root)}, ${JSON.stringify(runDir)});
      const store = new ContentStore(realHost, paths, async () => []);
      (async () => {
        const info = await store.inspect("third");
        const record = paths.container("btinitm").record;
        const written = await store.withLayers(info.layers, async () => {
          fs.mkdirSync(path.dirname(record), { recursive: true });
          fs.writeFileSync(record, JSON.stringify({ spec: { name: "btinitm", image: "third" }, imageId: info.id, layers: info.layers, createdAt: new Date().toISOString() }));
        });
        console.log(written ? await initLayer(${JSON.stringify(root)}, store.layerDirs(info)) : "refused");
        await new Promise((r) => process.stdin.once("data", r));
        fs.rmSync(path.dirname(record), { recursive: true });
        process.exit(0);
      })();`], { stdio: ["pipe", "pipe", "inherit"] });
    try {
      const init = (await new Promise<Buffer>((r) => maker.stdout!.once("data", r))).toString().trim();
      expect(fs.readdirSync(init)).toContain(".berth");
      await rt.images.remove("third");
      expect(fs.existsSync(init)).toBe(true);
      maker.stdin!.end("go\n");
      await new Promise((r) => maker.once("exit", r));
      await rt.system.prune();
      expect(fs.existsSync(init)).toBe(false);
    } finally {
      maker.kill("SIGKILL");
    }
  }, 60_000);

  it("refuses to make a container whose image was removed before its record named the layers, leaving nothing", async () => {
    const info = await importShape("fourth", 3_000_000);
    const store = new ContentStore(realHost, layout(root, runDir), async () => []);
    await rt.images.remove("fourth");
    let wrote = false;
    expect(await store.withLayers(info.layers, async () => void (wrote = true))).toBe(false);
    expect(wrote).toBe(false);
  }, 60_000);

  it("is on disk whole (each entry and the directory fsynced) before it is renamed into place, and its parent after", () => {
    const fresh = path.join(tmp, "fresh");
    const image = path.join(tmp, "empty-layer");
    fs.mkdirSync(fresh);
    fs.mkdirSync(image);
    const log = path.join(tmp, "strace.log");
    const js = `require(${JSON.stringify(path.join(REPO, "dist/native/snapshot/init-layer.js"))}).initLayer(${JSON.stringify(fresh)}, [${JSON.stringify(image)}])`;
    const r = spawnSync("strace", ["-f", "-o", log, "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", process.execPath, "-e", js], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const calls = fs.readFileSync(log, "utf8").split("\n");
    const renamed = calls.findIndex((l) => /rename\w*\(.*init-layers\/[0-9a-f]{16}#tmp-/.test(l));
    expect(renamed).not.toBe(-1);
    // An image with nothing: proc, dev, sys, .berth, .berth/exit, .berth/busybox, etc and its three files; the layer.
    expect(calls.slice(0, renamed).filter((l) => /fsync\(/.test(l)).length).toBeGreaterThanOrEqual(11);
    expect(calls.slice(renamed).filter((l) => /fsync\(/.test(l)).length).toBeGreaterThanOrEqual(1);
    expect(fs.readdirSync(initLayersDir(fresh))).toHaveLength(1);
  });
});
