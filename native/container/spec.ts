// The OCI runtime config (config.json) of a container: the process (Docker's ENTRYPOINT/CMD and env rules),
// namespaces, Docker's default capabilities and seccomp profile, and runc's default mounts and masked/read-only paths.
import * as fs from "node:fs";
import * as os from "node:os";
import * as zlib from "node:zlib";
import type { ContainerSpec, ImageConfig } from "../runtime";
import { DEFAULT_ACTION, DEFAULT_ERRNO, RULES, X86_64_ARCHITECTURES, type SeccompFilter, type SeccompRule } from "./seccomp-default";

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: Array<Pick<SeccompRule, "names" | "action" | "errnoRet" | "args">>;
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<"bounding" | "effective" | "permitted", string[]>;
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  domainname?: string;
  mounts: OciMount[];
  linux: {
    namespaces: { type: string; path?: string }[];
    resources: { devices: { allow: boolean; access: string }[] };
    maskedPaths: string[];
    readonlyPaths: string[];
    /** Absent for a privileged container, as Docker's. */
    seccomp?: OciSeccomp;
  };
}

export interface Bind {
  source: string;
  destination: string;
  readOnly?: boolean;
}

export interface BundleInput {
  hostname: string;
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number };
  /** A network namespace to join; without one runc makes a fresh namespace with only loopback. */
  netnsPath?: string;
  /** Share the host's network namespace (Docker's --network host). */
  hostNetwork?: boolean;
  domainname?: string;
  binds: Bind[];
}

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Docker's default capability set.
export const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

// runc spec's defaults.
const BASE_MOUNTS: OciMount[] = [
  { destination: "/proc", type: "proc", source: "proc" },
  {
    destination: "/dev",
    type: "tmpfs",
    source: "tmpfs",
    options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
  },
  {
    destination: "/dev/pts",
    type: "devpts",
    source: "devpts",
    options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
  },
  {
    destination: "/dev/shm",
    type: "tmpfs",
    source: "shm",
    options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
  },
  { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
  { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
  {
    destination: "/sys/fs/cgroup",
    type: "cgroup",
    source: "cgroup",
    options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
  },
];

const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/proc/scsi",
];

const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

// The profile's names for Node's architectures (Go's, as libseccomp spells them).
const NATIVE_ARCH: Record<string, string> = { x64: "amd64", ia32: "x86", arm64: "arm64", arm: "arm", s390x: "s390x", riscv64: "riscv64" };

function kernelAtLeast(min: string): boolean {
  const [major, minor] = os.release().split(".").map(Number);
  const [wantMajor, wantMinor] = min.split(".").map(Number);
  return major > wantMajor || (major === wantMajor && minor >= wantMinor);
}

/** Whether the host and `caps` meet a filter: every one of its arches/caps/minKernel when `all`, else any. */
function meets(f: SeccompFilter, caps: readonly string[], all: boolean): boolean {
  const arch = NATIVE_ARCH[process.arch] ?? process.arch;
  const tests = [
    ...(f.arches?.length ? [f.arches.includes(arch)] : []),
    ...(f.caps?.length ? [all ? f.caps.every((c) => caps.includes(c)) : f.caps.some((c) => caps.includes(c))] : []),
    ...(f.minKernel ? [kernelAtLeast(f.minKernel)] : []),
  ];
  return all ? tests.every(Boolean) : tests.some(Boolean);
}

let hostArchitectures: string[] | undefined;

/**
 * Docker's architectures for an x86_64 host, less x32 where the kernel was built without it (its /proc/config.gz
 * says so): no x32 program runs there, and runc has libseccomp compile the filter again for each architecture in
 * every container start (~5 ms of CPU each). Not told: Docker's list.
 */
function architectures(): string[] {
  if (process.arch !== "x64") return [];
  return (hostArchitectures ??= X86_64_ARCHITECTURES.filter((a) => a !== "SCMP_ARCH_X32" || kernelHasX32()));
}

function kernelHasX32(): boolean {
  try {
    return /^CONFIG_X86_X32(_ABI)?=y$/m.test(zlib.gunzipSync(fs.readFileSync("/proc/config.gz")).toString());
  } catch {
    return true;
  }
}

/**
 * Docker's default seccomp profile for a container whose bounding set is `caps`, resolved as Docker's setupSeccomp
 * does: an entry applies when the host's architecture, its kernel and `caps` meet all of its `includes` and none
 * of its `excludes` (so capAdd SYS_ADMIN allows mount, unshare, setns… as in Docker).
 */
export function seccompProfile(caps: readonly string[]): OciSeccomp {
  return {
    defaultAction: DEFAULT_ACTION,
    defaultErrnoRet: DEFAULT_ERRNO,
    architectures: architectures(),
    syscalls: RULES.filter((r) => (!r.includes || meets(r.includes, caps, true)) && (!r.excludes || !meets(r.excludes, caps, false))).map(
      ({ names, action, errnoRet, args }) => ({ names, action, ...(errnoRet === undefined ? {} : { errnoRet }), ...(args ? { args } : {}) }),
    ),
  };
}

/**
 * Docker's rules: an ENTRYPOINT given with the container replaces the image's and drops the image's CMD;
 * a command given with the container replaces the image's CMD; the process is ENTRYPOINT followed by CMD.
 */
export function processArgs(
  name: string,
  image: ImageConfig,
  spec: Pick<ContainerSpec, "entrypoint" | "command">,
): string[] {
  const entrypoint = spec.entrypoint ?? image.entrypoint ?? [];
  const cmd = spec.command ?? (spec.entrypoint ? [] : (image.cmd ?? []));
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) {
    throw new Error(`container "${name}" has no command: its image sets no ENTRYPOINT or CMD, so give a command`);
  }
  return args;
}

/** PATH (unless the image sets one), HOSTNAME, the image's env, then the container's, later keys winning. */
export function mergeEnv(
  name: string,
  hostname: string,
  imageEnv: string[] = [],
  extra: Record<string, string> = {},
): string[] {
  const env = new Map<string, string>();
  const put = (kv: string): void => void env.set(kv.split("=", 1)[0], kv);
  [DEFAULT_PATH, `HOSTNAME=${hostname}`, ...imageEnv].forEach(put);
  for (const [k, v] of Object.entries(extra)) {
    if (!/^[^=\0]+$/.test(k)) {
      throw new Error(`invalid env name "${k}" for container "${name}": it must be non-empty and contain no "="`);
    }
    put(`${k}=${v}`);
  }
  return [...env.values()];
}

export function runtimeSpec(b: BundleInput): OciSpec {
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: b.user,
      args: b.args,
      env: b.env,
      cwd: b.cwd,
      capabilities: { bounding: DEFAULT_CAPABILITIES, effective: DEFAULT_CAPABILITIES, permitted: DEFAULT_CAPABILITIES },
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: false },
    hostname: b.hostname,
    domainname: b.domainname,
    mounts: [
      ...BASE_MOUNTS,
      ...b.binds.map((m) => ({
        destination: m.destination,
        type: "bind",
        source: m.source,
        options: ["rbind", "rprivate", ...(m.readOnly ? ["ro"] : [])],
      })),
    ],
    linux: {
      namespaces: [
        { type: "pid" },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
        ...(b.hostNetwork ? [] : [b.netnsPath ? { type: "network", path: b.netnsPath } : { type: "network" }]),
      ],
      // Deny all devices; runc adds its default set (null, zero, full, tty, random, urandom, ptmx).
      resources: { devices: [{ allow: false, access: "rwm" }] },
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      seccomp: seccompProfile(DEFAULT_CAPABILITIES),
    },
  };
}
