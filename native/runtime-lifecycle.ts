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
  /** Every process gets `signal` (default KILL): a name with or without SIG, any case, or a number; one Linux
   * lacks is refused ("Invalid signal: X") before anything happens, as Docker's daemon does. */
  kill(name: string, signal?: string): Promise<void>;
  pause(name: string): Promise<void>;
  unpause(name: string): Promise<void>;
  /** Names of every container under this root. */
  list(): Promise<string[]>;
  /**
   * Runs a command in the running container's namespaces, reading `opts.stdin` and handing its output to the
   * `opts.stdout`/`opts.stderr` callbacks; resolves to its exit code (0 at once when detached).
   */
  exec(name: string, command: string[], opts?: ExecOptions): Promise<number>;
  /**
   * Container events (create, start, stop, die, oom, restart, health_status…), as Docker's API streams them: those
   * since `since`, then new ones as they happen until `until` (none past ones without `since`; the stream ends at
   * once when `until` is past). The caller's `return()` ends it.
   */
  events(opts?: EventOptions): AsyncIterable<ContainerEvent>;
  /**
   * The container's output as lines, oldest first, each with the time it was written (see LogLine); with
   * `follow`, then the lines it writes from now on, until `until` or the caller's `return()`.
   */
  logs(name: string, opts?: LogOptions): AsyncIterable<LogLine>;
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
  /** The container's memory limit, or the host's memory when it has none (as Docker reports it). */
  memoryLimit: number;
  /** CPUs online on the container's host (what CPU % is capped at, ×100). */
  onlineCpus: number;
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
  /**
   * A terminal: the command's stdin, stdout and stderr are one pseudo-terminal that the runtime makes on its host
   * (its output comes through `stdout` only, with the terminal's line endings).
   */
  tty?: boolean;
  /**
   * The terminal's size when `tty` (default 80x24). runc applies it (and the terminal's line endings) just after
   * the command has started: what the command does in its first few milliseconds may see a 0x0 terminal.
   */
  size?: { rows: number; cols: number };
  /** With `tty`: the terminal's new sizes as the caller's window is resized, passed on (SIGWINCH) as they come. */
  resize?: AsyncIterable<{ rows: number; cols: number }>;
  /** KEY=VALUE, added to the container's env. */
  env?: string[];
  /** Working directory inside the container (default: the container's). */
  workdir?: string;
  /** "user", "uid", "user:group", "uid:gid", resolved in the container's /etc/passwd and /etc/group. */
  user?: string;
  /** Start it and return without waiting (Docker's exec -d); stdin and the callbacks are then left unused. */
  detach?: boolean;
  /** What the command reads; without it the command's stdin is empty (at its end at once). */
  stdin?: AsyncIterable<Uint8Array>;
  /**
   * The command's output, chunk by chunk, as it comes; without a callback it is dropped. A promise a callback
   * returns holds the output back until it settles (flow control: the remote runtime's agent waits so while its
   * connection is full); any other return value is ignored.
   */
  stdout?: (chunk: Uint8Array) => void;
  stderr?: (chunk: Uint8Array) => void;
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

/** Which lines `logs` yields, as `docker logs` takes them; times are epoch milliseconds. */
export interface LogOptions {
  /** Lines written at or after this time. */
  since?: number;
  /** Lines written at or before this time; with `follow`, the stream ends then. */
  until?: number;
  /** Only the last N of the lines written so far (after since/until); followed lines are all yielded. */
  tail?: number;
  /** Keep yielding what the container writes, until `until` or the caller's `return()`. */
  follow?: boolean;
}

/** One container event, Docker's `docker events` fields. */
export interface ContainerEvent {
  /** RFC 3339 with milliseconds. */
  time: string;
  type: "container";
  /** "create", "die", "health_status: healthy"… */
  action: string;
  /** The container's name. */
  actor: string;
  /** exitCode, signal, image, name… */
  attributes: Record<string, string>;
}

/** Which events `events` yields; times are epoch milliseconds. */
export interface EventOptions {
  since?: number;
  until?: number;
  /**
   * Docker's `--filter` keys, each a list of accepted values (any of them): container (name), event (an action,
   * or its start before ":" as in "health_status"), type ("container"), image.
   */
  filters?: { container?: string[]; event?: string[]; type?: string[]; image?: string[] };
}
