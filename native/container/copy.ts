// `berth cp`: files into and out of a container, never anywhere else (the class of Docker's CVE-2018-15664).
// The copy runs as berth's busybox `tar` inside the container's own view of its files, so the kernel resolves
// every path there: in a running container, `runc exec` (confined like the container itself: the busybox it runs
// is reached through the container's files, which the container can replace, so it must not run with more than
// the container's own privileges); for a stopped or paused one, a private mount namespace with its data mounts
// bound where runc puts them, then chroot into its rootfs. A process swapping a directory for a symlink mid-copy
// (this container's, or another's sharing a volume) can only redirect the copy within the container. What comes
// out is unpacked with the layer rules (native/image/unpack.ts) into a private directory first.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Readable } from "node:stream";
import type { Host } from "../host/exec";
import { runPiped } from "../host/exec";
import { resolveInRoot } from "../confine";
import { walkTree, type CopyItem } from "../build/copy";
import { writeTar, type TarHeader, type TarSource } from "../image/tar";
import { unpackLayer } from "../image/unpack";
import { BUSYBOX, initBinds } from "../supervise/init";
import type { ContainerRecord } from "./record";
import { runcArgs, type RuncRef } from "./runc-root";

export interface CopyRequest {
  name: string;
  rec: ContainerRecord;
  /** The container's bundle directory and its (mounted) rootfs. */
  bundle: string;
  rootfs: string;
  /** Its runc container while it runs (not paused); undefined when it is stopped or paused. */
  runc?: RuncRef;
  direction: "from" | "to";
  containerPath: string;
  hostPath: string;
}

const notFound = (p: string, name?: string) =>
  new Error(`Could not find the file ${p}${name ? ` in container ${name}` : ""}`);

/** How to run busybox with args as root in the container's view: [command, its args]. */
type Inside = (args: string[]) => [string, string[]];

// Binds each "source target ro|rw" triple, then runs busybox chrooted into the rootfs. mount follows symlinks in
// its target, and a target below an earlier mount is reached through that mount's source, which a running
// container sharing it can change: each mount is checked to have landed on its target (the kernel's own record of
// the new mount point, decoded from mountinfo's octal escapes) before anything runs in the view.
const STOPPED_VIEW = `set -e
root=$1 n=$2
shift 2
while [ "$n" -gt 0 ]; do
  mount --bind "$1" "$2"
  at=$(printf '%b' "$(tail -n 1 /proc/self/mountinfo | cut -d' ' -f5)")
  [ "$at" = "$2" ] || { echo "$2 is not where it was to be mounted (a symlink led to $at): copy refused" >&2; exit 1; }
  if [ "$3" = ro ]; then
    mount -o remount,bind,ro "$2"
    # The remount found its target by path again: the last mount (ours) must now be the read-only one.
    case ",$(tail -n 1 /proc/self/mountinfo | cut -d' ' -f6)," in *,ro,*) ;; *) echo "$2 did not become read-only: copy refused" >&2; exit 1;; esac
  fi
  shift 3
  n=$((n - 1))
done
exec chroot "$root" ${BUSYBOX} "$@"`;

async function viewOf(host: Host, r: CopyRequest): Promise<Inside> {
  if (r.runc !== undefined) {
    const c = r.runc;
    // As root (of the container), whatever its USER: cp reads and writes every file, as Docker's does.
    return (args) => ["runc", runcArgs(c, ["exec", "--user", "0:0", c.id, BUSYBOX, ...args])];
  }
  // Mount targets resolved inside the rootfs (by its real path: the one mountinfo names), as runc resolves them;
  // the mounts live only in the private namespace. The busybox run as the host's root after the chroot must be
  // berth's: its path may hold no symlink (a container can have replaced its /.berth by one into a volume) and no
  // data mount may cover it.
  const rootfs = await fs.promises.realpath(r.rootfs);
  const busybox = initBinds(r.bundle)[0];
  const bbTarget = path.join(rootfs, BUSYBOX);
  const binds: string[] = [busybox.source, bbTarget, "ro"];
  if ((await resolveInRoot(rootfs, BUSYBOX)) !== bbTarget) throw new Error(`cannot copy with container ${r.name}: it has replaced ${path.posix.dirname(BUSYBOX)} (berth's own directory) by a symlink`);
  for (const m of r.rec.dataMounts ?? []) {
    const target = await resolveInRoot(rootfs, m.destination);
    if (bbTarget === target || bbTarget.startsWith(`${target}/`)) throw new Error(`cannot copy with container ${r.name}: its mount ${m.destination} covers berth's ${BUSYBOX}`);
    binds.push(m.source, target, m.readOnly ? "ro" : "rw");
  }
  const prefix = ["--mount", "--propagation", "private", "--", "sh", "-c", STOPPED_VIEW, "berth-cp", rootfs, String(binds.length / 3), ...binds];
  // Once alone first, so that a refused view fails the copy with its reason (later runs are judged by exit code).
  await host.run("unshare", [...prefix, "true"]).catch((e: Error) => {
    throw new Error(`cannot copy with container ${r.name}: ${e.message}`);
  });
  return (args) => ["unshare", [...prefix, ...args]];
}

export async function copyFiles(host: Host, r: CopyRequest): Promise<void> {
  const containerPath = path.posix.normalize(`/${r.containerPath}`);
  const inside = await viewOf(host, r);
  if (r.direction === "to") {
    if (!fs.lstatSync(r.hostPath, { throwIfNoEntry: false })) throw notFound(r.hostPath);
    return copyIn(host, r, inside, containerPath);
  }
  return copyOut(host, r, inside, containerPath, copyTarget(containerPath, r.hostPath));
}

/** Where a copy out of the container lands (Docker's rule): into an existing directory under the source's name, else as hostPath itself. */
export function copyTarget(containerPath: string, hostPath: string): string {
  const into = fs.statSync(hostPath, { throwIfNoEntry: false })?.isDirectory();
  const final = into ? path.join(hostPath, baseOf(containerPath)) : hostPath;
  if (!fs.statSync(path.dirname(final), { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`cannot copy to ${hostPath}: its directory ${path.dirname(final)} does not exist`);
  }
  return final;
}

const baseOf = (containerPath: string) => (path.posix.normalize(`/${containerPath}`) === "/" ? "." : path.posix.basename(containerPath));

/** A tar of a host file or directory (symlinks kept as links), its top entry named `name`, owned by root. */
export async function tarOfPath(hostPath: string, name: string, items?: CopyItem[]): Promise<Readable> {
  const entries = (items ?? (await walkTree(hostPath))).map((item): TarSource => {
    const st = item.stat;
    if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) throw new Error(`cannot copy ${item.src}: only files, directories and symlinks can be copied`);
    const header: TarHeader = {
      path: item.rel ? `${name}/${item.rel}` : name,
      type: st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "file",
      mode: st.mode & 0o7777,
      uid: 0,
      gid: 0,
      size: st.isFile() ? st.size : 0,
      mtime: Math.floor(st.mtimeMs / 1000),
      linkname: st.isSymbolicLink() ? fs.readlinkSync(item.src) : "",
      devmajor: 0,
      devminor: 0,
    };
    return { header, data: st.isFile() ? () => fs.createReadStream(item.src) : undefined };
  });
  return writeTar(entries);
}

async function copyIn(host: Host, r: CopyRequest, inside: Inside, containerPath: string): Promise<void> {
  const isDir = async (p: string) => (await host.tryRun(...inside(["test", "-d", p]))).code === 0;
  const into = await isDir(containerPath);
  const dir = into ? containerPath : path.posix.dirname(containerPath);
  if (!into && !(await isDir(dir))) throw notFound(dir, r.name);
  const name = into ? path.basename(r.hostPath) : path.posix.basename(containerPath);
  const [cmd, args] = inside(["tar", "-x", "-f", "-", "-C", dir]);
  const run = runPiped(cmd, args, await tarOfPath(r.hostPath, name));
  for await (const _ of run.stdout) void _;
  await run.done.catch((e: Error) => {
    throw new Error(`cannot copy ${r.hostPath} to ${containerPath} in container ${r.name}: ${e.message}`);
  });
}

async function copyOut(host: Host, r: CopyRequest, inside: Inside, containerPath: string, final: string): Promise<void> {
  const exists = await host.tryRun(...inside(["sh", "-c", '[ -e "$1" ] || [ -L "$1" ]', "exists", containerPath]));
  if (exists.code !== 0) throw notFound(containerPath, r.name);
  const base = baseOf(containerPath);
  const [cmd, args] = inside(["tar", "-c", "-f", "-", "-C", path.posix.dirname(containerPath), base]);
  const run = runPiped(cmd, args);
  await placeTar(host, run.stdout, base, final, `copy of ${containerPath} from container ${r.name}`, run.done);
}

/**
 * Puts entry `base` of a hostile tar at `final`: unpacked into a private directory next to it first, every entry
 * judged as an image layer's would be, then owned by whoever copies (as Docker does) and copied into place.
 * `producer` is what writes the tar (its own error comes first: a truncated stream is only its consequence).
 */
export async function placeTar(host: Host, tar: Readable, base: string, final: string, what: string, producer: Promise<void> = Promise.resolve()): Promise<void> {
  const tmp = await fs.promises.mkdtemp(path.join(path.dirname(final), ".berth-cp-"));
  try {
    const unpacked = unpackLayer({ host, tar, dir: tmp, lowers: [], layer: what, plain: true })
      .catch((e: Error) => {
        tar.destroy(); // so that a writer blocked on a full pipe ends
        throw e;
      });
    const [tarEnd, unpackEnd] = await Promise.allSettled([producer, unpacked]);
    for (const end of [tarEnd, unpackEnd]) if (end.status === "rejected") throw end.reason;
    await host.run("chown", ["-hR", `${process.getuid!()}:${process.getgid!()}`, tmp]);
    // An entry that exists at its place is removed before it is written, never written through: a symlink there
    // (an earlier copy from this container left it) would lead the write anywhere on the host.
    await host.run("cp", ["-a", "-T", "--remove-destination", "--", path.join(tmp, base), final]);
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}
