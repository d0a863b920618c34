// Small JSON records written atomically: a reader sees the old file or the new one, never half of one.
// Read and written with the synchronous calls: for a file of a few KB in the page cache, fs.promises costs ~30× the
// CPU (one thread-pool round trip per open, stat, read, write and close: ~200 µs against ~7 µs for a read), and a
// run of N containers reads and writes a few dozen records per container.
import * as fs from "node:fs";
import { tempBeside } from "./staging";

export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`reading ${file} failed: ${(e as Error).message}`);
  }
}

export async function writeJson(file: string, value: unknown): Promise<void> {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Writes text under an owner-named temp (native/staging.ts, swept once its writer is gone) and renames it into
 * place. Mode 0600: records hold env values and other secrets, for root's eyes only.
 */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = tempBeside(file);
  try {
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // only on failure: no extra call on the hot path
    throw e;
  }
}

/** A small file's text; undefined when it cannot be read (absent, or gone meanwhile). */
export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** Directory entries, or none when the directory does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}
