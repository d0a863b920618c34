// How a container runs and stays up: process identity, isolation, limits, restart policy, health, extra mounts.
// Spread into ContainerArgs. Limits and the restart policy change in place (as `docker update` does); the rest
// replaces the container. Docker's rules for combining fields are checked in checkRuntimeArgs.
import * as path from "node:path";
import { z } from "zod";
import { absolutePath, replaces } from "./fields";
import { CAPABILITIES } from "../../native/container/capabilities";
import { signalNumber } from "../../native/container/signals";

/** Bytes as a number, or Docker's "512m" / "1g" / "64k" / "100b" form. */
export const byteSize = z.union([
  z.number().int({ error: "must be a whole number of bytes" }).min(0, { error: "must not be negative" }),
  z.string().regex(/^\d+(\.\d+)?[bkmg]?$/i, { error: 'must be bytes or a size such as "64k", "512m", "1g"' }),
]);

/** Seconds as a number, or Go's "30s" / "500ms" / "1m30s" form as Docker takes it. */
export const duration = z.union([
  z.number().min(0, { error: "cannot be negative" }),
  z.string().regex(/^(\d+(\.\d+)?(ms|s|m|h))+$/, { error: 'must be a duration such as "30s", "500ms" or "1m"' }),
]);

// A capability Linux knows (CAP_ prefix optional, any case, as Docker accepts them), or "ALL".
const capability = z.string().refine((c) => c.toUpperCase() === "ALL" || CAPABILITIES.includes(c.toUpperCase().replace(/^CAP_/, "")), {
  error: (issue) => `unknown capability: "${String(issue.input)}"; use a Linux capability such as NET_ADMIN or CAP_SYS_TIME`,
});

/** Namespaces a container can share: the host's, or another container's ("container:NAME"). */
const namespaceMode = z.string().regex(/^(host|container:[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62})$/, {
  error: 'must be "host" or "container:NAME"',
});

/** A block device's I/O limit (Docker's --device-read-bps and the like: "/dev/vda:1mb"). */
export const DeviceThrottleArgs = z.strictObject({
  /** A block device on the host, e.g. "/dev/vda". */
  path: absolutePath,
  /** Bytes (or operations) per second. */
  rate: byteSize,
});

/** Docker's namespaced sysctls: the ones a container may set without touching the host's. */
export const NAMESPACED_SYSCTL = /^(kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)|fs\.mqueue\..+|net\..+)$/;

export const RestartPolicy = z.string().refine((p) => /^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(p), {
  error: (issue) =>
    /^on-failure:-/.test(String(issue.input))
      ? "maximum retry count cannot be negative"
      : `invalid restart policy '${String(issue.input)}': use "no", "always", "unless-stopped" or "on-failure[:N]"`,
});

export const HealthcheckArgs = z.strictObject({
  /** ["CMD", exe, args…], ["CMD-SHELL", "command"], or ["NONE"] to switch off the image's check. */
  test: z.array(z.string()).min(1).refine((t) => ["CMD", "CMD-SHELL", "NONE"].includes(t[0]) && (t[0] === "NONE" || t.length > 1), {
    error: 'must be ["CMD", exe, ...args], ["CMD-SHELL", "command"] or ["NONE"]',
  }),
  /** Time between checks (default 30s). */
  interval: duration.optional(),
  /** Time a check may take before it counts as failed (default 30s). */
  timeout: duration.optional(),
  /** Time after start during which failures do not count (default 0). */
  startPeriod: duration.optional(),
  /** Consecutive failures that make the container unhealthy (default 3). */
  retries: z.number().int().min(0, { error: "cannot be negative" }).optional(),
});

export const BindMountArgs = z.strictObject({
  /** Absolute host path; created (a directory, root-owned, 0755) when missing, as Docker does. */
  source: z.string().refine((s) => s.startsWith("/"), {
    error: (issue) =>
      `"${String(issue.input)}" is not an absolute path: a host directory must be given as an absolute path (a name would be a volume)`,
  }),
  /** Absolute path inside the container. */
  target: absolutePath,
  /** Mount read-only. */
  readOnly: z.boolean().optional(),
});

export const TmpfsArgs = z.strictObject({
  /** Absolute path inside the container. */
  target: absolutePath,
  /** Size limit of the tmpfs (default unlimited, up to half the host's memory). */
  size: byteSize.optional(),
  /** Octal mode of the mount's root, e.g. "1777". */
  mode: z.string().regex(/^[0-7]{3,4}$/, { error: 'must be an octal mode such as "1777"' }).optional(),
});

export const ContainerRuntimeArgs = {
  /** USER: "name", "uid", "name:group" or "uid:gid" (default: the image's). */
  user: replaces(z.string().regex(/^[^:\s]+(:[^:\s]+)?$/, { error: 'must be "user", "uid", "user:group" or "uid:gid"' }).optional()),
  /** Metadata recorded with the container (Docker's --label). */
  labels: replaces(z.record(z.string(), z.string()).optional()),
  /** Signal sent to stop the container (default SIGTERM), then SIGKILL after stopTimeout. */
  stopSignal: replaces(z.string().refine((s) => signalNumber(s) !== undefined, { error: "must be a signal such as SIGTERM, SIGINT or 15" }).optional()),
  /** Mount the container's root filesystem read-only (Docker's --read-only). */
  readOnly: replaces(z.boolean().optional()),
  /** tmpfs mounts (Docker's --tmpfs). */
  tmpfs: replaces(z.array(TmpfsArgs).optional()),
  /** Host directories mounted into the container (Docker's -v /host:/path). */
  binds: replaces(z.array(BindMountArgs).optional()),
  /** Anonymous volumes: fresh data directories mounted at these paths (kept until the container is deleted). */
  anonymousVolumes: replaces(z.array(absolutePath).optional()),
  /** Mount every volume another berth container mounts, at the same paths ("NAME" or "NAME:ro"). */
  volumesFrom: replaces(z.array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}(:(ro|rw))?$/, { error: 'must be "CONTAINER" or "CONTAINER:ro"' })).optional()),
  /** Capabilities to add, e.g. NET_ADMIN (Docker's --cap-add). */
  capAdd: replaces(z.array(capability).optional()),
  /** Capabilities to drop, or ALL (Docker's --cap-drop). */
  capDrop: replaces(z.array(capability).optional()),
  /** Every capability and device, no confinement (Docker's --privileged). */
  privileged: replaces(z.boolean().optional()),
  /** Host devices: "/dev/fuse" or "/dev/sda:/dev/xvda:rwm". */
  devices: replaces(z.array(z.string().regex(/^\/[^:]+(:\/[^:]+)?(:[rwm]{1,3})?$/, { error: 'must be "/dev/HOST[:/dev/CONTAINER][:rwm]"' })).optional()),
  /** Resource limits of the container's processes (Docker's --ulimit). */
  ulimits: replaces(z.array(z.strictObject({
    /** The limit, e.g. nofile or nproc. */
    name: z.enum(["core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as"], { error: "must be a ulimit name such as nofile or nproc" }),
    /** Soft limit (-1 for unlimited). */
    soft: z.number().int().min(-1),
    /** Hard limit (-1 for unlimited). */
    hard: z.number().int().min(-1),
  })).optional()),
  /** Namespaced sysctls only (checked in checkRuntimeArgs, where the message can name the key). */
  sysctls: replaces(z.record(z.string(), z.string()).optional()),
  /** Share the host's or another container's PID namespace (Docker's --pid). */
  pid: replaces(namespaceMode.optional()),
  /** Share the host's or another container's IPC namespace (Docker's --ipc). */
  ipc: replaces(namespaceMode.optional()),
  /** "host": use the host's host name and domain (Docker's --uts). */
  uts: replaces(z.literal("host", { error: 'must be "host"' }).optional()),

  /** Memory limit (Docker's -m); at least 6m. */
  memory: byteSize.optional(),
  /** Memory plus swap (Docker's --memory-swap): at least memory; -1 for unlimited swap. Default twice memory. */
  memorySwap: z.union([z.literal(-1), byteSize]).optional(),
  /** Soft memory limit, below memory (Docker's --memory-reservation). */
  memoryReservation: byteSize.optional(),
  /** Do not OOM-kill the container's processes (Docker's --oom-kill-disable). */
  oomKillDisable: z.boolean().optional(),
  /** Relative CPU weight (Docker's --cpu-shares, default 1024); at least 2. */
  cpuShares: z.number().int().min(2, { error: "the minimum allowed cpu-shares is 2" }).max(262144).optional(),
  /** CPUs the container may use in total, e.g. 0.5 (Docker's --cpus). */
  cpus: z.number().positive({ error: "must be more than 0" }).optional(),
  /** CPUs the container may run on, e.g. "0-1" or "0,2" (Docker's --cpuset-cpus). */
  cpuset: z.string().regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, { error: 'must be a CPU list such as "0", "0-1" or "0,2"' }).optional(),
  /** Maximum number of processes; 0 or -1 for unlimited. */
  pidsLimit: z.number().int().min(-1).optional(),
  /** Relative block I/O weight, 10-1000. */
  blkioWeight: z.number().int().min(10, { error: "must be between 10 and 1000" }).max(1000, { error: "must be between 10 and 1000" }).optional(),
  /** Read bytes per second from a device (Docker's --device-read-bps). */
  deviceReadBps: z.array(DeviceThrottleArgs).optional(),
  /** Write bytes per second to a device (Docker's --device-write-bps). */
  deviceWriteBps: z.array(DeviceThrottleArgs).optional(),
  /** Read operations per second from a device (Docker's --device-read-iops). */
  deviceReadIops: z.array(DeviceThrottleArgs).optional(),
  /** Write operations per second to a device (Docker's --device-write-iops). */
  deviceWriteIops: z.array(DeviceThrottleArgs).optional(),
  /** "no" (default), "always", "unless-stopped", "on-failure" or "on-failure:N". */
  restart: RestartPolicy.optional(),
  /** Overrides the image's HEALTHCHECK. */
  healthcheck: replaces(HealthcheckArgs.optional()),
};

const UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

export function parseBytes(size: number | string): number {
  if (typeof size === "number") return size;
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)$/i.exec(size)!;
  return Math.round(Number(m[1]) * UNITS[(m[2] || "b").toLowerCase()]);
}

const SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

export function parseSeconds(d: number | string): number {
  if (typeof d === "number") return d;
  let total = 0;
  for (const [, n, unit] of d.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(n) * SECONDS[unit];
  return total;
}

type RuntimeArgs = { [K in keyof typeof ContainerRuntimeArgs]?: z.infer<(typeof ContainerRuntimeArgs)[K]> };

/** Docker's rules for fields that depend on each other, with Docker's words and a fix. */
export function checkRuntimeArgs(args: RuntimeArgs & { volumes?: Array<{ target: string }>; networkMode?: string }, ctx: { addIssue(issue: { code: "custom"; path: string[]; message: string }): void }): void {
  const fail = (field: string, message: string) => ctx.addIssue({ code: "custom", path: [field], message });
  // zod runs this even when a field failed (or is a preview's unknown): such a size is not judged here.
  const size = (v: unknown) => (byteSize.safeParse(v).success ? parseBytes(v as number | string) : undefined);
  const memory = size(args.memory);
  if (memory !== undefined && memory > 0 && memory < 6 * 1024 * 1024) {
    fail("memory", "Minimum memory limit allowed is 6MB: give at least 6m");
  }
  const swap = size(args.memorySwap);
  if (swap !== undefined && args.memorySwap !== -1) {
    if (args.memory === undefined) {
      fail("memorySwap", "You should always set the Memory limit when using Memoryswap limit: set memory too");
    } else if (memory !== undefined && swap < memory) {
      fail("memorySwap", "Minimum memoryswap limit should be larger than memory limit: make memorySwap at least memory, or -1 for unlimited swap");
    }
  }
  const reservation = size(args.memoryReservation);
  if (reservation !== undefined && memory !== undefined && reservation > memory) {
    fail("memoryReservation", "Minimum memory limit can not be less than memory reservation limit: lower memoryReservation or raise memory");
  }
  // As Docker's --ulimit: the soft limit may not exceed the hard one (-1, unlimited, exceeds every number).
  for (const [i, u] of (args.ulimits ?? []).entries()) {
    if (typeof u?.soft !== "number" || typeof u.hard !== "number" || u.hard === -1) continue;
    if (u.soft === -1 || u.soft > u.hard) fail(`ulimits[${i}]`, `ulimit soft limit must be less than or equal to hard limit: ${u.soft} > ${u.hard}`);
  }
  for (const key of Object.keys(args.sysctls ?? {})) {
    if (!NAMESPACED_SYSCTL.test(key)) {
      fail("sysctls", `sysctl '${key}' is not a namespaced sysctl a container may set (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)`);
    } else if (key.startsWith("net.") && args.networkMode === "host") {
      // The namespace is the host's: runc refuses it at start (as Docker at create), so preview does.
      fail("sysctls", `sysctl '${key}' not allowed in host network namespace: drop it or give the container a network of its own`);
    } else if (!key.startsWith("net.") && args.ipc === "host") {
      fail("sysctls", `sysctl '${key}' is not allowed in the hosts ipc namespace: drop it or give the container an ipc namespace of its own`);
    }
  }
  const targets = [
    ...(args.tmpfs ?? []).map((t, i) => [`tmpfs[${i}].target`, t.target] as const),
    ...(args.binds ?? []).map((b, i) => [`binds[${i}].target`, b.target] as const),
    ...(args.anonymousVolumes ?? []).map((t, i) => [`anonymousVolumes[${i}]`, t] as const),
    ...(args.volumes ?? []).map((v, i) => [`volumes[${i}].target`, v.target] as const),
  ];
  for (const [field, target] of targets) {
    // Normalized first: "//proc" and "/./sys/" are /proc and /sys. /.berth holds berth's init and exit status.
    const at = typeof target === "string" ? path.posix.normalize(target) : "";
    if (/^\/(proc|sys|\.berth)(\/|$)/.test(at) || at === "/") {
      fail(field, `cannot mount over ${target}: the container's /, /proc, /sys and /.berth are the runtime's; pick another path`);
    }
  }
}
