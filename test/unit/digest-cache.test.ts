// The check's file digests kept between runs (native/digest-cache.ts): an unchanged file is answered from the
// cache; a changed one never is, even when its size and mtime are put back; a file changed just before it was
// read is not remembered (its timestamps could hide a change in the same tick).
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { DigestCache } from "../../native/digest-cache";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const sha = (text: string) => `sha256:${createHash("sha256").update(text).digest("hex")}`;

function project(): { file: string; cacheFile: string; cached: () => Record<string, { id: string; digest: string }> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-digests-"));
  dirs.push(dir);
  const cacheFile = path.join(dir, ".pulumi", "digests.json");
  const read = () => (fs.existsSync(cacheFile) ? JSON.parse(fs.readFileSync(cacheFile, "utf8")) : {});
  return { file: path.join(dir, "rootfs.tar"), cacheFile, cached: read };
}

it("does not remember a file changed just before it was read", async () => {
  const { file, cacheFile, cached } = project();
  fs.writeFileSync(file, "fresh");
  const cache = new DigestCache(cacheFile);
  expect(await cache.digest(file)).toBe(sha("fresh"));
  cache.save();
  expect(cached()).toEqual({});
});

it("answers an unchanged file from the cache in the next run, and reads a changed one again even with its size and mtime put back", async () => {
  const { file, cacheFile, cached } = project();
  fs.writeFileSync(file, "first");
  const mtime = 1_700_000_000; // whole seconds: put back exactly below
  fs.utimesSync(file, mtime, mtime);
  // Settled: last changed over 2 s before it is read.
  await new Promise((r) => setTimeout(r, 2100));
  const first = new DigestCache(cacheFile);
  expect(await first.digest(file)).toBe(sha("first"));
  // Another run saved meanwhile, an entry of a file that is gone since: merged, less that entry.
  const gone = `${file}.gone`;
  fs.mkdirSync(path.dirname(cacheFile), { recursive: true });
  fs.writeFileSync(cacheFile, JSON.stringify({ [gone]: { id: "1:2:3:4:5", digest: sha("gone") } }));
  first.save();
  expect(Object.keys(cached())).toEqual([file]);
  const entry = cached()[file];
  expect(entry.digest).toBe(sha("first"));

  // The next run takes the entry for this very file without reading it: a planted digest shows it was used.
  fs.writeFileSync(cacheFile, JSON.stringify({ [file]: { ...entry, digest: sha("planted") } }));
  expect(await new DigestCache(cacheFile).digest(file)).toBe(sha("planted"));

  // Same size, mtime set back: the ctime moved, so the entry no longer stands for the file.
  fs.writeFileSync(file, "final");
  fs.utimesSync(file, mtime, mtime);
  expect(fs.statSync(file, { bigint: true }).mtimeNs).toBe(BigInt(mtime) * 1_000_000_000n);
  expect(`${fs.statSync(file).size}`).toBe(entry.id.split(":")[2]);
  expect(await new DigestCache(cacheFile).digest(file)).toBe(sha("final"));

}, 10_000);

it("saves the checks of one run together: once they pause, or as the process exits", async () => {
  const { file, cacheFile, cached } = project();
  const files = [0, 1, 2].map((i) => `${file}.${i}`);
  for (const f of files) fs.writeFileSync(f, f);
  await new Promise((r) => setTimeout(r, 2100)); // settled
  const cache = new DigestCache(cacheFile);
  for (const f of files) {
    await cache.digest(f);
    cache.saveSoon();
  }
  // Not written after each check: once they pause.
  expect(fs.existsSync(cacheFile)).toBe(false);
  await new Promise((r) => setTimeout(r, 400));
  expect(Object.keys(cached()).sort()).toEqual(files);

  // A process that exits right after its check still saves.
  fs.rmSync(cacheFile);
  const { execFileSync } = await import("node:child_process");
  const mod = path.resolve(__dirname, "../../dist/native/digest-cache.js");
  execFileSync(process.execPath, ["-e", `const { DigestCache } = require(${JSON.stringify(mod)});
    const c = new DigestCache(${JSON.stringify(cacheFile)});
    c.digest(${JSON.stringify(files[0])}).then(() => { c.saveSoon(); process.exit(0); });`]);
  expect(Object.keys(cached())).toEqual([files[0]]);
}, 10_000);
