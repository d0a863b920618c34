// Reads only the caller's files (an Image's rootfs tarball or archive, its build context, the project's
// .pulumi/digests.json): the sha256 of each file a check reads on every preview, remembered between runs so an
// unchanged file is not read again. An entry stands only for the very file it was read from: same device, inode,
// size, mtime and ctime (to the nanosecond; ctime cannot be set back by hand). A file changed less than RACY_NS
// before it was read is not remembered (git's "racily clean" entries): timestamps come from a coarse clock, so a
// change in the same tick could leave them equal; any later change gets a later ctime than a remembered one.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { isDigest } from "./paths";
import { sweepTemps } from "./staging";
import { writeFileAtomic } from "./json-file";

/** How long before its read a file must have last changed for its digest to be remembered. */
const RACY_NS = 2_000_000_000n;

interface Entry {
  /** dev:ino:size:mtimeNs:ctimeNs of the file it was read from. */
  id: string;
  digest: string;
}

const identity = (st: fs.BigIntStats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/** Quiet time after a check before what it learnt is saved: the checks of one run, saved together. */
const SAVE_DELAY_MS = 200;

/** Caches with entries not yet saved: saved at the latest as the process exits. */
const unsaved = new Set<DigestCache>();
let saveOnExit = false;

export class DigestCache {
  private entries?: Map<string, Entry>;
  private learnt = new Map<string, Entry>();
  private timer?: NodeJS.Timeout;

  /** A cache kept in `file` (made on the first save). */
  constructor(private readonly file: string) {}

  /** "sha256:<hex>" of a file's content (a symlink is followed), from the cache when the file is unchanged. */
  async digest(file: string): Promise<string> {
    const abs = path.resolve(file);
    const before = await fs.promises.stat(abs, { bigint: true });
    const known = this.learnt.get(abs) ?? this.load().get(abs);
    if (known?.id === identity(before)) return known.digest;
    const startNs = BigInt(Date.now()) * 1_000_000n;
    const hash = createHash("sha256");
    for await (const chunk of fs.createReadStream(abs)) hash.update(chunk as Buffer);
    const digest = `sha256:${hash.digest("hex")}`;
    const after = await fs.promises.stat(abs, { bigint: true });
    const settled = before.ctimeNs < startNs - RACY_NS && before.mtimeNs < startNs - RACY_NS;
    if (settled && identity(after) === identity(before)) this.learnt.set(abs, { id: identity(before), digest });
    return digest;
  }

  /**
   * Writes what was learnt since the last save into the cache file, with the entries other runs wrote meanwhile,
   * less those of files that are gone. A cache that cannot be written (a read-only project) is no error: the
   * next run reads the files again.
   */
  save(): void {
    clearTimeout(this.timer);
    unsaved.delete(this);
    if (this.learnt.size === 0) return;
    try {
      this.entries = undefined; // read again: another run may have saved since
      const merged = new Map([...this.load(), ...this.learnt]);
      for (const name of merged.keys()) if (!fs.existsSync(name)) merged.delete(name);
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      sweepTemps(path.dirname(this.file));
      writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(merged)));
      this.entries = merged;
      this.learnt.clear();
    } catch {
      // Not kept: only slower next time.
    }
  }

  /**
   * save() once no check has asked for SAVE_DELAY_MS, or as the process exits: a run of many images reads and
   * rewrites the cache file once, not once per image. Lost only if the process is killed first (slower next run).
   */
  saveSoon(): void {
    if (this.learnt.size === 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), SAVE_DELAY_MS).unref();
    unsaved.add(this);
    if (!saveOnExit) {
      saveOnExit = true;
      process.on("exit", () => unsaved.forEach((c) => c.save()));
    }
  }

  private load(): Map<string, Entry> {
    if (!this.entries) {
      this.entries = new Map();
      try {
        const read = JSON.parse(fs.readFileSync(this.file, "utf8")) as Record<string, Entry>;
        for (const [name, e] of Object.entries(read)) {
          if (typeof e?.id === "string" && isDigest(e.digest)) this.entries.set(name, e);
        }
      } catch {
        // None yet, or unreadable: every file is read.
      }
    }
    return this.entries;
  }
}
