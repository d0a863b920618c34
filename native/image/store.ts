// A content-addressed image store laid out as an OCI image layout (index.json + blobs/sha256), plus each layer
// unpacked once into layers/<diff id hex>, shared by every image and container built on it. Writes go to a temp
// name and are renamed into place once their digest is proven, so a crash never leaves a half-written blob or
// layer under its final name.
// Several berth processes share one store. The index and garbage collection change under one cross-process lock
// (native/lock.ts), and, as containerd's content store has it, anything written is used or leased at all times:
// every ingest (pull, import, build, commit, load) runs inside `leased()`, which records each blob and layer it
// writes or reuses in its lease file (under that lock) before the blob gets its name or is relied on; GC reads
// the leases, and the lease of a process that died (pid + start time) expires.
import * as fs from "node:fs";
import * as path from "node:path";
import { createGunzip } from "node:zlib";
import { createHash, randomBytes } from "node:crypto";
import { Readable, pipeline } from "node:stream";
import { AsyncLocalStorage } from "node:async_hooks";
import type { ImageInfo, ImportRootfsRequest } from "../runtime";
import type { Host } from "../host/exec";
import { hexOf, isDigest, type Paths } from "../paths";
import { ownerAlive, self, withLock, type Owner } from "../lock";
import { readJson, writeJson, listDir } from "../json-file";
import { initLayerPath, pruneInitLayers } from "../snapshot/init-layer";
import {
  MediaType,
  REF_ANNOTATION,
  fromOciConfig,
  isGzip,
  nameRef,
  normalizeRef,
  toOciConfig,
  type Descriptor,
  type OciImageConfig,
  type OciIndex,
  type OciManifest,
} from "./oci";
import { LayerRefused, unpackLayer } from "./unpack";
import { isTemp, stagingPath, sweepStaging, sweepTemps } from "../staging";
import { Spool } from "./spool";
import { hashing } from "./hashing";
import { Slots } from "../slots";

/** Layer downloads at once in a pull: Docker's default (max-concurrent-downloads). */
const DOWNLOADS = 3;
/** Decompressed bytes per chunk: fewer, larger chunks cost less per byte on their way to the layer's files. */
const UNPACK_CHUNK = 256 << 10;

/** Refuses a blob of an image's manifest without a valid size: the size bounds its download (an endless blob would fill the disk). */
export function checkSize(d: Descriptor, what: "config" | "layer", image: string): void {
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw new Error(`image ${image}: its manifest gives its ${what} ${d.digest} no valid size (${JSON.stringify(d.size)})`);
}

/** The fix for an image whose manifest, config or layer is not what it must be. */
export const DAMAGED = "the image is damaged: push it again, or pull another tag or digest of it";

/**
 * Refuses, before anything is downloaded or unpacked, layers berth cannot take: a digest or diff id that is not a
 * sha256 digest, or a compression berth cannot unpack (zstd; gzip and plain tar it can).
 */
function checkLayers(layers: Descriptor[], diffIds: string[], image: string): void {
  if (layers.length !== diffIds.length) {
    throw new Error(`image ${image}: its manifest has ${layers.length} layers but its config ${diffIds.length}: ${DAMAGED}`);
  }
  for (const [i, l] of layers.entries()) {
    if (!isDigest(l.digest)) {
      throw new Error(`image ${image}: its manifest gives layer ${i + 1} the digest ${JSON.stringify(l.digest)}, which is not a sha256 digest (sha256:<64 hex digits>): ${DAMAGED}`);
    }
    if (!isDigest(diffIds[i])) {
      throw new Error(`image ${image}: its config's rootfs.diff_ids[${i}] ${JSON.stringify(diffIds[i])} (of layer ${l.digest}) is not a sha256 digest (sha256:<64 hex digits>): ${DAMAGED}`);
    }
    if (/zstd/i.test(String(l.mediaType))) {
      throw new Error(`image ${image}: layer ${l.digest} is compressed with zstd (${l.mediaType}), which berth cannot unpack: pull a variant of the image pushed with gzip layers (docker buildx build --output type=image,compression=gzip,force-compression=true), or build it with berth build`);
    }
  }
}

export const sha256Bytes = (b: Buffer | string): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Blobs and layers kept alive outside any image (a build cache entry, an ingest under way), with what they mean. */
export interface Lease<T = unknown> {
  blobs: string[];
  layers: string[];
  /**
   * Init layers (paths) of a container being made, as a berth before withLayers() leased them: still honoured while
   * such a process runs on the same root.
   */
  inits?: string[];
  data?: T;
  /** The process of an ingest under way: the lease expires with it. A cache lease has none. */
  owner?: Owner;
}

/** The lease of the ingest running in this async context. */
interface Ingest {
  id: string;
  blobs: Set<string>;
  layers: Set<string>;
}
const ingestContext = new AsyncLocalStorage<Ingest>();

/** What the store holds, for `berth system df`: bytes on disk (blobs and unpacked layers). */
export interface StoreUsage {
  images: Array<{ ref: string; id: string; size: number; inUse: boolean }>;
  bytes: number;
  /** What `system prune -a` would free, the build cache aside. */
  reclaimable: number;
  cache: { entries: number; bytes: number; reclaimable: number };
}

/** Blobs and unpacked layers, by digest (a layer by its diff id). */
interface Content {
  blobs: Set<string>;
  layers: Set<string>;
  /** Init layers (native/snapshot/init-layer.ts), by path: only what must stay says. */
  inits?: Set<string>;
}

/** A stored image: what inspect says, plus its manifest and full config. */
export interface StoredImage {
  info: ImageInfo;
  manifest: OciManifest;
  config: OciImageConfig;
}

export class ContentStore {
  constructor(
    private readonly host: Host,
    readonly paths: Paths,
    /** The layers (diff ids, as an image lists them) of each existing container: never collected. */
    private readonly stacksInUse: () => Promise<string[][]>,
  ) {}

  async importRootfs(req: ImportRootfsRequest): Promise<ImageInfo> {
    const ref = nameRef(req.ref);
    const stat = await fs.promises.stat(req.tarball).catch(() => undefined);
    if (!stat?.isFile()) {
      throw new Error(`image tarball "${req.tarball}" not found: expected a tar of a root filesystem`);
    }
    return this.leased(async () => {
      const layer = await this.ingest(fs.createReadStream(req.tarball), { mediaType: MediaType.layer });
      return this.commit(ref, toOciConfig(req.config, [layer.digest]), [layer]);
    });
  }

  /**
   * Runs an ingest (pull, import, build, commit, load) under a lease: what it writes or reuses cannot be collected
   * until it ends, having named its image. Nested calls share the outer lease.
   */
  async leased<T>(fn: () => Promise<T>): Promise<T> {
    if (ingestContext.getStore()) return fn();
    const op: Ingest = { id: `ingest-${process.pid}-${randomBytes(6).toString("hex")}`, blobs: new Set(), layers: new Set() };
    try {
      return await ingestContext.run(op, fn);
    } finally {
      await this.dropLease(op.id);
    }
  }

  /** Runs fn holding the store's lock (index, leases, GC). Not reentrant. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(path.join(this.paths.locks, "images"), fn, { what: `berth's image store ${this.paths.root}` });
  }

  /** Adds blobs and layers to the running ingest's lease; the caller holds the lock. */
  private async keep(blobs: string[], layers: string[]): Promise<void> {
    const op = ingestContext.getStore();
    if (!op) throw new Error("internal error: image content written outside a lease (wrap the ingest in store.leased)");
    const size = () => op.blobs.size + op.layers.size;
    const before = size();
    blobs.forEach((d) => op.blobs.add(d));
    layers.forEach((d) => op.layers.add(d));
    if (size() === before && fs.existsSync(this.leaseFile(op.id))) return;
    await this.putLease(op.id, { blobs: [...op.blobs], layers: [...op.layers], owner: self() });
  }

  /** Leases blobs and layers already in the store; resolves to whether they all (still) exist. */
  async protect(blobs: string[], layers: string[] = []): Promise<boolean> {
    return this.locked(async () => {
      await this.keep(blobs, layers);
      return blobs.every((d) => this.hasBlob(d)) && layers.every((d) => fs.existsSync(this.paths.layer(d)));
    });
  }

  /**
   * Runs write — a container's record naming `layers`, which GC reads — under the store's lock, once the layers are
   * known to be there; resolves to false, having written nothing, when one is gone (its image removed meanwhile).
   * One lock and no lease file per container: GC takes this lock, so it sees the record or the layers untouched.
   */
  async withLayers(layers: string[], write: () => Promise<void>): Promise<boolean> {
    return this.locked(async () => {
      if (!layers.every((d) => fs.existsSync(this.paths.layer(d)))) return false;
      await write();
      return true;
    });
  }

  async inspect(refOrId: string): Promise<ImageInfo | undefined> {
    return (await this.image(refOrId))?.info;
  }

  /** Leases an image's content for the running ingest (a build's base, a commit's image); false when it is gone. */
  keepImage(image: StoredImage): Promise<boolean> {
    const blobs = [image.info.manifestDigest, image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)];
    return this.protect(blobs, image.info.layers);
  }

  /** An image by ref ("name" meaning "name:latest") or by id ("sha256:…" or its hex). */
  async image(refOrId: string): Promise<StoredImage | undefined> {
    const index = await this.readIndex();
    const id = /^(sha256:)?[0-9a-f]{64}$/.test(refOrId) ? refOrId.replace(/^(sha256:)?/, "sha256:") : undefined;
    const wanted = id === undefined ? normalizeRef(refOrId) : undefined;
    for (const m of index.manifests) {
      const ref = m.annotations?.[REF_ANNOTATION];
      if (!ref || (wanted !== undefined && ref !== wanted)) continue;
      if (wanted !== undefined) return this.describe(ref, m.digest);
      // Looking for an id: one damaged entry must not hide every other image.
      const image = await this.describe(ref, m.digest).catch(() => undefined);
      if (image?.info.id === id) return image;
    }
    return undefined;
  }

  /** Every stored ref. */
  async refs(): Promise<string[]> {
    return (await this.readIndex()).manifests.flatMap((m) => m.annotations?.[REF_ANNOTATION] ?? []);
  }

  /** Drops one use of the name (see hold); with its last use the name goes, and what only it kept is collected. */
  async remove(ref: string): Promise<void> {
    const name = normalizeRef(ref);
    await this.locked(async () => {
      const index = await this.readIndex();
      const users = await this.users(index);
      const left = (users[name] ?? 0) - 1;
      if (left > 0) return writeJson(this.usersFile, { ...users, [name]: left });
      await writeJson(this.usersFile, Object.fromEntries(Object.entries(users).filter(([r]) => r !== name)));
      await writeJson(this.paths.imageIndex, { ...index, manifests: index.manifests.filter((m) => m.annotations?.[REF_ANNOTATION] !== name) });
      await this.collectGarbage();
    });
  }

  /**
   * One more user of a name, taken before it is (re)made: several resources may declare one name (a replacement
   * and the image it replaces, stacks sharing a root), and each remove then drops only its own use.
   */
  async hold(ref: string): Promise<void> {
    const name = normalizeRef(ref);
    await this.locked(async () => {
      const users = await this.users(await this.readIndex());
      await writeJson(this.usersFile, { ...users, [name]: (users[name] ?? 0) + 1 });
    });
  }

  private get usersFile(): string {
    return path.join(this.paths.root, "image-users.json");
  }

  /** How many users each name has; a stored name nobody counted (made before counting, or by a day-2 command) has one. */
  private async users(index: OciIndex): Promise<Record<string, number>> {
    const counted = (await readJson<Record<string, number>>(this.usersFile)) ?? {};
    const names = index.manifests.flatMap((m) => m.annotations?.[REF_ANNOTATION] ?? []);
    return { ...Object.fromEntries(names.map((n) => [n, 1])), ...counted };
  }

  /** Gives an image a second name (Docker's `tag`). */
  async tag(source: string, ref: string): Promise<ImageInfo> {
    const image = await this.image(source);
    if (!image) throw new Error(`cannot tag "${source}": no such image in berth's store`);
    const name = nameRef(ref);
    await this.locked(async () => {
      if (!this.hasBlob(image.info.manifestDigest)) throw new Error(`cannot tag "${source}": it was removed meanwhile`);
      await this.setRef(name, { mediaType: image.manifest.mediaType ?? MediaType.manifest, digest: image.info.manifestDigest, size: fs.statSync(this.blobPath(image.info.manifestDigest)).size });
    });
    return { ...image.info, ref: name };
  }

  /** Deletes blobs and layers no image and no container uses (e.g. once the last container of a removed image goes). */
  prune(): Promise<void> {
    return this.locked(() => this.collectGarbage());
  }

  /**
   * `berth system prune`: drops the names of images no container uses (`usedIds`) when `all` (else only entries
   * whose content is gone), then collects. Resolves to the refs dropped and the bytes freed.
   */
  async pruneUnused(opts: { all?: boolean; usedIds: () => Promise<Set<string>> }): Promise<{ refs: string[]; bytes: number }> {
    return this.locked(async () => {
      const before = await this.bytesOf(await this.onDisk());
      const index = await this.readIndex();
      // Asked only now, under the lock every image's naming takes: whatever named an image before is seen using it.
      const usedIds = await opts.usedIds();
      const refs: string[] = [];
      const manifests: Descriptor[] = [];
      for (const m of index.manifests) {
        const image = await this.describe("", m.digest).catch(() => undefined);
        if (image && (!opts.all || usedIds.has(image.info.id))) manifests.push(m);
        else refs.push(m.annotations?.[REF_ANNOTATION] ?? m.digest);
      }
      await writeJson(this.paths.imageIndex, { ...index, manifests });
      const users = await this.users(index);
      await writeJson(this.usersFile, Object.fromEntries(Object.entries(users).filter(([r]) => !refs.includes(r))));
      await this.collectGarbage();
      return { refs, bytes: before - (await this.bytesOf(await this.onDisk())) };
    });
  }

  /** What the store holds and what a prune would free (`berth system df`); `usedIds`: images containers use. */
  async usage(usedIds: Set<string>): Promise<StoreUsage> {
    const images: StoreUsage["images"] = [];
    const used: Descriptor[] = [];
    for (const m of (await this.readIndex()).manifests) {
      const image = await this.describe(m.annotations?.[REF_ANNOTATION] ?? "", m.digest).catch(() => undefined);
      if (!image) continue;
      images.push({ ref: image.info.ref, id: image.info.id, size: image.info.size, inUse: usedIds.has(image.info.id) });
      if (usedIds.has(image.info.id)) used.push(m);
    }
    const disk = await this.bytesOf(await this.onDisk());
    const keptWithCache = await this.bytesOf(await this.liveContent(used, { cache: true }));
    const keptWithout = await this.bytesOf(await this.liveContent(used, { cache: false }));
    const cacheOnly = await this.liveContent([], { cache: true, ingests: false });
    const entries = (await listDir(this.leasesDir)).filter((n) => n.startsWith("cache-")).length;
    return {
      images,
      bytes: disk,
      reclaimable: disk - keptWithCache,
      cache: { entries, bytes: await this.bytesOf(cacheOnly), reclaimable: keptWithCache - keptWithout },
    };
  }

  /** Every blob and unpacked layer in the store now (sha256 digests). */
  private async onDisk(): Promise<Content> {
    const digests = async (dir: string) => new Set((await listDir(dir)).filter((h) => /^[0-9a-f]{64}$/.test(h)).map((h) => `sha256:${h}`));
    return { blobs: await digests(this.paths.blobs), layers: await digests(this.paths.layers) };
  }

  private async bytesOf(c: Content): Promise<number> {
    let total = 0;
    for (const d of c.blobs) total += fs.statSync(this.paths.blob(d), { throwIfNoEntry: false })?.size ?? 0;
    for (const d of c.layers) total += await duBytes(this.paths.layer(d));
    return total;
  }

  /**
   * What must stay: the content of `manifests`, of every container's layers, of live ingests' leases and (with
   * `cache`) of the build cache. With `expire` (under the lock), the leases of dead processes are deleted.
   */
  private async liveContent(manifests: Descriptor[], opts: { cache: boolean; ingests?: boolean; expire?: boolean }): Promise<Content> {
    const stacks = opts.ingests === false ? [] : await this.stacksInUse();
    const layers = new Set<string>(stacks.flat());
    const blobs = new Set<string>();
    const inits = new Set<string>();
    // Not a lease still being written (a temp name): an unreadable half would pass for a dead one, and be removed
    // under the process writing it. Its own process names its content before it is renamed into place.
    for (const name of (await listDir(this.leasesDir)).filter((n) => !isTemp(n))) {
      const file = path.join(this.leasesDir, name);
      const lease = await readJson<Lease>(file).catch(() => undefined);
      const dead = !lease || (lease.owner !== undefined && !ownerAlive(lease.owner));
      if (dead && opts.expire) await fs.promises.rm(file, { force: true });
      if (dead || (lease!.owner ? opts.ingests === false : !opts.cache)) continue;
      lease!.blobs.forEach((d) => blobs.add(d));
      lease!.layers.forEach((d) => layers.add(d));
      lease!.inits?.forEach((d) => inits.add(d));
    }
    for (const m of manifests) {
      const image = await this.describe("", m.digest).catch(() => undefined);
      for (const d of image ? [m.digest, image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)] : []) blobs.add(d);
      for (const d of image?.config.rootfs.diff_ids ?? []) layers.add(d);
      if (image) stacks.push(image.info.layers);
    }
    // An image's init layer goes with the last image and container built on its layers.
    for (const s of stacks.filter((l) => l.length > 0)) {
      const init = initLayerPath(this.paths.root, this.layerDirs({ layers: s }));
      if (init) inits.add(init);
    }
    return { blobs, layers, inits };
  }

  /**
   * Unpacked layer directories of an image, top layer first (overlayfs lowerdir order). A layer that recurs (two
   * steps that changed nothing) is listed once, at its topmost place: overlayfs refuses a directory twice, and the
   * topmost copy already shows everything the lower one would.
   */
  layerDirs(info: Pick<ImageInfo, "layers">): string[] {
    return [...new Set([...info.layers].reverse())].map((d) => this.paths.layer(d));
  }

  private get leasesDir(): string {
    return path.join(this.paths.root, "leases");
  }

  /**
   * Where a push records the gzip blob it made of a layer kept uncompressed (Docker's v2metadata-by-diffid), so a
   * push of the same layer asks the registry for that blob instead of compressing the layer again.
   */
  private get gzipDir(): string {
    return path.join(this.paths.root, "gzip");
  }

  /** The record of the layer blob `digest`'s gzip blob (a digest, never a path: hexOf throws). */
  private gzipRecord(digest: string): string {
    return path.join(this.gzipDir, hexOf(digest));
  }

  /** The gzip blob a push made of the uncompressed layer blob `digest`, if one did and its record is sound. */
  async gzipOf(digest: string): Promise<Descriptor | undefined> {
    const d = await readJson<Descriptor>(this.gzipRecord(digest)).catch(() => undefined);
    return d?.mediaType === MediaType.layerGzip && isDigest(d.digest) && Number.isSafeInteger(d.size) && d.size > 0 ? d : undefined;
  }

  /** Records `gzip`, made from the stored layer blob `digest` as it was checked to be; collected with that blob. */
  async recordGzip(digest: string, gzip: Descriptor): Promise<void> {
    const file = this.gzipRecord(digest);
    await fs.promises.mkdir(this.gzipDir, { recursive: true });
    await writeJson(file, { mediaType: gzip.mediaType, digest: gzip.digest, size: gzip.size });
  }

  private leaseFile(id: string): string {
    return path.join(this.leasesDir, `${id}.json`);
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

  private readBlob(digest: string): Readable {
    return fs.createReadStream(this.blobPath(digest), { highWaterMark: UNPACK_CHUNK });
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
  async ingest(source: AsyncIterable<Buffer> | Iterable<Buffer>, expect: { mediaType: string; digest?: string; size?: number }): Promise<Descriptor> {
    if (expect.digest && (await this.protect([expect.digest]))) {
      // Not read, so closed: a download left open (another process stored the blob meanwhile) kept its socket,
      // and the process, alive.
      if (source instanceof Readable) source.destroy();
      return { mediaType: expect.mediaType, digest: expect.digest, size: fs.statSync(this.blobPath(expect.digest)).size };
    }
    await fs.promises.mkdir(this.paths.ingest, { recursive: true });
    await fs.promises.mkdir(this.paths.blobs, { recursive: true });
    const tmp = stagingPath(this.paths.ingest, "blob");
    const h = hashing(source, expect.size);
    try {
      await fs.promises.writeFile(tmp, Readable.from(h.stream));
      const digest = h.digest();
      if ((expect.digest && digest !== expect.digest) || (expect.size !== undefined && h.size() !== expect.size)) {
        throw new Error(`digest mismatch: expected ${expect.digest}${expect.size === undefined ? "" : ` (${expect.size} bytes)`}, the content is ${digest} (${h.size()} bytes)`);
      }
      await this.locked(async () => {
        await this.keep([digest], []);
        await fs.promises.rename(tmp, this.paths.blob(digest));
      });
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
    await fs.promises.mkdir(this.paths.layers, { recursive: true });
    await this.placeLayer(dir, diffId);
  }

  /**
   * Moves an unpacked layer into place under the lease, or drops it when that layer is there already; with `blob`,
   * the blob it came from too, under the same lock.
   */
  private async placeLayer(dir: string | undefined, diffId: string, blob?: { tmp: string; digest: string }): Promise<void> {
    const dest = this.paths.layer(diffId);
    const placed = await this.locked(async () => {
      await this.keep(blob ? [blob.digest] : [], [diffId]);
      if (blob) await fs.promises.rename(blob.tmp, this.paths.blob(blob.digest));
      if (dir === undefined || fs.existsSync(dest)) return false;
      await fs.promises.rename(dir, dest);
      return true;
    });
    if (dir !== undefined && !placed) await fs.promises.rm(dir, { recursive: true, force: true });
  }

  /** Stores config and manifest for layers whose blobs are in the store, unpacks what is not yet, and names it. */
  async commit(ref: string, config: OciImageConfig, layers: Descriptor[]): Promise<ImageInfo> {
    const configDesc = await this.putJson(MediaType.config, config);
    const manifest: OciManifest = { schemaVersion: 2, mediaType: MediaType.manifest, config: configDesc, layers };
    return this.commitManifest(ref, Buffer.from(JSON.stringify(manifest)));
  }

  /**
   * Names an image by its manifest's exact bytes (so a pulled image keeps its registry digest). `pulled`: the config
   * a pull read and whose layers fetchLayers placed, so neither is read or checked again.
   */
  async commitManifest(ref: string, raw: Buffer, pulled?: OciImageConfig): Promise<ImageInfo> {
    const name = nameRef(ref);
    const manifest = JSON.parse(raw.toString()) as OciManifest;
    const blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
    // Blobs of a base image (a commit, a build FROM it) are leased too: its removal meanwhile cannot take them.
    if (!(await this.protect(blobs))) {
      throw new Error(`image ${name}: blob ${blobs.find((d) => !this.hasBlob(d))} is missing from the store (its image was removed meanwhile?)`);
    }
    const config = pulled ?? (await this.readBlobJson<OciImageConfig>(manifest.config.digest));
    if (!pulled) await this.ensureUnpacked(manifest.layers, config.rootfs.diff_ids, name);
    const desc = await this.ingest([raw], { mediaType: manifest.mediaType ?? MediaType.manifest });
    await this.locked(async () => {
      if (!this.hasBlob(desc.digest) || config.rootfs.diff_ids.some((d) => !fs.existsSync(this.paths.layer(d)))) {
        throw new Error(`image ${name}: its content vanished before it was named (the store was changed by hand?)`);
      }
      await this.setRef(name, desc);
    });
    return (await this.describe(name, desc.digest)).info;
  }

  /** Unpacks each layer not unpacked yet, bottom first, checking its content against its diff id. */
  async ensureUnpacked(layers: Descriptor[], diffIds: string[], image: string): Promise<void> {
    await this.prepareLayers(layers, diffIds, image);
    if (await this.protect([], diffIds)) return; // all there (a pull unpacked them): one lock, not one per layer
    for (const [i, layer] of layers.entries()) {
      if (await this.protect([], [diffIds[i]])) continue;
      if (!this.hasBlob(layer.digest)) throw new Error(`image ${image}: layer blob ${layer.digest} is missing from the store`);
      await this.placeLayer(await this.unpackStaged(this.readBlob(layer.digest), layers, diffIds, i, image), diffIds[i]);
    }
  }

  /**
   * Downloads and unpacks the layers the store lacks (a pull): up to 3 downloads at once, as Docker's, each layer
   * unpacked while it arrives as soon as the layers below it are in place (its unpack reads them). Blob and
   * unpacked layer get their names only once the blob's size and digest and the layer's diff id are proven, so a
   * layer failing any leaves nothing behind; the first failure stops every other download. `fetch` opens a blob's
   * download; `from` says where from in errors.
   */
  async fetchLayers(layers: Descriptor[], diffIds: string[], image: string, from: string, fetch: (d: Descriptor) => Promise<Readable>): Promise<void> {
    await this.prepareLayers(layers, diffIds, `${image} from ${from}`);
    for (const l of layers) checkSize(l, "layer", `${image} from ${from}`);
    await this.locked(() => this.keep(layers.map((l) => l.digest), diffIds));
    let failure: Error | undefined;
    const bodies = new Set<Readable>();
    const fail = (e: Error) => {
      failure ??= e;
      bodies.forEach((b) => b.destroy());
    };
    const downloads = new Slots(DOWNLOADS);
    const fetchLayer = async (layer: Descriptor, i: number, below: Promise<unknown>): Promise<void> => {
      const diffId = diffIds[i];
      const unpacked = fs.existsSync(this.paths.layer(diffId));
      if (this.hasBlob(layer.digest)) {
        if (unpacked) return;
        await below;
        return this.placeLayer(await this.unpackStaged(this.readBlob(layer.digest), layers, diffIds, i, image), diffId);
      }
      const tmp = stagingPath(this.paths.ingest, "blob");
      let dir: string | undefined;
      const spool = new Spool(tmp, `layer ${layer.digest} of ${image} from ${from}`);
      const checked = downloads.run(async () => {
        if (failure) throw failure;
        const body = await fetch(layer);
        bodies.add(body);
        if (failure) body.destroy();
        return spool.fill(body, layer.size).finally(() => bodies.delete(body));
      }).catch((e: Error) => spool.abort(e)) // an unpack may be waiting for its bytes already
        .then(({ digest, size }) => {
          if (digest === layer.digest && size === layer.size) return;
          throw new Error(`digest mismatch: layer ${layer.digest} of ${image} from ${from} is ${digest} (${size} bytes; the manifest says ${layer.size})`);
        });
      checked.catch(() => undefined); // awaited below, maybe only after it failed
      try {
        if (!unpacked) {
          await below;
          dir = await this.unpackStaged(spool.read(), layers, diffIds, i, `${image} from ${from}`).catch(async (e: Error) => {
            // Content that is not what it should be is a wrong blob (a digest mismatch, once all of it is here)
            // before it is a broken archive: what the layer holds is judged on its own.
            if (!(e instanceof LayerRefused)) await checked;
            throw e;
          });
        }
        await checked;
        await this.placeLayer(dir, diffId, { tmp, digest: layer.digest });
        dir = undefined; // placed, or dropped for the copy already there
      } catch (e) {
        fail(e as Error);
        throw e;
      } finally {
        await checked.catch(() => undefined);
        spool.close();
        await fs.promises.rm(tmp, { force: true });
        if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
      }
    };
    // Each layer's job ends once it and every layer below it are in place.
    const placed: Array<Promise<unknown>> = [];
    const jobs: Array<Promise<unknown>> = [];
    for (const [i, layer] of layers.entries()) {
      const below = placed[i - 1] ?? Promise.resolve();
      const job = fetchLayer(layer, i, below).catch((e: Error) => (fail(e), Promise.reject(e)));
      jobs.push(job);
      placed.push(Promise.all([job, below]));
      placed[i].catch(() => undefined); // awaited by the next layer, or below
    }
    // Every job, not only each layer's place: one below that failed rejects `placed` before the jobs above it
    // have removed their staged download.
    await Promise.allSettled(jobs);
    if (failure) throw failure;
  }

  private async prepareLayers(layers: Descriptor[], diffIds: string[], image: string): Promise<void> {
    checkLayers(layers, diffIds, image);
    await fs.promises.mkdir(this.paths.layers, { recursive: true });
    await fs.promises.mkdir(this.paths.ingest, { recursive: true });
    await fs.promises.mkdir(this.paths.blobs, { recursive: true });
  }

  /**
   * Unpacks layer i of an image from its blob's bytes into a new staging directory, which it resolves to once its
   * content proved to be its diff id; nothing is left behind when it fails. The layers below must be in place.
   */
  private async unpackStaged(blob: AsyncIterable<Buffer>, layers: Descriptor[], diffIds: string[], i: number, image: string): Promise<string> {
    const layer = layers[i];
    const tmp = stagingPath(this.paths.ingest, "layer");
    await fs.promises.mkdir(tmp);
    try {
      const raw = blob instanceof Readable ? blob : Readable.from(blob, { objectMode: false });
      // pipeline, not pipe: a failing download must fail the gunzip too, not leave it waiting.
      const plain = hashing(isGzip(layer.mediaType) ? pipeline(raw, createGunzip({ chunkSize: UNPACK_CHUNK }), () => undefined) : raw);
      await unpackLayer({
        host: this.host,
        tar: plain.stream,
        dir: tmp,
        lowers: diffIds.slice(0, i).reverse().map((d) => this.paths.layer(d)),
        layer: `${layer.digest} of ${image}`,
      });
      for await (const _ of plain.stream) void _; // zero padding after the tar's end still counts
      if (plain.digest() !== diffIds[i]) {
        throw new Error(`image ${image}: layer ${layer.digest} unpacks to ${plain.digest()}, but its config says ${diffIds[i]} (digest mismatch)`);
      }
      return tmp;
    } catch (e) {
      await fs.promises.rm(tmp, { recursive: true, force: true });
      // The tar reader's own words ("tar archive is truncated") name no image: said with its layer and the fix.
      const message = (e as Error).message;
      throw message.includes(layer.digest) ? e : new Error(`image ${image}: layer ${layer.digest} (${layer.mediaType}) cannot be unpacked: ${message}; ${DAMAGED}`);
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

  /** Points ref at manifest; the caller holds the lock. */
  private async setRef(ref: string, manifest: Descriptor): Promise<void> {
    const index = await this.readIndex();
    const others = index.manifests.filter((m) => m.annotations?.[REF_ANNOTATION] !== ref);
    const entry = { ...manifest, annotations: { [REF_ANNOTATION]: ref } };
    await writeJson(this.paths.imageIndex, { ...index, manifests: [...others, entry] });
    const marker = path.join(this.paths.root, "oci-layout");
    if (!fs.existsSync(marker)) await writeJson(marker, { imageLayoutVersion: "1.0.0" });
  }

  /**
   * Deletes what no image, container or live lease uses; the caller holds the lock. An index entry whose content
   * is gone is dropped rather than failing every later collection.
   */
  private async collectGarbage(): Promise<void> {
    const index = await this.readIndex();
    const intact: Descriptor[] = [];
    for (const m of index.manifests) if (await this.describe("", m.digest).then(() => true, () => false)) intact.push(m);
    if (intact.length !== index.manifests.length) await writeJson(this.paths.imageIndex, { ...index, manifests: intact });
    const live = await this.liveContent(intact, { cache: true, expire: true });
    const disk = await this.onDisk();
    for (const d of disk.blobs) if (!live.blobs.has(d)) await fs.promises.rm(this.paths.blob(d), { force: true });
    for (const d of disk.layers) if (!live.layers.has(d)) await fs.promises.rm(this.paths.layer(d), { recursive: true, force: true });
    pruneInitLayers(this.paths.root, live.inits!);
    for (const hex of await listDir(this.gzipDir)) {
      if (!isTemp(hex) && !live.blobs.has(`sha256:${hex}`)) await fs.promises.rm(path.join(this.gzipDir, hex), { force: true });
    }
    // What ingests, builds and commits of processes that are gone left staged, and the temp files of records and
    // locks that processes killed between writing and renaming left.
    await sweepStaging(this.host, this.paths.ingest);
    for (const dir of [this.paths.root, this.leasesDir, this.gzipDir, this.paths.locks, path.join(this.paths.locks, "containers")]) sweepTemps(dir);
  }
}

/** Bytes under a directory (what `du -sb` says), 0 when it does not exist. */
async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await listDir(dir)) {
    const st = await fs.promises.lstat(path.join(dir, name)).catch(() => undefined);
    if (st?.isDirectory()) total += await duBytes(path.join(dir, name));
    else total += st?.size ?? 0;
  }
  return total;
}
