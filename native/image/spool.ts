// A download written to a staging file and read back while it is still arriving: the file is the buffer between
// the network and a reader that starts later or goes slower (a layer waiting for the layers below it to be
// unpacked), so the download never waits for the unpack and nothing is held in memory. Reads and writes are
// synchronous: to and from the page cache they are short, and cheaper than a trip through the thread pool each.
import * as fs from "node:fs";
import { hashing } from "./hashing";

/** Bytes gathered before one write; also the size of each read back. */
const BATCH = 1 << 20;

export class Spool {
  private written = 0;
  private finished = false;
  private failure: Error | undefined;
  private wake: Array<() => void> = [];

  private readonly fd: number;

  /** A new spool in a file that must not exist yet (a staging path); `what` names the download in errors. */
  constructor(
    path: string,
    private readonly what: string,
  ) {
    this.fd = fs.openSync(path, "wx+", 0o600);
  }

  /**
   * Writes the source to the file, hashing it, and resolves to its digest and size; fails (and fails the readers)
   * as soon as more than `limit` bytes arrive or the source fails.
   */
  async fill(source: AsyncIterable<Buffer>, limit: number): Promise<{ digest: string; size: number }> {
    const received = hashing(source, limit);
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = () => {
      for (let done = 0; done < batched; ) {
        const rest = done === 0 ? batch : [Buffer.concat(batch).subarray(done)];
        done += fs.writevSync(this.fd, rest, this.written + done);
      }
      this.written += batched;
      batch = [];
      batched = 0;
      this.notify();
    };
    try {
      for await (const chunk of received.stream) {
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= BATCH) flush();
      }
      flush();
      this.finished = true;
      return { digest: received.digest(), size: received.size() };
    } catch (e) {
      this.failure = new Error(`${this.what}: ${(e as Error).message}`);
      throw this.failure;
    } finally {
      this.notify();
    }
  }

  /** Fails the readers of a download that ended before it wrote (its request failed), and rethrows. */
  abort(e: Error): never {
    this.failure ??= new Error(`${this.what}: ${e.message}`);
    this.notify();
    throw e;
  }

  /** Everything from the start: what is written already, then what arrives, until the download ends. */
  async *read(): AsyncGenerator<Buffer> {
    let at = 0;
    for (;;) {
      if (this.failure) throw this.failure;
      if (at < this.written) {
        const buf = Buffer.allocUnsafe(Math.min(BATCH, this.written - at));
        const n = fs.readSync(this.fd, buf, 0, buf.length, at);
        at += n;
        yield buf.subarray(0, n);
      } else if (this.finished) return;
      else await new Promise<void>((resolve) => this.wake.push(resolve));
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private notify(): void {
    const waiting = this.wake;
    this.wake = [];
    waiting.forEach((w) => w());
  }
}
