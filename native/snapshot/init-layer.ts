// The init layer, as Docker's: the mount points runc and berth need in every container (/proc, /dev, /sys, berth's
// /.berth/{busybox,exit}, empty /etc/{hosts,hostname,resolv.conf}), made once per root and kind of image and put
// read-only between the image's layers and each container's upper directory. Without it runc makes them in every
// upper directory (ten-odd inodes per container, and /etc copied up), and on an ext4 with no journal each new inode
// costs a scan past every inode deleted in the last minutes: superlinear in the containers made.
//
// The layer only adds what the image lacks, so the container sees what it saw when runc made them: a directory of
// the image stays its (the layer's copy carries its mode, owner and time, which overlayfs shows from the topmost
// layer), and where the image has something else (an /etc or /.berth symlink, its own /etc/hosts) the layer leaves
// that path out and runc resolves it inside the container as before. The layer is berth's own content, judged
// against the image only by lstat of the layer directories, never through a link.
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { isTemp, sweepTemps, tempBeside } from "../staging";

type Kind = "absent" | "dir" | "other";

/** An overlayfs whiteout: the path is deleted in this layer and every one below. */
const isWhiteout = (st: fs.Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

/**
 * What the image (layer directories, top first) has at rel, a path of one or two components. A directory's
 * opaque marker is not read (Node has no getxattr): a path it hides counts as present, so the layer leaves it out
 * and runc makes it, as before — never the other way round.
 */
function inImage(layers: string[], rel: string): { kind: Kind; st?: fs.Stats } {
  const parts = rel.split("/");
  for (const layer of layers) {
    let host = layer;
    for (const [i, part] of parts.entries()) {
      host = path.join(host, part);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(host, { throwIfNoEntry: false });
      } catch {
        st = undefined;
      }
      if (!st) break; // not in this layer: the layers below decide
      if (isWhiteout(st)) return { kind: "absent" };
      if (i === parts.length - 1) return { kind: st.isDirectory() ? "dir" : "other", st };
      // A parent that is no directory here hides whatever the layers below hold under that name.
      if (!st.isDirectory()) return { kind: "absent" };
    }
  }
  return { kind: "absent" };
}

interface Entry {
  rel: string;
  dir: boolean;
  /** mode, uid, gid and mtime (ms) of an image directory the layer repeats. */
  like?: [number, number, number, number];
}

/** The entries the init layer of an image holds, parents first. */
function entriesFor(layers: string[]): Entry[] {
  const out: Entry[] = [];
  for (const rel of ["proc", "dev", "sys"]) if (inImage(layers, rel).kind === "absent") out.push({ rel, dir: true });
  if (inImage(layers, ".berth").kind === "absent") {
    out.push({ rel: ".berth", dir: true }, { rel: ".berth/exit", dir: true }, { rel: ".berth/busybox", dir: false });
  }
  const etc = inImage(layers, "etc");
  if (etc.kind === "other") return out;
  const files = ["hosts", "hostname", "resolv.conf"].filter((f) => etc.kind === "absent" || inImage(layers, `etc/${f}`).kind === "absent");
  if (files.length === 0) return out;
  const st = etc.st;
  out.push({ rel: "etc", dir: true, like: st && [st.mode & 0o7777, st.uid, st.gid, st.mtimeMs] });
  for (const f of files) out.push({ rel: `etc/${f}`, dir: false });
  return out;
}

/** Where a root keeps its init layers. */
export const initLayersDir = (root: string): string => path.join(root, "init-layers");

interface Planned {
  dir: string;
  entries: Entry[];
}

/**
 * Layer directories are named by their content and never change: what they need is read once per process — once
 * they are all there (before a layer is unpacked, or after it was collected, what the image lacks is not known).
 */
const planned = new Map<string, Planned | undefined>();

function plan(root: string, layers: string[]): Planned | undefined {
  const key = `${root}\0${layers.join(":")}`;
  if (planned.has(key)) return planned.get(key);
  const entries = entriesFor(layers);
  const name = createHash("sha256").update(JSON.stringify(entries)).digest("hex").slice(0, 16);
  const p = entries.length === 0 ? undefined : { dir: path.join(initLayersDir(root), name), entries };
  if (layers.every((l) => fs.existsSync(l))) planned.set(key, p);
  return p;
}

/**
 * The init layer an image whose layer directories are `layers` (top first) uses, made or not; undefined when the
 * image has every mount point itself. What image GC keeps: see pruneInitLayers.
 */
export const initLayerPath = (root: string, layers: string[]): string | undefined => plan(root, layers)?.dir;

const made = new Map<string, Promise<string | undefined>>();

/**
 * The init layer for an image whose layer directories are `layers` (top first), made if missing; undefined when
 * the image has every mount point itself. Layers are named by their content, made under a temp name and renamed
 * whole, and never changed: two processes making one at once both end with the same finished directory.
 */
export async function initLayer(root: string, layers: string[]): Promise<string | undefined> {
  const key = `${root}\0${layers.join(":")}`;
  let p = made.get(key);
  if (!p) {
    p = make(plan(root, layers));
    made.set(key, p);
  }
  const dir = await p.catch((e: Error) => {
    made.delete(key); // a failure is not remembered: the next container tries again
    throw e;
  });
  // A root removed and made again under the same path (tests do), or a prune, has taken it.
  if (dir === undefined || fs.existsSync(dir)) return dir;
  made.delete(key);
  return initLayer(root, layers);
}

/**
 * Removes the init layers of a root but those in `keep` (image GC: the layers of the images stored, of the
 * containers there are and of containers being made, which lease theirs before making it), and what makers that
 * are gone left half-made. A live maker's temp is kept.
 */
export function pruneInitLayers(root: string, keep: Set<string>): void {
  const parent = initLayersDir(root);
  if (!fs.existsSync(parent)) return;
  sweepTemps(parent);
  for (const name of fs.readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)) {
    const dir = path.join(parent, name);
    if (!isTemp(name) && !keep.has(dir)) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** fsync of a file or directory: what was written there, or its entries, is on disk before it is relied on. */
async function sync(p: string): Promise<void> {
  const fh = await fs.promises.open(p, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function make(planned: Planned | undefined): Promise<string | undefined> {
  if (!planned) return undefined;
  const { dir, entries } = planned;
  if (fs.existsSync(dir)) return dir;
  const parent = path.dirname(dir);
  await fs.promises.mkdir(parent, { recursive: true });
  // What a process killed while making one left.
  sweepTemps(parent);
  const tmp = tempBeside(dir);
  try {
    await fs.promises.mkdir(tmp, { mode: 0o755 });
    for (const e of entries) {
      const at = path.join(tmp, e.rel);
      if (e.dir) await fs.promises.mkdir(at, { mode: 0o755 });
      else await fs.promises.writeFile(at, "", { mode: 0o755, flag: "wx" });
    }
    // Modes are set apart from the umask; a repeated image directory's attributes last, its time after its files.
    for (const e of [...entries].reverse()) {
      const at = path.join(tmp, e.rel);
      const [mode, uid, gid, mtime] = e.like ?? [0o755, 0, 0, undefined];
      await fs.promises.chown(at, uid, gid);
      await fs.promises.chmod(at, mode);
      if (mtime !== undefined) await fs.promises.utimes(at, mtime / 1000, mtime / 1000);
    }
    await fs.promises.chmod(tmp, 0o755);
    // On disk whole before it has its name: after a power loss a layer under its name is never missing a mount point.
    // At once, on the thread pool: one after the other they took up to 50 ms on this host.
    await Promise.all([tmp, ...entries.map((e) => path.join(tmp, e.rel))].map(sync));
    await fs.promises.rename(tmp, dir).catch((e: NodeJS.ErrnoException) => {
      // Another process made it first: the same content.
      if (e.code !== "ENOTEMPTY" && e.code !== "EEXIST") throw e;
    });
    await sync(parent);
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
  return dir;
}
