// Streams handed out across the runtime seam (logs, events): async iterables whose `return()` ends them at once,
// even while they wait for more — an async generator alone only notices a `return()` at its next `yield`.
import * as fs from "node:fs";

/** Waits `ms`, or less when `signal` aborts first (never rejects). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/** The generator `make` returns, with a `return()` that aborts its signal first, so that it ends without delay. */
export function abortable<T>(make: (signal: AbortSignal) => AsyncGenerator<T>): AsyncIterableIterator<T> {
  const ac = new AbortController();
  const gen = make(ac.signal);
  const it: AsyncIterableIterator<T> = {
    next: () => gen.next(),
    return: (value?: unknown) => {
      ac.abort();
      return gen.return(value as never);
    },
    [Symbol.asyncIterator]: () => it,
  };
  return it;
}

/**
 * The whole lines appended to `file` from byte `offset` on, looked for every 200 ms until `until` (epoch ms), the
 * signal, or `alive` saying the writer is gone (what it wrote before is still read); a file cut under it (a
 * bounded log) is read again from its start.
 */
export async function* appendedLines(
  file: string,
  offset: number,
  until: number,
  signal: AbortSignal,
  alive: () => boolean = () => true,
): AsyncGenerator<string[]> {
  let partial = "";
  for (;;) {
    if (signal.aborted || Date.now() >= until) return;
    const ending = !alive();
    if (!ending) await pause(Math.min(200, until - Date.now()), signal);
    if (signal.aborted) return;
    const size = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
    if (size < offset) offset = 0;
    let text = partial;
    if (size > offset) {
      const buf = Buffer.alloc(size - offset);
      const fd = fs.openSync(file, "r");
      try {
        fs.readSync(fd, buf, 0, buf.length, offset);
      } finally {
        fs.closeSync(fd);
      }
      offset = size;
      text += buf.toString();
    }
    const lines = text.split("\n");
    partial = lines.pop()!;
    // The writer's last words count even without a newline after them.
    if (ending && partial) lines.push(partial);
    if (lines.length > 0) yield lines;
    if (ending) return;
  }
}
