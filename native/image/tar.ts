// A streaming tar reader and writer (ustar, with PAX and GNU long names read, PAX written): enough for image
// layers and archives, whose every entry berth must see and judge before anything reaches the disk.
import { Readable } from "node:stream";

export type EntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

export interface TarHeader {
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Target of a symlink or hardlink. */
  linkname: string;
  devmajor: number;
  devminor: number;
}

const BLOCK = 512;
const TYPES: Record<string, EntryType> = {
  "0": "file", "\0": "file", "7": "file", "1": "hardlink", "2": "symlink", "3": "char", "4": "block", "5": "dir", "6": "fifo",
};
const TYPE_FLAGS: Record<EntryType, string> = {
  file: "0", hardlink: "1", symlink: "2", char: "3", block: "4", dir: "5", fifo: "6",
};

/** Pulls exact byte counts out of a chunked source. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    const parts: Buffer[] = [this.buf];
    let have = this.buf.length;
    while (have < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else {
        parts.push(next.value);
        have += next.value.length;
      }
    }
    // A chunk that arrived on an empty buffer is taken as it is: copying every byte once more cost a tenth of an unpack.
    if (parts.length === 2 && parts[0].length === 0) this.buf = parts[1];
    else if (parts.length > 1) this.buf = Buffer.concat(parts);
    return this.buf.length >= n;
  }

  /** Exactly n bytes, or undefined at a clean end of input. */
  async take(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) {
      if (this.buf.length === 0) return undefined;
      throw new Error("tar archive is truncated");
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** n bytes as they arrive. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill(1))) throw new Error("tar archive is truncated");
      const out = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(out.length);
      left -= out.length;
      yield out;
    }
  }
}

const cString = (b: Buffer): string => {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString("utf8");
};

function octal(b: Buffer): number {
  // GNU base-256 for values too large for octal.
  if (b[0] & 0x80) return b.subarray(1).reduce((n, byte) => n * 256 + byte, b[0] & 0x7f);
  const s = cString(b).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space < 0) break;
    const digits = data.subarray(i, space).toString();
    const len = Number(digits);
    // "<len> <key>=<value>\n", len counting itself: anything else would loop or read past the header.
    if (!/^[1-9][0-9]*$/.test(digits) || i + len > data.length || space + 1 >= i + len) throw new Error("tar PAX header is malformed");
    const record = data.subarray(space + 1, i + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq <= 0) throw new Error("tar PAX header is malformed");
    out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

/** A PAX number: a non-negative decimal (a fraction allowed for times), else the header is refused. */
function paxNumber(pax: Record<string, string>, key: string, fallback: number): number {
  const v = pax[key];
  if (v === undefined) return fallback;
  if (!/^[0-9]+(\.[0-9]*)?$/.test(v)) throw new Error(`tar PAX ${key} "${v}" is not a number`);
  return Math.floor(Number(v));
}

/** Whether a header block's checksum holds (unsigned sum, or the signed one some old tars wrote). */
function checksumHolds(block: Buffer): boolean {
  const stored = octal(block.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** Extended headers (PAX, GNU long names) are read whole: bounded so a crafted size cannot exhaust memory. */
const MAX_EXTENDED = 1 << 20;

export interface TarEntry {
  header: TarHeader;
  /** The entry's content; what the consumer leaves unread is skipped. */
  data: AsyncIterable<Buffer>;
}

/** Entries of a tar stream in order. */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(source[Symbol.asyncIterator]());
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await r.take(BLOCK);
    if (!block || block.every((b) => b === 0)) return;
    if (!checksumHolds(block)) throw new Error("tar header checksum mismatch: not a tar archive, or a corrupt one");
    const flag = String.fromCharCode(block[156]);
    const size = octal(block.subarray(124, 136));
    if (!Number.isSafeInteger(size) || size < 0) throw new Error("tar header has an invalid size");
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === "x" || flag === "L" || flag === "K" || flag === "g") {
      if (size > MAX_EXTENDED) throw new Error(`tar extended header of ${size} bytes is larger than ${MAX_EXTENDED}`);
      const taken = await r.take(padded);
      if (!taken) throw new Error("tar archive is truncated");
      const body = taken.subarray(0, size);
      if (flag === "x") pax = { ...pax, ...parsePax(body) };
      if (flag === "L") longName = cString(body);
      if (flag === "K") longLink = cString(body);
      continue;
    }
    const type = TYPES[flag];
    const prefix = block.subarray(257, 263).toString() === "ustar\0" ? cString(block.subarray(345, 500)) : "";
    const name = cString(block.subarray(0, 100));
    const header: TarHeader = {
      path: pax.path ?? longName ?? (prefix ? `${prefix}/${name}` : name),
      type: type ?? "file",
      mode: octal(block.subarray(100, 108)) & 0o7777,
      uid: paxNumber(pax, "uid", octal(block.subarray(108, 116))),
      gid: paxNumber(pax, "gid", octal(block.subarray(116, 124))),
      size: paxNumber(pax, "size", size),
      mtime: paxNumber(pax, "mtime", octal(block.subarray(136, 148))),
      linkname: pax.linkpath ?? longLink ?? cString(block.subarray(157, 257)),
      devmajor: octal(block.subarray(329, 337)),
      devminor: octal(block.subarray(337, 345)),
    };
    pax = {};
    longName = longLink = undefined;
    if (type === undefined) throw new Error(`tar entry "${header.path}" has unsupported type '${flag}'`);
    for (const k of ["mode", "uid", "gid", "size", "mtime", "devmajor", "devminor"] as const) {
      if (!Number.isSafeInteger(header[k]) || header[k] < 0) throw new Error(`tar entry "${header.path}" has an invalid ${k}`);
    }
    if (header.path === "" || header.path.includes("\0") || header.linkname.includes("\0")) {
      throw new Error(`tar entry "${header.path}" has an empty name or a NUL in its name`);
    }
    const dataSize = header.type === "file" ? header.size : 0;
    const body = r.stream(dataSize);
    yield { header, data: body };
    for await (const _ of body) void _; // skip what the consumer did not read
    const pad = Math.ceil(dataSize / BLOCK) * BLOCK - dataSize;
    if (pad > 0) await r.take(pad);
  }
}

function writeOctal(b: Buffer, off: number, len: number, value: number): void {
  b.write(value.toString(8).padStart(len - 1, "0") + "\0", off, len, "ascii");
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  // The record's length counts its own digits.
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return Buffer.from(`${len}${body}`);
}

function headerBlock(h: TarHeader, name: string, linkname: string, flag: string, size: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, "utf8");
  writeOctal(b, 100, 8, h.mode);
  writeOctal(b, 108, 8, h.uid);
  writeOctal(b, 116, 8, h.gid);
  writeOctal(b, 124, 12, size);
  writeOctal(b, 136, 12, h.mtime);
  b.write(flag, 156, 1, "ascii");
  b.write(linkname, 157, 100, "utf8");
  b.write("ustar\x0000", 257, 8, "ascii");
  writeOctal(b, 329, 8, h.devmajor);
  writeOctal(b, 337, 8, h.devminor);
  b.fill(0x20, 148, 156);
  writeOctal(b, 148, 7, b.reduce((s, x) => s + x, 0));
  return b;
}

const fits = (s: string): boolean => Buffer.byteLength(s) <= 100 && /^[\x20-\x7e]*$/.test(s);

/** The header blocks of one entry; long names and big sizes go in a PAX header first. */
export function encodeHeader(h: TarHeader): Buffer {
  const size = h.type === "file" ? h.size : 0;
  const records: Buffer[] = [];
  if (!fits(h.path)) records.push(paxRecord("path", h.path));
  if (!fits(h.linkname)) records.push(paxRecord("linkpath", h.linkname));
  if (size >= 8 ** 11) records.push(paxRecord("size", String(size)));
  const main = headerBlock(h, fits(h.path) ? h.path : "pax-long-name", fits(h.linkname) ? h.linkname : "", TYPE_FLAGS[h.type], size >= 8 ** 11 ? 0 : size);
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  const paxHeader = headerBlock({ ...h, mode: 0o644 }, "pax-header", "", "x", body.length);
  return Buffer.concat([paxHeader, body, padding(body.length), main]);
}

export const padding = (size: number): Buffer => Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);

export interface TarSource {
  header: TarHeader;
  /** Content of a file entry (its header's size bytes). */
  data?: () => AsyncIterable<Buffer> | Iterable<Buffer> | Buffer;
}

/** Bytes gathered before the tar stream yields them: fewer, larger writes downstream. */
const WRITE_BATCH = 1 << 20;

/** A tar stream of the given entries, ended by the two zero blocks; headers and small files yielded in batches. */
export function writeTar(entries: AsyncIterable<TarSource> | Iterable<TarSource>): Readable {
  return Readable.from(
    (async function* () {
      let batch: Buffer[] = [];
      let batched = 0;
      const add = (b: Buffer) => {
        batch.push(b);
        batched += b.length;
      };
      const flush = () => {
        const out = batch.length === 1 ? batch[0] : Buffer.concat(batch, batched);
        batch = [];
        batched = 0;
        return out;
      };
      for await (const e of entries) {
        add(encodeHeader(e.header));
        if (e.header.type === "file" && e.data) {
          const data = e.data();
          let n = 0;
          for await (const chunk of Buffer.isBuffer(data) ? [data] : data) {
            n += chunk.length;
            add(chunk);
            if (batched >= WRITE_BATCH) yield flush();
          }
          if (n !== e.header.size) throw new Error(`tar entry "${e.header.path}" changed size while being archived`);
          add(padding(n));
        }
        if (batched >= WRITE_BATCH) yield flush();
      }
      if (batched > 0) yield flush();
      yield Buffer.alloc(BLOCK * 2);
    })(),
    { objectMode: false },
  );
}
