// Pure: a stream's sha256 and size taken as it passes, bounded (what a registry sends is hostile: it could send
// forever).
import { createHash } from "node:crypto";

/** Passes chunks through while hashing them; digest() once the stream is consumed. More than `limit` bytes fail it. */
export function hashing(source: AsyncIterable<Buffer> | Iterable<Buffer>, limit = Infinity): { stream: AsyncIterable<Buffer>; digest(): string; size(): number } {
  const hash = createHash("sha256");
  let size = 0;
  let result: string | undefined;
  return {
    stream: (async function* () {
      for await (const chunk of source) {
        hash.update(chunk);
        size += chunk.length;
        if (size > limit) throw new Error(`digest mismatch: more than the ${limit} bytes expected arrived`);
        yield chunk;
      }
      result = `sha256:${hash.digest("hex")}`;
    })(),
    digest: () => result ?? (() => { throw new Error("stream not fully read"); })(),
    size: () => size,
  };
}
