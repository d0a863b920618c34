// A bounded fuzz run of the tar reader and the layer unpacker: random layers built from hostile names and link
// targets, then mutated (header fields rewritten with their checksum fixed, bytes flipped, truncated). Every run
// must end (no hang, no unbounded read), fail only with an Error, and leave the canary outside the layer
// untouched. BERTH_FUZZ_ITERATIONS sets the length (scripts/fuzz-tar.sh runs a long one), BERTH_FUZZ_SEED replays.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { realHost } from "../../native";
import { unpackLayer } from "../../native/image/unpack";
import { encodeHeader, padding, readTar, type EntryType, type TarHeader } from "../../native/image/tar";

const ITERATIONS = Number(process.env.BERTH_FUZZ_ITERATIONS ?? 150);
const SEED = Number(process.env.BERTH_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: small, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let T: string;
let C: string;
let canary: string;

function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p);
    const xattrs = execFileSync("getfattr", ["-h", "-d", "-m", "-", "--absolute-names", p], { encoding: "utf8" }).replace(/^#.*\n/gm, "");
    out.push(`${rel} ${st.mode.toString(8)} ${st.uid} ${st.mtimeMs} ${st.nlink} ${st.isFile() ? fs.readFileSync(p, "utf8") : ""} ${xattrs}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n), `${rel}/${n}`);
  };
  walk(dir, ".");
  return out.join("\n");
}

beforeAll(() => {
  T = fs.mkdtempSync("/tmp/berth-fuzz-");
  C = path.join(T, "canary");
  fs.mkdirSync(path.join(C, "sub"), { recursive: true });
  fs.writeFileSync(path.join(C, "file"), "canary");
  fs.utimesSync(C, 1e9, 1e9);
  canary = snapshot(C);
  fs.mkdirSync(path.join(T, "layers"));
});

afterAll(() => fs.rmSync(T, { recursive: true, force: true }));

describe("tar fuzz", () => {
  it(`reads and unpacks ${ITERATIONS} mutated layers without escaping, hanging or crashing (seed ${SEED})`, async () => {
    const rand = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    // Layer directories are T/layers/<n>: two levels up is T.
    const R = "../../canary";
    const names = ["a", "a/b", "d", "d/f", "d/.wh.f", "d/.wh..wh..opq", ".wh..wh..opq", ".wh..", ".wh...", ".wh.", "l", "l/x", "l/file",
      `${R}/x`, `${R}/file`, `${C}/file`, "..", ".", "./", "a/../../x", "x".repeat(150), `d/${"y".repeat(120)}/z`] as const;
    const links = [C, `${C}/file`, R, `${R}/file`, "/", "..", "a", "d", "l", "", "../../../..", "d/f"] as const;
    // Names no hostile entry uses as a directory, so a plain layer unpacks over any lower.
    const plain = ["a", "b", "c/d", "c/e", "f/g/h"] as const;
    const types: EntryType[] = ["file", "dir", "symlink", "hardlink", "fifo", "char", "block"];
    const interesting = ["\0", "0", "7777777", "77777777777", "-1", "x", "\x80\xff\xff", " ", "5", "1", "2", "L", "x", "g"];
    let refused = 0;
    let lower: string | undefined;
    for (let i = 0; i < ITERATIONS; i++) {
      // A layer of hostile entries (or, one time in four, plain ones left unmutated), remembering where each
      // header starts.
      const hostile = rand() < 0.75;
      const parts: Buffer[] = [];
      const headers: number[] = [];
      let at = 0;
      for (let n = 1 + Math.floor(rand() * 8); n > 0; n--) {
        const type = hostile ? pick(types) : pick(["file", "dir", "fifo"] as const);
        const content = type === "file" ? Buffer.from("evil".repeat(Math.floor(rand() * 200))) : Buffer.alloc(0);
        const h: TarHeader = {
          path: hostile ? pick(names) : pick(plain), type, mode: pick([0o644, 0o4755, 0o777, 0o7777]), uid: 0, gid: 0, size: content.length,
          mtime: Math.floor(rand() * 2e9), linkname: type === "symlink" || type === "hardlink" ? pick(links) : "", devmajor: 0, devminor: 0,
        };
        const block = encodeHeader(h);
        headers.push(at + block.length - 512);
        for (const b of [block, content, padding(content.length)]) {
          parts.push(b);
          at += b.length;
        }
      }
      parts.push(Buffer.alloc(1024));
      const tar = Buffer.concat(parts);
      // Mutations: a header field rewritten (checksum fixed, so the reader gets past it), bytes flipped, a cut.
      for (let m = hostile ? Math.floor(rand() * 4) : 0; m > 0; m--) {
        const off = pick(headers);
        const [start, len] = pick([[0, 100], [100, 8], [124, 12], [136, 12], [156, 1], [157, 100], [345, 155]] as const);
        tar.write(pick(interesting).padEnd(Math.floor(rand() * len), pick(["\0", "7", " "])).slice(0, len), off + start, "latin1");
        tar.fill(0x20, off + 148, off + 156);
        tar.write(tar.subarray(off, off + 512).reduce((s, x) => s + x, 0).toString(8).padStart(6, "0") + "\0 ", off + 148, 8, "latin1");
      }
      if (hostile && rand() < 0.2) for (let f = 0; f < 4; f++) tar[Math.floor(rand() * tar.length)] ^= 1 << Math.floor(rand() * 8);
      const input = hostile && rand() < 0.2 ? tar.subarray(0, Math.floor(rand() * tar.length)) : tar;

      // Odd chunk sizes, so every boundary of the reader is crossed; drawn now, so a seed replays exactly.
      const cuts: number[] = [];
      for (let o = 0; o < input.length; o += cuts[cuts.length - 1]) cuts.push(1 + Math.floor(rand() * 700));
      const chunks = async function* () {
        let o = 0;
        for (const n of cuts) yield input.subarray(o, (o += n));
      };
      const read = (async () => {
        for await (const e of readTar(chunks())) for await (const _ of e.data) void _;
      })().catch((e: unknown) => e);
      const dir = path.join(T, "layers", String(i));
      fs.mkdirSync(dir);
      const unpacked = unpackLayer({ host: realHost, tar: chunks(), dir, lowers: lower ? [lower] : [], layer: `fuzz ${i}` }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const timeout = new Promise((resolve) => setTimeout(() => resolve("timeout"), 10_000));
      for (const outcome of [await Promise.race([read, timeout]), await Promise.race([unpacked, timeout])]) {
        expect(outcome === undefined || outcome instanceof Error, `seed ${SEED}, iteration ${i}: ${String(outcome)}`).toBe(true);
      }
      const failure = await unpacked;
      expect(hostile || failure === undefined, `seed ${SEED}, iteration ${i}: a plain layer failed: ${String(failure)}`).toBe(true);
      if (failure === undefined) lower = dir;
      else {
        refused++;
        fs.rmSync(dir, { recursive: true, force: true });
      }
      expect(snapshot(C), `seed ${SEED}, iteration ${i}`).toBe(canary);
      expect(fs.readdirSync(T).sort(), `seed ${SEED}, iteration ${i}`).toEqual(["canary", "layers"]);
    }
    // The mutations reach both outcomes (a fuzz that only ever fails at the first header tests nothing).
    expect(refused).toBeGreaterThan(0);
  }, 600_000);
});
