// The part of the runtime seam about keeping containers up: how a container's process is isolated and limited,
// its restart policy and health check, what the supervisor saw of it, and the day-2 verbs (stop, start, update…).
// Sizes are bytes and durations seconds here; the schema's "512m" and "30s" forms are parsed before the seam.
import type { ImageInfo } from "./runtime";

export interface Throttle {
  /** A block device on the host, e.g. "/dev/vda". */
  path: string;
  /** Bytes or operations per second. */
  rate: number;
}

/** What `runc update` can change under a running container (Docker's `docker update`). */
export interface Limits {
  memory?: number;
  /** Memory plus swap; -1 for unlimited. Unset with memory set: twice memory, as Docker does. */
  memorySwap?: number;
  memoryReservation?: number;
  oomKillDisable?: boolean;
  cpuShares?: number;
  cpus?: number;
  cpuset?: string;
  /** 0 or -1: unlimited. */
  pidsLimit?: number;
  blkioWeight?: number;
  deviceReadBps?: Throttle[];
  deviceWriteBps?: Throttle[];
  deviceReadIops?: Throttle[];
  deviceWriteIops?: Throttle[];
}

export interface Healthcheck {
  /** ["CMD", exe, …args], ["CMD-SHELL", "command"] or ["NONE"]. */
  test: string[];
  /** Seconds; Docker's defaults: 30, 30, 0 and 3 retries. */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  retries?: number;
}

export interface BindMount {
  /** Absolute host path, created as a directory when missing. */
  source: string;
  target: string;
  readOnly?: boolean;
}

export interface TmpfsMount {
  target: string;
  /** Bytes; default half the host's memory (the kernel's). */
  size?: number;
  mode?: string;
}

export interface ContainerRuntimeSpec {
  /** "user", "uid", "user:group", "uid:gid"; default the image's USER. */
  user?: string;
  labels?: Record<string, string>;
  /** Default SIGTERM. */
  stopSignal?: string;
  /** Seconds between the stop signal and SIGKILL; default 10. */
  stopTimeout?: number;
  readOnly?: boolean;
  tmpfs?: TmpfsMount[];
  binds?: BindMount[];
  /** Targets of volumes made for this container alone (and the image's VOLUMEs), deleted with it. */
  anonymousVolumes?: string[];
  /** "NAME" or "NAME:ro": every data mount of that container, at the same paths. */
  volumesFrom?: string[];
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  /** "/dev/HOST[:/dev/CONTAINER][:rwm]". */
  devices?: string[];
  ulimits?: Array<{ name: string; soft: number; hard: number }>;
  sysctls?: Record<string, string>;
  /** "host" or "container:NAME". */
  pid?: string;
  ipc?: string;
  uts?: string;
  limits?: Limits;
  /** "no" (default), "always", "unless-stopped", "on-failure[:N]". */
  restart?: string;
  healthcheck?: Healthcheck;
}

export type HealthStatus = "starting" | "healthy" | "unhealthy";

export interface HealthProbe {
  start: string;
  end: string;
  exitCode: number;
  output: string;
}

/** What the supervisor saw of a container (Docker's State). */
export interface ContainerState {
  status: "running" | "restarting" | "exited";
  pid?: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  /** The last exit was the kernel's OOM killer's doing. */
  oomKilled?: boolean;
  /** Restarts the restart policy made. */
  restartCount: number;
  health?: { status: HealthStatus; failingStreak: number; log: HealthProbe[] };
}

export interface ContainerLifecycle {
  /** Limits, restart policy and stop timeout, changed under the running container. */
  update(name: string, change: Pick<ContainerRuntimeSpec, "limits" | "restart" | "stopTimeout">): Promise<void>;
  /** The stop signal, then SIGKILL after the grace period; the restart policy leaves it stopped. */
  stop(name: string, opts?: { graceSeconds?: number }): Promise<void>;
  start(name: string): Promise<void>;
  kill(name: string, signal?: string): Promise<void>;
  pause(name: string): Promise<void>;
  unpause(name: string): Promise<void>;
  /** Names of every container under this root. */
  list(): Promise<string[]>;
  /**
   * Runs a command in the running container's namespaces, on this process's stdio; resolves to its exit code
   * (0 at once when detached).
   */
  exec(name: string, command: string[], opts?: ExecOptions): Promise<number>;
  /** The files of `events` lines (start, die, oom, restart, health_status), oldest first. */
  eventFiles(): Promise<string[]>;
  /** The container's output files, oldest first (the current one last). */
  logFiles(name: string): Promise<string[]>;
  /** The container's output as lines, oldest first, each with the time it was written (see LogLine). */
  logLines(name: string): Promise<LogLine[]>;
  stats(name: string): Promise<ContainerStats>;
  /** `ps` of the container's processes, with these ps options (default "-o pid,user,time,args"). */
  top(name: string, psOptions?: string[]): Promise<string>;
  /** Copies a file or directory out of the container ("from") or into it ("to"), as `docker cp`. */
  copy(name: string, direction: "from" | "to", containerPath: string, hostPath: string): Promise<void>;
  /** Files added (A), changed (C) and deleted (D) in the container's root filesystem, as `docker diff`. */
  diff(name: string): Promise<string[]>;
  /** A new image of the container's image plus its filesystem changes as one layer, as `docker commit`. */
  commit(name: string, ref: string, opts?: { author?: string; message?: string; pause?: boolean }): Promise<ImageInfo>;
}

export interface ContainerStats {
  memoryBytes: number;
  memoryLimit?: number;
  /** CPU time used, nanoseconds. */
  cpuNanos: number;
  pids: number;
  /** Bytes received and sent on the container's interfaces (loopback excluded). */
  netRx: number;
  netTx: number;
  /** Bytes read from and written to block devices by the container's processes. */
  blockRead: number;
  blockWrite: number;
}

export interface ExecOptions {
  tty?: boolean;
  /** KEY=VALUE, added to the container's env. */
  env?: string[];
  /** Working directory inside the container (default: the container's). */
  workdir?: string;
  /** "user", "uid", "user:group", "uid:gid", resolved in the container's /etc/passwd and /etc/group. */
  user?: string;
  /** Start it and return without waiting (Docker's exec -d). */
  detach?: boolean;
}

/**
 * A line of a container's output. The output goes straight from the process to the file, so its time is when
 * the supervisor saw the file grow to hold it: at most one supervisor tick (200 ms) after it was written.
 */
export interface LogLine {
  /** RFC 3339 with milliseconds. */
  time: string;
  text: string;
}
