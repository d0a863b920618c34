// A hostile or failing registry seen by the streaming pull (ContentStore.fetchLayers): whatever it sends, the pull
// ends with a clear error and leaves no blob, layer or staging file behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { createGzip, gzipSync } from "node:zlib";
import { realHost } from "../../native";
import { layout } from "../../native/paths";
import { ContentStore, sha256Bytes } from "../../native/image/store";
import { MediaType, type Descriptor } from "../../native/image/oci";
import { writeTar } from "../../native/image/tar";
import { pull } from "../../native/registry/transfer";
import * as http from "node:http";

let T: string;
let store: ContentStore;

beforeAll(() => {
  T = fs.mkdtempSync(path.join(os.tmpdir(), "berth-pull-hostile-"));
  store = new ContentStore(realHost, layout(path.join(T, "state"), path.join(T, "run")), async () => []);
});
afterAll(() => fs.rmSync(T, { recursive: true, force: true }));

async function layer(name: string): Promise<{ desc: Descriptor; diffId: string; blob: Buffer }> {
  const chunks: Buffer[] = [];
  const header = { type: "file" as const, path: name, mode: 0o644, uid: 0, gid: 0, size: 2, mtime: 946684800, linkname: "", devmajor: 0, devminor: 0 };
  for await (const c of writeTar([{ header, data: () => Buffer.from("hi") }])) chunks.push(c as Buffer);
  const tar = Buffer.concat(chunks);
  const blob = gzipSync(tar);
  return { desc: { mediaType: MediaType.layerGzip, digest: sha256Bytes(blob), size: blob.length }, diffId: sha256Bytes(tar), blob };
}

/** Whatever the store holds besides empty directories. */
const leftovers = () => {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && !["blobs", "sha256", "layers", "ingest", "state", "locks", "leases"].includes(e.name)) out.push(p);
      else if (e.isDirectory()) walk(p);
      else if (!p.includes(`${path.sep}locks${path.sep}`) && !p.includes(`${path.sep}leases${path.sep}`)) out.push(p);
    }
  };
  walk(path.join(T, "state"));
  return out;
};

describe("streaming pull against a failing registry", () => {
  it("ends with the registry's error when a blob's request fails (the unpack waiting for its bytes is not left waiting)", async () => {
    const l = await layer("a");
    const pulled = store.leased(() =>
      store.fetchLayers([l.desc], [l.diffId], "hostile:1", "127.0.0.1:1", async () => {
        await new Promise((r) => setTimeout(r, 50));
        throw new Error("blob unknown to registry");
      }),
    );
    const outcome = await Promise.race([pulled.then(() => "done", (e: Error) => e.message), new Promise((r) => setTimeout(() => r("hung"), 3000))]);
    expect(outcome).toMatch(/blob unknown/);
    expect(leftovers()).toEqual([]);
  });

  /** An endless body, as a hostile registry may send for any blob: gzip of endless zeros (a tar's end, then padding). */
  const endless = () =>
    Readable.from(
      (function* () {
        for (;;) yield Buffer.alloc(1 << 16);
      })(),
    ).pipe(createGzip());
  const within = <T>(p: Promise<T>, ms = 5000) =>
    Promise.race([p.then(() => "done", (e: Error) => e.message), new Promise<string>((r) => setTimeout(() => r("still running"), ms))]);

  it("refuses a layer whose descriptor gives no size before downloading it (an endless blob would fill the disk)", async () => {
    const l = await layer("b");
    const { size: _, ...sizeless } = l.desc;
    let opened = 0;
    const outcome = await within(store.leased(() => store.fetchLayers([sizeless as Descriptor], [l.diffId], "hostile:2", "127.0.0.1:1", async () => (opened++, endless()))));
    expect(outcome).toMatch(/hostile:2.*size/);
    expect(opened).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  it("stops an endless layer blob at its descriptor's size", async () => {
    const l = await layer("c");
    const outcome = await within(store.leased(() => store.fetchLayers([l.desc], [l.diffId], "hostile:3", "127.0.0.1:1", async () => endless())));
    expect(outcome).toMatch(/digest mismatch/);
    expect(leftovers()).toEqual([]);
  });

  it("refuses a manifest whose config descriptor gives no size before downloading the config", async () => {
    // A registry on loopback whose manifest leaves out the config's size, and whose every blob is endless.
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.manifest, config: { mediaType: MediaType.config, digest: `sha256:${"1".repeat(64)}` }, layers: [] }));
    let blobs = 0;
    const server = http.createServer((req, res) => {
      if (req.url!.includes("/manifests/")) {
        res.writeHead(200, { "content-type": MediaType.manifest });
        return res.end(manifest);
      }
      blobs++;
      res.writeHead(200);
      endless().pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const registry = `127.0.0.1:${(server.address() as { port: number }).port}`;
      const outcome = await within(store.leased(() => pull(store, `${registry}/app:1`, { insecure: true })));
      expect(outcome).toMatch(/config.*size/);
      expect(blobs).toBe(0);
      expect(leftovers()).toEqual([]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("refuses a config without rootfs.diff_ids, or a manifest without layers, saying so", async () => {
    const config = Buffer.from("{}");
    const configDesc = { mediaType: MediaType.config, digest: sha256Bytes(config), size: config.length };
    const manifests: Record<string, Buffer> = {
      norootfs: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.manifest, config: configDesc, layers: [] })),
      nolayers: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.manifest, config: configDesc })),
    };
    const server = http.createServer((req, res) => {
      const m = /\/v2\/(\w+)\/manifests\//.exec(req.url!);
      res.writeHead(200, m ? { "content-type": MediaType.manifest } : {});
      res.end(m ? manifests[m[1]] : config);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const registry = `127.0.0.1:${(server.address() as { port: number }).port}`;
      const pulled = (repo: string) => within(store.leased(() => pull(store, `${registry}/${repo}:1`, { insecure: true })));
      expect(await pulled("norootfs")).toMatch(/norootfs:1 from .*: its config .*rootfs\.diff_ids/);
      expect(await pulled("nolayers")).toMatch(/nolayers:1 from .*: its manifest .*layers/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("refuses a zstd layer, a malformed layer digest or diff id before downloading a layer: naming image, registry, layer and the fix", async () => {
    const l = await layer("e");
    const before = leftovers(); // an earlier test's config
    const config = (diffIds: string[]) => Buffer.from(JSON.stringify({ rootfs: { type: "layers", diff_ids: diffIds } }));
    const configs: Record<string, Buffer> = { zstd: config([l.diffId]), baddigest: config([l.diffId]), baddiff: config(["sha256:../../etc"]), notar: config([l.diffId]) };
    const layers: Record<string, Descriptor> = {
      zstd: { ...l.desc, mediaType: "application/vnd.oci.image.layer.v1.tar+zstd" },
      baddigest: { ...l.desc, digest: "sha256:../../../x" },
      baddiff: l.desc,
      notar: { ...l.desc, mediaType: MediaType.layer }, // gzip bytes said to be a plain tar
    };
    const manifest = (repo: string) => {
      const c = configs[repo];
      return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.manifest, config: { mediaType: MediaType.config, digest: sha256Bytes(c), size: c.length }, layers: [layers[repo]] }));
    };
    let layerRequests = 0;
    const server = http.createServer((req, res) => {
      const m = /\/v2\/(\w+)\/(manifests|blobs)\/(.*)/.exec(req.url!)!;
      if (m[2] === "manifests") {
        res.writeHead(200, { "content-type": MediaType.manifest });
        return res.end(manifest(m[1]));
      }
      if (m[3] !== sha256Bytes(configs[m[1]])) layerRequests++;
      res.writeHead(200);
      res.end(m[3] === sha256Bytes(configs[m[1]]) ? configs[m[1]] : l.blob);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const registry = `127.0.0.1:${(server.address() as { port: number }).port}`;
      const pulled = (repo: string) => within(store.leased(() => pull(store, `${registry}/${repo}:1`, { insecure: true })));
      const from = `from ${registry.replace(/\./g, "\\.")}`;
      expect(await pulled("zstd")).toMatch(new RegExp(`^image ${registry}/zstd:1 ${from}: layer ${l.desc.digest} is compressed with zstd .*: pull a variant .* gzip`));
      expect(await pulled("baddigest")).toMatch(new RegExp(`^image ${registry}/baddigest:1 ${from}: .*layer 1 .*"sha256:\\.\\./\\.\\./\\.\\./x".*not a sha256 digest.*push it again`));
      expect(await pulled("baddiff")).toMatch(new RegExp(`^image ${registry}/baddiff:1 ${from}: .*diff_ids.*"sha256:\\.\\./\\.\\./etc".*layer ${l.desc.digest}.*not a sha256 digest.*push it again`));
      expect(layerRequests).toBe(0);
      // A layer that is no tar fails in the tar reader, whose words name no image.
      expect(await pulled("notar")).toMatch(new RegExp(`^image ${registry}/notar:1 ${from}: layer ${l.desc.digest} \\(${MediaType.layer}\\) cannot be unpacked: .*push it again`));
      // Only the configs (proven by their digest; they name the diff ids) are in the store, for garbage collection.
      const configBlobs = Object.values(configs).map((c) => sha256Bytes(c).slice("sha256:".length));
      expect(leftovers().filter((p) => !before.includes(p) && !configBlobs.includes(path.basename(p)))).toEqual([]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("takes a manifest listing one layer twice: one blob, one layer, nothing staged left", async () => {
    const l = await layer("d");
    let opened = 0;
    await store.leased(() => store.fetchLayers([l.desc, l.desc], [l.diffId, l.diffId], "twice:1", "127.0.0.1:1", async () => (opened++, Readable.from([l.blob]))));
    expect(fs.existsSync(store.blobPath(l.desc.digest))).toBe(true);
    expect(fs.readdirSync(path.join(T, "state", "ingest"))).toEqual([]);
  });
});

describe("a push's gzip record (ContentStore.gzipOf, recordGzip)", () => {
  it("is named only by a digest: one that is not (a path) is refused, nothing written or read outside", async () => {
    const gzip: Descriptor = { mediaType: MediaType.layerGzip, digest: `sha256:${"a".repeat(64)}`, size: 10 };
    const outside = path.join(T, "outside");
    const bad = `sha256:../../${path.basename(outside)}`;
    await expect(store.recordGzip(bad, gzip)).rejects.toThrow(/invalid digest/);
    expect(fs.existsSync(outside)).toBe(false);
    fs.writeFileSync(outside, JSON.stringify(gzip));
    await expect(store.gzipOf(bad)).rejects.toThrow(/invalid digest/);
    const good = `sha256:${"b".repeat(64)}`;
    await store.recordGzip(good, gzip);
    expect(await store.gzipOf(good)).toEqual(gzip);
  });
});
