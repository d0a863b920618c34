// A content-addressed image store laid out as an OCI image layout (index.json + blobs/sha256), plus each layer
// unpacked once into layers/<diff id hex>, shared by every image and container built on it. Writes go to a temp
// name and are renamed into place once their digest is proven, so a crash never leaves a half-written blob or
// layer under its final name.
import * as fs from "node:fs";
import * as path from "node:path";
import { createGunzip } from "node:zlib";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import type { ImageInfo, ImportRootfsRequest } from "../runtime";
import type { Host } from "../host/exec";
import type { Paths } from "../paths";
import { KeyedMutex } from "../mutex";
import { readJson, writeJson, listDir } from "../json-file";
import {
  MediaType,
  REF_ANNOTATION,
  fromOciConfig,
  isGzip,
  normalizeRef,
  toOciConfig,
  type Descriptor,
  type OciImageConfig,
  type OciIndex,
  type OciManifest,
} from "./oci";
import { unpackLayer } from "./unpack";

export const sha256Bytes = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

const tempName = (dir: string, what: string): string =>
  path.join(dir, `${what}-${process.pid}-${randomBytes(4).toString("hex")}`);

/** Passes chunks through while hashing them; digest() once the stream is consumed. */
export function hashing(source: AsyncIterable<Buffer> | Iterable<Buffer>): { stream: AsyncIterable<Buffer>; digest(): string; size(): number } {
  const hash = createHash("sha256");
  let size = 0;
  let result: string | undefined;
  return {
    stream: (async function* () {
      for await (const chunk of source) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
      result = `sha256:${hash.digest("hex")}`;
    })(),
    digest: () => result ?? (() => { throw new Error("stream not fully read"); })(),
    size: () => size,
  };
}

/** Blobs and layers kept alive outside any image (a build cache entry, a build under way), with what they mean. */
export interface Lease<T = unknown> {
  blobs: string[];
  layers: string[];
  data?: T;
}

/** A stored image: what inspect says, plus its manifest and full config. */
export interface StoredImage {
  info: ImageInfo;
  manifest: OciManifest;
  config: OciImageConfig;
}

export class ContentStore {
  // Writing index.json and garbage-collecting must not interleave.
  private readonly lock = new KeyedMutex();

  constructor(
    private readonly host: Host,
    readonly paths: Paths,
    /** Diff ids of the layers existing containers are built on: never collected. */
    private readonly layersInUse: () => Promise<Set<string>>,
  ) {}

  async importRootfs(req: ImportRootfsRequest): Promise<ImageInfo> {
    const ref = normalizeRef(req.ref);
    const stat = await fs.promises.stat(req.tarball).catch(() => undefined);
    if (!stat?.isFile()) {
      throw new Error(`image tarball "${req.tarball}" not found: expected a tar of a root filesystem`);
    }
    const layer = await this.ingest(fs.createReadStream(req.tarball), { mediaType: MediaType.layer });
    return this.commit(ref, toOciConfig(req.config, [layer.digest]), [layer]);
  }

  async inspect(refOrId: string): Promise<ImageInfo | undefined> {
    return (await this.image(refOrId))?.info;
  }

  /** An image by ref ("name" meaning "name:latest") or by id ("sha256:…" or its hex). */
  async image(refOrId: string): Promise<StoredImage | undefined> {
    const index = await this.readIndex();
    const id = /^(sha256:)?[0-9a-f]{64}$/.test(refOrId) ? refOrId.replace(/^(sha256:)?/, "sha256:") : undefined;
    const wanted = id === undefined ? normalizeRef(refOrId) : undefined;
    for (const m of index.manifests) {
      const ref = m.annotations?.[REF_ANNOTATION];
      if (!ref || (wanted !== undefined && ref !== wanted)) continue;
      const image = await this.describe(ref, m.digest);
      if (wanted !== undefined || image.info.id === id) return image;
    }
    return undefined;
  }

  /** Every stored ref. */
  async refs(): Promise<string[]> {
    return (await this.readIndex()).manifests.flatMap((m) => m.annotations?.[REF_ANNOTATION] ?? []);
  }

  async remove(ref: string): Promise<void> {
    const name = normalizeRef(ref);
    await this.lock.run("store", async () => {
      const index = await this.readIndex();
      const kept = index.manifests.filter((m) => m.annotations?.[REF_ANNOTATION] !== name);
      if (kept.length !== index.manifests.length) await writeJson(this.paths.imageIndex, { ...index, manifests: kept });
      await this.collectGarbage();
    });
  }

  /** Gives an image a second name (Docker's `tag`). */
  async tag(source: string, ref: string): Promise<ImageInfo> {
    const image = await this.image(source);
    if (!image) throw new Error(`cannot tag "${source}": no such image in berth's store`);
    const name = normalizeRef(ref);
    await this.lock.run("store", () =>
      this.setRef(name, { mediaType: image.manifest.mediaType ?? MediaType.manifest, digest: image.info.manifestDigest, size: fs.statSync(this.blobPath(image.info.manifestDigest)).size }),
    );
    return { ...image.info, ref: name };
  }

  /** Deletes blobs and layers no image and no container uses (e.g. once the last container of a removed image goes). */
  prune(): Promise<void> {
    return this.lock.run("store", () => this.collectGarbage());
  }

  /** Unpacked layer directories of an image, top layer first (overlayfs lowerdir order). */
  layerDirs(info: Pick<ImageInfo, "layers">): string[] {
    return [...info.layers].reverse().map((d) => this.paths.layer(d));
  }

  private leaseFile(id: string): string {
    return path.join(this.paths.root, "leases", `${id}.json`);
  }

  async putLease(id: string, lease: Lease): Promise<void> {
    await fs.promises.mkdir(path.dirname(this.leaseFile(id)), { recursive: true });
    await writeJson(this.leaseFile(id), lease);
  }

  readLease<T>(id: string): Promise<Lease<T> | undefined> {
    return readJson<Lease<T>>(this.leaseFile(id));
  }

  async dropLease(id: string): Promise<void> {
    await fs.promises.rm(this.leaseFile(id), { force: true });
  }

  blobPath(digest: string): string {
    return this.paths.blob(digest);
  }

  hasBlob(digest: string): boolean {
    return fs.existsSync(this.paths.blob(digest));
  }

  async readBlobJson<T>(digest: string): Promise<T> {
    const value = await readJson<T>(this.paths.blob(digest));
    if (value === undefined) throw new Error(`image store is damaged: blob ${digest} is missing`);
    return value;
  }

  /**
   * Writes a blob from a stream. With an expected digest the content is verified before it gets its name (a
   * mismatch is refused and leaves nothing behind); a blob already present is not written again.
   */
  async ingest(source: AsyncIterable<Buffer> | Iterable<Buffer>, expect: { mediaType: string; digest?: string }): Promise<Descriptor> {
    if (expect.digest && this.hasBlob(expect.digest)) {
      return { mediaType: expect.mediaType, digest: expect.digest, size: fs.statSync(this.blobPath(expect.digest)).size };
    }
    await fs.promises.mkdir(this.paths.ingest, { recursive: true });
    await fs.promises.mkdir(this.paths.blobs, { recursive: true });
    const tmp = tempName(this.paths.ingest, "blob");
    const h = hashing(source);
    try {
      await fs.promises.writeFile(tmp, Readable.from(h.stream));
      const digest = h.digest();
      if (expect.digest && digest !== expect.digest) {
        throw new Error(`digest mismatch: expected ${expect.digest}, the content is ${digest}`);
      }
      await fs.promises.rename(tmp, this.paths.blob(digest));
      return { mediaType: expect.mediaType, digest, size: h.size() };
    } finally {
      await fs.promises.rm(tmp, { force: true });
    }
  }

  async putJson(mediaType: string, value: unknown): Promise<Descriptor> {
    return this.ingest([Buffer.from(JSON.stringify(value))], { mediaType });
  }

  /** Moves a directory already in unpacked-layer form (an overlay upper dir) into place as the layer diffId. */
  async adoptLayer(dir: string, diffId: string): Promise<void> {
    const dest = this.paths.layer(diffId);
    await fs.promises.mkdir(this.paths.layers, { recursive: true });
    if (fs.existsSync(dest)) return fs.promises.rm(dir, { recursive: true, force: true });
    await fs.promises.rename(dir, dest);
  }

  /** Stores config and manifest for layers whose blobs are in the store, unpacks what is not yet, and names it. */
  async commit(ref: string, config: OciImageConfig, layers: Descriptor[]): Promise<ImageInfo> {
    const configDesc = await this.putJson(MediaType.config, config);
    const manifest: OciManifest = { schemaVersion: 2, mediaType: MediaType.manifest, config: configDesc, layers };
    return this.commitManifest(ref, Buffer.from(JSON.stringify(manifest)));
  }

  /** Names an image by its manifest's exact bytes (so a pulled image keeps its registry digest). */
  async commitManifest(ref: string, raw: Buffer): Promise<ImageInfo> {
    const name = normalizeRef(ref);
    const manifest = JSON.parse(raw.toString()) as OciManifest;
    const config = await this.readBlobJson<OciImageConfig>(manifest.config.digest);
    await this.ensureUnpacked(manifest.layers, config.rootfs.diff_ids, name);
    const desc = await this.ingest([raw], { mediaType: manifest.mediaType ?? MediaType.manifest });
    await this.lock.run("store", () => this.setRef(name, desc));
    return (await this.describe(name, desc.digest)).info;
  }

  /** Unpacks each layer not unpacked yet, bottom first, checking its content against its diff id. */
  async ensureUnpacked(layers: Descriptor[], diffIds: string[], image: string): Promise<void> {
    if (layers.length !== diffIds.length) {
      throw new Error(`image ${image}: its manifest has ${layers.length} layers but its config ${diffIds.length}`);
    }
    await fs.promises.mkdir(this.paths.layers, { recursive: true });
    await fs.promises.mkdir(this.paths.ingest, { recursive: true });
    for (const [i, layer] of layers.entries()) {
      const diffId = diffIds[i];
      const dir = this.paths.layer(diffId);
      if (fs.existsSync(dir)) continue;
      if (!this.hasBlob(layer.digest)) throw new Error(`image ${image}: layer blob ${layer.digest} is missing from the store`);
      const tmp = tempName(this.paths.ingest, "layer");
      await fs.promises.mkdir(tmp);
      try {
        const raw = fs.createReadStream(this.blobPath(layer.digest));
        const plain = hashing(isGzip(layer.mediaType) ? raw.pipe(createGunzip()) : raw);
        await unpackLayer({
          host: this.host,
          tar: plain.stream,
          dir: tmp,
          lowers: diffIds.slice(0, i).reverse().map((d) => this.paths.layer(d)),
          layer: `${layer.digest} of ${image}`,
        });
        for await (const _ of plain.stream) void _; // zero padding after the tar's end still counts
        if (plain.digest() !== diffId) {
          throw new Error(`image ${image}: layer ${layer.digest} unpacks to ${plain.digest()}, but its config says ${diffId} (digest mismatch)`);
        }
        await fs.promises.rename(tmp, dir);
      } catch (e) {
        await fs.promises.rm(tmp, { recursive: true, force: true });
        if (!fs.existsSync(dir)) throw e; // otherwise another process unpacked the same layer first
      }
    }
  }

  private async describe(ref: string, manifestDigest: string): Promise<StoredImage> {
    const manifest = await this.readBlobJson<OciManifest>(manifestDigest);
    const config = await this.readBlobJson<OciImageConfig>(manifest.config.digest);
    const info: ImageInfo = {
      ref,
      id: manifest.config.digest,
      manifestDigest,
      layers: config.rootfs.diff_ids,
      size: manifest.layers.reduce((n, l) => n + l.size, 0),
      config: fromOciConfig(config),
      ...(config.created && { created: config.created }),
    };
    return { info, manifest, config };
  }

  private async readIndex(): Promise<OciIndex> {
    const empty: OciIndex = { schemaVersion: 2, mediaType: MediaType.index, manifests: [] };
    return (await readJson<OciIndex>(this.paths.imageIndex)) ?? empty;
  }

  private async setRef(ref: string, manifest: Descriptor): Promise<void> {
    const index = await this.readIndex();
    const others = index.manifests.filter((m) => m.annotations?.[REF_ANNOTATION] !== ref);
    const entry = { ...manifest, annotations: { [REF_ANNOTATION]: ref } };
    await writeJson(this.paths.imageIndex, { ...index, manifests: [...others, entry] });
    const marker = path.join(this.paths.root, "oci-layout");
    if (!fs.existsSync(marker)) await writeJson(marker, { imageLayoutVersion: "1.0.0" });
  }

  private async collectGarbage(): Promise<void> {
    const liveLayers = new Set<string>(await this.layersInUse());
    const liveBlobs = new Set<string>();
    const leaseDir = path.join(this.paths.root, "leases");
    for (const name of await listDir(leaseDir)) {
      const lease = await readJson<Lease>(path.join(leaseDir, name));
      lease?.blobs.forEach((d) => liveBlobs.add(d));
      lease?.layers.forEach((d) => liveLayers.add(d));
    }
    for (const m of (await this.readIndex()).manifests) {
      const { manifest, config } = await this.describe("", m.digest);
      for (const d of [m.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) liveBlobs.add(d);
      for (const d of config.rootfs.diff_ids) liveLayers.add(d);
    }
    const hex = (s: Set<string>) => new Set([...s].map((d) => d.slice("sha256:".length)));
    const [blobHex, layerHex] = [hex(liveBlobs), hex(liveLayers)];
    for (const h of await listDir(this.paths.blobs)) {
      if (!blobHex.has(h)) await fs.promises.rm(path.join(this.paths.blobs, h), { force: true });
    }
    for (const h of await listDir(this.paths.layers)) {
      if (!layerHex.has(h)) await fs.promises.rm(path.join(this.paths.layers, h), { recursive: true, force: true });
    }
  }
}
