// `berth cp`: files into and out of a container, never anywhere else (the class of Docker's CVE-2018-15664).
// A running or paused container's files are reached from inside its own mount namespace and root (nsenter, then
// berth's busybox `tar` that every container has at /.berth/busybox): the kernel resolves every path there, so a
// process of the container swapping a directory for a symlink mid-copy can only redirect the copy within the
// container. A stopped container has no process: its rootfs and data mounts are resolved on the host through
// native/confine.ts, each entry again right before it is written, the last component never followed.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Host } from "../host/exec";
import { runPiped } from "../host/exec";
import { resolveInRoot, type View } from "../confine";
import { placeItems, walkTree } from "../build/copy";
import { writeTar, type TarHeader, type TarSource } from "../image/tar";
import { unpackLayer } from "../image/unpack";
import { BUSYBOX } from "../supervise/init";
import type { ContainerRecord } from "./record";

export interface CopyRequest {
  name: string;
  rec: ContainerRecord;
  rootfs: string;
  /** The init's host pid while the container runs (or is paused); undefined when it is stopped. */
  pid?: number;
  direction: "from" | "to";
  containerPath: string;
  hostPath: string;
}

const notFound = (p: string, name?: string) =>
  new Error(`Could not find the file ${p}${name ? ` in container ${name}` : ""}`);

export async function copyFiles(host: Host, r: CopyRequest): Promise<void> {
  const containerPath = path.posix.normalize(`/${r.containerPath}`);
  if (r.direction === "to") {
    const src = await fs.promises.lstat(r.hostPath).catch(() => undefined);
    if (!src) throw notFound(r.hostPath);
    return r.pid === undefined ? copyToStopped(r, containerPath) : copyToRunning(host, r, r.pid, containerPath);
  }
  // Docker's rule: into an existing directory under the source's name, else as the destination itself.
  const into = fs.statSync(r.hostPath, { throwIfNoEntry: false })?.isDirectory();
  const base = containerPath === "/" ? "." : path.posix.basename(containerPath);
  const final = into ? path.join(r.hostPath, base) : r.hostPath;
  if (!fs.statSync(path.dirname(final), { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`cannot copy to ${r.hostPath}: its directory ${path.dirname(final)} does not exist`);
  }
  if (r.pid === undefined) return copyFromStopped(host, r, containerPath, final);
  return copyFromRunning(host, r, r.pid, containerPath, final);
}

/** The container's view of the host while it is stopped: rootfs and data mounts, read-only ones marked. */
function viewOf(r: CopyRequest): View & { readOnly: string[] } {
  const mounts = (r.rec.dataMounts ?? []).map((m) => ({ target: path.posix.normalize(m.destination), source: m.source, ro: m.readOnly }));
  return { root: r.rootfs, mounts, readOnly: mounts.filter((m) => m.ro).map((m) => m.source) };
}

async function copyToStopped(r: CopyRequest, containerPath: string): Promise<void> {
  const view = viewOf(r);
  const dest = await resolveInRoot(view, containerPath);
  const isDir = fs.statSync(dest, { throwIfNoEntry: false })?.isDirectory();
  const target = isDir ? path.posix.join(containerPath, path.basename(r.hostPath)) : containerPath;
  const parent = await resolveInRoot(view, path.posix.dirname(target));
  if (!fs.statSync(parent, { throwIfNoEntry: false })?.isDirectory()) throw notFound(path.posix.dirname(target), r.name);
  if (view.readOnly.some((ro) => parent === ro || parent.startsWith(`${ro}/`))) {
    throw new Error(`cannot copy to ${target} in container ${r.name}: it is on a read-only mount`);
  }
  // Owned by root in the container, as Docker does; placeItems resolves each entry's directory again.
  await placeItems(view, target, await walkTree(r.hostPath), {});
}

async function copyFromStopped(host: Host, r: CopyRequest, containerPath: string, final: string): Promise<void> {
  // The last component is copied as it is (a symlink stays a symlink), as Docker does.
  const src = await resolveInRoot(viewOf(r), containerPath, false);
  if (!fs.lstatSync(src, { throwIfNoEntry: false })) throw notFound(containerPath, r.name);
  // -a never follows a symlink of the source tree; -T makes `final` the copy itself (a data mount's directory
  // would otherwise arrive under its host name).
  await host.run("cp", ["-a", "-T", "--", src, final]);
}

/** A command run as root inside the running container's mount namespace and root. */
const inside = (pid: number, args: string[]): [string, string[]] => ["nsenter", ["--target", String(pid), "--mount", "--root", "--", BUSYBOX, ...args]];

async function copyToRunning(host: Host, r: CopyRequest, pid: number, containerPath: string): Promise<void> {
  const isDir = async (p: string) => (await host.tryRun(...inside(pid, ["test", "-d", p]))).code === 0;
  const into = await isDir(containerPath);
  const dir = into ? containerPath : path.posix.dirname(containerPath);
  if (!into && !(await isDir(dir))) throw notFound(dir, r.name);
  const name = into ? path.basename(r.hostPath) : path.posix.basename(containerPath);
  const items = await walkTree(r.hostPath);
  const entries = items.map((item): TarSource => {
    const st = item.stat;
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
    if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) throw new Error(`cannot copy ${item.src}: only files, directories and symlinks can be copied`);
    return { header, data: st.isFile() ? () => fs.createReadStream(item.src) : undefined };
  });
  const [cmd, args] = inside(pid, ["tar", "-x", "-f", "-", "-C", dir]);
  const run = runPiped(cmd, args, writeTar(entries));
  for await (const _ of run.stdout) void _;
  await run.done.catch((e: Error) => {
    throw new Error(`cannot copy ${r.hostPath} to ${containerPath} in container ${r.name}: ${e.message}`);
  });
}

async function copyFromRunning(host: Host, r: CopyRequest, pid: number, containerPath: string, final: string): Promise<void> {
  const exists = await host.tryRun(...inside(pid, ["sh", "-c", '[ -e "$1" ] || [ -L "$1" ]', "exists", containerPath]));
  if (exists.code !== 0) throw notFound(containerPath, r.name);
  const base = containerPath === "/" ? "." : path.posix.basename(containerPath);
  const [cmd, args] = inside(pid, ["tar", "-c", "-f", "-", "-C", path.posix.dirname(containerPath), base]);
  // Unpacked into a private directory next to the destination, every entry judged as an image layer's would be.
  const tmp = await fs.promises.mkdtemp(path.join(path.dirname(final), ".berth-cp-"));
  try {
    const run = runPiped(cmd, args);
    const unpacked = unpackLayer({ host, tar: run.stdout, dir: tmp, lowers: [], layer: `copy of ${containerPath} from container ${r.name}`, plain: true })
      .catch((e: Error) => {
        run.stdout.destroy(); // so that tar, blocked on a full pipe, ends
        throw e;
      });
    // tar's own error first: a truncated stream is only its consequence.
    const [tarEnd, unpackEnd] = await Promise.allSettled([run.done, unpacked]);
    for (const end of [tarEnd, unpackEnd]) if (end.status === "rejected") throw end.reason;
    // Owned by whoever copies, as Docker does.
    await host.run("chown", ["-hR", `${process.getuid!()}:${process.getgid!()}`, tmp]);
    await host.run("cp", ["-a", "-T", "--", path.join(tmp, base), final]);
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}
