// The bytes between a berth client and `berth agent`: frames over one byte stream (an SSH session's stdin and
// stdout). A frame is a 4-byte big-endian length, then one kind byte: a JSON message (Message below), or binary
// data for a channel (4-byte channel id, then the bytes) — so file transfers and exec output cross unencoded.
// Both ends send a hello first, stating the protocol version and berth's; they must speak the same protocol.
import type { Readable } from "node:stream";

/** Bumped on any change either end must understand; a mismatch is refused at hello. */
export const PROTOCOL_VERSION = 2;
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const BERTH_VERSION: string = require("berth-iac/package.json").version;

/** A frame larger than this is a corrupt stream (or not berth at the other end), not a message. */
const MAX_FRAME = 64 << 20;
const JSON_FRAME = 0;
const DATA_FRAME = 1;

/** An error as it crosses: its name, message and own enumerable fields (a stack stays where it was thrown). */
export interface WireError {
  name: string;
  message: string;
  fields?: Record<string, unknown>;
}

/**
 * A value with its special leaves listed beside it, as [path, kind, n]: "fn" a callback (n its id), "ask" a
 * callback whose answer the callee awaits (credentials asked for during a build), "in" a
 * stream the receiver reads (n its channel), "bin" bytes (the leaf is their base64), "map" a Map (the leaf is
 * its entries), "u" undefined (which JSON would drop or turn into null).
 */
export interface Encoded {
  v: unknown;
  s?: Array<[Array<string | number>, "fn" | "ask" | "in" | "bin" | "map" | "u", number]>;
}

export type Message =
  | { t: "hello"; protocol: number; berth: string }
  /** A call of a runtime method ("containers.run"). */
  | { t: "call"; id: number; m: string; a: Encoded }
  /** Its result: a value, or a stream on channel ch. */
  | { t: "ok"; id: number; v?: Encoded; ch?: number }
  | { t: "err"; id: number; e: WireError }
  /**
   * A callback of call id invoked: fire and forget (its return value ignored, as the seam says), or, for an "ask"
   * callback, a question q the caller answers.
   */
  | { t: "cb"; id: number; fn: number; a: Encoded; q?: number }
  | { t: "answer"; q: number; v?: Encoded; e?: WireError }
  /** One value on a channel (bytes go as data frames). */
  | { t: "item"; ch: number; v: Encoded }
  | { t: "end"; ch: number }
  | { t: "fail"; ch: number; e: WireError }
  /** The reader took n more bytes: the writer may send that much more. */
  | { t: "credit"; ch: number; n: number }
  /** The reader stops reading: the writer ends the stream's source. */
  | { t: "stop"; ch: number };

export type Frame = { kind: "msg"; msg: Message } | { kind: "data"; ch: number; data: Buffer };

export function jsonFrame(msg: Message): Buffer {
  const body = Buffer.from(JSON.stringify(msg), "utf8");
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length + 1, 0);
  head[4] = JSON_FRAME;
  return Buffer.concat([head, body]);
}

export function dataFrame(ch: number, data: Uint8Array): Buffer {
  const head = Buffer.alloc(9);
  head.writeUInt32BE(data.length + 5, 0);
  head[4] = DATA_FRAME;
  head.writeUInt32BE(ch, 5);
  return Buffer.concat([head, data]);
}

/** Raised when the other end does not speak this protocol (garbage, a shell's banner, a too large frame). */
export class NotBerth extends Error {
  constructor(readonly seen: Buffer) {
    super("not berth's protocol");
  }
}

/** Frames read from a byte stream, in order; ends when the stream ends (a partial frame is dropped). */
export async function* readFrames(source: Readable | AsyncIterable<Buffer>): AsyncGenerator<Frame> {
  // Chunks are joined only once a whole frame is there: a large frame arriving in small pieces costs one copy.
  const chunks: Buffer[] = [];
  let have = 0;
  const take = (n: number): Buffer => {
    const out = chunks.length === 1 || chunks[0].length >= n ? chunks[0] : Buffer.concat(chunks.splice(0, chunks.length));
    if (out !== chunks[0]) chunks.unshift(out);
    const head = out.subarray(0, n);
    if (out.length === n) chunks.shift();
    else chunks[0] = out.subarray(n);
    have -= n;
    return head;
  };
  let need = 4;
  let len = -1;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    have += chunk.length;
    while (have >= need) {
      if (len < 0) {
        const head = take(4);
        len = head.readUInt32BE(0);
        if (len < 1 || len > MAX_FRAME) throw new NotBerth(Buffer.concat([head, ...chunks]).subarray(0, 200));
        need = len;
        continue;
      }
      const body = take(len);
      len = -1;
      need = 4;
      if (body[0] === JSON_FRAME) {
        let msg: Message;
        try {
          msg = JSON.parse(body.subarray(1).toString("utf8")) as Message;
        } catch {
          throw new NotBerth(body.subarray(0, 200));
        }
        yield { kind: "msg", msg };
      } else if (body[0] === DATA_FRAME && body.length >= 5) {
        yield { kind: "data", ch: body.readUInt32BE(1), data: Buffer.from(body.subarray(5)) };
      } else throw new NotBerth(body.subarray(0, 200));
    }
  }
}

export const hello = (): Message => ({ t: "hello", protocol: PROTOCOL_VERSION, berth: BERTH_VERSION });

/** Why two ends cannot talk, for the side that received `theirs` (undefined when they can). */
export function helloMismatch(theirs: { protocol: number; berth: string }, where: string): string | undefined {
  if (theirs.protocol === PROTOCOL_VERSION) return undefined;
  const older = theirs.protocol < PROTOCOL_VERSION ? where : "this machine";
  return `${where} runs berth v${theirs.berth} (agent protocol ${theirs.protocol}); this berth is v${BERTH_VERSION} (protocol ${PROTOCOL_VERSION}): ` +
    `the berth on ${older} is too old — install berth v${BERTH_VERSION} or later on both (see README "Many hosts")`;
}
