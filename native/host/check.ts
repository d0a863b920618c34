// What a host lacks for berth (`berth host check`): the tools the runtime drives, the kernel features it mounts
// and the root it keeps. Read only: nothing is installed or changed, every finding names its fix.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { HostCheck } from "../runtime";

/** Commands the runtime runs, the Debian package that has them, what needs them, and whether berth can do without. */
const TOOLS: Array<[command: string, pkg: string, use: string, optional?: true]> = [
  ["runc", "runc", "every container runs under runc"],
  ["ip", "iproute2", "networks, veth pairs and addresses"],
  ["iptables", "iptables", "NAT and published ports"],
  ["iptables-restore", "iptables", "published ports"],
  ["mount", "mount", "image layers (overlayfs) and volumes"],
  ["tar", "tar", "berth cp"],
  ["setfattr", "attr", "image layers with deleted files (overlay whiteouts)"],
  ["getfattr", "attr", "image layers with deleted files (overlay whiteouts)"],
  ["start-stop-daemon", "dpkg", "Registry resources"],
  ["docker-registry", "docker-registry", "Registry resources", true],
  ["bzip2", "bzip2", "ADD of a .tar.bz2 in a Dockerfile", true],
  ["xz", "xz-utils", "ADD of a .tar.xz in a Dockerfile", true],
  ["zstd", "zstd", "ADD of a .tar.zst in a Dockerfile", true],
];

const BUSYBOX = "/bin/busybox";

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH || "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    const file = path.join(dir, command);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Whether an ELF executable asks for a dynamic loader (a PT_INTERP program header): such a busybox cannot run in a bare image. */
function isDynamic(file: string): boolean {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false; // 64-bit ELF only, as berth's hosts are
  const le = b[5] === 1;
  const u16 = (o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const phoff = Number(le ? b.readBigUInt64LE(0x20) : b.readBigUInt64BE(0x20));
  for (let i = 0; i < u16(0x38); i++) if (u32(phoff + i * u16(0x36)) === 3) return true;
  return false;
}

const firstLine = (command: string, args: string[]) =>
  new Promise<string>((resolve) => execFile(command, args, { timeout: 5000 }, (err, out) => resolve(err ? "" : out.split("\n")[0].trim())));

export async function checkHost(root: string): Promise<HostCheck[]> {
  const out: HostCheck[] = [];
  const uid = process.getuid?.();
  out.push(
    uid === 0
      ? { name: "user", level: "ok", detail: "root" }
      : { name: "user", level: "error", detail: `uid ${uid}`, fix: "berth needs root there (namespaces, mounts, iptables): connect as root, e.g. ssh://root@host" },
  );
  const mode = fs.statSync(root, { throwIfNoEntry: false })?.mode;
  out.push(
    mode !== undefined && (mode & 0o777) === 0o700
      ? { name: "root", level: "ok", detail: root }
      : { name: "root", level: "error", detail: `${root} is not berth's (mode ${mode === undefined ? "missing" : (mode & 0o777).toString(8)})`, fix: "give berth a directory of its own (BERTH_ROOT, or the provider's root)" },
  );
  for (const [command, pkg, use, optional] of TOOLS) {
    const file = onPath(command);
    const version = file && command === "runc" ? await firstLine(file, ["--version"]) : "";
    out.push(
      file
        ? { name: command, level: "ok", detail: version || file }
        : { name: command, level: optional ? "warn" : "error", detail: `missing: ${use} ${optional ? "uses" : "needs"} it`, fix: `apt-get install ${pkg}` },
    );
  }
  const busybox = fs.existsSync(BUSYBOX) ? (isDynamic(BUSYBOX) ? "dynamic" : "static") : "missing";
  out.push(
    busybox === "static"
      ? { name: "busybox", level: "ok", detail: `${BUSYBOX} (static)` }
      : { name: "busybox", level: "error", detail: `${BUSYBOX} is ${busybox}: every container's init is a static busybox`, fix: "apt-get install busybox-static" },
  );
  const filesystems = fs.readFileSync("/proc/filesystems", "utf8");
  out.push(
    /\toverlay$/m.test(filesystems)
      ? { name: "overlayfs", level: "ok", detail: "in the kernel" }
      : { name: "overlayfs", level: "error", detail: "the kernel has no overlay filesystem: image layers need it", fix: "modprobe overlay" },
  );
  const cgroup2 = fs.existsSync("/sys/fs/cgroup/cgroup.controllers");
  out.push(
    cgroup2 || fs.existsSync("/sys/fs/cgroup/memory")
      ? { name: "cgroups", level: "ok", detail: cgroup2 ? "v2" : "v1" }
      : { name: "cgroups", level: "error", detail: "no cgroup hierarchy under /sys/fs/cgroup: limits and supervision need it", fix: "mount the cgroup filesystem (systemd does at boot)" },
  );
  return out;
}
