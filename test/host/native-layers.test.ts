// Layer unpacking on the real host: gzip layers checked against their diff ids, whiteouts and opaque directories
// seen through a real overlay mount, one copy of a shared layer, and tar breakouts (made here) refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import { Readable } from "node:stream";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { realHost } from "../../native";
import { layout } from "../../native/paths";
import { ContentStore, sha256Bytes } from "../../native/image/store";
import { MediaType, toOciConfig, type Descriptor } from "../../native/image/oci";
import { writeTar, type TarHeader } from "../../native/image/tar";

let root: string;
let store: ContentStore;

beforeAll(() => {
  root = fs.mkdtempSync("/tmp/berth-test-");
  store = new ContentStore(realHost, layout(path.join(root, "state"), path.join(root, "run")), async () => []);
});

afterAll(() => {
  for (const m of fs.readFileSync("/proc/mounts", "utf8").split("\n")) {
    const target = m.split(" ")[1];
    if (target?.startsWith(root)) execFileSync("umount", [target]);
  }
  fs.rmSync(root, { recursive: true, force: true });
});

/** What an escaping entry would create in /tmp. */
const ESCAPE = `berth-escape-${process.pid}`;

type Spec = Partial<TarHeader> & { path: string; content?: string };

const entry = (s: Spec): { header: TarHeader; data?: () => Buffer } => {
  const data = s.content === undefined ? undefined : Buffer.from(s.content);
  const header: TarHeader = {
    type: "file", mode: 0o644, uid: 0, gid: 0, size: data?.length ?? 0, mtime: 946684800, linkname: "", devmajor: 0, devminor: 0,
    ...s,
  };
  return { header, data: data && (() => data) };
};

async function tarOf(specs: Spec[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of writeTar(specs.map(entry))) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A gzip layer in the store, and its diff id. */
async function layer(specs: Spec[]): Promise<{ desc: Descriptor; diffId: string }> {
  const tar = await tarOf(specs);
  const desc = await store.ingest([gzipSync(tar)], { mediaType: MediaType.layerGzip });
  return { desc, diffId: sha256Bytes(tar) };
}

async function image(ref: string, layers: Array<{ desc: Descriptor; diffId: string }>) {
  const config = toOciConfig({ cmd: ["sh"] }, layers.map((l) => l.diffId));
  return store.commit(ref, config, layers.map((l) => l.desc));
}

/** A test whose ingests run under one lease, as every ingest of berth's does. */
const leasedIt = (name: string, fn: () => Promise<void>) => it(name, () => store.leased(fn));

describe("layers", () => {
  leasedIt("unpacks gzip layers; whiteouts and opaque dirs hide lower content in an overlay", async () => {
    const base = await layer([
      { path: "etc/", type: "dir", mode: 0o755 },
      { path: "etc/keep", content: "keep" },
      { path: "etc/gone", content: "gone" },
      { path: "data/", type: "dir", mode: 0o755 },
      { path: "data/old", content: "old" },
      { path: "bin/tool", content: "#!", mode: 0o4755, uid: 1000, gid: 1000 },
      { path: "bin/tool-link", type: "hardlink", linkname: "bin/tool" },
    ]);
    const top = await layer([
      { path: "etc/.wh.gone" },
      { path: "data/", type: "dir", mode: 0o700 },
      { path: "data/.wh..wh..opq" },
      { path: "data/new", content: "new" },
    ]);
    const info = await image("layered:1", [base, top]);
    expect(info.layers).toEqual([base.diffId, top.diffId]);
    expect(info.size).toBe(base.desc.size + top.desc.size);
    const baseDir = store.paths.layer(base.diffId);
    const st = fs.statSync(path.join(baseDir, "bin/tool"));
    expect([st.mode & 0o7777, st.uid, st.gid, st.nlink]).toEqual([0o4755, 1000, 1000, 2]);

    const merged = path.join(root, "merged");
    for (const d of ["merged", "upper", "work"]) fs.mkdirSync(path.join(root, d));
    const lower = store.layerDirs(info).join(":");
    execFileSync("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${root}/upper,workdir=${root}/work`, merged]);
    try {
      expect(fs.readdirSync(path.join(merged, "etc")).sort()).toEqual(["keep"]);
      expect(fs.readdirSync(path.join(merged, "data"))).toEqual(["new"]);
      expect(fs.statSync(path.join(merged, "data")).mode & 0o777).toBe(0o700);
    } finally {
      execFileSync("umount", [merged]);
    }
  });

  leasedIt("stores a layer shared by two images once", async () => {
    const shared = await layer([{ path: "shared", content: "x" }]);
    const a = await image("a:1", [shared]);
    const b = await image("b:1", [shared, await layer([{ path: "more", content: "y" }])]);
    expect(b.layers[0]).toBe(a.layers[0]);
    const dirs = fs.readdirSync(store.paths.layers);
    expect(dirs.filter((d) => d === shared.diffId.slice(7))).toHaveLength(1);
  });

  leasedIt("closes a download it does not need: a blob another process stored meanwhile", async () => {
    const l = await layer([{ path: "again", content: "1" }]);
    const download = Readable.from([fs.readFileSync(store.blobPath(l.desc.digest))]);
    expect(await store.ingest(download, { mediaType: l.desc.mediaType, digest: l.desc.digest })).toEqual(l.desc);
    expect(download.destroyed).toBe(true);
  });

  leasedIt("refuses a layer whose content does not match its diff id", async () => {
    const l = await layer([{ path: "f", content: "1" }]);
    const wrong = sha256Bytes("something else");
    await expect(store.commit("bad:1", toOciConfig({}, [wrong]), [l.desc])).rejects.toThrow(/digest mismatch/);
    expect(fs.existsSync(store.paths.layer(wrong))).toBe(false);
  });

  const breakouts: Array<[string, Spec[][], RegExp]> = [
    ["a '..' path", [[{ path: "../../escaped", content: "x" }]], /entry "..\/..\/escaped" refused: its path climbs out/],
    ["a write through a symlink of the same layer", [[{ path: "evil", type: "symlink", linkname: "/tmp" }, { path: `evil/${ESCAPE}`, content: "x" }]], /entry "evil\/berth-escape-\d+" refused: it would be written through the symlink "evil"/],
    ["a write through a symlink planted by an earlier layer", [[{ path: "evil", type: "symlink", linkname: "/etc" }], [{ path: "evil/passwd", content: "x" }]], /entry "evil\/passwd" refused: it would be written through the symlink "evil"/],
    ["an absolute hardlink", [[{ path: "h", type: "hardlink", linkname: "/etc/passwd" }]], /entry "h" refused: its hardlink target "\/etc\/passwd" is outside the root/],
    ["a hardlink climbing out", [[{ path: "h", type: "hardlink", linkname: "../../etc/passwd" }]], /entry "h" refused: its hardlink target/],
    ["a relative symlink climbing out", [[{ path: "a/l", type: "symlink", linkname: "../../../etc" }]], /entry "a\/l" refused: its symlink target "..\/..\/..\/etc" climbs out/],
    ["a device node", [[{ path: "dev/sda", type: "block", devmajor: 8, devminor: 0 }]], /entry "dev\/sda" refused: device nodes are not allowed/],
  ];
  for (const [what, tars, message] of breakouts) {
    leasedIt(`refuses ${what}, naming the layer and entry`, async () => {
      const layers = [];
      for (const specs of tars) layers.push(await layer(specs));
      const ref = `breakout-${layers.length}:1`;
      const err = await image(ref, layers).then(() => undefined, (e: Error) => e);
      expect(err?.message).toMatch(message);
      expect(err?.message).toContain(`layer ${layers[layers.length - 1].desc.digest} of ${ref}`);
      expect(fs.existsSync(`/tmp/${ESCAPE}`)).toBe(false);
      expect(await store.inspect(ref)).toBeUndefined();
      expect(fs.readdirSync(store.paths.ingest)).toEqual([]);
    });
  }
});
