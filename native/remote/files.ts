// Moving files across the connection (contract 1: a path a caller passes is on the caller's machine). The method
// table (methods.ts) names, per call, where such paths sit in the arguments; both ends read the same places.
// Uploads: the client replaces the path by a tar of it; the agent unpacks it with the layer rules into a private
// (0700) staging directory under its root, passes the staged path to the runtime and removes it after the call.
// Downloads (save, copy out): the agent hands the runtime a staging path, then streams a tar of what was written
// there; the client treats it as hostile input, as any container's files (container/copy.ts placeTar).
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Readable } from "node:stream";
import { realHost } from "../host/exec";
import { DockerIgnore, listContext } from "../build/context";
import type { CopyItem } from "../build/copy";
import { copyTarget, placeTar, tarOfPath } from "../container/copy";
import { unpackLayer } from "../image/unpack";
import { lazyStream } from "./lazy-stream";
import { withLock } from "../lock";
import { isTemp, stagingPath, sweepStaging as sweepStagingDir, sweepTemps, tempBeside } from "../staging";

/**
 * "up": a file or directory sent for the call as it is (a symlink as a symlink, as `cp` copies one); "read": a file
 * or directory the call reads, sent as what its path leads to (a symlinked tarball is read through, as locally);
 * "context": a build context (what .dockerignore leaves in, the
 * Dockerfile and .dockerignore always); "dockerfile": relative to the context it travels with it, otherwise
 * alone; "down": written by the runtime, received by the caller; "file": a small file sent for the call (a CA);
 * "kept": a small file the remote keeps, content-addressed, for what runs on after the call (a registry's TLS).
 */
export type FileKind = "up" | "read" | "context" | "dockerfile" | "down" | "file" | "kept";

export interface FileSlot {
  holder: object;
  key: string | number;
  kind: FileKind;
  /** A copy out of a container: the name Docker's rule gives it in an existing directory. */
  copyOf?: string;
}

export const slot = (holder: object, key: string | number, kind: FileKind, copyOf?: string): FileSlot => ({ holder, key, kind, copyOf });

const get = (s: FileSlot) => (s.holder as Record<string | number, unknown>)[s.key];
const put = (s: FileSlot, v: unknown) => ((s.holder as Record<string | number, unknown>)[s.key] = v);

/** What crosses in place of an uploaded path: its base name and a tar whose top entry has that name. */
interface Upload {
  name: string;
  tar: AsyncIterable<Uint8Array>;
}

/** The entry name of an upload: the path's own base name (a copy into a directory keeps it), never "." or "..". */
const uploadName = (p: string) => {
  const base = path.basename(p);
  return base === "" || base === "." || base === ".." ? "upload" : base;
};

async function contextUpload(dir: string, dockerfile: string | undefined): Promise<Upload> {
  const listed = await listContext(dir, await DockerIgnore.load(dir));
  const items: CopyItem[] = [{ src: dir, rel: "", stat: await fs.promises.lstat(dir) }, ...listed.map((f) => ({ src: f.abs, rel: f.rel, stat: f.stat }))];
  // The builder reads these even when .dockerignore names them (as BuildKit does): sent with their directories.
  const have = new Set(items.map((i) => i.rel));
  for (const rel of [".dockerignore", dockerfile ?? "Dockerfile"]) {
    const parts = rel.split(path.sep);
    for (let n = 1; n <= parts.length; n++) {
      const r = parts.slice(0, n).join("/");
      const stat = have.has(r) ? undefined : await fs.promises.lstat(path.join(dir, r)).catch(() => undefined);
      if (!stat) continue;
      items.push({ src: path.join(dir, r), rel: r, stat });
      have.add(r);
    }
  }
  return { name: "context", tar: await tarOfPath(dir, "context", items) };
}

/**
 * Client end, before the call: replaces each local path by what the agent needs (an upload, the file's bytes);
 * returns, per download, where its result lands here.
 */
export async function sendFiles(slots: FileSlot[]): Promise<string[]> {
  const downloads: string[] = [];
  for (const s of slots) {
    const value = get(s);
    // A download is made by the agent whatever is here: the two ends must count the same downloads.
    if (s.kind === "down" && typeof value !== "string") throw new Error(`a path to write to is required, got ${JSON.stringify(value)}`);
    if (typeof value !== "string") continue;
    const local = path.resolve(value);
    switch (s.kind) {
      case "up":
      case "read": {
        const from = s.kind === "read" ? await fs.promises.realpath(local) : local;
        await fs.promises.lstat(from);
        put(s, { name: uploadName(local), tar: await tarOfPath(from, uploadName(local)) } satisfies Upload);
        break;
      }
      case "context": {
        // The dockerfile slot comes first: a Dockerfile in the context is a relative path by now.
        const dockerfile = (s.holder as { dockerfile?: unknown }).dockerfile;
        put(s, await contextUpload(await fs.promises.realpath(local), typeof dockerfile === "string" ? dockerfile : undefined));
        break;
      }
      case "dockerfile": {
        const context = path.resolve((s.holder as { context: string }).context);
        const file = path.resolve(context, value);
        const rel = path.relative(context, file);
        if (!rel.startsWith("..") && !path.isAbsolute(rel)) put(s, rel);
        else put(s, { name: "Dockerfile", tar: await tarOfPath(await fs.promises.realpath(file), "Dockerfile") } satisfies Upload);
        break;
      }
      case "down":
        downloads.push(s.copyOf !== undefined ? copyTarget(s.copyOf, local) : local);
        put(s, undefined);
        break;
      case "file":
      case "kept":
        put(s, await fs.promises.readFile(local));
        break;
    }
  }
  return downloads;
}

/** Client end, after the call: each download's tar placed where it was asked for. */
export async function receiveFiles(method: string, host: string, downloads: string[], tars: AsyncIterable<Uint8Array>[]): Promise<void> {
  try {
    for (const [i, final] of downloads.entries()) {
      await placeTar(realHost, Readable.from(tars[i]), "out", final, `${method} from ${host}`);
    }
  } finally {
    // A tar left unread (its destination refused) is stopped, so the agent removes its staging now, not at the
    // connection's end.
    for (const tar of tars) await tar[Symbol.asyncIterator]().return?.();
  }
}

/** The agent's directories under its root: staging for one call, and the files it keeps. */
export function remoteDirs(root: string): { staging: string; kept: string } {
  return { staging: path.join(root, "remote", "staging"), kept: path.join(root, "remote", "files") };
}

/** Agent end, at start: staging directories of agents that are gone (killed mid-call), named as native/staging.ts names. */
export async function sweepStaging(root: string): Promise<void> {
  const { staging, kept } = remoteDirs(root);
  await sweepStagingDir(realHost, staging);
  sweepTemps(kept);
}


/** How long a kept file no registry names is left, from when it was last sent: a call that sent it may not have recorded its registry yet. */
export const KEPT_GRACE_MS = 60_000;

/**
 * The lock between a call keeping a file (its grace restarted, or the file written) and a sweep judging it: without
 * it, another agent's sweep could read a file's old time, then remove it just after a call sent it again.
 */
export const keptLock = (root: string) => `${remoteDirs(root).kept}.lock`;

/**
 * Agent end: removes the kept files (registry TLS) that `inUse` does not hold and that were not sent within the
 * grace — after a registry is removed or changed, and when an agent starts (another agent's calls included).
 */
export async function sweepKept(root: string, inUse: Set<string>, now = Date.now()): Promise<string[]> {
  const { kept } = remoteDirs(root);
  const names = await fs.promises.readdir(kept).catch(() => [] as string[]);
  // A temp file being written is its writer's (sweepTemps takes a dead one's).
  const candidates = names.map((n) => path.join(kept, n)).filter((f) => !inUse.has(f) && !isTemp(path.basename(f)));
  if (candidates.length === 0) return [];
  return withLock(keptLock(root), async () => {
    const removed: string[] = [];
    for (const file of candidates) {
      const st = await fs.promises.lstat(file).catch(() => undefined);
      if (!st || now - st.mtimeMs < KEPT_GRACE_MS) continue;
      await fs.promises.rm(file, { force: true });
      removed.push(file);
    }
    return removed;
  }, { what: "the kept registry TLS files" });
}

/** Written whole, then named: a kept file may be read at any time by what uses it (a registry restarting). */
async function writeWhole(file: string, value: Uint8Array): Promise<string> {
  // A name of this call's own: two calls of one agent may send the same file at once.
  const tmp = tempBeside(file);
  await fs.promises.writeFile(tmp, value, { mode: 0o600 });
  await fs.promises.rename(tmp, file);
  return file;
}

/** A kept file, content-addressed: written when missing, else sent again, so its grace starts again (sweepKept). */
function keep(root: string, value: Uint8Array): Promise<string> {
  const { kept } = remoteDirs(root);
  const file = path.join(kept, createHash("sha256").update(value).digest("hex"));
  return withLock(keptLock(root), async () => {
    if (await fs.promises.utimes(file, new Date(), new Date()).then(() => true, () => false)) return file;
    await fs.promises.mkdir(kept, { recursive: true, mode: 0o700 });
    return writeWhole(file, value);
  }, { what: "the kept registry TLS files" });
}

/**
 * Agent end: runs `call` with each slot's upload staged and each download given a staging path; the result of a
 * call with downloads is { value, files } (the tars of what the runtime wrote), and staging goes once they are sent.
 */
export async function withFiles(root: string, slots: FileSlot[], call: () => Promise<unknown>): Promise<unknown> {
  if (slots.length === 0) return call();
  const { staging, kept } = remoteDirs(root);
  await fs.promises.mkdir(staging, { recursive: true, mode: 0o700 });
  const dir = stagingPath(staging, "call");
  await fs.promises.mkdir(dir, { mode: 0o700 });
  const removeDir = () => fs.promises.rm(dir, { recursive: true, force: true });
  let sending = false;
  try {
    const downloads: string[] = [];
    for (const [i, s] of slots.entries()) {
      const value = get(s);
      const at = path.join(dir, String(i));
      if (s.kind === "down") {
        await fs.promises.mkdir(at, { mode: 0o700 });
        downloads.push(path.join(at, "out"));
        put(s, path.join(at, "out"));
      } else if (value instanceof Uint8Array) {
        put(s, s.kind === "kept" ? await keep(root, value) : await writeWhole(at, value));
      } else if (typeof value === "object" && value !== null && "tar" in value) {
        const up = value as Upload;
        if (up.name !== uploadName(up.name) || up.name.includes("/")) throw new Error(`upload named "${up.name}" refused: one plain name expected`);
        await fs.promises.mkdir(at, { mode: 0o700 });
        await unpackLayer({ host: realHost, tar: up.tar as AsyncIterable<Buffer>, dir: at, lowers: [], layer: `upload ${up.name}`, plain: true });
        put(s, path.join(at, up.name));
      }
    }
    const value = await call();
    if (downloads.length === 0) return value;
    let left = downloads.length;
    const files = downloads.map((p) => lazyStream(async () => tarOfPath(p, "out"), async () => {
      if (--left === 0) await removeDir();
    }));
    sending = true;
    return { value, files };
  } finally {
    if (!sending) await removeDir();
  }
}
