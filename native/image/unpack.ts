// Unpacks one layer tar into its own directory, in the form overlayfs reads as a lower layer: OCI whiteouts
// (".wh.name") become 0:0 character devices and opaque markers (".wh..wh..opq") the trusted.overlay.opaque xattr.
// Every entry is judged before it touches the disk: nothing may land outside the layer directory, be written
// through a symlink (of this layer or one below), or be a device node.
// The filesystem calls are synchronous: each is a short system call on a tree only this unpack writes, and
// handing every one of them to the thread pool (several per entry) cost more than the calls themselves.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Host } from "../host/exec";
import { lstatBelow } from "../confine";
import { readTar, type TarHeader } from "./tar";

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";
/** aufs's own metadata (".wh..wh.plnk" …): never unpacked, as in containerd. */
const AUFS_META_PREFIX = ".wh..wh.";
export const OPAQUE_XATTR = "trusted.overlay.opaque";
/** Longest run of synchronous entry writes before the event loop gets a turn. */
const YIELD_MS = 5;

export class LayerRefused extends Error {
  constructor(layer: string, entry: string, why: string) {
    super(`layer ${layer}: entry "${entry}" refused: ${why}`);
    this.name = "LayerRefused";
  }
}

/** "./a/b/" → "a/b"; undefined when the path climbs out of the root. "." is the root itself. */
export function cleanEntryPath(p: string): string | undefined {
  const norm = path.posix.normalize(p.replace(/^\/+/, ""));
  if (norm === ".." || norm.startsWith("../")) return undefined;
  return norm.replace(/\/+$/, "") || ".";
}

type Kind = "dir" | "symlink" | "other" | "absent";

/** What rel is in one layer directory, no symlink followed (a symlink or file above it hides it). */
function kindOf(dir: string, rel: string): Kind | undefined {
  const st = lstatBelow(dir, rel);
  if (!st) return undefined;
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  // An overlay whiteout hides what lower layers have there.
  if (st.isCharacterDevice() && st.rdev === 0) return "absent";
  return "other";
}

/** The name a whiteout hides; refused unless it is one plain name (".wh..", ".wh...", ".wh." hide no entry). */
function whiteoutTarget(base: string): string | undefined {
  const hidden = base.slice(WHITEOUT_PREFIX.length);
  return hidden === "" || hidden === "." || hidden === ".." ? undefined : hidden;
}

export interface UnpackOptions {
  host: Host;
  /** The uncompressed layer tar. */
  tar: AsyncIterable<Buffer>;
  /** An empty directory to fill. */
  dir: string;
  /** Unpacked directories of the layers below, top first. */
  lowers: string[];
  /** How errors name the layer (its digest, or where it came from). */
  layer: string;
  /** A plain archive, not a layer: ".wh." names are ordinary files and symlinks are kept as they are. */
  plain?: boolean;
}

export async function unpackLayer(o: UnpackOptions): Promise<void> {
  const kinds = new Map<string, Kind>();
  /** What a path is in the view of this layer over the lowers. */
  const merged = (rel: string): Kind => {
    const known = kinds.get(rel);
    if (known) return known;
    let kind: Kind = "absent";
    for (const d of [o.dir, ...o.lowers]) {
      const k = kindOf(d, rel);
      if (k !== undefined) {
        kind = k;
        break;
      }
    }
    kinds.set(rel, kind);
    return kind;
  };
  /** A path removed from this layer: what was known below it no longer holds. */
  const forget = (rel: string) => {
    for (const k of kinds.keys()) if (k === rel || k.startsWith(`${rel}/`)) kinds.delete(k);
  };
  const refuse = (h: TarHeader, why: string) => new LayerRefused(o.layer, h.path, why);
  const checkParents = (h: TarHeader, rel: string) => {
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      const k = merged(prefix);
      if (k === "symlink") throw refuse(h, `it would be written through the symlink "${prefix}"`);
      if (k === "other") throw refuse(h, `"${prefix}" is not a directory`);
    }
  };
  // Deferred to the layer's end, as layer-relative paths resolved again then, never through a symlink.
  const whiteouts: string[] = [];
  const opaques: string[] = [];
  const dirTimes: Array<[string, number]> = [];

  let ran = Date.now();
  for await (const { header: h, data } of readTar(o.tar)) {
    // Entries already read run without a pause: one now and then lets downloads (a pull's other layers) go on.
    if (Date.now() - ran > YIELD_MS) {
      await new Promise(setImmediate);
      ran = Date.now();
    }
    const rel = cleanEntryPath(h.path);
    if (rel === undefined) throw refuse(h, "its path climbs out of the root with '..'");
    const parent = path.posix.dirname(rel);
    const base = path.posix.basename(rel);
    if (o.plain !== true && rel.split("/").some((part) => part.startsWith(AUFS_META_PREFIX) && part !== OPAQUE_MARKER)) continue;
    if (o.plain !== true && base.startsWith(WHITEOUT_PREFIX)) {
      checkParents(h, rel);
      const name = whiteoutTarget(base);
      if (base !== OPAQUE_MARKER && name === undefined) {
        throw refuse(h, `the whiteout "${base}" names no entry (it would remove the directory it is in)`);
      }
      // The directory a marker is in may come from a lower layer only: this layer gets its own copy.
      fs.mkdirSync(path.join(o.dir, parent), { recursive: true });
      if (base === OPAQUE_MARKER) {
        opaques.push(parent);
        continue;
      }
      const hidden = path.posix.join(parent, name!);
      fs.rmSync(path.join(o.dir, hidden), { recursive: true, force: true });
      forget(hidden);
      whiteouts.push(hidden);
      kinds.set(hidden, "absent");
      continue;
    }
    if (rel === ".") continue;
    checkParents(h, rel);
    const target = path.join(o.dir, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (h.type === "char" || h.type === "block") {
      throw refuse(h, "device nodes are not allowed in image layers (the runtime gives containers their /dev)");
    }
    const existing = kindOf(o.dir, rel);
    if (existing !== undefined && !(existing === "dir" && h.type === "dir")) {
      fs.rmSync(target, { recursive: true, force: true });
      forget(rel);
    }
    switch (h.type) {
      case "dir":
        fs.mkdirSync(target, { recursive: true });
        dirTimes.push([rel, h.mtime]);
        kinds.set(rel, "dir");
        break;
      case "file": {
        const fd = fs.openSync(target, "wx", 0o600);
        try {
          for await (const chunk of data) for (let done = 0; done < chunk.length; ) done += fs.writeSync(fd, chunk, done);
          fs.fchownSync(fd, h.uid, h.gid);
          // chown clears setuid bits, so the mode comes after it.
          fs.fchmodSync(fd, h.mode);
          fs.futimesSync(fd, h.mtime, h.mtime);
        } finally {
          fs.closeSync(fd);
        }
        kinds.set(rel, "other");
        continue;
      }
      case "symlink": {
        if (h.linkname === "") throw refuse(h, "its symlink target is empty");
        if (o.plain !== true && !h.linkname.startsWith("/") && cleanEntryPath(path.posix.join(parent, h.linkname)) === undefined) {
          throw refuse(h, `its symlink target "${h.linkname}" climbs out of the root`);
        }
        fs.symlinkSync(h.linkname, target);
        kinds.set(rel, "symlink");
        break;
      }
      case "hardlink": {
        const linked = h.linkname.startsWith("/") ? undefined : cleanEntryPath(h.linkname);
        if (linked === undefined || linked === ".") {
          throw refuse(h, `its hardlink target "${h.linkname}" is outside the root`);
        }
        checkParents({ ...h, path: h.linkname }, linked);
        if (merged(linked) === "dir") throw refuse(h, `its hardlink target "${h.linkname}" is a directory`);
        if (kindOf(o.dir, linked)) fs.linkSync(path.join(o.dir, linked), target);
        else {
          // The lower layer that has it as a regular file, reached through real directories only.
          let lower: string | undefined;
          for (const d of o.lowers) if (!lower && lstatBelow(d, linked)?.isFile()) lower = path.join(d, linked);
          if (!lower || merged(linked) !== "other") throw refuse(h, `its hardlink target "${h.linkname}" does not exist`);
          await fs.promises.copyFile(lower, target, fs.constants.COPYFILE_EXCL);
        }
        kinds.set(rel, "other");
        continue; // a hardlink shares its target's owner, mode and times
      }
      case "fifo":
        await o.host.run("mkfifo", [target]);
        kinds.set(rel, "other");
        break;
    }
    fs.lchownSync(target, h.uid, h.gid);
    if (h.type !== "symlink") fs.chmodSync(target, h.mode);
    if (h.type !== "dir") fs.lutimesSync(target, h.mtime, h.mtime);
  }
  // Each deferred action only where its path is still what it was: real directories all the way (a later entry
  // may have replaced one by a symlink), and for a whiteout nothing there yet (the layer may have re-added it).
  const realDir = (rel: string) => lstatBelow(o.dir, rel)?.isDirectory() === true;
  for (const w of whiteouts) {
    if (!realDir(path.posix.dirname(w)) || fs.lstatSync(path.join(o.dir, w), { throwIfNoEntry: false })) continue;
    await o.host.run("mknod", [path.join(o.dir, w), "c", "0", "0"]);
  }
  for (const d of opaques) {
    if (realDir(d)) await o.host.run("setfattr", ["-h", "-n", OPAQUE_XATTR, "-v", "y", path.join(o.dir, d)]);
  }
  // Directories last: writing into them moved their times.
  for (const [d, t] of dirTimes.reverse()) if (realDir(d)) fs.lutimesSync(path.join(o.dir, d), t, t);
}
