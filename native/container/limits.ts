// Resource limits as the OCI linux.resources object (runc writes it to cgroup v1 files, or converts it for a
// cgroup v2 host), and the checks that need the host: CPU count, online CPUs, block devices.
import * as fs from "node:fs";
import * as os from "node:os";
import type { Limits, Throttle } from "../runtime";

const CPU_PERIOD = 100_000;

export interface OciResources {
  memory?: { limit?: number; swap?: number; reservation?: number; disableOOMKiller?: boolean };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string };
  pids?: { limit: number };
  blockIO?: {
    weight?: number;
    throttleReadBpsDevice?: OciThrottle[];
    throttleWriteBpsDevice?: OciThrottle[];
    throttleReadIOPSDevice?: OciThrottle[];
    throttleWriteIOPSDevice?: OciThrottle[];
  };
}

interface OciThrottle {
  major: number;
  minor: number;
  rate: number;
}

/** Major and minor numbers of a device node (Linux's encoding of st_rdev). */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  return { major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((Math.floor(rdev / 4096) & 0xfff00) >>> 0) };
}

function throttles(list: Throttle[] | undefined): OciThrottle[] | undefined {
  return list?.map((t) => ({ ...deviceNumbers(fs.statSync(t.path).rdev), rate: t.rate }));
}

/**
 * Docker's translation: --cpus is a quota over a 100 ms period; memory-swap defaults to twice the memory; a
 * pids limit of 0 or -1 means none. Every field is present (0 meaning "no limit") so that `runc update` with
 * this object also lifts a limit the user removed.
 */
export function ociResources(l: Limits = {}): OciResources {
  const memory = l.memory ?? 0;
  const swap = l.memorySwap ?? (memory > 0 ? 2 * memory : -1);
  return {
    memory: {
      limit: memory > 0 ? memory : -1,
      swap: memory > 0 ? swap : -1,
      reservation: l.memoryReservation ?? 0,
      ...(l.oomKillDisable !== undefined && { disableOOMKiller: l.oomKillDisable }),
    },
    cpu: {
      shares: l.cpuShares ?? 1024,
      quota: l.cpus ? Math.round(l.cpus * CPU_PERIOD) : -1,
      period: CPU_PERIOD,
      ...(l.cpuset && { cpus: l.cpuset }),
    },
    pids: { limit: l.pidsLimit && l.pidsLimit > 0 ? l.pidsLimit : -1 },
    blockIO: {
      ...(l.blkioWeight && { weight: l.blkioWeight }),
      ...(l.deviceReadBps && { throttleReadBpsDevice: throttles(l.deviceReadBps) }),
      ...(l.deviceWriteBps && { throttleWriteBpsDevice: throttles(l.deviceWriteBps) }),
      ...(l.deviceReadIops && { throttleReadIOPSDevice: throttles(l.deviceReadIops) }),
      ...(l.deviceWriteIops && { throttleWriteIOPSDevice: throttles(l.deviceWriteIops) }),
    },
  };
}

/** "0-1,3" → [0, 1, 3]. */
function cpuList(list: string): number[] {
  return list
    .trim()
    .split(",")
    .flatMap((part) => {
      const [a, b] = part.split("-").map(Number);
      return Array.from({ length: (b ?? a) - a + 1 }, (_, i) => a + i);
    });
}

function onlineCpus(): string {
  try {
    return fs.readFileSync("/sys/devices/system/cpu/online", "utf8").trim();
  } catch {
    return `0-${os.cpus().length - 1}`;
  }
}

/** Limits this host cannot give, in Docker's words and with a fix: field → reason. */
export function hostLimitProblems(l: Limits = {}): Array<{ field: string; reason: string }> {
  const problems: Array<{ field: string; reason: string }> = [];
  // Only when asked: os.cpus() reads /proc/cpuinfo, /proc/stat and each CPU's cpufreq files (~1 ms per container).
  const cpus = l.cpus === undefined ? 0 : os.cpus().length;
  if (l.cpus !== undefined && (l.cpus < 0.01 || l.cpus > cpus)) {
    const reason = `Range of CPUs is from 0.01 to ${cpus.toFixed(2)}, as there are only ${cpus} CPUs available`;
    problems.push({ field: "cpus", reason });
  }
  if (l.cpuset !== undefined) {
    const online = onlineCpus();
    const available = new Set(cpuList(online));
    if (cpuList(l.cpuset).some((c) => !available.has(c))) {
      problems.push({ field: "cpuset", reason: `Requested CPUs are not available - requested ${l.cpuset}, available: ${online}` });
    }
  }
  const devices = [
    ["deviceReadBps", l.deviceReadBps],
    ["deviceWriteBps", l.deviceWriteBps],
    ["deviceReadIops", l.deviceReadIops],
    ["deviceWriteIops", l.deviceWriteIops],
  ] as const;
  for (const [field, list] of devices) {
    for (const [i, t] of (list ?? []).entries()) {
      const st = fs.statSync(t.path, { throwIfNoEntry: false });
      if (!st?.isBlockDevice()) {
        problems.push({ field: `${field}[${i}].path`, reason: `${t.path} is not a block device on this host: name one such as /dev/vda` });
      }
    }
  }
  return problems;
}
