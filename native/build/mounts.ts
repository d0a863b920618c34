// RUN --mount, with BuildKit's option syntax (CSV of key=value): type=cache (a host directory per id kept
// between builds, sharing shared|private|locked), type=secret (a build secret as a read-only file, never in a
// layer or the cache key), type=bind (a directory of the context or of a stage, read-only unless rw, writes
// discarded), type=tmpfs. And what a step leaves behind of its mounts: the empty files and directories runc made
// as mount points are removed before the layer is taken.
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { ownerAlive, self, withLock, type Owner } from "../lock";
import { listDir } from "../json-file";
import { stagingPath } from "../staging";
import { resolveInRoot } from "../confine";

export type Sharing = "shared" | "private" | "locked";

export interface CacheMount {
  type: "cache";
  target: string;
  id: string;
  sharing: Sharing;
  readonly: boolean;
  mode: number;
  uid: number;
  gid: number;
}
export interface SecretMount {
  type: "secret";
  id: string;
  target?: string;
  env?: string;
  required: boolean;
  mode: number;
  uid: number;
  gid: number;
}
export interface BindMount {
  type: "bind";
  target: string;
  source: string;
  from?: string;
  readonly: boolean;
}
export interface TmpfsMount {
  type: "tmpfs";
  target: string;
  size?: number;
}
export type RunMount = CacheMount | SecretMount | BindMount | TmpfsMount;

const KEYS: Record<RunMount["type"], string[]> = {
  cache: ["target", "id", "sharing", "readonly", "mode", "uid", "gid"],
  secret: ["target", "id", "env", "required", "mode", "uid", "gid"],
  bind: ["target", "source", "from", "readonly"],
  tmpfs: ["target", "size"],
};
const ALIASES: Record<string, string> = { dst: "target", destination: "target", src: "source", ro: "readonly", rw: "readwrite" };

/** One CSV record (quotes group, "" is a quote inside them). */
function csv(s: string): string[] {
  const out: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') field += s[++i];
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === ",") {
      out.push(field);
      field = "";
    } else field += c;
  }
  if (quoted) throw new Error(`unterminated quote in "${s}"`);
  out.push(field);
  return out;
}

function bool(key: string, v: string | undefined): boolean {
  if (v === undefined || v === "" || v === "true") return true;
  if (v === "false") return false;
  throw new Error(`${key}=${v} must be true or false`);
}

function int(key: string, v: string, base = 10): number {
  const n = base === 8 ? (/^0?[0-7]+$/.test(v) ? parseInt(v, 8) : NaN) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (Number.isNaN(n)) throw new Error(`${key}=${v} must be ${base === 8 ? "octal permission bits such as 0755" : "a whole number"}`);
  return n;
}

/** A --mount value, its target made absolute against the working directory. */
export function parseMount(value: string, workdir: string): RunMount {
  const fields = new Map<string, string | undefined>();
  for (const f of csv(value)) {
    const eq = f.indexOf("=");
    const raw = (eq < 0 ? f : f.slice(0, eq)).trim().toLowerCase();
    fields.set(ALIASES[raw] ?? raw, eq < 0 ? undefined : f.slice(eq + 1));
  }
  const type = fields.get("type") ?? "bind";
  if (type === "ssh") throw new Error("type=ssh is not supported by berth's builder (no SSH agent forwarding)");
  if (!(type in KEYS)) throw new Error(`unknown mount type "${type}" (use bind, cache, secret or tmpfs)`);
  const t = type as RunMount["type"];
  if (fields.has("readwrite")) {
    fields.set("readonly", String(!bool("rw", fields.get("readwrite"))));
    fields.delete("readwrite");
  }
  for (const k of fields.keys()) {
    if (k !== "type" && !KEYS[t].includes(k)) throw new Error(`unknown option "${k}" for a ${t} mount (it takes ${KEYS[t].join(", ")})`);
  }
  const get = (k: string) => fields.get(k);
  const abs = (p: string) => path.posix.resolve(workdir, p);
  const target = get("target");
  if (t !== "secret" && !target) throw new Error(`a ${t} mount needs target=PATH`);
  const owner = { mode: get("mode") === undefined ? (t === "secret" ? 0o400 : 0o755) : int("mode", get("mode")!, 8), uid: get("uid") === undefined ? 0 : int("uid", get("uid")!), gid: get("gid") === undefined ? 0 : int("gid", get("gid")!) };
  switch (t) {
    case "cache": {
      const sharing = get("sharing") ?? "shared";
      if (!["shared", "private", "locked"].includes(sharing)) throw new Error(`sharing=${sharing} must be shared, private or locked`);
      return { type: t, target: abs(target!), id: get("id") || abs(target!), sharing: sharing as Sharing, readonly: fields.has("readonly") && bool("readonly", get("readonly")), ...owner };
    }
    case "secret": {
      const id = get("id") || (target ? path.posix.basename(target) : "");
      if (!id) throw new Error("a secret mount needs id=NAME (or a target to take the name from)");
      const env = get("env");
      return { type: t, id, target: target ? abs(target) : env ? undefined : `/run/secrets/${id}`, env, required: fields.has("required") && bool("required", get("required")), ...owner };
    }
    case "bind":
      return { type: t, target: abs(target!), source: get("source") ?? "/", from: get("from"), readonly: !fields.has("readonly") || bool("readonly", get("readonly")) };
    case "tmpfs":
      return { type: t, target: abs(target!), size: get("size") === undefined ? undefined : int("size", get("size")!) };
  }
}

/** Cache mount directories of one berth root, by id; kept between builds, removed by `berth builder prune`. */
export class CacheMounts {
  /** Ids held by a private mount in this process: a second private user gets a directory of its own. */
  private readonly held = new Set<string>();

  constructor(
    readonly dir: string,
    /** Where a second private user's directory is staged (native/staging.ts: swept when its build was killed). */
    private readonly staging: string,
  ) {}

  private dirOf(id: string): string {
    return path.join(this.dir, createHash("sha256").update(id).digest("hex").slice(0, 32));
  }

  /** Runs fn with the host directory for a cache mount. */
  async use<T>(m: CacheMount, fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = this.dirOf(m.id);
    const make = async (d: string) => {
      if (fs.existsSync(d)) return;
      await fs.promises.mkdir(d, { recursive: true });
      await fs.promises.chmod(d, m.mode);
      await fs.promises.chown(d, m.uid, m.gid);
      await fs.promises.writeFile(`${d}.id`, m.id);
    };
    if (m.sharing === "locked") {
      // Docker waits as long as it takes for a locked cache; an hour is berth's bound.
      return withLock(`${dir}.lock`, () => holding(dir, () => make(dir), () => fn(dir)), {
        timeoutMs: 3_600_000,
        what: `the cache mount ${m.id} (sharing=locked)`,
      });
    }
    if (m.sharing === "shared") return holding(dir, () => make(dir), () => fn(dir));
    if (this.held.has(m.id)) {
      const stage = stagingPath(this.staging, "cache");
      const own = path.join(stage, "cache");
      try {
        await make(own);
        return await fn(own);
      } finally {
        await fs.promises.rm(stage, { recursive: true, force: true });
      }
    }
    // Held from here, before anything is awaited: a second private user that starts meanwhile sees it.
    this.held.add(m.id);
    try {
      return await holding(dir, () => make(dir), () => fn(dir));
    } finally {
      this.held.delete(m.id);
    }
  }
}

/**
 * Runs fn using the cache mount directory `dir`, marked as this process's meanwhile: the mark is made (and the
 * directory with it) under the directory's guard, which `builder prune` takes to remove it, so a prune either
 * sees the mark or is done before the directory is made again. A build killed midway leaves a mark naming a
 * process that is gone, which counts for nothing.
 */
async function holding<T>(dir: string, make: () => Promise<void>, fn: () => Promise<T>): Promise<T> {
  const mark = `${dir}.use-${process.pid}-${randomBytes(4).toString("hex")}`;
  await withLock(`${dir}.guard`, async () => {
    await make();
    await fs.promises.writeFile(mark, JSON.stringify(self()));
  }, { what: `the cache mount ${path.basename(dir)}` });
  // Its last use, for `berth builder prune --filter until=…`.
  const now = new Date();
  await fs.promises.utimes(`${dir}.id`, now, now).catch(() => undefined);
  try {
    return await fn();
  } finally {
    await fs.promises.rm(mark, { force: true });
  }
}

/** Removes a cache mount directory unless a live build uses it (see holding); resolves to whether it went. */
export function removeCacheMount(dir: string): Promise<boolean> {
  return withLock(`${dir}.guard`, async () => {
    const prefix = `${path.basename(dir)}.use-`;
    const marks = (await listDir(path.dirname(dir))).filter((n) => n.startsWith(prefix)).map((n) => path.join(path.dirname(dir), n));
    const users = await Promise.all(marks.map((f) => fs.promises.readFile(f, "utf8").then((t) => JSON.parse(t) as Owner, () => undefined)));
    if (users.some((o) => o !== undefined && ownerAlive(o))) return false;
    await fs.promises.rm(dir, { recursive: true, force: true });
    await Promise.all([`${dir}.id`, ...marks].map((f) => fs.promises.rm(f, { force: true })));
    return true;
  }, { what: `the cache mount ${path.basename(dir)}` });
}

/**
 * The mount points a step lacks in its root filesystem: what runc will create (empty files or directories) in the
 * step's upper directory, to be removed again after the step so they are not in the layer.
 */
export async function missingMountPoints(rootfs: string, targets: string[]): Promise<string[]> {
  const missing = new Set<string>();
  for (const t of targets) {
    let p = t;
    while (p !== "/") {
      if (fs.existsSync(await resolveInRoot(rootfs, p))) break;
      missing.add(p);
      p = path.posix.dirname(p);
    }
  }
  return [...missing].sort((a, b) => b.length - a.length);
}

/** Removes the mount points runc made (deepest first), when they are still empty. */
export async function removeMountPoints(rootfs: string, points: string[]): Promise<void> {
  for (const p of points) {
    const host = await resolveInRoot(rootfs, p, false);
    const st = await fs.promises.lstat(host).catch(() => undefined);
    if (st?.isDirectory()) await fs.promises.rmdir(host).catch(() => undefined);
    else if (st?.isFile() && st.size === 0) await fs.promises.rm(host, { force: true });
  }
}
