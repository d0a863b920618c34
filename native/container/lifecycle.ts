// The day-2 verbs on an existing container: stop, start, kill, pause, unpause, and limit / restart policy
// updates under the running process (`runc update`). Each holds the container's cross-process lock, so the
// supervisor never restarts a container half-way through one of them.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import type { ContainerLifecycle, ContainerRuntimeSpec, ContainerStats, ExecOptions, LogLine } from "../runtime";
import type { Paths } from "../paths";
import type { Host } from "../host/exec";
import { processExited } from "../host/probe";
import { checkName, runcId } from "../names";
import { readJson, writeJson } from "../json-file";
import { lockPath, markStopped } from "../supervise/state";
import { withLock } from "../lock";
import { resetExit } from "../supervise/init";
import type { ContainerRecord, ContainerRecords } from "./record";
import type { Runc, RuncState } from "./runc";
import { ociResources } from "./limits";
import type { FullOciSpec } from "./options";
import { cgroupStats } from "../supervise/cgroup";
import { rootfsChanges } from "./changes";
import { copyFiles } from "./copy";
import { appendEvent, eventsFile } from "../supervise/events";
import { readLogLines } from "../supervise/logs";
import { resolveUser } from "./user";

export const DEFAULT_GRACE_SECONDS = 10;
/** How long a SIGKILLed init may take to die before `runc delete` is left to fail on it. */
const KILL_WAIT_MS = 5000;

async function waitForExit(pid: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!processExited(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/**
 * The stop signal, then SIGKILL once the grace period is over; returns when init is gone. `known` is a `runc state`
 * the caller just read, so it is not asked for twice.
 */
export async function stopInit(
  runc: Runc,
  id: string,
  signal: string,
  graceSeconds: number,
  known?: RuncState,
): Promise<void> {
  const state = known ?? (await runc.state(id));
  if (!state || state.status === "stopped" || processExited(state.pid)) return;
  if (state.status === "paused") await runc.resume(id);
  if (state.status !== "created" && graceSeconds > 0) {
    await runc.kill(id, signal);
    await waitForExit(state.pid, graceSeconds * 1000);
  }
  if (!processExited(state.pid)) {
    if (!killNamespaceInit(id, state.pid)) await runc.kill(id, "KILL");
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

/** Starts a stopped container again from its bundle (same rootfs, network namespace and address). */
export async function relaunch(runc: Runc, bundle: string, id: string, log: string, pidFile: string): Promise<void> {
  await runc.delete(id);
  await resetExit(bundle);
  await runc.run(id, bundle, log, pidFile);
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

export const signalName = (s: string): string => s.toUpperCase().replace(/^SIG/, "");

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
      await stopInit(this.runc, runcId(name), signalName(rec.spec.stopSignal ?? "TERM"), grace);
    });
    appendEvent(this.paths.root, name, "stop");
  }

  async start(name: string): Promise<void> {
    await this.record(name);
    await this.locked(name, async (bundle) => {
      await markStopped(bundle, false);
      const state = await this.runc.state(runcId(name));
      if (state && (state.status === "running" || state.status === "paused") && !processExited(state.pid)) return;
      const p = this.paths.container(name);
      await relaunch(this.runc, bundle, runcId(name), p.log, p.pid);
    });
    await this.supervise();
  }

  async kill(name: string, signal = "KILL"): Promise<void> {
    await this.running(name);
    await this.runc.kill(runcId(name), signalName(signal));
    appendEvent(this.paths.root, name, "kill", { signal: signalName(signal) });
  }

  // Pausing and resuming take the container's lock: a copy (under it) chooses its way in by whether the container
  // runs, and must not have it resumed under a view made for a frozen one.
  async pause(name: string): Promise<void> {
    await this.record(name);
    await this.locked(name, () => this.runc.pause(runcId(name)));
    appendEvent(this.paths.root, name, "pause");
  }

  async unpause(name: string): Promise<void> {
    await this.record(name);
    await this.locked(name, () => this.runc.resume(runcId(name)));
    appendEvent(this.paths.root, name, "unpause");
  }

  async update(name: string, change: Pick<ContainerRuntimeSpec, "limits" | "restart" | "stopTimeout">): Promise<void> {
    const rec = await this.record(name);
    await this.locked(name, async () => {
      const p = this.paths.container(name);
      const resources = ociResources(change.limits);
      const state = await this.runc.state(runcId(name));
      if (state && !processExited(state.pid)) {
        await this.host.run("runc", ["update", "--resources", "-", runcId(name)], { input: JSON.stringify(resources) });
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
    await this.running(name);
    const args = ["exec"];
    if (opts.tty) args.push("--tty");
    if (opts.detach) args.push("--detach");
    for (const e of opts.env ?? []) args.push("--env", e.includes("=") ? e : `${e}=${process.env[e] ?? ""}`);
    if (opts.workdir) args.push("--cwd", opts.workdir);
    if (opts.user) {
      const { uid, gid } = await resolveUser(opts.user, this.paths.container(name).rootfs);
      args.push("--user", `${uid}:${gid}`);
    }
    const child = spawn("runc", [...args, runcId(name), ...command], { stdio: opts.detach ? "ignore" : "inherit" });
    return new Promise((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  }

  async eventFiles(): Promise<string[]> {
    const file = eventsFile(this.paths.root);
    if (!fs.existsSync(file)) fs.writeFileSync(file, "");
    return [`${file}.1`, file].filter((f) => fs.existsSync(f));
  }

  async logFiles(name: string): Promise<string[]> {
    await this.record(name);
    const log = this.paths.container(name).log;
    return [`${log}.1`, log].filter((f) => fs.existsSync(f));
  }

  async logLines(name: string): Promise<LogLine[]> {
    return (await this.logFiles(name)).flatMap(readLogLines);
  }

  async stats(name: string): Promise<ContainerStats> {
    await this.running(name);
    const state = await this.runc.state(runcId(name));
    return { ...cgroupStats(`/${runcId(name)}`), ...netCounters(state?.pid) };
  }

  async top(name: string, psOptions: string[] = ["-o", "pid,user,time,args"]): Promise<string> {
    await this.running(name);
    return this.host.run("runc", ["ps", runcId(name), ...psOptions]);
  }

  async copy(name: string, direction: "from" | "to", containerPath: string, hostPath: string): Promise<void> {
    const rec = await this.record(name);
    // Under the container's lock, so that a stopped container does not start (and race the copy) meanwhile.
    await this.locked(name, async (bundle) => {
      const state = await this.runc.state(runcId(name));
      // A paused container cannot run the copy (runc exec would freeze with it); nothing in it moves meanwhile.
      const running = state?.status === "running" && !processExited(state.pid);
      const { rootfs } = this.paths.container(name);
      await copyFiles(this.host, { name, rec, bundle, rootfs, runcId: running ? runcId(name) : undefined, direction, containerPath, hostPath });
    });
  }

  async diff(name: string): Promise<string[]> {
    const rec = await this.record(name);
    return rootfsChanges(this.paths.container(name).upper, this.layerDirs(rec.layers));
  }

  private async running(name: string): Promise<void> {
    await this.record(name);
    const state = await this.runc.state(runcId(name));
    if (state?.status !== "running" || processExited(state.pid)) {
      throw new Error(`Container ${name} is not running: start it first`);
    }
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
