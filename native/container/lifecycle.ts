// The day-2 verbs on an existing container: stop, start, kill, pause, unpause, and limit / restart policy
// updates under the running process (`runc update`). Each holds the container's cross-process lock, so the
// supervisor never restarts a container half-way through one of them.
import * as fs from "node:fs";
import * as os from "node:os";
import type { ContainerEvent, ContainerLifecycle, ContainerRuntimeSpec, ContainerStats, EventOptions, ExecOptions, LogLine, LogOptions } from "../runtime";
import type { Paths } from "../paths";
import { runInTerminal, runStreams, type Host } from "../host/exec";
import { processExited } from "../host/probe";
import { checkName } from "../names";
import { readJson, writeJson } from "../json-file";
import { killLockPath, lockPath, markStopped } from "../supervise/state";
import { withLock } from "../lock";
import { relaunch } from "../supervise/init";
import type { ContainerRecord, ContainerRecords } from "./record";
import type { Runc, RuncState } from "./runc";
import { runcArgs, runcRefOf, type RuncRef } from "./runc-root";
import { ociResources } from "./limits";
import type { FullOciSpec } from "./options";
import { cgroupStats } from "../supervise/cgroup";
import { rootfsChanges } from "./changes";
import { copyFiles } from "./copy";
import { appendEvent, readEvents } from "../supervise/events";
import { readLogs } from "../supervise/logs";
import { resolveUser } from "./user";
import { parseSignal, signalNumber } from "./signals";

export const DEFAULT_GRACE_SECONDS = 10;
/** How long a SIGKILLed init may take to die before `runc delete` is left to fail on it. */
const KILL_WAIT_MS = 5000;

/** Polls every 1, 2, 4… up to 20 ms: a killed init is usually gone within the first few, a stop is that quick. */
async function waitForExit(pid: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (let pause = 1; !processExited(pid) && Date.now() < deadline; pause = Math.min(pause * 2, 20)) {
    await new Promise((r) => setTimeout(r, pause));
  }
}

/**
 * The stop signal, then SIGKILL once the grace period is over; returns when init is gone. `known` is a `runc state`
 * the caller just read, so it is not asked for twice.
 */
export async function stopInit(
  runc: Runc,
  c: RuncRef,
  signal: string,
  graceSeconds: number,
  known?: RuncState,
): Promise<void> {
  const state = known ?? (await runc.state(c));
  if (!state || state.status === "stopped" || processExited(state.pid)) return;
  if (state.status === "paused") await runc.resume(c);
  if (state.status !== "created" && graceSeconds > 0) {
    await runc.kill(c, signal);
    await waitForExit(state.pid, graceSeconds * 1000);
  }
  if (!processExited(state.pid)) {
    if (!killNamespaceInit(c.id, state.pid)) await runc.kill(c, "KILL");
    await waitForExit(state.pid, KILL_WAIT_MS);
  }
}

/**
 * SIGKILL to init when it is the init of a PID namespace of its own: the kernel then kills every process in it,
 * as `runc kill --all` would, without a runc process (a destroy of 100 containers ran 100 of them). Only while pid
 * is still this container's init (its cgroup says so); false when runc has to do it.
 */
function killNamespaceInit(id: string, pid: number): boolean {
  try {
    const nspid = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1].trim().split(/\s+/);
    if (nspid === undefined || nspid.length < 2 || nspid[nspid.length - 1] !== "1") return false;
    if (!fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").some((l) => l.endsWith(`:/${id}`))) return false;
    process.kill(pid, "SIGKILL");
    return true;
  } catch {
    return false;
  }
}

/** Bytes through the container's interfaces, from its network namespace's /proc/net/dev (loopback left out). */
function netCounters(pid: number | undefined): { netRx: number; netTx: number } {
  let netRx = 0;
  let netTx = 0;
  let text = "";
  try {
    if (pid) text = fs.readFileSync(`/proc/${pid}/net/dev`, "utf8");
  } catch {
    // exited meanwhile: no counters
  }
  for (const line of text.split("\n").slice(2)) {
    const [iface, counters] = line.split(":");
    if (!counters || iface.trim() === "lo") continue;
    const f = counters.trim().split(/\s+/).map(Number);
    netRx += f[0];
    netTx += f[8];
  }
  return { netRx, netTx };
}

/** A stream that never yields (its end comes from the reader's return()). */
async function* silence(): AsyncGenerator<Uint8Array> {
  await new Promise(() => {});
}

/** What runc is sent for a stop signal: its number (runc knows no RTMIN+n by name); a name the list lacks as given. */
export const stopSignalOf = (s = "TERM"): string => String(signalNumber(s) ?? s.toUpperCase().replace(/^SIG/, ""));

/** What stopping a container sends: the signal its record holds (older records: the container's own), as runc takes it. */
export const recordedStopSignal = (rec: ContainerRecord | undefined): string => stopSignalOf(rec?.stopSignal ?? rec?.spec.stopSignal);

/** Every verb but commit, which also needs the image store (RuncContainers has it). */
export class ContainerVerbs implements Omit<ContainerLifecycle, "commit"> {
  constructor(
    private readonly runc: Runc,
    private readonly host: Host,
    private readonly paths: Paths,
    private readonly records: ContainerRecords,
    /** Called once a container runs: makes sure something supervises it. */
    private readonly supervise: () => Promise<void>,
    /** The image layer directories a container's rootfs is made of. */
    private readonly layerDirs: (layers: string[]) => string[],
  ) {}

  async stop(name: string, opts: { graceSeconds?: number } = {}): Promise<void> {
    const rec = await this.record(name);
    await this.locked(name, async (bundle) => {
      await markStopped(bundle, true);
      const grace = opts.graceSeconds ?? rec.spec.stopTimeout ?? DEFAULT_GRACE_SECONDS;
      await stopInit(this.runc, runcRefOf(rec), recordedStopSignal(rec), grace);
    });
    appendEvent(this.paths.root, name, "stop");
  }

  async start(name: string): Promise<void> {
    const ref = runcRefOf(await this.record(name));
    await this.locked(name, async (bundle) => {
      await markStopped(bundle, false);
      const state = await this.runc.state(ref);
      if (state && (state.status === "running" || state.status === "paused") && !processExited(state.pid)) return;
      const p = this.paths.container(name);
      await relaunch(this.runc, bundle, ref, p.log, p.pid);
    });
    await this.supervise();
  }

  async kill(name: string, signal = "KILL"): Promise<void> {
    const number = parseSignal(signal); // refused before any lock or runc, as Docker's daemon does
    const ref = await this.running(name);
    // Recorded once sent (a kill that fails records none), and before the "die" it causes (state.ts killLockPath).
    await withLock(killLockPath(this.paths.container(name).dir), async () => {
      await this.runc.kill(ref, String(number));
      appendEvent(this.paths.root, name, "kill", { signal: String(number) }); // Docker's "signal=9", whatever the spelling
    }, { what: `the kill of container ${name}` });
  }

  // Pausing and resuming take the container's lock: a copy (under it) chooses its way in by whether the container
  // runs, and must not have it resumed under a view made for a frozen one.
  async pause(name: string): Promise<void> {
    const ref = runcRefOf(await this.record(name));
    await this.locked(name, () => this.runc.pause(ref));
    appendEvent(this.paths.root, name, "pause");
  }

  async unpause(name: string): Promise<void> {
    const ref = runcRefOf(await this.record(name));
    await this.locked(name, () => this.runc.resume(ref));
    appendEvent(this.paths.root, name, "unpause");
  }

  async update(name: string, change: Pick<ContainerRuntimeSpec, "limits" | "restart" | "stopTimeout">): Promise<void> {
    const rec = await this.record(name);
    await this.locked(name, async () => {
      const p = this.paths.container(name);
      const resources = ociResources(change.limits);
      const ref = runcRefOf(rec);
      const state = await this.runc.state(ref);
      if (state && !processExited(state.pid)) {
        await this.host.run("runc", runcArgs(ref, ["update", "--resources", "-", ref.id]), { input: JSON.stringify(resources) });
      }
      // The next start (by the user or the restart policy) is made from these files.
      const config = (await readJson<FullOciSpec>(p.config))!;
      config.linux.resources = { ...config.linux.resources, ...resources };
      await writeJson(p.config, config);
      await this.records.write({ ...rec, spec: { ...rec.spec, ...change } });
    });
  }

  async list(): Promise<string[]> {
    return (await this.records.list()).map((r) => r.spec.name);
  }

  async exec(name: string, command: string[], opts: ExecOptions = {}): Promise<number> {
    const ref = await this.running(name);
    const args = runcArgs(ref, ["exec"]);
    if (opts.detach) args.push("--detach");
    for (const e of opts.env ?? []) args.push("--env", e);
    if (opts.workdir) args.push("--cwd", opts.workdir);
    if (opts.user) {
      const { uid, gid } = await resolveUser(opts.user, this.paths.container(name).rootfs);
      args.push("--user", `${uid}:${gid}`);
    }
    const argv = ["runc", ...args, ...(opts.tty && !opts.detach ? ["--tty"] : []), ref.id, ...command];
    // Detached, the command keeps no stream of ours: runc returns once it has started.
    if (opts.detach) return runStreams(argv, {});
    if (!opts.tty) return runStreams(argv, opts);
    // A terminal with no input stays open (no end of input, which the terminal would pass on as ^D).
    return runInTerminal(argv, opts.size, opts.resize, { ...opts, stdin: opts.stdin ?? silence() });
  }

  events(opts?: EventOptions): AsyncIterableIterator<ContainerEvent> {
    return readEvents(this.paths.root, opts);
  }

  logs(name: string, opts?: LogOptions): AsyncIterableIterator<LogLine> {
    // The container is looked up when the stream is first read: an unknown name fails that read. Following ends
    // when the process running now exits (a restart included), as Docker's does.
    return readLogs(this.paths.container(name).log, opts, async () => {
      const state = await this.runc.state(runcRefOf(await this.record(name)));
      const pid = state && state.status !== "stopped" && !processExited(state.pid) ? state.pid : undefined;
      return () => pid !== undefined && !processExited(pid);
    });
  }

  async stats(name: string): Promise<ContainerStats> {
    const ref = await this.running(name);
    const state = await this.runc.state(ref);
    const counted = cgroupStats(`/${ref.id}`);
    const host = { memoryLimit: counted.memoryLimit ?? os.totalmem(), onlineCpus: os.cpus().length };
    return { ...counted, ...host, ...netCounters(state?.pid) };
  }

  async top(name: string, psOptions: string[] = ["-o", "pid,user,time,args"]): Promise<string> {
    const ref = await this.running(name);
    return this.host.run("runc", runcArgs(ref, ["ps", ref.id, ...psOptions]));
  }

  async copy(name: string, direction: "from" | "to", containerPath: string, hostPath: string): Promise<void> {
    const rec = await this.record(name);
    // Under the container's lock, so that a stopped container does not start (and race the copy) meanwhile.
    await this.locked(name, async (bundle) => {
      const ref = runcRefOf(rec);
      const state = await this.runc.state(ref);
      // A paused container cannot run the copy (runc exec would freeze with it); nothing in it moves meanwhile.
      const running = state?.status === "running" && !processExited(state.pid);
      const { rootfs } = this.paths.container(name);
      await copyFiles(this.host, { name, rec, bundle, rootfs, runc: running ? ref : undefined, direction, containerPath, hostPath });
    });
  }

  async diff(name: string): Promise<string[]> {
    const rec = await this.record(name);
    return rootfsChanges(this.paths.container(name).upper, this.layerDirs(rec.layers));
  }

  /** Resolves to the runc container of the container, which must be running. */
  private async running(name: string): Promise<RuncRef> {
    const ref = runcRefOf(await this.record(name));
    const state = await this.runc.state(ref);
    if (state?.status !== "running" || processExited(state.pid)) {
      throw new Error(`Container ${name} is not running: start it first`);
    }
    return ref;
  }

  private async record(name: string): Promise<ContainerRecord> {
    checkName("container", name);
    const rec = await this.records.read(name);
    if (!rec) throw new Error(`No such container: ${name}`);
    return rec;
  }

  private locked(name: string, fn: (bundle: string) => Promise<void>): Promise<void> {
    const bundle = this.paths.container(name).dir;
    if (!fs.existsSync(bundle)) throw new Error(`No such container: ${name}`);
    return withLock(lockPath(bundle), () => fn(bundle), { what: `container ${name}` });
  }
}
