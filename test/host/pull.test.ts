// Pulls from a berth Registry (Debian's docker-registry, as the Registry resource runs it), each layer unpacked
// while it downloads: what arrives is unpacked exactly as a load of the saved image unpacks it; a blob the registry serves
// changed, or a config lying about a layer's diff id, is refused leaving nothing of that layer; two processes
// pulling one image into one root both succeed with one copy; a pull killed midway leaves staging that the next
// collection sweeps, and the next pull completes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { gunzipSync, gzipSync } from "node:zlib";
import { createNativeRuntime, type ImageInfo, type Runtime } from "../../native";
import { writeTar } from "../../native/image/tar";
import { REPO, freePort, waitFor } from "./helpers";

let tmp: string;
let rt: Runtime;
let registry: string;
let storage: string;
let regName: string;
let ref: string;
let source: ImageInfo;
/** What the registry holds: push gzips the layers berth keeps uncompressed, so its manifest is not the local one. */
let pushed: { digest: string; manifest: { config: { digest: string }; layers: Array<{ digest: string }> } };
const children: ChildProcess[] = [];

const sha256 = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const rootOf = (name: string) => path.join(tmp, name);
const runtime = (name: string) => createNativeRuntime({ root: rootOf(name), runDir: path.join(tmp, "run") });
const entries = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);
const blobFile = (digest: string) => path.join(storage, "docker/registry/v2/blobs/sha256", digest.slice(7, 9), digest.slice(7), "data");

/** Every entry under a directory with its type, mode, owner, size, link target and content digest. */
function tree(dir: string, rel = ""): string[] {
  return fs.readdirSync(path.join(dir, rel)).sort().flatMap((name) => {
    const p = path.join(rel, name);
    const st = fs.lstatSync(path.join(dir, p));
    const kind = st.isDirectory() ? "dir" : st.isSymbolicLink() ? `-> ${fs.readlinkSync(path.join(dir, p))}` : st.isFile() ? sha256(fs.readFileSync(path.join(dir, p))) : `dev ${st.rdev}`;
    const line = `${p} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? "" : st.size} ${kind}`;
    return st.isDirectory() ? [line, ...tree(dir, p)] : [line];
  });
}

/** The store under a root holds exactly this image's content, unpacked as a load of the saved image has it, and nothing staged. */
function expectWhole(name: string, info: ImageInfo): void {
  const root = rootOf(name);
  const manifest = JSON.parse(fs.readFileSync(path.join(root, "blobs/sha256", info.manifestDigest.slice(7)), "utf8"));
  const blobs = [info.manifestDigest, manifest.config.digest, ...manifest.layers.map((l: { digest: string }) => l.digest)];
  expect(entries(path.join(root, "blobs/sha256"))).toEqual(blobs.map((d) => d.slice(7)).sort());
  expect(entries(path.join(root, "layers"))).toEqual(info.layers.map((d) => d.slice(7)).sort());
  for (const d of info.layers) expect(tree(path.join(root, "layers", d.slice(7)))).toEqual(tree(path.join(rootOf("loaded"), "layers", d.slice(7))));
  expect(entries(path.join(root, "ingest"))).toEqual([]);
  expect(entries(path.join(root, "leases"))).toEqual([]);
}

/** Nothing but what was there before the failed pull: no blob, layer, name or staging left of it. */
async function expectNothing(name: string): Promise<void> {
  const other = runtime(name);
  expect(await other.images.inspect(ref)).toBeUndefined();
  expect(entries(path.join(rootOf(name), "ingest"))).toEqual([]);
  await other.system.prune();
  expect(entries(path.join(rootOf(name), "blobs/sha256"))).toEqual([]);
  expect(entries(path.join(rootOf(name), "layers"))).toEqual([]);
}

/** A node process pulling into a root; resolves to the pulled image. */
function pullIn(name: string, image: string): { child: ChildProcess; done: Promise<ImageInfo> } {
  const script = `const { createNativeRuntime } = require(${JSON.stringify(path.join(REPO, "dist/native"))});
createNativeRuntime(${JSON.stringify({ root: rootOf(name), runDir: path.join(tmp, "run") })}).images.pull(${JSON.stringify(image)})
  .then((i) => console.log(JSON.stringify(i)), (e) => { console.error(e.stack); process.exit(1); });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const done = new Promise<ImageInfo>((resolve, reject) =>
    child.on("close", (code, signal) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`pull ended ${signal ?? code}: ${err}`)))),
  );
  return { child, done };
}

/** Puts a blob and a manifest into the registry through its API, as a hostile pusher would. */
async function upload(repository: string, tag: string, blobs: Buffer[], manifest: object): Promise<void> {
  for (const blob of blobs) {
    const start = await fetch(`http://${registry}/v2/${repository}/blobs/uploads/`, { method: "POST" });
    const location = new URL(start.headers.get("location")!, `http://${registry}`);
    location.searchParams.set("digest", sha256(blob));
    const put = await fetch(location, { method: "PUT", body: blob, headers: { "content-type": "application/octet-stream" } });
    expect(put.status).toBe(201);
  }
  const body = JSON.stringify(manifest);
  const put = await fetch(`http://${registry}/v2/${repository}/manifests/${tag}`, { method: "PUT", body, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } });
  expect(put.status).toBe(201);
}

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-test-pull-");
  rt = runtime("src");
  const tar = path.join(tmp, "busybox.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
  await rt.images.importRootfs({ ref: "busybox:latest", tarball: tar, config: { cmd: ["sh"] } });
  const ctx = path.join(tmp, "ctx");
  fs.mkdirSync(ctx);
  // Random bytes gzip cannot shrink: the big layer takes a while to cross.
  fs.writeFileSync(path.join(ctx, "big"), randomBytes(6 << 20));
  fs.writeFileSync(path.join(ctx, "small"), "small\n");
  // Four layers: the lower ones matter to the upper ones' unpack (a whiteout of a busybox file, a file in a new directory).
  fs.writeFileSync(path.join(ctx, "Dockerfile"), "FROM busybox\nCOPY big /data/big\nRUN --network=none rm /bin/ls && mkdir /d && echo one > /d/x\nCOPY small /d/y\n");
  const port = await freePort();
  registry = `127.0.0.1:${port}`;
  regName = `berth-test-pullreg-${port}`;
  storage = (await rt.volumes.create({ name: regName })).mountpoint;
  await rt.registries.ensure({ name: regName, address: "127.0.0.1", port, storage });
  ref = `${registry}/pull-test:1`;
  source = (await rt.images.build({ ref, context: ctx })).info;
  expect(source.layers).toHaveLength(4);
  const digest = (await rt.images.push(ref, ref)).split("@")[1];
  pushed = { digest, manifest: JSON.parse(fs.readFileSync(blobFile(digest), "utf8")) };
  // The reference: the same image saved and loaded, each layer unpacked from its whole blob.
  await rt.images.save([ref], path.join(tmp, "saved.tar"));
  await runtime("loaded").images.load(path.join(tmp, "saved.tar"));
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await rt?.registries.remove(regName).catch(() => undefined);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("pull from a berth Registry", () => {
  it("unpacks every layer as a load of the same image does, whiteouts included", async () => {
    const pulled = await runtime("one").images.pull(ref);
    expect(pulled).toMatchObject({ id: source.id, manifestDigest: pushed.digest, layers: source.layers });
    expectWhole("one", pulled);
    expect(fs.lstatSync(path.join(rootOf("one"), "layers", source.layers[2].slice(7), "bin/ls")).isCharacterDevice()).toBe(true);
  }, 60_000);

  it("refuses a layer blob the registry serves changed and leaves nothing of it", async () => {
    const manifest = pushed.manifest;
    const big = manifest.layers[1].digest as string;
    const original = fs.readFileSync(blobFile(big));
    const flipped = Buffer.from(original);
    for (let i = 0; i < 64; i++) flipped[(original.length >> 1) + i] ^= 0xff;
    const other = gzipSync(Buffer.concat([...(await writeTar([{ header: { path: "planted", type: "file", mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 0, linkname: "", devmajor: 0, devminor: 0 }, data: () => Buffer.from("hi\n") }]).toArray())]));
    try {
      // Bytes changed in place, another layer, and the same layer with another gzip header (the OS byte): its
      // content is right, its blob is not what the manifest names.
      const reheaded = Buffer.from(original);
      reheaded[9] ^= 1;
      expect(gunzipSync(reheaded).equals(gunzipSync(original))).toBe(true);
      for (const [i, served] of [flipped, other, reheaded].entries()) {
        fs.writeFileSync(blobFile(big), served);
        const name = `tampered${i}`;
        await expect(runtime(name).images.pull(ref)).rejects.toThrow(new RegExp(`^digest mismatch: layer ${big} of ${registry}/pull-test:1 from ${registry} is sha256:`));
        expect(fs.existsSync(path.join(rootOf(name), "blobs/sha256", big.slice(7)))).toBe(false);
        expect(fs.existsSync(path.join(rootOf(name), "layers", source.layers[1].slice(7)))).toBe(false);
        await expectNothing(name);
      }
    } finally {
      fs.writeFileSync(blobFile(big), original);
    }
  }, 60_000);

  it("refuses a layer whose content is not the diff id its config names, leaving nothing of it", async () => {
    const manifest = pushed.manifest;
    const config = JSON.parse(fs.readFileSync(path.join(rootOf("src"), "blobs/sha256", source.id.slice(7)), "utf8"));
    config.rootfs.diff_ids[3] = sha256("not this layer");
    const lie = Buffer.from(JSON.stringify(config));
    const layers = manifest.layers.map((l: { digest: string }) => fs.readFileSync(blobFile(l.digest)));
    await upload("liar", "1", [lie, ...layers], { ...manifest, config: { ...manifest.config, digest: sha256(lie), size: lie.length } });
    await expect(runtime("liar").images.pull(`${registry}/liar:1`)).rejects.toThrow(/layer sha256:\w+ unpacks to sha256:\w+, but its config says sha256:\w+ \(digest mismatch\)/);
    expect(fs.existsSync(path.join(rootOf("liar"), "blobs/sha256", manifest.layers[3].digest.slice(7)))).toBe(false);
    await expectNothing("liar");
  }, 60_000);

  it("lets two processes pull one image into one root at once: both succeed, one copy kept", async () => {
    const [a, b] = await Promise.all([pullIn("shared", ref).done, pullIn("shared", ref).done]);
    expect(a.id).toBe(source.id);
    expect(b.id).toBe(source.id);
    expectWhole("shared", a);
    expect(await runtime("shared").images.inspect(ref)).toMatchObject({ id: source.id });
  }, 60_000);

  it("leaves a pull killed midway as staging the next collection sweeps, and the next pull completes", async () => {
    const manifest = pushed.manifest;
    const big = manifest.layers[1].digest as string;
    // A relay that stops the big layer after its first MiB, so the pull is caught midway, unpacking it.
    let stalled!: () => void;
    const stall = new Promise<void>((resolve) => (stalled = resolve));
    const relay = http.createServer((req, res) => {
      const up = http.request({ host: "127.0.0.1", port: Number(registry.split(":")[1]), path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        res.on("close", () => answer.destroy());
        if (!req.url!.endsWith(`/blobs/${big}`)) return answer.pipe(res);
        let sent = 0;
        answer.on("data", (chunk: Buffer) => {
          if (sent >= 1 << 20) return;
          res.write(chunk);
          sent += chunk.length;
          if (sent >= 1 << 20) (answer.pause(), stalled());
        });
      });
      up.on("error", () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const relayed = `127.0.0.1:${(relay.address() as { port: number }).port}/pull-test:1`;
    const ingest = path.join(rootOf("killed"), "ingest");
    try {
      const { child, done } = pullIn("killed", relayed);
      await stall;
      const staged = await waitFor("the big layer's unpack to start", () => {
        const names = entries(ingest).filter((n) => n.startsWith(`layer-${child.pid}-`));
        return names.length > 0 && entries(path.join(ingest, names[0])).length > 0 ? names : undefined;
      }, 20_000);
      child.kill("SIGKILL");
      await expect(done).rejects.toThrow(/SIGKILL/);
      expect(staged.length).toBe(1);
      expect(entries(ingest)).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^blob-${child.pid}-`))]));
    } finally {
      relay.closeAllConnections();
      relay.close();
    }
    const after = runtime("killed");
    expect(await after.images.inspect(relayed)).toBeUndefined();
    // The next collection (any process's) sweeps what the dead pull staged and drops its lease.
    await after.system.prune();
    expect(entries(ingest)).toEqual([]);
    expect(entries(path.join(rootOf("killed"), "leases"))).toEqual([]);
    expectWhole("killed", await after.images.pull(ref));
  }, 90_000);
});
