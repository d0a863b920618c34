// The content store on a temp root: import of the busybox rootfs, stable ids, sharing and garbage collection.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createNativeRuntime } from "../../native";
import type { Runtime } from "../../native";

let root: string;
let tarball: string;
let rt: Runtime;

beforeAll(() => {
  root = fs.mkdtempSync("/tmp/berth-test-");
  tarball = path.join(root, "busybox-rootfs.tar");
  execFileSync(path.join(__dirname, "../../scripts/busybox-rootfs.sh"), [tarball]);
  rt = createNativeRuntime({ root: path.join(root, "state") });
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const sha256 = (file: string): string => createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const layersDir = (): string => path.join(root, "state", "layers");
const blobsDir = (): string => path.join(root, "state", "blobs", "sha256");

describe("image store", () => {
  it("imports a rootfs with a stable id, and re-imports without unpacking again", async () => {
    const config = { cmd: ["sh"], env: ["A=1"], exposedPorts: ["80/tcp"] };
    const first = await rt.images.importRootfs({ ref: "base:latest", tarball, config });
    expect(first.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(first.layers).toEqual([`sha256:${sha256(tarball)}`]);
    expect(first.size).toBe(fs.statSync(tarball).size);
    expect(first.config).toEqual(config);
    const layerDir = path.join(layersDir(), first.layers[0].slice(7));
    expect(fs.existsSync(path.join(layerDir, "bin/busybox"))).toBe(true);
    expect(fs.lstatSync(path.join(layerDir, "bin/sh")).isSymbolicLink()).toBe(true);
    const before = fs.statSync(layerDir).ino;

    const second = await rt.images.importRootfs({ ref: "base:latest", tarball, config });
    expect(second).toEqual(first);
    expect(fs.statSync(layerDir).ino).toBe(before);
  });

  it("stores every blob under the sha256 of its content", async () => {
    for (const hex of fs.readdirSync(blobsDir())) expect(sha256(path.join(blobsDir(), hex))).toBe(hex);
    expect(fs.readdirSync(path.join(root, "state", "ingest"))).toEqual([]);
  });

  it("finds an image by ref, by ref without tag, and by id", async () => {
    const info = (await rt.images.inspect("base:latest"))!;
    expect(await rt.images.inspect("base")).toEqual(info);
    expect(await rt.images.inspect(info.id)).toEqual(info);
    expect(await rt.images.inspect(info.id.slice(7))).toEqual(info);
    expect(await rt.images.inspect("nope:latest")).toBeUndefined();
  });

  it("shares the layer between images and collects it only when the last ref goes", async () => {
    const other = await rt.images.importRootfs({ ref: "other:1", tarball, config: { cmd: ["true"] } });
    const base = (await rt.images.inspect("base"))!;
    expect(other.id).not.toBe(base.id);
    expect(other.layers).toEqual(base.layers);
    expect(fs.readdirSync(layersDir())).toHaveLength(1);

    await rt.images.remove("base:latest");
    expect(await rt.images.inspect("base")).toBeUndefined();
    expect(fs.readdirSync(layersDir())).toHaveLength(1);
    expect(fs.existsSync(path.join(blobsDir(), base.id.slice(7)))).toBe(false);

    await rt.images.remove("other:1");
    await rt.images.remove("other:1");
    expect(fs.readdirSync(layersDir())).toEqual([]);
    expect(fs.readdirSync(blobsDir())).toEqual([]);
  });

  it("names a missing tarball and a bad ref", async () => {
    await expect(rt.images.importRootfs({ ref: "x", tarball: "/nonexistent.tar", config: {} })).rejects.toThrow(
      'image tarball "/nonexistent.tar" not found',
    );
    await expect(rt.images.importRootfs({ ref: "has space", tarball, config: {} })).rejects.toThrow(
      'invalid reference format: "has space" is not an image name',
    );
  });
});
