// The inverse of unpack: a directory in overlay layer form (an overlay upper directory) written as an OCI layer
// tar — 0:0 character devices become ".wh.name" whiteouts, opaque directories get ".wh..wh..opq" — then
// gzipped into the store as a blob, the directory itself adopted as the unpacked layer.
import * as fs from "node:fs";
import * as path from "node:path";
import { constants, createGzip } from "node:zlib";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Host } from "../host/exec";
import { MediaType, type Descriptor } from "./oci";
import { hashing, type ContentStore } from "./store";
import { writeTar, type TarHeader, type TarSource } from "./tar";
import { OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX } from "./unpack";

/** Directories under dir carrying overlay's opaque marker. */
async function opaqueDirs(host: Host, dir: string): Promise<Set<string>> {
  const r = await host.tryRun("getfattr", ["-R", "--absolute-names", "-n", OPAQUE_XATTR, dir]);
  const found = [...r.stdout.matchAll(/^# file: (.*)$/gm)].map((m) => m[1]);
  return new Set(found);
}

function headerOf(rel: string, st: fs.Stats): TarHeader {
  return {
    path: rel, type: "file", mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0,
    mtime: Math.floor(st.mtimeMs / 1000), linkname: "", devmajor: 0, devminor: 0,
  };
}

/** Tar entries of a layer directory, parents before children, hardlinks as links to their first name. */
async function* layerEntries(dir: string, opaque: Set<string>, layer: string): AsyncGenerator<TarSource> {
  const seen = new Map<string, string>();
  async function* walk(relDir: string): AsyncGenerator<TarSource> {
    const absDir = path.join(dir, relDir);
    if (relDir && opaque.has(absDir)) {
      yield { header: { ...headerOf(`${relDir}/${OPAQUE_MARKER}`, await fs.promises.lstat(absDir)), mode: 0 } };
    }
    for (const name of (await fs.promises.readdir(absDir)).sort()) {
      const rel = relDir ? `${relDir}/${name}` : name;
      const abs = path.join(dir, rel);
      const st = await fs.promises.lstat(abs);
      const h = headerOf(rel, st);
      if (st.isDirectory()) {
        yield { header: { ...h, type: "dir" } };
        yield* walk(rel);
      } else if (st.isSymbolicLink()) {
        yield { header: { ...h, type: "symlink", linkname: await fs.promises.readlink(abs) } };
      } else if (st.isCharacterDevice() && st.rdev === 0) {
        yield { header: { ...h, path: path.posix.join(relDir, `${WHITEOUT_PREFIX}${name}`), mode: 0 } };
      } else if (st.isFIFO()) {
        yield { header: { ...h, type: "fifo" } };
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first) yield { header: { ...h, type: "hardlink", linkname: first } };
        else {
          if (st.nlink > 1) seen.set(key, rel);
          yield { header: { ...h, size: st.size }, data: () => fs.createReadStream(abs) };
        }
      } else {
        throw new Error(`layer ${layer}: "${rel}" is a device node; image layers may not hold devices`);
      }
    }
  }
  yield* walk("");
}

/**
 * A layer in two halves: its diff id now (the tar hashed, dir adopted as the unpacked layer), its gzip blob
 * later (made from the adopted directory, at the fastest level), so a build goes on while it compresses.
 */
export async function adoptThenCompress(host: Host, store: ContentStore, dir: string, layer: string): Promise<{ diffId: string; blob: Promise<Descriptor> }> {
  const opaque = await opaqueDirs(host, dir);
  const tar = hashing(writeTar(layerEntries(dir, opaque, layer)));
  for await (const _ of tar.stream) void _;
  const diffId = tar.digest();
  await store.adoptLayer(dir, diffId);
  const adopted = store.paths.layer(diffId);
  const blob = (async () => {
    const moved = new Set([...opaque].map((p) => path.join(adopted, path.relative(dir, p))));
    const { desc, diffId: again } = await packLayer(host, store, adopted, layer, constants.Z_BEST_SPEED, moved);
    if (again !== diffId) throw new Error(`layer ${layer} changed while it was being compressed`);
    return desc;
  })();
  // The caller awaits it; until then a failure must not count as unhandled.
  blob.catch(() => undefined);
  return { diffId, blob };
}

/** Stores dir as a gzip layer blob and as the unpacked layer of its diff id (dir is moved, not copied). */
export async function commitLayer(host: Host, store: ContentStore, dir: string, layer: string): Promise<{ desc: Descriptor; diffId: string }> {
  const packed = await packLayer(host, store, dir, layer);
  await store.adoptLayer(dir, packed.diffId);
  return packed;
}

async function packLayer(host: Host, store: ContentStore, dir: string, layer: string, level?: number, opaque?: Set<string>): Promise<{ desc: Descriptor; diffId: string }> {
  const tar = hashing(writeTar(layerEntries(dir, opaque ?? (await opaqueDirs(host, dir)), layer)));
  const gz = createGzip({ level });
  // pipeline destroys gz with the walk's error, which ingest then reports.
  pipeline(Readable.from(tar.stream), gz).catch(() => undefined);
  const desc = await store.ingest(gz, { mediaType: MediaType.layerGzip });
  return { desc, diffId: tar.digest() };
}
