// A content-addressed image store laid out as an OCI image layout (index.json + blobs/sha256), plus each layer
// unpacked once into layers/<diff id hex>. Writes go to a temp name and are renamed into place, so a crash never
// leaves a half-written blob or layer under its final name.
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import type { ImageInfo, ImageStore, ImportRootfsRequest } from "../runtime";
import type { Host } from "../host/exec";
import type { Paths } from "../paths";
import { KeyedMutex } from "../mutex";
import { readJson, writeJson, listDir } from "../json-file";
import {
  MediaType,
  REF_ANNOTATION,
  fromOciConfig,
  normalizeRef,
  toOciConfig,
  type Descriptor,
  type OciImageConfig,
  type OciIndex,
  type OciManifest,
} from "./oci";

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(fs.createReadStream(file), hash);
  return `sha256:${hash.digest("hex")}`;
}

const sha256Bytes = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

const tempName = (dir: string, what: string): string =>
  path.join(dir, `${what}-${process.pid}-${randomBytes(4).toString("hex")}`);

export class ContentStore implements ImageStore {
  // Import and remove both rewrite index.json and garbage-collect; they must not interleave.
  private readonly lock = new KeyedMutex();

  constructor(
    private readonly host: Host,
    private readonly paths: Paths,
    /** Diff ids of the layers existing containers are built on: never collected. */
    private readonly layersInUse: () => Promise<Set<string>>,
  ) {}

  async importRootfs(req: ImportRootfsRequest): Promise<ImageInfo> {
    const ref = normalizeRef(req.ref);
    const stat = await fs.promises.stat(req.tarball).catch(() => undefined);
    if (!stat?.isFile()) {
      throw new Error(`image tarball "${req.tarball}" not found: expected a tar of a root filesystem`);
    }
    return this.lock.run("store", async () => {
      await fs.promises.mkdir(this.paths.blobs, { recursive: true });
      await fs.promises.mkdir(this.paths.ingest, { recursive: true });
      const layer = await this.ingestFile(req.tarball);
      await this.unpack(layer.digest);
      const config = await this.putJson(MediaType.config, toOciConfig(req.config, [layer.digest]));
      const manifest: OciManifest = {
        schemaVersion: 2,
        mediaType: MediaType.manifest,
        config,
        layers: [{ ...layer, mediaType: MediaType.layer }],
      };
      const manifestDesc = await this.putJson(MediaType.manifest, manifest);
      await this.setRef(ref, manifestDesc);
      return this.describe(ref, manifestDesc.digest);
    });
  }

  async inspect(refOrId: string): Promise<ImageInfo | undefined> {
    const index = await this.readIndex();
    const id = /^(sha256:)?[0-9a-f]{64}$/.test(refOrId) ? refOrId.replace(/^(sha256:)?/, "sha256:") : undefined;
    for (const m of index.manifests) {
      const ref = m.annotations?.[REF_ANNOTATION];
      if (!ref) continue;
      if (id === undefined) {
        if (ref === normalizeRef(refOrId)) return this.describe(ref, m.digest);
        continue;
      }
      const info = await this.describe(ref, m.digest);
      if (info.id === id) return info;
    }
    return undefined;
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

  /** Deletes blobs and layers no image and no container uses (e.g. once the last container of a removed image goes). */
  prune(): Promise<void> {
    return this.lock.run("store", () => this.collectGarbage());
  }

  /** Unpacked layer directories of an image, top layer first (overlayfs lowerdir order). */
  layerDirs(info: ImageInfo): string[] {
    return [...info.layers].reverse().map((d) => this.paths.layer(d));
  }

  private async describe(ref: string, manifestDigest: string): Promise<ImageInfo> {
    const manifest = await this.readBlobJson<OciManifest>(manifestDigest);
    const config = await this.readBlobJson<OciImageConfig>(manifest.config.digest);
    return {
      ref,
      id: manifest.config.digest,
      manifestDigest,
      layers: config.rootfs.diff_ids,
      size: manifest.layers.reduce((n, l) => n + l.size, 0),
      config: fromOciConfig(config),
    };
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

  private async readBlobJson<T>(digest: string): Promise<T> {
    const value = await readJson<T>(this.paths.blob(digest));
    if (value === undefined) throw new Error(`image store is damaged: blob ${digest} is missing`);
    return value;
  }

  /** Moves a written temp file to blobs/sha256/<hex> once its content is proven to have the expected digest. */
  private async commit(tmp: string, expected: string): Promise<void> {
    const actual = await sha256File(tmp);
    if (actual !== expected) {
      await fs.promises.rm(tmp, { force: true });
      throw new Error(`blob digest mismatch: expected ${expected}, wrote ${actual}`);
    }
    await fs.promises.rename(tmp, this.paths.blob(expected));
  }

  private async ingestFile(file: string): Promise<Descriptor> {
    const digest = await sha256File(file);
    const size = (await fs.promises.stat(file)).size;
    if (!fs.existsSync(this.paths.blob(digest))) {
      const tmp = tempName(this.paths.ingest, "blob");
      await fs.promises.copyFile(file, tmp);
      await this.commit(tmp, digest);
    }
    return { mediaType: MediaType.layer, digest, size };
  }

  private async putJson(mediaType: string, value: unknown): Promise<Descriptor> {
    const bytes = Buffer.from(JSON.stringify(value));
    const digest = sha256Bytes(bytes);
    if (!fs.existsSync(this.paths.blob(digest))) {
      const tmp = tempName(this.paths.ingest, "blob");
      await fs.promises.writeFile(tmp, bytes);
      await this.commit(tmp, digest);
    }
    return { mediaType, digest, size: bytes.length };
  }

  /** An uncompressed layer's diff id is its blob digest; it is unpacked once and shared by every container. */
  private async unpack(diffId: string): Promise<void> {
    const dir = this.paths.layer(diffId);
    if (fs.existsSync(dir)) return;
    await fs.promises.mkdir(this.paths.layers, { recursive: true });
    const tmp = tempName(this.paths.ingest, "layer");
    await fs.promises.mkdir(tmp);
    try {
      await this.host.run("tar", ["-x", "--numeric-owner", "-f", this.paths.blob(diffId), "-C", tmp]);
      await fs.promises.rename(tmp, dir);
    } catch (e) {
      await fs.promises.rm(tmp, { recursive: true, force: true });
      if (!fs.existsSync(dir)) throw e; // otherwise another process unpacked the same layer first
    }
  }

  private async collectGarbage(): Promise<void> {
    const live = new Set<string>(await this.layersInUse());
    for (const m of (await this.readIndex()).manifests) {
      const manifest = await this.readBlobJson<OciManifest>(m.digest);
      for (const d of [m.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) live.add(d);
    }
    const liveHex = new Set([...live].map((d) => d.slice("sha256:".length)));
    for (const hex of await listDir(this.paths.blobs)) {
      if (!liveHex.has(hex)) await fs.promises.rm(path.join(this.paths.blobs, hex), { force: true });
    }
    for (const hex of await listDir(this.paths.layers)) {
      if (!liveHex.has(hex)) await fs.promises.rm(path.join(this.paths.layers, hex), { recursive: true, force: true });
    }
  }
}
