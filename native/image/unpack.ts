// Unpacks one layer tar into its own directory, in the form overlayfs reads as a lower layer: OCI whiteouts
// (".wh.name") become 0:0 character devices and opaque markers (".wh..wh..opq") the trusted.overlay.opaque xattr.
// Every entry is judged before it touches the disk: nothing may land outside the layer directory, be written
// through a symlink (of this layer or one below), or be a device node.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Host } from "../host/exec";
import { readTar, type TarHeader } from "./tar";

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";
export const OPAQUE_XATTR = "trusted.overlay.opaque";

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

async function kindOf(file: string): Promise<Kind | undefined> {
  const st = await fs.promises.lstat(file).catch(() => undefined);
  if (!st) return undefined;
  if (st.isDirectory()) return "dir";
  if (st.isSymbolicLink()) return "symlink";
  // An overlay whiteout hides what lower layers have there.
  if (st.isCharacterDevice() && st.rdev === 0) return "absent";
  return "other";
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
}

export async function unpackLayer(o: UnpackOptions): Promise<void> {
  const kinds = new Map<string, Kind>();
  /** What a path is in the view of this layer over the lowers. */
  const merged = async (rel: string): Promise<Kind> => {
    const known = kinds.get(rel);
    if (known) return known;
    let kind: Kind = "absent";
    for (const d of [o.dir, ...o.lowers]) {
      const k = await kindOf(path.join(d, rel));
      if (k !== undefined) {
        kind = k;
        break;
      }
    }
    kinds.set(rel, kind);
    return kind;
  };
  const refuse = (h: TarHeader, why: string) => new LayerRefused(o.layer, h.path, why);
  const checkParents = async (h: TarHeader, rel: string) => {
    const parts = rel.split("/");
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      const k = await merged(prefix);
      if (k === "symlink") throw refuse(h, `it would be written through the symlink "${prefix}"`);
      if (k === "other") throw refuse(h, `"${prefix}" is not a directory`);
    }
  };
  const whiteouts: string[] = [];
  const opaques: string[] = [];
  const dirTimes: Array<[string, number]> = [];

  for await (const { header: h, data } of readTar(o.tar)) {
    const rel = cleanEntryPath(h.path);
    if (rel === undefined) throw refuse(h, "its path climbs out of the root with '..'");
    if (rel === ".") continue;
    await checkParents(h, rel);
    const target = path.join(o.dir, rel);
    const parent = path.posix.dirname(rel);
    const base = path.posix.basename(rel);
    await fs.promises.mkdir(path.dirname(target), { recursive: true });

    if (base === OPAQUE_MARKER) {
      opaques.push(path.dirname(target));
      continue;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const hidden = path.posix.join(parent, base.slice(WHITEOUT_PREFIX.length));
      await fs.promises.rm(path.join(o.dir, hidden), { recursive: true, force: true });
      whiteouts.push(path.join(o.dir, hidden));
      kinds.set(hidden, "absent");
      continue;
    }
    if (h.type === "char" || h.type === "block") {
      throw refuse(h, "device nodes are not allowed in image layers (the runtime gives containers their /dev)");
    }
    const existing = await kindOf(target);
    if (existing !== undefined && !(existing === "dir" && h.type === "dir")) {
      await fs.promises.rm(target, { recursive: true, force: true });
    }
    switch (h.type) {
      case "dir":
        await fs.promises.mkdir(target, { recursive: true });
        dirTimes.push([target, h.mtime]);
        kinds.set(rel, "dir");
        break;
      case "file": {
        const out = fs.createWriteStream(target, { mode: 0o600 });
        for await (const chunk of data) if (!out.write(chunk)) await new Promise((r) => out.once("drain", r));
        await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
        kinds.set(rel, "other");
        break;
      }
      case "symlink": {
        if (!h.linkname.startsWith("/") && cleanEntryPath(path.posix.join(parent, h.linkname)) === undefined) {
          throw refuse(h, `its symlink target "${h.linkname}" climbs out of the root`);
        }
        await fs.promises.symlink(h.linkname, target);
        kinds.set(rel, "symlink");
        break;
      }
      case "hardlink": {
        const linked = h.linkname.startsWith("/") ? undefined : cleanEntryPath(h.linkname);
        if (linked === undefined || linked === ".") {
          throw refuse(h, `its hardlink target "${h.linkname}" is outside the root`);
        }
        await checkParents({ ...h, path: h.linkname }, linked);
        const inLayer = path.join(o.dir, linked);
        if (await kindOf(inLayer)) await fs.promises.link(inLayer, target);
        else {
          const lower = o.lowers.map((d) => path.join(d, linked)).find((f) => fs.existsSync(f));
          if (!lower || (await merged(linked)) !== "other") throw refuse(h, `its hardlink target "${h.linkname}" does not exist`);
          await fs.promises.copyFile(lower, target);
        }
        kinds.set(rel, "other");
        continue; // a hardlink shares its target's owner, mode and times
      }
      case "fifo":
        await o.host.run("mkfifo", [target]);
        kinds.set(rel, "other");
        break;
    }
    await fs.promises.lchown(target, h.uid, h.gid);
    // chown clears setuid bits, so the mode comes after it.
    if (h.type !== "symlink") await fs.promises.chmod(target, h.mode);
    if (h.type !== "dir") await fs.promises.lutimes(target, h.mtime, h.mtime);
  }
  for (const w of whiteouts) await o.host.run("mknod", [w, "c", "0", "0"]);
  for (const d of opaques) await o.host.run("setfattr", ["-n", OPAQUE_XATTR, "-v", "y", d]);
  // Directories last: writing into them moved their times.
  for (const [d, t] of dirTimes.reverse()) await fs.promises.utimes(d, t, t);
}
