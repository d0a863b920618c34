// One end of a berth connection, above the frames (protocol.ts): many calls in flight at once by id, their
// arguments and results as JSON with special leaves — callbacks, streams either way, bytes, Maps, undefined —
// and errors with their name, message and fields. Streams are channels with credit-based flow control (the
// reader grants bytes as it consumes, as SSH channels do), so a slow reader holds back only its own writer.
// The client end makes calls; the agent end serves them and invokes the callbacks they passed.
import type { Writable } from "node:stream";
import { dataFrame, jsonFrame, type Encoded, type Frame, type Message, type WireError } from "./protocol";

/** Bytes a writer may send on a channel before the reader grants more. */
const WINDOW = 1 << 20;

type Path = Array<string | number>;

export const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> =>
  typeof v === "object" && v !== null && typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";

/** Marks a callback whose result the callee awaits (an "ask"); other callbacks cross fire and forget. */
const ANSWERS = Symbol("answers");
export function answering<F extends (...a: never[]) => Promise<unknown>>(fn: F): F {
  return Object.assign(fn, { [ANSWERS]: true });
}

const isPlain = (v: object) => {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

export function toWire(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: "Error", message: String(e) };
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === "stack" || k === "message" || k === "name") continue;
    try {
      fields[k] = JSON.parse(JSON.stringify(v) ?? "null");
    } catch {
      // A field JSON cannot carry (a cycle, a BigInt) stays behind.
    }
  }
  return { name: e.name, message: e.message, ...(Object.keys(fields).length > 0 ? { fields } : {}) };
}

export function fromWire(w: WireError): Error {
  const e = new Error(w.message);
  if (w.name !== "Error") Object.defineProperty(e, "name", { value: w.name, enumerable: false, configurable: true, writable: true });
  return Object.assign(e, w.fields ?? {});
}

function setAt(root: { v: unknown }, path: Path, value: unknown): void {
  let holder: Record<string | number, unknown> = root as Record<string, unknown>;
  let key: string | number = "v";
  for (const k of path) {
    holder = holder[key] as Record<string | number, unknown>;
    key = k;
  }
  holder[key] = value;
}

/** What the end receiving a channel reads: an AsyncIterator whose return() tells the writer to stop. */
class Inbox implements AsyncIterableIterator<unknown> {
  private readonly queue: Array<{ value: unknown; size: number }> = [];
  private waiter?: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: Error) => void };
  private ended = false;
  private error?: Error;
  private finished = false;
  private consumed = 0;
  /** Bytes received and not yet read: a writer keeping to its credit never has a window's worth waiting. */
  private queued = 0;

  constructor(
    private readonly peer: Peer,
    readonly ch: number,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  push(value: unknown, size: number): void {
    if (this.finished) return;
    if (this.queued >= WINDOW) {
      // A writer that ignores its credit is stopped, and what it sent dropped, rather than kept in memory.
      this.queue.length = 0;
      this.queued = 0;
      this.peer.send({ t: "stop", ch: this.ch });
      this.end(new Error("the other end sent past its flow-control window"));
      return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      this.took(size);
      w.resolve({ value, done: false });
    } else {
      this.queue.push({ value, size });
      this.queued += size;
    }
  }

  end(error?: Error): void {
    if (this.finished || this.ended) return;
    this.ended = true;
    this.error = error;
    this.peer.inboxes.delete(this.ch);
    const w = this.waiter;
    this.waiter = undefined;
    if (w && error) w.reject(error);
    else if (w) w.resolve({ value: undefined, done: true });
  }

  private took(size: number): void {
    this.consumed += size;
    if (this.consumed >= WINDOW / 2 && !this.ended) {
      this.peer.send({ t: "credit", ch: this.ch, n: this.consumed });
      this.consumed = 0;
    }
  }

  next(): Promise<IteratorResult<unknown>> {
    const item = this.queue.shift();
    if (item) {
      this.queued -= item.size;
      this.took(item.size);
      return Promise.resolve({ value: item.value, done: false });
    }
    if (this.error) return Promise.reject(this.error);
    if (this.ended || this.finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** The reader is done (early or not): the writer stops, and what is queued is dropped. */
  return(): Promise<IteratorResult<unknown>> {
    if (!this.finished) {
      this.finished = true;
      this.queue.length = 0;
      if (!this.ended) {
        this.peer.inboxes.delete(this.ch);
        this.peer.send({ t: "stop", ch: this.ch });
      }
      this.waiter?.resolve({ value: undefined, done: true });
      this.waiter = undefined;
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  get open(): boolean {
    return !this.finished && !this.ended;
  }
}

/** What the end sending a channel keeps: how much it may still send, and a way to wake it. */
interface Outbox {
  credit: number;
  stopped: boolean;
  wake?: () => void;
  source: AsyncIterator<unknown>;
}

interface PendingCall {
  method: string;
  args: unknown[];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  callbacks: Map<number, (...a: unknown[]) => unknown>;
}

export type Handler = (method: string, args: unknown[]) => unknown;

export class Peer {
  readonly inboxes = new Map<number, Inbox>();
  private readonly outboxes = new Map<number, Outbox>();
  private readonly calls = new Map<number, PendingCall>();
  /** Calls being served (agent end): id → the inboxes of their stream arguments. */
  private readonly serving = new Map<number, Inbox[]>();
  private nextId = 1;
  private nextChannel: number;
  private lost?: (method: string, args: unknown[]) => Error;
  /** Questions asked by "ask" callbacks (agent end), by number, until answered. */
  private readonly asks = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextAsk = 1;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly out: Writable,
    side: "client" | "agent",
    private readonly handler?: Handler,
  ) {
    // Channel ids never collide: the client's are odd, the agent's even.
    this.nextChannel = side === "client" ? 1 : 2;
    out.on("error", () => {});
  }

  get closed(): boolean {
    return this.lost !== undefined;
  }

  /** Calls in flight (either end). */
  get busy(): number {
    return this.calls.size + this.serving.size;
  }

  send(msg: Message): void {
    if (!this.lost && this.out.writable) this.out.write(jsonFrame(msg));
  }

  /** Writes a frame and waits while the byte stream's buffer is full. */
  private async sendData(frame: Buffer): Promise<void> {
    if (this.lost || !this.out.writable) return;
    if (this.out.write(frame)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.out.off("drain", done);
        this.out.off("close", done);
        resolve();
      };
      this.out.on("drain", done);
      this.out.on("close", done);
    });
  }

  private encode(value: unknown, callbacks?: Map<number, (...a: unknown[]) => unknown>): Encoded {
    const s: NonNullable<Encoded["s"]> = [];
    const walk = (v: unknown, path: Path): unknown => {
      if (v === undefined) {
        s.push([path, "u", 0]);
        return null;
      }
      if (typeof v === "function") {
        if (!callbacks) throw new Error("a function cannot cross here");
        const id = callbacks.size + 1;
        callbacks.set(id, v as (...a: unknown[]) => unknown);
        s.push([path, ANSWERS in v ? "ask" : "fn", id]);
        return null;
      }
      if (typeof v !== "object" || v === null) return v;
      if (v instanceof Uint8Array) {
        s.push([path, "bin", 0]);
        return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
      }
      if (v instanceof Map) {
        s.push([path, "map", 0]);
        return [...v.entries()].map(([k, x], i) => [walk(k, [...path, i, 0]), walk(x, [...path, i, 1])]);
      }
      if (isAsyncIterable(v)) {
        const ch = this.nextChannel;
        this.nextChannel += 2;
        s.push([path, "in", ch]);
        void this.pump(ch, v);
        return null;
      }
      if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
      if (!isPlain(v)) return v; // Date and the like: JSON's own form
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = walk(x, [...path, k]);
      return o;
    };
    const v = walk(value, []);
    return s.length > 0 ? { v, s } : { v };
  }

  private decode(e: Encoded | undefined, callback?: (fn: number, ask: boolean) => (...a: unknown[]) => unknown, inboxes?: Inbox[]): unknown {
    const root = { v: e?.v };
    // Deepest first, so a Map's entries are decoded before the Map is made of them.
    for (const [path, kind, n] of [...(e?.s ?? [])].sort((a, b) => b[0].length - a[0].length)) {
      // Only through the value's own entries: a path the other end made up ("__proto__", "constructor") would
      // otherwise reach, and change, the prototypes every object here shares.
      let at: unknown = root.v;
      for (const k of path) {
        if (typeof at !== "object" || at === null || !Object.hasOwn(at, k)) throw new Error(`malformed message: nothing at ${JSON.stringify(path)}`);
        at = (at as Record<string | number, unknown>)[k];
      }
      if (kind === "u") setAt(root, path, undefined);
      else if (kind === "bin") setAt(root, path, Buffer.from(at as string, "base64"));
      else if (kind === "map") setAt(root, path, new Map(at as Array<[unknown, unknown]>));
      else if (kind === "fn" || kind === "ask") setAt(root, path, callback ? callback(n, kind === "ask") : () => {});
      else if (kind === "in") {
        if (this.inboxes.has(n)) throw new Error(`malformed message: channel ${n} is in use`);
        const inbox = new Inbox(this, n);
        this.inboxes.set(n, inbox);
        inboxes?.push(inbox);
        setAt(root, path, inbox);
      }
    }
    return root.v;
  }

  /** Sends a stream's items on channel ch, as the reader's credit allows, until it ends or the reader stops. */
  private async pump(ch: number, iterable: AsyncIterable<unknown>): Promise<void> {
    const box: Outbox = { credit: WINDOW, stopped: false, source: iterable[Symbol.asyncIterator]() };
    this.outboxes.set(ch, box);
    try {
      for (;;) {
        while (box.credit <= 0 && !box.stopped && !this.lost) await new Promise<void>((r) => (box.wake = r));
        if (box.stopped || this.lost) break;
        const r = await box.source.next();
        if (box.stopped || this.lost) break;
        if (r.done) {
          this.send({ t: "end", ch });
          break;
        }
        if (r.value instanceof Uint8Array) {
          box.credit -= r.value.length;
          await this.sendData(dataFrame(ch, r.value));
        } else {
          const frame = jsonFrame({ t: "item", ch, v: this.encode(r.value) });
          box.credit -= frame.length;
          await this.sendData(frame);
        }
      }
    } catch (e) {
      if (!box.stopped) this.send({ t: "fail", ch, e: toWire(e) });
    } finally {
      this.outboxes.delete(ch);
      if (box.stopped || this.lost) await box.source.return?.().catch(() => undefined);
    }
  }

  /** Calls a method at the other end; resolves to its result (a stream result: an AsyncIterator). */
  call(method: string, args: unknown[]): Promise<unknown> {
    if (this.lost) return Promise.reject(this.lost(method, args));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const callbacks = new Map<number, (...a: unknown[]) => unknown>();
      let a: Encoded;
      try {
        a = this.encode(args, callbacks);
      } catch (e) {
        return reject(e);
      }
      this.calls.set(id, { method, args, resolve, reject, callbacks });
      this.send({ t: "call", id, m: method, a });
    });
  }

  /**
   * Calls a method whose result is a stream: returned at once, the call made on the first next(); return()
   * stops it at the other end, even while a next() waits for an item that may never come (a followed log).
   */
  stream(method: string, args: unknown[]): AsyncIterableIterator<unknown> {
    let started: Promise<Inbox> | undefined;
    let inbox: Inbox | undefined;
    let done = false;
    let wakeDone: (() => void) | undefined;
    const stopped = new Promise<IteratorResult<unknown>>((r) => (wakeDone = () => r({ value: undefined, done: true })));
    const it: AsyncIterableIterator<unknown> = {
      [Symbol.asyncIterator]: () => it,
      next: async () => {
        if (done) return { value: undefined, done: true };
        started ??= (this.call(method, args) as Promise<Inbox>).then((ib) => {
          inbox = ib;
          if (done) void ib.return();
          return ib;
        });
        const ib = await Promise.race([started, stopped]);
        if (!(ib instanceof Inbox)) return ib;
        return Promise.race([ib.next(), stopped]);
      },
      return: async () => {
        done = true;
        wakeDone!();
        await inbox?.return();
        return { value: undefined, done: true };
      },
    };
    return it;
  }

  /** Feeds the frames read from the other end; resolves when they end (the connection is then lost). */
  async receive(frames: AsyncIterable<Frame>): Promise<void> {
    for await (const f of frames) {
      if (f.kind === "data") {
        this.inboxes.get(f.ch)?.push(f.data, f.data.length);
        continue;
      }
      const m = f.msg;
      switch (m.t) {
        case "call":
          void this.serve(m.id, m.m, m.a);
          break;
        case "ok": {
          const c = this.calls.get(m.id);
          this.calls.delete(m.id);
          if (!c) break;
          if (m.ch !== undefined) {
            const inbox = new Inbox(this, m.ch);
            this.inboxes.set(m.ch, inbox);
            c.resolve(inbox);
          } else {
            try {
              c.resolve(this.decode(m.v));
            } catch (e) {
              c.reject(e as Error);
            }
          }
          this.settled();
          break;
        }
        case "err": {
          const c = this.calls.get(m.id);
          this.calls.delete(m.id);
          c?.reject(fromWire(m.e));
          this.settled();
          break;
        }
        case "cb": {
          const fn = this.calls.get(m.id)?.callbacks.get(m.fn);
          if (m.q !== undefined) {
            void this.answer(m.q, fn, m.a);
            break;
          }
          try {
            fn?.(...(this.decode(m.a) as unknown[]));
          } catch {
            // A callback's failure is the caller's business; the call goes on (its return value is ignored too).
          }
          break;
        }
        case "answer": {
          const ask = this.asks.get(m.q);
          this.asks.delete(m.q);
          try {
            if (m.e) ask?.reject(fromWire(m.e));
            else ask?.resolve(this.decode(m.v));
          } catch (e) {
            ask?.reject(e as Error);
          }
          break;
        }
        case "item": {
          const inbox = this.inboxes.get(m.ch);
          try {
            // Its size as the writer counted it, the frame's bytes (a character may take several), before decode
            // replaces its leaves: counting less would starve the writer of credit for good.
            const size = Buffer.byteLength(JSON.stringify(m)) + 5;
            inbox?.push(this.decode(m.v), size);
          } catch (e) {
            inbox?.end(e as Error);
          }
          break;
        }
        case "end":
          this.inboxes.get(m.ch)?.end();
          break;
        case "fail":
          this.inboxes.get(m.ch)?.end(fromWire(m.e));
          break;
        case "credit": {
          const box = this.outboxes.get(m.ch);
          if (box) {
            box.credit += m.n;
            box.wake?.();
          }
          break;
        }
        case "stop": {
          const box = this.outboxes.get(m.ch);
          if (box) this.stop(box);
          break;
        }
        case "hello":
          break;
      }
    }
  }

  /** Client end: runs an "ask" callback and sends its answer (or its error) back. */
  private async answer(q: number, fn: ((...a: unknown[]) => unknown) | undefined, a: Encoded): Promise<void> {
    try {
      if (!fn) throw new Error("no such callback (its call has ended)");
      this.send({ t: "answer", q, v: this.encode(await fn(...(this.decode(a) as unknown[]))) });
    } catch (e) {
      this.send({ t: "answer", q, e: toWire(e) });
    }
  }

  /** Agent end: asks the caller through an "ask" callback; resolves to its answer. */
  private ask(id: number, fn: number, args: unknown[]): Promise<unknown> {
    if (this.lost) return Promise.reject(this.lost("a question to the caller", []));
    const q = this.nextAsk++;
    return new Promise((resolve, reject) => {
      this.asks.set(q, { resolve, reject });
      this.send({ t: "cb", id, fn, a: this.encode(args), q });
    });
  }

  /** A stream's reader is gone: its source is told now, even while it waits for its next item (a followed log). */
  private stop(box: Outbox): void {
    box.stopped = true;
    box.wake?.();
    void box.source.return?.()?.catch?.(() => undefined);
  }

  private async serve(id: number, method: string, a: Encoded): Promise<void> {
    const inboxes: Inbox[] = [];
    this.serving.set(id, inboxes);
    try {
      const args = this.decode(a, (fn, ask) => (...cbArgs: unknown[]) => {
        if (ask) return this.ask(id, fn, cbArgs);
        // Returned to the callee (exec's output): it waits on it, so a caller that reads slowly, or not at all,
        // holds the command's output back instead of growing this process's memory.
        if (this.serving.has(id)) return this.sendData(jsonFrame({ t: "cb", id, fn, a: this.encode(cbArgs) }));
      }, inboxes) as unknown[];
      const result = await this.handler!(method, args);
      if (isAsyncIterable(result) && !(result instanceof Uint8Array)) {
        const ch = this.nextChannel;
        this.nextChannel += 2;
        this.send({ t: "ok", id, ch });
        void this.pump(ch, result);
      } else this.send({ t: "ok", id, v: this.encode(result) });
    } catch (e) {
      this.send({ t: "err", id, e: toWire(e) });
    } finally {
      this.serving.delete(id);
      // A stream argument the method left unread: its writer stops.
      for (const inbox of inboxes) if (inbox.open) void inbox.return();
      this.settled();
    }
  }

  private settled(): void {
    if (this.busy > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when no call is in flight at either end. */
  idle(): Promise<void> {
    return this.busy === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  /**
   * The connection is gone: calls made fail with the error `why` gives for each, streams read fail, streams
   * written stop. Calls being served run on (their results go nowhere): a host keeps every operation whole.
   */
  fail(why: (method: string, args: unknown[]) => Error): void {
    if (this.lost) return;
    this.lost = why;
    for (const c of this.calls.values()) c.reject(why(c.method, c.args));
    this.calls.clear();
    for (const a of this.asks.values()) a.reject(why("a question to the caller", []));
    this.asks.clear();
    for (const inbox of [...this.inboxes.values()]) inbox.end(why("a stream", []));
    for (const box of this.outboxes.values()) this.stop(box);
    this.settled();
  }
}
