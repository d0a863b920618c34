// `berth cp`: files into and out of a container, never anywhere else (the class of Docker's CVE-2018-15664).
// The copy runs as berth's busybox `tar` inside the container's own view of its files, so the kernel resolves
// every path there: a running or paused container's mount namespace and root (nsenter); for a stopped one, a
// private mount namespace with its data mounts bound where runc puts them, then chroot into its rootfs. A
// process swapping a directory for a symlink mid-copy (this container's, or another's sharing a volume) can only
// redirect the copy within the container. What comes out is unpacked with the layer rules (native/image/unpack.ts)
// into a private directory first.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Host } from "../host/exec";
import { runPiped } from "../host/exec";
import { resolveInRoot } from "../confine";
import { walkTree } from "../build/copy";
import { writeTar, type TarHeader, type TarSource } from "../image/tar";
import { unpackLayer } from "../image/unpack";
import { BUSYBOX, initBinds } from "../supervise/init";
import type { ContainerRecord } from "./record";

export interface CopyRequest {
  name: string;
  rec: ContainerRecord;
  /** The container's bundle directory and its (mounted) rootfs. */
  bundle: string;
  rootfs: string;
  /** The init's host pid while the container runs (or is paused); undefined when it is stopped. */
  pid?: number;
  direction: "from" | "to";
  containerPath: string;
  hostPath: string;
}

const notFound = (p: string, name?: string) =>
  new Error(`Could not find the file ${p}${name ? ` in container ${name}` : ""}`);

/** How to run busybox with args as root in the container's view: [command, its args]. */
type Inside = (args: string[]) => [string, string[]];

// Binds each "source target ro|rw" triple, then runs busybox chrooted into the rootfs.
const STOPPED_VIEW = `set -e
root=$1 n=$2
shift 2
while [ "$n" -gt 0 ]; do
  mount --bind "$1" "$2"
  [ "$3" = ro ] && mount -o remount,bind,ro "$2"
  shift 3
  n=$((n - 1))
done
exec chroot "$root" ${BUSYBOX} "$@"`;

async function viewOf(r: CopyRequest): Promise<Inside> {
  if (r.pid !== undefined) {
    const pid = String(r.pid);
    return (args) => ["nsenter", ["--target", pid, "--mount", "--root", "--", BUSYBOX, ...args]];
  }
  // Mount targets resolved inside the rootfs, as runc resolves them; the mounts live only in the private namespace.
  const binds: string[] = [];
  for (const m of [initBinds(r.bundle)[0], ...(r.rec.dataMounts ?? [])]) {
    binds.push(m.source, await resolveInRoot(r.rootfs, m.destination), m.readOnly ? "ro" : "rw");
  }
  const prefix = ["--mount", "--propagation", "private", "--", "sh", "-c", STOPPED_VIEW, "berth-cp", r.rootfs, String(binds.length / 3), ...binds];
  return (args) => ["unshare", [...prefix, ...args]];
}

export async function copyFiles(host: Host, r: CopyRequest): Promise<void> {
  const containerPath = path.posix.normalize(`/${r.containerPath}`);
  const inside = await viewOf(r);
  if (r.direction === "to") {
    if (!fs.lstatSync(r.hostPath, { throwIfNoEntry: false })) throw notFound(r.hostPath);
    return copyIn(host, r, inside, containerPath);
  }
  // Docker's rule: into an existing directory under the source's name, else as the destination itself.
  const into = fs.statSync(r.hostPath, { throwIfNoEntry: false })?.isDirectory();
  const base = containerPath === "/" ? "." : path.posix.basename(containerPath);
  const final = into ? path.join(r.hostPath, base) : r.hostPath;
  if (!fs.statSync(path.dirname(final), { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`cannot copy to ${r.hostPath}: its directory ${path.dirname(final)} does not exist`);
  }
  return copyOut(host, r, inside, containerPath, final);
}

async function copyIn(host: Host, r: CopyRequest, inside: Inside, containerPath: string): Promise<void> {
  const isDir = async (p: string) => (await host.tryRun(...inside(["test", "-d", p]))).code === 0;
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
  const [cmd, args] = inside(["tar", "-x", "-f", "-", "-C", dir]);
  const run = runPiped(cmd, args, writeTar(entries));
  for await (const _ of run.stdout) void _;
  await run.done.catch((e: Error) => {
    throw new Error(`cannot copy ${r.hostPath} to ${containerPath} in container ${r.name}: ${e.message}`);
  });
}

async function copyOut(host: Host, r: CopyRequest, inside: Inside, containerPath: string, final: string): Promise<void> {
  const exists = await host.tryRun(...inside(["sh", "-c", '[ -e "$1" ] || [ -L "$1" ]', "exists", containerPath]));
  if (exists.code !== 0) throw notFound(containerPath, r.name);
  const base = containerPath === "/" ? "." : path.posix.basename(containerPath);
  const [cmd, args] = inside(["tar", "-c", "-f", "-", "-C", path.posix.dirname(containerPath), base]);
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
