// The archives ADD unpacks, as Docker's: a tar, plain or compressed with gzip, bzip2, xz or zstd (recognised by
// their magic numbers, and only when what they hold is a tar). bzip2, xz and zstd are decompressed by the host's
// own tools, streamed.
import * as fs from "node:fs";
import { spawn } from "node:child_process";
import { createGunzip } from "node:zlib";
import { PassThrough, type Readable } from "node:stream";

type Compression = "none" | "gzip" | "bzip2" | "xz" | "zstd";

const MAGIC: Array<[Compression, number[]]> = [
  ["gzip", [0x1f, 0x8b]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
];

async function head(stream: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    chunks.push(c as Buffer);
    size += (c as Buffer).length;
    if (size >= n) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, n);
}

function compression(b: Buffer): Compression {
  return MAGIC.find(([, m]) => b.length >= m.length && m.every((x, i) => b[i] === x))?.[0] ?? "none";
}

/** The file's content, decompressed; `done` rejects when the decompressor fails. */
function open(file: string, c: Compression): { stream: Readable; done: Promise<void> } {
  const raw = fs.createReadStream(file);
  if (c === "none") return { stream: raw, done: Promise.resolve() };
  if (c === "gzip") {
    const out = raw.pipe(createGunzip());
    return { stream: out, done: new Promise((res, rej) => out.on("end", res).on("error", rej).on("close", res)) };
  }
  const child = spawn(c, ["-dc"], { stdio: ["pipe", "pipe", "pipe"] });
  raw.pipe(child.stdin).on("error", () => undefined);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const out = new PassThrough();
  child.stdout.pipe(out);
  const done = new Promise<void>((res, rej) => {
    child.on("error", (e) => rej(new Error(`cannot run ${c} to decompress: ${e.message}`)));
    child.on("close", (code, signal) => (code === 0 || signal === "SIGPIPE" || signal === "SIGTERM" ? res() : rej(new Error(`${c} -dc failed: ${stderr.trim() || `exit ${code}`}`))));
  });
  out.on("close", () => child.kill());
  return { stream: out, done };
}

/** How ADD reads a local file: as a tar (possibly compressed), or undefined when it is not one. */
export async function tarKind(file: string): Promise<Compression | undefined> {
  const c = compression(await head(fs.createReadStream(file, { end: 15 }), 16));
  const { stream, done } = open(file, c);
  const b = await head(stream, 512).catch(() => Buffer.alloc(0));
  await done.catch(() => undefined);
  return b.subarray(257, 262).toString() === "ustar" ? c : undefined;
}

/** The tar inside the file, streamed; `done` settles once the decompressor has finished. */
export function openTar(file: string, c: Compression): { tar: Readable; done: Promise<void> } {
  const { stream, done } = open(file, c);
  return { tar: stream, done };
}
