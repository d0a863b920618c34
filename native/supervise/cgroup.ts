// Reading a container's cgroup files on either layout: cgroup v1 (one hierarchy per controller, as on hybrid
// hosts) or the unified cgroup v2 hierarchy. runc places the container at its cgroupsPath in each.
import * as fs from "node:fs";
import * as path from "node:path";
import type { ContainerStats } from "../runtime";

const ROOT = "/sys/fs/cgroup";
const cgroupV2 = (): boolean => fs.existsSync(path.join(ROOT, "cgroup.controllers"));

/** The file of a controller for the cgroup at cgroupsPath: the v1 name, or its v2 counterpart. */
export function cgroupFile(cgroupsPath: string, controller: string, v1: string, v2: string): string {
  return cgroupV2() ? path.join(ROOT, cgroupsPath, v2) : path.join(ROOT, controller, cgroupsPath, v1);
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** "key value" lines → the value of key. */
function field(text: string | undefined, key: string): number | undefined {
  const m = text && new RegExp(`^${key} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

/** How many processes the OOM killer killed in the cgroup. */
export function oomKills(cgroupsPath: string): number {
  return field(read(cgroupFile(cgroupsPath, "memory", "memory.oom_control", "memory.events")), "oom_kill") ?? 0;
}

/** Bytes read and written on block devices: v1 blkio's "MAJ:MIN Read N" lines, v2 io.stat's "rbytes=N wbytes=N". */
function blockIo(cgroupsPath: string): { blockRead: number; blockWrite: number } {
  const text = read(cgroupFile(cgroupsPath, "blkio", "blkio.throttle.io_service_bytes", "io.stat")) ?? "";
  const sum = (re: RegExp) => [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
  return cgroupV2()
    ? { blockRead: sum(/rbytes=(\d+)/g), blockWrite: sum(/wbytes=(\d+)/g) }
    : { blockRead: sum(/^\d+:\d+ Read (\d+)$/gm), blockWrite: sum(/^\d+:\d+ Write (\d+)$/gm) };
}

/** What the container's cgroup counts; memoryLimit undefined when there is none. */
export function cgroupStats(cgroupsPath: string): Omit<ContainerStats, "netRx" | "netTx" | "memoryLimit" | "onlineCpus"> & { memoryLimit?: number } {
  const num = (file: string) => {
    const t = read(file)?.trim();
    return t === undefined || t === "max" ? undefined : Number(t);
  };
  const v2 = cgroupV2();
  const memoryBytes = num(cgroupFile(cgroupsPath, "memory", "memory.usage_in_bytes", "memory.current")) ?? 0;
  const limit = num(cgroupFile(cgroupsPath, "memory", "memory.limit_in_bytes", "memory.max"));
  const cpuNanos = v2
    ? (field(read(cgroupFile(cgroupsPath, "cpu", "", "cpu.stat")), "usage_usec") ?? 0) * 1000
    : (num(cgroupFile(cgroupsPath, "cpuacct", "cpuacct.usage", "")) ?? 0);
  const pids = num(cgroupFile(cgroupsPath, "pids", "pids.current", "pids.current")) ?? 0;
  // v1 reports "no limit" as a huge page-aligned number.
  return { memoryBytes, memoryLimit: limit !== undefined && limit < 2 ** 62 ? limit : undefined, cpuNanos, pids, ...blockIo(cgroupsPath) };
}
