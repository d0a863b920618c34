// The layer-breakout suite: crafted layers that try to reach outside berth's root (containerd's archive breakout
// cases, plus '..' and absolute paths, symlinks and hardlinks of this or a lower layer, symlink chains, whiteouts
// and opaque markers of '.', '..' and the root, deferred actions through a symlink, devices, setuid files). Each
// case aims at its own canary directory outside the root and asserts it unchanged (entries, content, mode,
// owner, times, link count, xattrs), the root's other contents intact, and nothing half-unpacked left behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { realHost } from "../../native";
import { layout } from "../../native/paths";
import { ContentStore, sha256Bytes } from "../../native/image/store";
import { MediaType, toOciConfig, type Descriptor } from "../../native/image/oci";
import { encodeHeader, writeTar, type TarHeader } from "../../native/image/tar";
import { importArchive } from "../../native/image/archive";

let T: string;
let store: ContentStore;
/** What T holds besides the canaries. */
let baseline: string[];

type Spec = Partial<TarHeader> & { path: string; content?: string };
/** A raw block sequence instead of an entry, for header tricks the writer never makes. */
type Raw = { raw: Buffer };
type Layer = Array<Spec | Raw>;

interface Case {
  name: string;
  /** The layers, bottom first; C is the canary's absolute path, R the same reached relatively from a layer dir. */
  layers: (C: string, R: string) => Layer[];
  /** A refusal (its message), or accepted: why that is safe, checked by `check` when given. */
  refused?: RegExp;
  accepted?: string;
  check?: (top: string, C: string) => void;
}

const header = (s: Spec): TarHeader => {
  const size = s.content === undefined ? 0 : Buffer.byteLength(s.content);
  return { type: "file", mode: 0o644, uid: 0, gid: 0, size, mtime: 946684800, linkname: "", devmajor: 0, devminor: 0, ...s };
};

/** Sets a header block's type flag (and optional ustar prefix) and fixes its checksum. */
function patched(block: Buffer, flag: string, prefix?: string): Buffer {
  const b = Buffer.from(block);
  b.write(flag, 156, 1, "ascii");
  if (prefix !== undefined) b.write(prefix, 345, 155, "utf8");
  b.fill(0x20, 148, 156);
  b.write(b.reduce((n, x) => n + x, 0).toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
  return b;
}
const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
/** A GNU long-name ('L') record carrying name, followed by the entry spec. */
const gnuLong = (name: string, s: Spec): Raw => {
  const body = Buffer.from(`${name}\0`);
  const h = patched(encodeHeader(header({ path: "././@LongLink", content: "x".repeat(body.length) })), "L");
  const entry = encodeHeader(header({ ...s, path: "placeholder" }));
  const data = Buffer.from(s.content ?? "");
  return { raw: Buffer.concat([h, body, pad(body.length), entry, data, pad(data.length)]) };
};
/** An entry whose name is split into the ustar prefix field. */
const withPrefix = (prefix: string, s: Spec): Raw => {
  const data = Buffer.from(s.content ?? "");
  return { raw: Buffer.concat([patched(encodeHeader(header(s)), "0", prefix), data, pad(data.length)]) };
};

async function tarOf(layer: Layer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (const e of layer) {
    if ("raw" in e) {
      chunks.push(e.raw);
      continue;
    }
    for await (const c of writeTar([{ header: header(e), data: e.content === undefined ? undefined : () => Buffer.from(e.content!) }])) {
      chunks.push(c as Buffer);
    }
    chunks.splice(chunks.length - 1, 1); // the end-of-archive blocks, added once below
  }
  chunks.push(Buffer.alloc(1024));
  return Buffer.concat(chunks);
}

async function stored(layer: Layer): Promise<{ desc: Descriptor; diffId: string }> {
  const tar = await tarOf(layer);
  return { desc: await store.ingest([gzipSync(tar)], { mediaType: MediaType.layerGzip }), diffId: sha256Bytes(tar) };
}

/** Everything observable about a tree: entries, kind, content or link target, mode, owner, times, links, xattrs. */
function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p);
    const xattrs = execFileSync("getfattr", ["-h", "-d", "-m", "-", "--absolute-names", p], { encoding: "utf8" })
      .split("\n").filter((l) => l && !l.startsWith("#")).sort().join(",");
    const what = st.isSymbolicLink() ? `-> ${fs.readlinkSync(p)}` : st.isFile() ? fs.readFileSync(p, "utf8") : st.isDirectory() ? "dir" : `rdev ${st.rdev}`;
    out.push(`${rel} ${what} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs} ${st.nlink} [${xattrs}]`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n), `${rel}/${n}`);
  };
  walk(dir, ".");
  return out.join("\n");
}

/** A canary directory with a file, a subdirectory, an xattr each and old times. */
function makeCanary(C: string): void {
  fs.mkdirSync(path.join(C, "sub"), { recursive: true });
  fs.writeFileSync(path.join(C, "file"), "canary");
  fs.chmodSync(path.join(C, "file"), 0o640);
  for (const p of [C, path.join(C, "file"), path.join(C, "sub")]) {
    execFileSync("setfattr", ["-n", "user.berth", "-v", "canary", p]);
    fs.utimesSync(p, 1e9, 1e9);
  }
}

const symlink = (p: string, to: string): Spec => ({ path: p, type: "symlink", linkname: to });
const hardlink = (p: string, to: string): Spec => ({ path: p, type: "hardlink", linkname: to });
const dir = (p: string, extra: Partial<Spec> = {}): Spec => ({ path: p, type: "dir", mode: 0o755, ...extra });
const file = (p: string, content = "evil", extra: Partial<Spec> = {}): Spec => ({ path: p, content, ...extra });
const OLD = { mtime: 1234 };

const CASES: Case[] = [
  // '..' and absolute paths
  { name: "a file '..' out of the root", layers: (C, R) => [[file(`${R}/file`)]], refused: /its path climbs out of the root/ },
  { name: "a new file '..' out of the root", layers: (C, R) => [[file(`${R}/new`)]], refused: /climbs out/ },
  { name: "'..' inside a deeper path", layers: (C, R) => [[file(`a/b/../../${R}/new`)]], refused: /climbs out/ },
  { name: "a directory '..' out (its mode and times)", layers: (C, R) => [[dir(`${R}/`, { mode: 0o777, ...OLD })]], refused: /climbs out/ },
  { name: "a directory entry for '..' itself", layers: () => [[dir("../")]], refused: /climbs out/ },
  { name: "a symlink made outside", layers: (C, R) => [[symlink(`${R}/link`, "/")]], refused: /climbs out/ },
  { name: "a hardlink made outside", layers: (C, R) => [[file("f"), hardlink(`${R}/h`, "f")]], refused: /climbs out/ },
  { name: "a FIFO made outside", layers: (C, R) => [[{ path: `${R}/fifo`, type: "fifo" }]], refused: /climbs out/ },
  { name: "a long PAX name climbing out", layers: (C, R) => [[file(`${"x".repeat(120)}/../../${R}/new`)]], refused: /climbs out/ },
  { name: "a GNU long name climbing out", layers: (C, R) => [[gnuLong(`${R}/new`, file("", "evil"))]], refused: /climbs out/ },
  { name: "a ustar prefix climbing out", layers: (C, R) => [[withPrefix(R, file("new"))]], refused: /climbs out/ },
  {
    name: "an absolute path (taken inside the root, as Docker does)",
    layers: (C) => [[file(`${C}/file`, "inside")]],
    accepted: "a leading '/' is stripped: the file lands at that path inside the layer",
    check: (top, C) => expect(fs.readFileSync(path.join(top, C, "file"), "utf8")).toBe("inside"),
  },
  // writes through symlinks
  { name: "a file through an absolute symlink", layers: (C) => [[symlink("l", C), file("l/file")]], refused: /written through the symlink "l"/ },
  { name: "a new file through an absolute symlink", layers: (C) => [[symlink("l", C), file("l/new")]], refused: /through the symlink "l"/ },
  { name: "a directory through a symlink", layers: (C) => [[symlink("l", C), dir("l/sub/", { mode: 0o777 })]], refused: /through the symlink "l"/ },
  { name: "a symlink through a symlink", layers: (C) => [[symlink("l", C), symlink("l/file", "/")]], refused: /through the symlink "l"/ },
  { name: "a hardlink through a symlink", layers: (C) => [[file("f"), symlink("l", C), hardlink("l/h", "f")]], refused: /through the symlink "l"/ },
  { name: "a FIFO through a symlink", layers: (C) => [[symlink("l", C), { path: "l/p", type: "fifo" }]], refused: /through the symlink "l"/ },
  { name: "a relative symlink climbing out", layers: (C, R) => [[symlink("l", R)]], refused: /symlink target .* climbs out/ },
  { name: "a relative symlink climbing out from a subdirectory", layers: (C, R) => [[dir("a/"), symlink("a/l", `../${R}`)]], refused: /climbs out/ },
  { name: "a symlink to '..'", layers: () => [[symlink("l", "..")]], refused: /climbs out/ },
  { name: "an empty symlink then a write through it", layers: () => [[symlink("l", ""), file("l/x")]], refused: /symlink target is empty/ },
  { name: "a symlink with a trailing slash", layers: (C) => [[symlink("l/", C), file("l/file")]], refused: /through the symlink "l"/ },
  { name: "a symlink to the root then the canary's path", layers: (C) => [[symlink("l", "/"), file(`l${C}/file`)]], refused: /through the symlink "l"/ },
  { name: "a symlink chain", layers: (C) => [[symlink("a", "b"), symlink("b", C), file("a/file")]], refused: /through the symlink "a"/ },
  { name: "a symlink chain across layers", layers: (C) => [[symlink("a", "/b")], [symlink("b", C), file("a/file")]], refused: /through the symlink "a"/ },
  { name: "a symlink planted by a lower layer", layers: (C) => [[symlink("l", C)], [file("l/file")]], refused: /through the symlink "l"/ },
  { name: "a symlink two layers down", layers: (C) => [[symlink("l", C)], [file("other")], [dir("l/x/")]], refused: /through the symlink "l"/ },
  { name: "a directory replaced by a symlink, then written", layers: (C) => [[dir("d/"), symlink("d", C), file("d/file")]], refused: /through the symlink "d"/ },
  { name: "a lower directory replaced by a symlink, then written", layers: (C) => [[dir("d/")], [symlink("d", C), file("d/new")]], refused: /through the symlink "d"/ },
  { name: "a file replaced by a symlink, then written", layers: (C) => [[file("f"), symlink("f", C), file("f/new")]], refused: /through the symlink "f"/ },
  {
    name: "a symlink replaced by a directory, then written",
    layers: (C) => [[symlink("d", C), dir("d/"), file("d/file", "inside")]],
    accepted: "the symlink itself is removed, never its target; the file lands in the new directory",
    check: (top) => expect(fs.readFileSync(path.join(top, "d/file"), "utf8")).toBe("inside"),
  },
  {
    name: "an absolute symlink kept as it is",
    layers: (C) => [[symlink("l", C)]],
    accepted: "an absolute symlink resolves inside the container; berth never follows it on the host",
    check: (top, C) => expect(fs.readlinkSync(path.join(top, "l"))).toBe(C),
  },
  // deferred actions through a symlink (issue 12, item 1)
  {
    name: "a whiteout deferred, then its directory made a symlink",
    layers: (C) => [[dir("d/"), file("d/.wh.x", ""), symlink("d", C)]],
    accepted: "the whiteout's directory is gone when the layer ends, so it is dropped (never made through the symlink)",
  },
  {
    name: "an opaque marker deferred, then its directory made a symlink",
    layers: (C) => [[dir("d/"), file("d/.wh..wh..opq", ""), symlink("d", C)]],
    accepted: "the opaque marker's directory is gone, so it is dropped",
  },
  {
    name: "a directory's time deferred, then it is made a symlink",
    layers: (C) => [[dir("d/", OLD), symlink("d", C)]],
    accepted: "deferred times are set with lutimes on real directories only",
  },
  {
    name: "a deferred whiteout under a parent made a symlink",
    layers: (C) => [[dir("a/"), dir("a/d/"), file("a/d/.wh.x", ""), symlink("a", C)]],
    accepted: "the whiteout's parent chain is no longer real directories, so it is dropped",
  },
  {
    name: "deferred actions under a subdirectory made a symlink",
    layers: (C) => [[dir("d/", OLD), dir("d/sub/", OLD), file("d/sub/.wh..wh..opq", ""), symlink("d/sub", C)]],
    accepted: "each deferred action checks its own path again",
  },
  {
    name: "a whiteout over a lower directory, then that name made a symlink",
    layers: (C) => [[dir("d/"), file("d/x")], [file("d/.wh.x", ""), symlink("d", C)]],
    accepted: "dropped: the directory it was in is now a symlink of this layer",
  },
  { name: "a whiteout through a symlink of the layer", layers: (C) => [[symlink("l", C), file("l/.wh.file", "")]], refused: /through the symlink "l"/ },
  { name: "a whiteout through a lower symlink", layers: (C) => [[symlink("l", C)], [file("l/.wh.file", "")]], refused: /through the symlink "l"/ },
  { name: "an opaque marker through a symlink", layers: (C) => [[symlink("l", C), file("l/.wh..wh..opq", "")]], refused: /through the symlink "l"/ },
  { name: "an opaque marker through a lower symlink", layers: (C) => [[symlink("l", C)], [file("l/.wh..wh..opq", "")]], refused: /through the symlink "l"/ },
  // whiteouts and opaque markers of '.', '..' and the root (issue 12, item 2)
  { name: "a whiteout of '.' at the root", layers: () => [[file(".wh..", "")]], refused: /the whiteout ".wh.." names no entry/ },
  { name: "a whiteout of '..' at the root", layers: () => [[file(".wh...", "")]], refused: /the whiteout ".wh..." names no entry/ },
  { name: "a whiteout of '.' in a directory", layers: () => [[dir("d/"), file("d/.wh..", "")]], refused: /names no entry/ },
  { name: "a whiteout of '..' in a directory", layers: () => [[dir("d/"), file("d/.wh...", "")]], refused: /names no entry/ },
  { name: "an empty whiteout name", layers: () => [[file(".wh.", "")]], refused: /names no entry/ },
  { name: "a whiteout '..' out of the root", layers: (C, R) => [[file(`${R}/.wh.file`, "")]], refused: /climbs out/ },
  { name: "an opaque marker '..' out of the root", layers: (C, R) => [[file(`${R}/.wh..wh..opq`, "")]], refused: /climbs out/ },
  { name: "a whiteout climbing out inside its path", layers: (C, R) => [[file(`d/../${R}/.wh.sub`, "")]], refused: /climbs out/ },
  {
    name: "an opaque marker of the root",
    layers: () => [[file(".wh..wh..opq", "")]],
    accepted: "it marks the layer's own root directory: inside the root, and what overlayfs would do",
  },
  {
    name: "an opaque marker in a directory only a lower layer has",
    layers: () => [[dir("d/"), file("d/old")], [file("d/.wh..wh..opq", ""), file("d/new")]],
    accepted: "the marker goes on this layer's own copy of the directory",
    check: (top) => expect(execFileSync("getfattr", ["-h", "--only-values", "-n", "trusted.overlay.opaque", path.join(top, "d")], { encoding: "utf8" })).toBe("y"),
  },
  {
    name: "aufs metadata",
    layers: () => [[dir(".wh..wh.plnk/"), file(".wh..wh.plnk/1.2", "x"), file("kept", "y")]],
    accepted: "never unpacked (as in containerd); the rest of the layer is",
    check: (top) => expect(fs.readdirSync(top)).toEqual(["kept"]),
  },
  // hardlinks
  { name: "an absolute hardlink to the canary", layers: (C) => [[hardlink("h", `${C}/file`)]], refused: /hardlink target .* is outside the root/ },
  { name: "a hardlink climbing out to the canary", layers: (C, R) => [[hardlink("h", `${R}/file`)]], refused: /is outside the root/ },
  { name: "a hardlink through a symlink", layers: (C) => [[symlink("l", C), hardlink("h", "l/file")]], refused: /through the symlink "l"/ },
  { name: "a hardlink through a lower symlink", layers: (C) => [[symlink("l", C)], [hardlink("h", "l/file")]], refused: /through the symlink "l"/ },
  { name: "a hardlink to a lower symlink pointing out", layers: (C) => [[symlink("s", `${C}/file`)], [hardlink("h", "s")]], refused: /does not exist/ },
  {
    name: "a hardlink to a lower file behind a lower-lower symlink hidden by a directory",
    layers: (C) => [[symlink("d", C)], [dir("d/")], [hardlink("h", "d/file")]],
    refused: /does not exist/,
  },
  {
    name: "a hardlink to a symlink pointing out, then a chmod of it",
    layers: (C) => [[symlink("s", `${C}/file`), hardlink("h", "s"), file("h", "replaced", { mode: 0o777 })]],
    accepted: "link(2) links the symlink itself; the later entry replaces the link, never writes through it",
    check: (top) => expect(fs.readFileSync(path.join(top, "h"), "utf8")).toBe("replaced"),
  },
  {
    name: "a hardlink to a symlink pointing out",
    layers: (C) => [[symlink("s", `${C}/file`), hardlink("h", "s")]],
    accepted: "the link is a second name of the symlink, resolved inside the container only",
    check: (top, C) => expect(fs.readlinkSync(path.join(top, "h"))).toBe(`${C}/file`),
  },
  { name: "a hardlink to a directory", layers: () => [[dir("d/"), hardlink("h", "d")]], refused: /is a directory/ },
  { name: "a hardlink to the root", layers: () => [[hardlink("h", ".")]], refused: /is outside the root/ },
  { name: "a hardlink to '..'", layers: () => [[hardlink("h", "..")]], refused: /is outside the root/ },
  { name: "a hardlink to a missing file", layers: () => [[hardlink("h", "nope")]], refused: /does not exist/ },
  { name: "a hardlink to a whited-out file", layers: () => [[file("f")], [file(".wh.f", ""), hardlink("h", "f")]], refused: /does not exist/ },
  // devices and special bits
  { name: "a character device", layers: () => [[{ path: "dev/null", type: "char", devmajor: 1, devminor: 3 }]], refused: /device nodes are not allowed/ },
  { name: "a block device", layers: () => [[{ path: "dev/sda", type: "block", devmajor: 8, devminor: 0 }]], refused: /device nodes are not allowed/ },
  { name: "a 0:0 character device posing as a whiteout", layers: () => [[{ path: "x", type: "char" }]], refused: /device nodes are not allowed/ },
  {
    name: "a setuid root file",
    layers: () => [[file("bin/su", "#!", { mode: 0o4755 })]],
    accepted: "kept 4755 for the container (images need it), but under berth's root, which only root can traverse",
    check: (top) => expect(fs.statSync(path.join(top, "bin/su")).mode & 0o7777).toBe(0o4755),
  },
  {
    name: "a FIFO",
    layers: () => [[{ path: "p", type: "fifo" }]],
    accepted: "made inside the layer; nothing reads it on the host",
    check: (top) => expect(fs.lstatSync(path.join(top, "p")).isFIFO()).toBe(true),
  },
];

beforeAll(async () => {
  T = fs.mkdtempSync("/tmp/berth-breakout-");
  store = new ContentStore(realHost, layout(path.join(T, "state"), path.join(T, "run")), async () => []);
  await store.leased(async () => {
    const keep = await stored([file("keep", "keep")]);
    await store.commit("sentinel:1", toOciConfig({}, [keep.diffId]), [keep.desc]);
  });
  // Work of another import in the ingest directory, which a whiteout of '..' used to remove.
  fs.mkdirSync(path.join(store.paths.ingest, "other-import"), { recursive: true });
  fs.writeFileSync(path.join(store.paths.ingest, "other-import/part"), "in progress");
  baseline = fs.readdirSync(T);
});

afterAll(() => fs.rmSync(T, { recursive: true, force: true }));

/** A layer as a registry serves it: its gzipped blob, not stored. */
async function served(layer: Layer): Promise<{ desc: Descriptor; diffId: string; blob: Buffer }> {
  const tar = await tarOf(layer);
  const blob = gzipSync(tar);
  return { desc: { mediaType: MediaType.layerGzip, digest: sha256Bytes(blob), size: blob.length }, diffId: sha256Bytes(tar), blob };
}

/**
 * Runs case c, its canary the n-th: its layers stored then committed ("import"), or pulled: streamed in small
 * chunks, so each is unpacked while it arrives, as a registry's (store.fetchLayers).
 */
async function runCase(c: Case, n: number, via: "import" | "pull"): Promise<void> {
  const C = path.join(T, `canary-${n}`);
  makeCanary(C);
  // Layer directories are <T>/state/{ingest,layers}/<x>: three levels up is T.
  const R = `../../../canary-${n}`;
  const before = snapshot(C);
  const rootBefore = snapshot(path.join(T, "state", "layers"));
  const layers: Array<{ desc: Descriptor; diffId: string }> = [];
  const ref = `case-${n}:1`;
  // As every ingest of berth's: under a lease.
  const err = await store
    .leased(async () => {
      if (via === "pull") {
        const blobs = new Map<string, Buffer>();
        for (const l of c.layers(C, R)) {
          const s = await served(l);
          blobs.set(s.desc.digest, s.blob);
          layers.push(s);
        }
        const chunks = (b: Buffer) => Array.from({ length: Math.ceil(b.length / 512) }, (_, k) => b.subarray(k * 512, (k + 1) * 512));
        await store.fetchLayers(layers.map((l) => l.desc), layers.map((l) => l.diffId), ref, "a test registry", async (d) => Readable.from(chunks(blobs.get(d.digest)!)));
      } else for (const l of c.layers(C, R)) layers.push(await stored(l));
      await store.commit(ref, toOciConfig({}, layers.map((l) => l.diffId)), layers.map((l) => l.desc));
    })
    .then(() => undefined, (e: Error) => e);

  expect(snapshot(C)).toBe(before);
  expect(fs.readdirSync(T).filter((n) => !baseline.includes(n)).sort()).toEqual(Array.from({ length: n + 1 }, (_, k) => `canary-${k}`).sort());
  expect(fs.readdirSync(store.paths.ingest)).toEqual(["other-import"]);
  expect(fs.readFileSync(path.join(store.paths.ingest, "other-import/part"), "utf8")).toBe("in progress");
  expect(await store.inspect("sentinel:1")).toBeDefined();
  // Layers already there are untouched (new ones may have been added).
  const after = snapshot(path.join(T, "state", "layers")).split("\n");
  for (const line of rootBefore.split("\n").slice(1)) if (!line.startsWith(". ")) expect(after).toContain(line);
  if (c.refused) {
    expect(err?.message).toMatch(c.refused);
    expect(err?.message).toContain(`layer ${layers[layers.length - 1].desc.digest} of ${ref}`);
    expect(await store.inspect(ref)).toBeUndefined();
  } else {
    expect(err).toBeUndefined();
    c.check?.(store.paths.layer(layers[layers.length - 1].diffId), C);
  }
}

describe("layer breakouts", () => {
  it(`has at least 50 cases (${CASES.length})`, () => expect(CASES.length).toBeGreaterThanOrEqual(50));

  for (const [i, c] of CASES.entries()) it(`${c.refused ? "refuses" : "accepts safely"} ${c.name}`, () => runCase(c, i, "import"));
});

// The same layers pulled: unpacked while they download, several at once (canaries numbered after the imports').
describe("layer breakouts, pulled", () => {
  for (const [i, c] of CASES.entries()) it(`${c.refused ? "refuses" : "accepts safely"} ${c.name}`, () => runCase(c, CASES.length + i, "pull"));
});

describe("archive imports", () => {
  // An image archive names its config and layers in its own JSON: those names must stay inside the archive.
  const archive = async (name: string, entries: Spec[]): Promise<string> => {
    const file = path.join(T, `${name}.tar`);
    fs.writeFileSync(file, await tarOf(entries));
    return file;
  };
  let A: string;
  let before: string;
  beforeAll(() => {
    A = path.join(T, "canary-archive");
    fs.mkdirSync(A);
    // A valid image config and a valid layer tar outside the archive, which an escape would import.
    fs.writeFileSync(path.join(A, "config.json"), JSON.stringify(toOciConfig({}, [])));
    before = snapshot(A);
  });
  const cases: Array<[string, () => Spec[], RegExp]> = [
    ["a docker save config path climbing out", () => [file("manifest.json", JSON.stringify([{ Config: "../../../canary-archive/config.json", Layers: [] }]))], /archive is missing/],
    ["a docker save config path that is absolute", () => [file("manifest.json", JSON.stringify([{ Config: `${T}/canary-archive/config.json`, Layers: [] }]))], /archive is missing/],
    [
      "a docker save config reached through an archive symlink climbing out",
      () => [symlink("cfg", "../../../canary-archive/config.json"), file("manifest.json", JSON.stringify([{ Config: "cfg", Layers: [] }]))],
      /archive is missing/,
    ],
    [
      "an OCI layout digest climbing out",
      () => [file("oci-layout", "{}"), file("index.json", JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.index.v1+json", digest: "sha256:../../../../canary-archive/config.json", size: 1 }] }))],
      /invalid digest/,
    ],
  ];
  for (const [what, entries, message] of cases) {
    it(`refuses ${what}`, async () => {
      const file = await archive(what.replace(/\W+/g, "-"), entries());
      await expect(store.leased(() => importArchive(store, file, "arch:1"))).rejects.toThrow(message);
      expect(await store.inspect("arch:1")).toBeUndefined();
      expect(snapshot(A)).toBe(before);
      expect(fs.readdirSync(store.paths.ingest)).toEqual(["other-import"]);
    });
  }
});
