// The container's lifecycle and limit args as the runtime takes them: sizes in bytes, durations in seconds.
import type { z } from "zod";
import { parseBytes, parseSeconds, type ContainerArgs } from "../../sdk/schema";
import type { ContainerRuntimeSpec, Limits, Runtime, Throttle } from "../../native/runtime";
import type { CheckFailure } from "./provider";
import { containsUnknown } from "../values";

type Args = z.infer<typeof ContainerArgs>;

const throttles = (list: Array<{ path: string; rate: number | string }> | undefined): Throttle[] | undefined =>
  list?.map((t) => ({ path: t.path, rate: parseBytes(t.rate) }));
const bytes = (v: number | string | undefined) => (v === undefined ? undefined : parseBytes(v));
const seconds = (v: number | string | undefined) => (v === undefined ? undefined : parseSeconds(v));

export function limitsOf(a: Args): Limits {
  return {
    memory: bytes(a.memory),
    memorySwap: a.memorySwap === -1 ? -1 : bytes(a.memorySwap),
    memoryReservation: bytes(a.memoryReservation),
    oomKillDisable: a.oomKillDisable,
    cpuShares: a.cpuShares,
    cpus: a.cpus,
    cpuset: a.cpuset,
    pidsLimit: a.pidsLimit,
    blkioWeight: a.blkioWeight,
    deviceReadBps: throttles(a.deviceReadBps),
    deviceWriteBps: throttles(a.deviceWriteBps),
    deviceReadIops: throttles(a.deviceReadIops),
    deviceWriteIops: throttles(a.deviceWriteIops),
  };
}

export function runtimeSpecOf(a: Args): ContainerRuntimeSpec {
  const h = a.healthcheck;
  return {
    user: a.user,
    labels: a.labels,
    stopSignal: a.stopSignal,
    stopTimeout: a.stopTimeout,
    readOnly: a.readOnly,
    tmpfs: a.tmpfs?.map((t) => ({ target: t.target, size: bytes(t.size), mode: t.mode })),
    binds: a.binds,
    anonymousVolumes: a.anonymousVolumes,
    volumesFrom: a.volumesFrom,
    capAdd: a.capAdd,
    capDrop: a.capDrop,
    privileged: a.privileged,
    devices: a.devices,
    ulimits: a.ulimits,
    sysctls: a.sysctls,
    pid: a.pid,
    ipc: a.ipc,
    uts: a.uts,
    limits: limitsOf(a),
    restart: a.restart,
    healthcheck: h && {
      test: h.test,
      interval: seconds(h.interval),
      timeout: seconds(h.timeout),
      startPeriod: seconds(h.startPeriod),
      retries: h.retries,
    },
  };
}

/** What the container's host cannot give it (CPUs, devices), asked of the runtime at check time. */
export async function hostProblems(runtime: Runtime, args: Args): Promise<CheckFailure[]> {
  // A limit not known yet is judged when it is.
  const a = Object.fromEntries(Object.entries(args).filter(([, v]) => !containsUnknown(v))) as Args;
  const problems = await runtime.containers.problems({ limits: limitsOf(a), devices: a.devices });
  return problems.map((p) => ({ property: p.field, reason: p.reason }));
}
