// Small JSON records written atomically: a reader sees the old file or the new one, never half of one.
import * as fs from "node:fs";
import { tempBeside } from "./staging";

export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.promises.readFile(file, "utf8")) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`reading ${file} failed: ${(e as Error).message}`);
  }
}

export async function writeJson(file: string, value: unknown): Promise<void> {
  const tmp = tempBeside(file);
  // Records hold env values and other secrets: for root's eyes only.
  await fs.promises.writeFile(tmp, JSON.stringify(value, null, 2) + "\n", { mode: 0o600 });
  await fs.promises.rename(tmp, file);
}

/** Directory entries, or none when the directory does not exist. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await fs.promises.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}
