// A container's data mounts besides named volumes: host bind mounts (the host path made when missing, as Docker
// does), anonymous volumes (including the image's VOLUMEs, seeded with what the image has at that path), and the
// data mounts of other containers (volumes-from). Planned (and refused) before anything is made; made after the
// rootfs is mounted, since seeding copies from it.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ContainerSpec, ImageInfo } from "../runtime";
import type { ContainerPaths } from "../paths";
import type { Host } from "../host/exec";
import type { Bind } from "../container/spec";
import type { ContainerRecords } from "../container/record";
import { resolveInRoot } from "../confine";
import { resolveIn } from "../container/executable";
import { NAME } from "../names";
import { BUSYBOX } from "../supervise/init";

const BERTH_DIR = path.posix.dirname(BUSYBOX);

export interface DataMounts {
  binds: Bind[];
  /** Anonymous volume directories to make, and seed from the rootfs when new. */
  anonymous: Array<{ dir: string; target: string }>;
}

const anonymousDir = (p: ContainerPaths, target: string): string =>
  path.join(p.dir, "volumes", createHash("sha256").update(target).digest("hex").slice(0, 16));

/** How many components a mount target has, its path cleaned (Docker's sort key). */
const depth = (target: string): number => path.posix.normalize(`/${target}`).split("/").filter(Boolean).length;

export async function planDataMounts(
  spec: ContainerSpec,
  image: ImageInfo,
  p: ContainerPaths,
  named: Bind[],
  records: ContainerRecords,
  /** The image's layer directories, top first: where the targets' symlinks are followed. */
  layers: string[],
): Promise<DataMounts> {
  const binds: Bind[] = [...named];
  for (const [i, from] of (spec.volumesFrom ?? []).entries()) {
    const [other, mode, ...rest] = from.split(":");
    // A name becomes a record path: refused here whoever asks (the SDK's schema is not the only caller).
    if (!NAME.test(other) || rest.length > 0 || (mode !== undefined && mode !== "ro" && mode !== "rw")) {
      throw new Error(`container "${spec.name}": volumesFrom[${i}] "${from}" is invalid: use "CONTAINER", "CONTAINER:ro" or "CONTAINER:rw"`);
    }
    const rec = await records.read(other);
    if (!rec) throw new Error(`container "${spec.name}": volumesFrom names "${other}": No such container: create it first`);
    binds.push(...(rec.dataMounts ?? []).map((m) => ({ ...m, readOnly: mode === "ro" || (mode !== "rw" && m.readOnly) })));
  }
  binds.push(...(spec.binds ?? []).map((b) => ({ source: b.source, destination: b.target, readOnly: b.readOnly })));
  const taken = new Set(binds.map((b) => b.destination));
  const anonymous = [...(spec.anonymousVolumes ?? []), ...(image.config.volumes ?? [])]
    .filter((t, i, all) => !taken.has(t) && all.indexOf(t) === i)
    .map((target) => ({ dir: anonymousDir(p, target), target }));
  binds.push(...anonymous.map((a) => ({ source: a.dir, destination: a.target })));
  // Parents first, as Docker sorts them: runc mounts in order, and a child mounted before its parent is hidden by it.
  binds.sort((a, b) => depth(a.destination) - depth(b.destination));
  // /.berth holds berth's init and the command's exit status: a mount over it (an image's VOLUME is the image's to
  // choose) would hide the one and misreport the other. runc follows the target's symlinks in the rootfs (the
  // image's layers, and the other mounts' sources): `ln -s /.berth /x` and VOLUME /x lands on it too.
  for (const own of binds) {
    const where = await resolveIn({ layers, mounts: binds.filter((b) => b !== own) }, own.destination).catch((e: Error) => {
      throw new Error(`container "${spec.name}": mount target ${own.destination}: ${e.message}: fix the image's links or pick another path`);
    });
    const t = `/${where.join("/")}`;
    const berths = t === BERTH_DIR || t.startsWith(`${BERTH_DIR}/`);
    // The rootfs itself, /proc and /sys too (as checkRuntimeArgs refuses them by name): runc failed on them only
    // after the container's directory, rootfs and addresses were made (and VOLUME / had copied the whole rootfs).
    if (!berths && t !== "/" && !/^\/(proc|sys)(\/|$)/.test(t)) continue;
    const imageVolume = (image.config.volumes ?? []).includes(own.destination) && !(spec.anonymousVolumes ?? []).includes(own.destination);
    const what = imageVolume ? `its image declares VOLUME ${own.destination}` : `a mount at ${own.destination}`;
    const via = t === path.posix.normalize(own.destination).replace(/(.)\/$/, "$1") ? "" : ` (the image's symlinks lead it to ${t})`;
    const over = berths ? `over ${BERTH_DIR}, berth's own directory (its init and the exit status)` : `over the container's ${t}, the runtime's own`;
    throw new Error(`container "${spec.name}": ${what}${via}, ${over}: ${imageVolume ? "use another image" : "pick another path"}`);
  }
  return { binds, anonymous };
}

/** Makes missing bind sources and anonymous volumes; a new anonymous volume gets the image's files at its path. */
export async function makeDataMounts(host: Host, m: DataMounts, rootfs: string): Promise<void> {
  const isAnonymous = new Set(m.anonymous.map((a) => a.dir));
  // A missing source becomes a directory (Docker's -v); an existing one, a file too, is bound as it is.
  for (const b of m.binds) if (!isAnonymous.has(b.source) && !fs.existsSync(b.source)) await fs.promises.mkdir(b.source, { recursive: true });
  for (const a of m.anonymous) {
    if (fs.existsSync(a.dir)) continue;
    // Where the image has it, its symlinks followed inside the rootfs only (as runc resolves the mount's target).
    const seed = await resolveInRoot(rootfs, a.target);
    const tmp = `${a.dir}.new`;
    await fs.promises.rm(tmp, { recursive: true, force: true });
    await fs.promises.mkdir(tmp, { recursive: true });
    // Only a directory seeds it; cp -a copies the symlinks below it as symlinks. The container is not running yet.
    if (fs.lstatSync(seed, { throwIfNoEntry: false })?.isDirectory()) await host.run("cp", ["-a", `${seed}/.`, tmp]);
    await fs.promises.rename(tmp, a.dir);
  }
}
