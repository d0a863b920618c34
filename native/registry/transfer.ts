// Pull and push of whole images between berth's store and a registry. Blobs the other side already has are not
// sent again; everything received is checked against its digest before it gets its name.
import * as fs from "node:fs";
import * as path from "node:path";
import { availableParallelism } from "node:os";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { constants, deflateRaw as deflateRawCallback, gzip as gzipCallback } from "node:zlib";
import type { ImageInfo } from "../runtime";
import type { ContentStore } from "../image/store";
import { checkSize, DAMAGED, sha256Bytes } from "../image/store";
import { hashing } from "../image/hashing";
import { isDigest } from "../paths";
import { HOST_ARCH, INDEX_TYPES, MediaType, type Descriptor, type OciImageConfig, type OciIndex, type OciManifest } from "../image/oci";
import { MANIFEST_ACCEPT, RegistryClient, RegistryError, readAll, type RegistryOptions } from "./client";
import { formatRef, parseRegistryRef, type RegistryRef } from "./reference";
import { stagingPath } from "../staging";
import { Slots } from "../slots";

const gzip = promisify(gzipCallback);
const deflateRaw = promisify(deflateRawCallback);

export interface PushResult {
  /** "registry/repository@sha256:…" */
  repoDigest: string;
  uploaded: number;
  skipped: number;
}

async function getManifest(client: RegistryClient, r: RegistryRef, reference: string): Promise<{ raw: Buffer; mediaType: string }> {
  const what = `manifest ${r.repository}:${reference}`;
  const res = await client.expect(await client.request("GET", `/v2/${r.repository}/manifests/${reference}`, { accept: MANIFEST_ACCEPT }), [200], what);
  const raw = await readAll(res.body).catch((e: Error) => {
    throw new RegistryError("refused", `${what} from ${client.registry}: ${e.message}`);
  });
  const expected = reference.startsWith("sha256:") ? reference : (res.headers["docker-content-digest"] as string | undefined);
  if (expected && sha256Bytes(raw) !== expected) {
    throw new RegistryError("digest mismatch", `digest mismatch: ${what} from ${client.registry} is ${sha256Bytes(raw)}, expected ${expected}`);
  }
  const mediaType = (JSON.parse(raw.toString()) as { mediaType?: string }).mediaType ?? String(res.headers["content-type"]);
  return { raw, mediaType };
}

/** The digest a reference resolves to on its registry, without downloading the image. */
export async function resolveDigest(ref: string, opts: RegistryOptions): Promise<string> {
  const r = parseRegistryRef(ref);
  if (r.digest) return r.digest;
  const client = new RegistryClient(r.registry, opts);
  return sha256Bytes((await getManifest(client, r, r.tag!)).raw);
}

export async function pull(store: ContentStore, ref: string, opts: RegistryOptions, localRef = ref): Promise<ImageInfo> {
  const r = parseRegistryRef(ref);
  const client = new RegistryClient(r.registry, opts);
  let { raw, mediaType } = await getManifest(client, r, r.digest ?? r.tag!);
  if (INDEX_TYPES.includes(mediaType as never)) {
    const index = JSON.parse(raw.toString()) as OciIndex;
    const mine = index.manifests.find((m) => m.platform?.os === "linux" && m.platform.architecture === HOST_ARCH);
    if (!mine) throw new RegistryError("not found", `not found: ${formatRef(r)} has no linux/${HOST_ARCH} image`);
    ({ raw, mediaType } = await getManifest(client, r, mine.digest));
  }
  const manifest = JSON.parse(raw.toString()) as OciManifest;
  const image = `${formatRef(r)} from ${client.registry}`;
  if (!Array.isArray(manifest.layers)) throw new Error(`image ${image}: its manifest lists no layers (invalid manifest)`);
  const blob = async (d: Descriptor) => (await client.expect(await client.request("GET", `/v2/${r.repository}/blobs/${d.digest}`), [200], `blob ${d.digest}`)).body;
  // The config first: it names the diff id each layer must unpack to.
  if (!isDigest(manifest.config?.digest)) {
    throw new Error(`image ${image}: its manifest gives the config the digest ${JSON.stringify(manifest.config?.digest)}, which is not a sha256 digest: ${DAMAGED}`);
  }
  if (!(await store.protect([manifest.config.digest]))) {
    checkSize(manifest.config, "config", image);
    await store
      .ingest(await blob(manifest.config), { mediaType: manifest.config.mediaType, digest: manifest.config.digest, size: manifest.config.size })
      .catch(registryFault(`blob ${manifest.config.digest} from ${client.registry}: `));
  }
  const config = await store.readBlobJson<OciImageConfig>(manifest.config.digest);
  if (!Array.isArray(config.rootfs?.diff_ids)) throw new Error(`image ${image}: its config has no rootfs.diff_ids (invalid rootfs in image configuration)`);
  await store.fetchLayers(manifest.layers, config.rootfs.diff_ids, formatRef(r), client.registry, blob).catch(registryFault(""));
  return store.commitManifest(localRef, raw, config);
}

/** A digest mismatch of what a registry sent is the registry's fault: said as such. */
const registryFault = (prefix: string) => (e: Error): never => {
  throw /digest mismatch/.test(e.message) && !(e instanceof RegistryError) ? new RegistryError("digest mismatch", `${prefix}${e.message}`) : e;
};

/** Input bytes per gzip member: members are compressed at once, one per CPU, as pigz does; gunzip reads them in a row. */
const MEMBER = 4 << 20;
/**
 * libuv's thread pool, where zlib compresses (and fs calls run): UV_THREADPOOL_SIZE, else 4 threads, at most 1024.
 * More members than its threads only wait there, each holding its MEMBER of input and its output.
 */
const POOL = Math.min(Math.max(Math.trunc(Number(process.env.UV_THREADPOOL_SIZE)) || 4, 1), 1024);
/** Members compressing while the oldest is written: as many as run at once — the CPUs, or the pool's threads if fewer. */
const MEMBERS_AT_ONCE = Math.min(availableParallelism(), POOL);
/** Blobs sent at once by a push (Docker's max-concurrent-uploads is 5; the blobs' members share the pool's threads). */
const UPLOADS = 3;

/**
 * Sends one stored blob unless the registry has it, resolving to the descriptor the pushed manifest names. Layers
 * the store keeps uncompressed (built, committed, imported) leave gzipped, as `docker push` sends them: a layer
 * pushed before is looked for under the gzip digest that push recorded, and only compressed again (into a staged
 * file, the stored tar checked against its digest on the way) when the registry lacks it.
 */
async function sendBlob(store: ContentStore, client: RegistryClient, r: RegistryRef, stored: Descriptor): Promise<{ desc: Descriptor; uploaded: boolean }> {
  if (stored.mediaType !== MediaType.layer) return { desc: stored, uploaded: await uploadBlob(client, r, stored, store.blobPath(stored.digest)) };
  const known = await store.gzipOf(stored.digest);
  if (known && (await hasBlob(client, r, known))) return { desc: known, uploaded: false };
  const file = stagingPath(store.paths.ingest, "push");
  try {
    const desc = await gzipTo(file, store.blobPath(stored.digest), stored.digest);
    await store.recordGzip(stored.digest, desc);
    return { desc, uploaded: await uploadBlob(client, r, desc, file) };
  } finally {
    await fs.promises.rm(file, { force: true });
  }
}

/** Writes the gzip form of a stored layer tar to file (levels: gzipMember): a first push's time is mostly this. */
async function gzipTo(file: string, blob: string, digest: string): Promise<Descriptor> {
  const plain = hashing(fs.createReadStream(blob, { highWaterMark: MEMBER }));
  const packed = hashing(gzipMembers(plain.stream));
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  await fs.promises.writeFile(file, Readable.from(packed.stream), { flag: "wx", mode: 0o600 });
  if (plain.digest() !== digest) throw new Error(`image store is damaged: layer blob ${digest} reads as ${plain.digest()}`);
  return { mediaType: MediaType.layerGzip, digest: packed.digest(), size: packed.size() };
}

/** A gzip member per chunk, in order, several compressed at once on the thread pool while the next are read. */
async function* gzipMembers(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const members: Array<Promise<Buffer>> = [];
  const compress = (chunk: Buffer) => {
    const member = gzipMember(chunk);
    member.catch(() => undefined); // awaited in turn, unless the read fails first
    members.push(member);
  };
  let any = false;
  for await (const chunk of chunks) {
    any = true;
    compress(chunk);
    if (members.length > MEMBERS_AT_ONCE) yield await members.shift()!;
  }
  if (!any) compress(Buffer.alloc(0)); // still a gzip stream
  while (members.length > 0) yield await members.shift()!;
}

/** Bytes sampled at each of four places in a member to judge whether deflate shrinks it at all. */
const PROBE = 16 << 10;

/**
 * A chunk as one gzip member: stored (level 0) when samples of it do not shrink (random or already compressed
 * data: deflate would spend ten times as long for nothing, and its output would be larger), else the fastest level.
 */
async function gzipMember(chunk: Buffer): Promise<Buffer> {
  const step = Math.floor(chunk.length / 4);
  const sample = Buffer.concat([0, 1, 2, 3].map((i) => chunk.subarray(i * step, i * step + PROBE)));
  const shrinks = (await deflateRaw(sample, { level: constants.Z_BEST_SPEED })).length < sample.length * 0.97;
  return gzip(chunk, { level: shrinks ? constants.Z_BEST_SPEED : constants.Z_NO_COMPRESSION });
}

/**
 * Pushes a stored image as `target` (a registry reference); blobs the registry has are skipped. When layers were
 * compressed on the way, the pushed manifest names their gzip blobs: its digest is not the local one (the image
 * id, its config's digest, stays).
 */
export async function push(store: ContentStore, source: string, target: string, opts: RegistryOptions): Promise<PushResult> {
  const image = await store.image(source);
  if (!image) throw new Error(`cannot push "${source}": no such image in berth's store`);
  const r = parseRegistryRef(target);
  const client = new RegistryClient(r.registry, opts);
  let uploaded = 0;
  const send = async (stored: Descriptor) => {
    const sent = await sendBlob(store, client, r, stored);
    if (sent.uploaded) uploaded++;
    return sent.desc;
  };
  const slots = new Slots(UPLOADS);
  const settled = await Promise.allSettled(image.manifest.layers.map((l) => slots.run(() => send(l))));
  // Every layer's job has ended, its staged file removed, before the push fails.
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  const layers = settled.map((s) => (s as PromiseFulfilledResult<Descriptor>).value);
  await send(image.manifest.config); // last, as Docker sends it
  const changed = layers.some((d, i) => d !== image.manifest.layers[i]);
  const raw = changed ? Buffer.from(JSON.stringify({ ...image.manifest, layers })) : await fs.promises.readFile(store.blobPath(image.info.manifestDigest));
  const put = await client.request("PUT", `/v2/${r.repository}/manifests/${r.tag ?? r.digest}`, { "content-type": image.manifest.mediaType }, raw);
  (await client.expect(put, [201, 204], `manifest ${r.repository}:${r.tag}`)).body.resume();
  const digest = (put.headers["docker-content-digest"] as string | undefined) ?? sha256Bytes(raw);
  return { repoDigest: `${r.registry}/${r.repository}@${digest}`, uploaded, skipped: layers.length + 1 - uploaded };
}

/** Uploads one blob unless the registry has it; false when it had. */
async function uploadBlob(client: RegistryClient, r: RegistryRef, d: Descriptor, file: string): Promise<boolean> {
  if (await hasBlob(client, r, d)) return false;
  const start = await client.expect(await client.request("POST", `/v2/${r.repository}/blobs/uploads/`, { "content-length": "0" }), [202], `upload of ${d.digest}`);
  start.body.resume();
  const location = new URL(String(start.headers.location), "http://placeholder");
  location.searchParams.set("digest", d.digest);
  const put = await client.request(
    "PUT",
    `${location.pathname}${location.search}`,
    { "content-type": "application/octet-stream", "content-length": String(fs.statSync(file).size) },
    () => fs.createReadStream(file),
  );
  (await client.expect(put, [201, 204], `upload of ${d.digest}`)).body.resume();
  return true;
}

/** Whether the registry has the blob in this repository. */
async function hasBlob(client: RegistryClient, r: RegistryRef, d: Descriptor): Promise<boolean> {
  const head = await client.request("HEAD", `/v2/${r.repository}/blobs/${d.digest}`);
  head.body.resume();
  return head.status === 200;
}
