// Image archives: `save` writes one tar that is both a `docker save` archive (manifest.json, what `docker load`
// reads) and an OCI image layout (oci-layout, index.json, blobs/sha256) — as Docker 25 does. Import reads either
// kind (a directory or a tar), and the older docker-save layout with <id>/layer.tar files.
import * as fs from "node:fs";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import type { ImageInfo } from "../runtime";
import { INDEX_TYPES, MediaType, REF_ANNOTATION, type Descriptor, type OciIndex, type OciManifest } from "./oci";
import { sha256Bytes, type ContentStore } from "./store";
import { resolveInRoot } from "../confine";
import { readTar, writeTar, type TarHeader, type TarSource } from "./tar";
import { cleanEntryPath } from "./unpack";
import { isDigest } from "../paths";
import { stagingPath, sweepTempsOf, tempBeside } from "../staging";

const file = (p: string, size: number): TarHeader => ({
  path: p, type: "file", mode: 0o644, uid: 0, gid: 0, size, mtime: 0, linkname: "", devmajor: 0, devminor: 0,
});
const dir = (p: string): TarHeader => ({ ...file(p, 0), type: "dir", mode: 0o755 });

export async function saveImages(store: ContentStore, refs: string[], out: string): Promise<void> {
  const images = [];
  for (const ref of refs) {
    const img = await store.image(ref);
    if (!img) throw new Error(`cannot save "${ref}": no such image in berth's store`);
    images.push(img);
  }
  const blobs = new Set<string>();
  for (const img of images) {
    for (const d of [img.info.manifestDigest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)]) blobs.add(d);
  }
  const blobName = (d: string) => `blobs/sha256/${d.slice("sha256:".length)}`;
  const json = (p: string, v: unknown): TarSource => {
    const b = Buffer.from(JSON.stringify(v));
    return { header: file(p, b.length), data: () => b };
  };
  const index: OciIndex = {
    schemaVersion: 2,
    mediaType: MediaType.index,
    manifests: images.map((img) => ({
      mediaType: img.manifest.mediaType ?? MediaType.manifest,
      digest: img.info.manifestDigest,
      size: fs.statSync(store.blobPath(img.info.manifestDigest)).size,
      annotations: { "io.containerd.image.name": img.info.ref, [REF_ANNOTATION]: img.info.ref.slice(img.info.ref.lastIndexOf(":") + 1) },
    })),
  };
  const dockerManifest = images.map((img) => ({
    Config: blobName(img.manifest.config.digest),
    RepoTags: [img.info.ref],
    Layers: img.manifest.layers.map((l) => blobName(l.digest)),
  }));
  const entries: TarSource[] = [
    { header: dir("blobs/") },
    { header: dir("blobs/sha256/") },
    ...[...blobs].map((d) => ({
      header: file(blobName(d), fs.statSync(store.blobPath(d)).size),
      data: () => fs.createReadStream(store.blobPath(d)),
    })),
    json("oci-layout", { imageLayoutVersion: "1.0.0" }),
    json("index.json", index),
    json("manifest.json", dockerManifest),
  ];
  // Owner-named: what a save of this same output killed mid-write left beside it goes with the next one (only its
  // own temps: the directory is the user's, /tmp perhaps, with anyone's files in it).
  sweepTempsOf(out);
  const tmp = tempBeside(out);
  try {
    await pipeline(writeTar(entries), fs.createWriteStream(tmp));
    await fs.promises.rename(tmp, out);
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}

/** A tar's regular files unpacked into dir (only files and directories; symlinks kept as a map to resolve). */
async function unpackArchive(tarFile: string, into: string): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  for await (const { header: h, data } of readTar(fs.createReadStream(tarFile))) {
    const rel = cleanEntryPath(h.path);
    if (rel === undefined) throw new Error(`archive ${tarFile}: entry "${h.path}" climbs out of the archive`);
    const target = path.join(into, rel);
    if (h.type === "dir") await fs.promises.mkdir(target, { recursive: true });
    else if (h.type === "symlink") links.set(rel, path.posix.normalize(path.posix.join(path.posix.dirname(rel), h.linkname)));
    else if (h.type === "file") {
      await fs.promises.mkdir(path.dirname(target), { recursive: true });
      await pipeline(data, fs.createWriteStream(target));
    }
  }
  return links;
}

/** The image names an archive holds (its manifest.json RepoTags, else its index.json's image names). */
export async function archiveNames(source: string): Promise<string[]> {
  const wanted = new Map<string, Buffer>();
  const st = await fs.promises.stat(source).catch(() => undefined);
  if (!st) throw new Error(`image archive ${source} not found: give a docker save tar or an OCI image layout`);
  if (st.isDirectory()) {
    for (const f of ["manifest.json", "index.json"]) if (fs.existsSync(path.join(source, f))) wanted.set(f, fs.readFileSync(path.join(source, f)));
  } else {
    for await (const { header: h, data } of readTar(fs.createReadStream(source))) {
      const rel = cleanEntryPath(h.path);
      if (h.type !== "file" || (rel !== "manifest.json" && rel !== "index.json")) continue;
      const chunks: Buffer[] = [];
      for await (const c of data) chunks.push(c as Buffer);
      wanted.set(rel, Buffer.concat(chunks));
    }
  }
  const docker = wanted.get("manifest.json");
  if (docker) return (JSON.parse(docker.toString()) as Array<{ RepoTags?: string[] }>).flatMap((e) => e.RepoTags ?? []);
  const oci = wanted.get("index.json");
  if (oci) return (JSON.parse(oci.toString()) as OciIndex).manifests.flatMap((m) => m.annotations?.["io.containerd.image.name"] ?? []);
  throw new Error(`${source} is neither a docker save archive (manifest.json) nor an OCI image layout (index.json)`);
}

async function isGzipFile(p: string): Promise<boolean> {
  const fh = await fs.promises.open(p, "r");
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

export async function importArchive(store: ContentStore, source: string, ref: string): Promise<ImageInfo> {
  const st = await fs.promises.stat(source).catch(() => undefined);
  if (!st) throw new Error(`image archive ${source} not found: give a docker save tar or an OCI image layout`);
  let root = source;
  let links = new Map<string, string>();
  let tmp: string | undefined;
  if (!st.isDirectory()) {
    await fs.promises.mkdir(store.paths.ingest, { recursive: true });
    tmp = stagingPath(store.paths.ingest, "archive");
    links = await unpackArchive(source, tmp);
    root = tmp;
  }
  try {
    // Names from the archive's own JSON: resolved inside it (its symlinks, '..' stopping at its top), never above.
    const resolve = (rel: string) => resolveInRoot(root, links.get(path.posix.normalize(rel)) ?? rel);
    if (fs.existsSync(path.join(root, "index.json"))) return await importLayout(store, root, ref, source);
    if (fs.existsSync(path.join(root, "manifest.json"))) return await importDockerSave(store, root, resolve, ref, source);
    throw new Error(`${source} is neither a docker save archive (manifest.json) nor an OCI image layout (index.json)`);
  } finally {
    if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}

async function ingestFile(store: ContentStore, p: string, mediaType: string, digest?: string): Promise<Descriptor> {
  if (!fs.existsSync(p)) throw new Error(`archive is missing ${digest ?? path.basename(p)}`);
  return store.ingest(fs.createReadStream(p), { mediaType, digest });
}

async function importLayout(store: ContentStore, root: string, ref: string, source: string): Promise<ImageInfo> {
  const blob = (d: string) => {
    if (!isDigest(d)) throw new Error(`OCI layout ${source}: invalid digest "${d}": expected sha256:<64 hex digits>`);
    return resolveInRoot(root, `blobs/sha256/${d.slice(7)}`);
  };
  const readJsonBlob = async <T>(d: string) => JSON.parse((await fs.promises.readFile(await blob(d))).toString()) as T;
  let index = JSON.parse(await fs.promises.readFile(path.join(root, "index.json"), "utf8")) as OciIndex;
  const tag = ref.slice(ref.lastIndexOf(":") + 1);
  for (;;) {
    const named = index.manifests.find((m) => m.annotations?.["io.containerd.image.name"] === ref || m.annotations?.[REF_ANNOTATION] === tag);
    const chosen = named ?? (index.manifests.length === 1 ? index.manifests[0] : undefined);
    if (!chosen) {
      const names = index.manifests.map((m) => m.annotations?.[REF_ANNOTATION]).filter(Boolean);
      throw new Error(`OCI layout ${source} holds ${index.manifests.length} images (${names.join(", ")}); name one with the tag of the ref`);
    }
    if (!INDEX_TYPES.includes(chosen.mediaType as never)) {
      const raw = await fs.promises.readFile(await blob(chosen.digest));
      if (sha256Bytes(raw) !== chosen.digest) throw new Error(`OCI layout ${source}: manifest ${chosen.digest} does not match its digest`);
      const manifest = JSON.parse(raw.toString()) as OciManifest;
      for (const d of [manifest.config, ...manifest.layers]) await ingestFile(store, await blob(d.digest), d.mediaType, d.digest);
      return store.commitManifest(ref, raw);
    }
    index = await readJsonBlob<OciIndex>(chosen.digest);
  }
}

async function importDockerSave(store: ContentStore, root: string, resolve: (rel: string) => Promise<string>, ref: string, source: string): Promise<ImageInfo> {
  const entries = JSON.parse(await fs.promises.readFile(path.join(root, "manifest.json"), "utf8")) as Array<{ Config: string; RepoTags?: string[]; Layers: string[] }>;
  const entry = entries.find((e) => e.RepoTags?.includes(ref)) ?? (entries.length === 1 ? entries[0] : undefined);
  if (!entry) throw new Error(`docker save archive ${source} holds ${entries.length} images; name one of ${entries.flatMap((e) => e.RepoTags ?? []).join(", ")}`);
  const config = await ingestFile(store, await resolve(entry.Config), MediaType.config);
  const layers: Descriptor[] = [];
  for (const l of entry.Layers) {
    const p = await resolve(l);
    layers.push(await ingestFile(store, p, (await isGzipFile(p)) ? MediaType.layerGzip : MediaType.layer));
  }
  // The config keeps its bytes, so the image keeps the id Docker gave it.
  const manifest: OciManifest = { schemaVersion: 2, mediaType: MediaType.manifest, config, layers };
  return store.commitManifest(ref, Buffer.from(JSON.stringify(manifest)));
}
