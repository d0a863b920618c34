// A layer of many small files committed (image/pack.ts commitLayer): each file's read must hold about its own
// size, not a whole read buffer, while the tar writer gathers entries into batches.
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { commitLayer } from "../../native/image/pack";
import type { Host } from "../../native/host/exec";
import type { ContentStore } from "../../native/image/store";

const tmp = fs.mkdtempSync("/tmp/berth-test-pack-memory-");
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("commitLayer", () => {
  it("holds about the files' own size in memory for 200 files of 100 bytes, not a read buffer each", async () => {
    const dir = path.join(tmp, "layer");
    fs.mkdirSync(dir);
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(dir, `f${i}`), "x".repeat(100));
    const host = { tryRun: async () => ({ code: 1, stdout: "", stderr: "" }) } as unknown as Host;
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    let bytes = 0;
    const store = {
      async ingest(stream: Readable) {
        for await (const chunk of stream) {
          bytes += (chunk as Buffer).length;
          peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
        }
        return { mediaType: "", digest: `sha256:${"0".repeat(64)}`, size: bytes };
      },
      adoptLayer: async () => undefined,
    } as unknown as ContentStore;
    await commitLayer(host, store, dir, "test");
    expect(bytes).toBeGreaterThan(200 * 512);
    // One 1 MiB buffer kept per file made this 200 MiB.
    expect(peak).toBeLessThan(16 << 20);
  });
});
