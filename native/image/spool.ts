// A download written to a staging file and read back while it is still arriving: the file is the buffer between
// the network and a reader that starts later or goes slower (a layer waiting for the layers below it to be
// unpacked), so the download never waits for the unpack and nothing is held in memory.
import * as fs from "node:fs";
import { createHash } from "node:crypto";

/** Bytes written in one call at most; also the size of each read back. */
const BATCH = 1 << 20;

export class Spool {
  private written = 0;
  private finished = false;
  private failure: Error | undefined;
  private wake: Array<() => void> = [];

  private constructor(
    private readonly file: fs.promises.FileHandle,
    private readonly what: string,
  ) {}

  /** A new spool in a file that must not exist yet (a staging path); `what` names the download in errors. */
  static async create(path: string, what: string): Promise<Spool> {
    return new Spool(await fs.promises.open(path, "wx+", 0o600), what);
  }

  /**
   * Writes the source to the file, hashing it, and resolves to its digest and size; fails (and fails the readers)
   * as soon as more than `limit` bytes arrive or the source fails.
   */
  async fill(source: AsyncIterable<Buffer>, limit: number): Promise<{ digest: string; size: number }> {
    const hash = createHash("sha256");
    let received = 0;
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async () => {
      const chunks = batch;
      batch = [];
      batched = 0;
      let n = 0;
      for (const c of chunks) n += c.length;
      for (let done = 0; done < n; ) done += (await this.file.writev(done === 0 ? chunks : [Buffer.concat(chunks).subarray(done)], this.written + done)).bytesWritten;
      this.written += n;
      this.notify();
    };
    try {
      for await (const chunk of source) {
        received += chunk.length;
        if (received > limit) throw new Error(`digest mismatch: more than the ${limit} bytes its descriptor says arrived`);
        hash.update(chunk);
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= BATCH) await flush();
      }
      await flush();
      this.finished = true;
      return { digest: `sha256:${hash.digest("hex")}`, size: received };
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
        const { bytesRead } = await this.file.read(buf, 0, buf.length, at);
        at += bytesRead;
        yield buf.subarray(0, bytesRead);
      } else if (this.finished) return;
      else await new Promise<void>((resolve) => this.wake.push(resolve));
    }
  }

  close(): Promise<void> {
    return this.file.close();
  }

  private notify(): void {
    const waiting = this.wake;
    this.wake = [];
    waiting.forEach((w) => w());
  }
}
