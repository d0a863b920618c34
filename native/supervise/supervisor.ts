// The supervisor: one process per berth root that watches every container of that root — notices an exit (the
// init's pid gone), records its code and whether the OOM killer did it, restarts it as its restart policy says
// (Docker's doubling back-off from 100 ms), runs health checks and keeps logs within their bound. It holds no
// pipe to and is the parent of no container: it reads files (init.pid, the exit code init writes, cgroup
// counters), so it can die and start again at any time and simply carry on from state.json.
import * as fs from "node:fs";
import type { ContainerState } from "../runtime";
import type { ContainerPaths, Paths } from "../paths";
import { listDir } from "../json-file";
import { runcIdOf } from "../names";
import { ContainerRecords, type ContainerRecord } from "../container/record";
import type { Runc } from "../container/runc";
import { runcRefOf } from "../container/runc-root";
import type { Host } from "../host/exec";
import { exitCode, relaunch } from "./init";
import { killLockPath, lockPath, readState, statePath, stoppedByUser, writeState } from "./state";
import { lockHolder, withLock } from "../lock";
import { oomKills } from "./cgroup";
import { healthDefaults, judge, probe } from "./health";
import { boundLog, stampLog } from "./logs";
import { appendEvent, eventsFile } from "./events";
import { closeProcess, openProcess, stillRuns } from "./alive";

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 60_000;
/** A container that ran this long before exiting starts the back-off over. */
const BACKOFF_RESET_MS = 10_000;

interface Watched {
  /** As the record cache last read it: the same object until container.json is rewritten (update, re-creation). */
  rec: ContainerRecord;
  state: ContainerState;
  backoffMs: number;
  restartAt?: number;
  nextProbeAt?: number;
  probing?: boolean;
  /** The init pid of the last run seen (running or dead), to tell a run that began and ended between two ticks. */
  lastPid?: number;
  /** lastPid's process while it was last seen running (alive.ts): while it runs, the pid file still names it. */
  init?: number;
}

/** Whether the restart policy brings the container back after this exit. */
export function shouldRestart(policy: string | undefined, code: number, restarts: number, stoppedByUser: boolean): boolean {
  if (stoppedByUser || !policy || policy === "no") return false;
  if (policy === "always" || policy === "unless-stopped") return true;
  const max = policy.split(":")[1];
  return code !== 0 && (max === undefined || restarts < Number(max));
}

/** The pid in a pid file; undefined when there is none yet. A failure to read it (EMFILE) throws: it is no exit. */
function readPid(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  const pid = Number(text);
  return pid > 0 ? pid : undefined;
}

export class Supervisor {
  private readonly watched = new Map<string, Watched>();
  /** Each container log's size as last noted in its times file. */
  private readonly logSizes = new Map<string, number>();
  /** Each container's paths, made once: a tick looks at every container, and making them normalizes the root. */
  private readonly containerPaths = new Map<string, ContainerPaths>();
  private readonly paths: Paths;
  private readonly records: ContainerRecords;
  private runcOnce?: Runc;

  constructor(
    paths: Paths,
    /** The host's commands, first needed by a restart: what runs them (node:child_process…) is loaded then. */
    private readonly host: () => Host,
    private readonly logBytes: number,
  ) {
    const known = this.containerPaths;
    this.paths = {
      ...paths,
      container: (name) => known.get(name) ?? known.set(name, paths.container(name)).get(name)!,
    };
    this.records = new ContainerRecords(this.paths);
  }

  private get runc(): Runc {
    return (this.runcOnce ??= new (require("../container/runc") as typeof import("../container/runc")).Runc(this.host()));
  }

  /** How many containers it watches (for the benchmark's per-container figure). */
  get size(): number {
    return this.watched.size;
  }

  /** One look at every container; resolves to how many there are. */
  async tick(): Promise<number> {
    const names = new Set(await listDir(this.paths.containers));
    for (const name of this.watched.keys()) if (!names.has(name)) this.forget(name);
    for (const name of this.logSizes.keys()) if (!names.has(name)) this.logSizes.delete(name);
    for (const name of this.containerPaths.keys()) if (!names.has(name)) this.containerPaths.delete(name);
    this.records.forgetAllBut(names);
    for (const name of names) {
      try {
        await this.check(name);
      } catch (e) {
        console.error(`supervisor: container ${name}: ${(e as Error).message}`);
      }
    }
    boundLog(eventsFile(this.paths.root), this.logBytes);
    return names.size;
  }

  private forget(name: string): void {
    closeProcess(this.watched.get(name)?.init);
    this.watched.delete(name);
  }

  private event(w: Watched, action: string, attrs?: Record<string, string | number>): void {
    appendEvent(this.paths.root, w.rec.spec.name, action, attrs);
  }

  private async check(name: string): Promise<void> {
    const p = this.paths.container(name);
    const last = this.watched.get(name);
    // The init seen running last tick, still the same process: no new run has rewritten the pid file, and nothing
    // the supervisor reads of the record while it runs has changed (an update changes what its exit reads, and a
    // re-creation ends it), so the record is not looked at either.
    const same = last?.init !== undefined && stillRuns(last.init);
    if (last && !same) {
      closeProcess(last.init);
      last.init = undefined;
    }
    const w = same ? last : await this.watch(name);
    if (!w) return;
    // Before the exit is handled: the last words of a container that just died get their time too.
    const logged = stampLog(p.log, this.logSizes.get(name) ?? 0);
    this.logSizes.set(name, logged);
    const pid = same ? w.lastPid : readPid(p.pid);
    const init = same ? w.init : pid !== undefined ? openProcess(pid) : undefined;
    const now = Date.now();
    if (pid !== undefined && init !== undefined) {
      w.init = init;
      if (w.state.status !== "running" || w.state.pid !== pid) {
        // Started by someone else (the runtime's run or start): a fresh run, a fresh restart count.
        await this.started(w, p.dir, pid, w.state.status === "restarting" ? w.state.restartCount : 0);
      }
      w.lastPid = pid;
      this.health(w, p.dir);
      // One look at the log's size per tick: what it grew by since is noted next tick.
      if (boundLog(p.log, this.logBytes, logged)) this.logSizes.set(name, 0);
      return;
    }
    if (pid !== undefined && w.lastPid !== undefined && pid !== w.lastPid && w.state.status !== "running") {
      // A run started by someone else (start, run) that ended between two ticks: its start, then its exit below.
      await this.started(w, p.dir, pid, w.state.status === "restarting" ? w.state.restartCount : 0);
    }
    // Its time taken now: a start just recorded above is not later than the exit that follows it.
    // A kill under way records its event first: its "die" waits for the next tick.
    if (w.state.status === "running" && !lockHolder(killLockPath(p.dir))) await this.exited(w, p.dir, Date.now());
    if (w.state.status === "restarting" && now >= (w.restartAt ?? 0)) await this.restart(w, name);
  }

  /** The watch entry of a container, (re)read when its record was rewritten; undefined until it first ran. */
  private async watch(name: string): Promise<Watched | undefined> {
    const p = this.paths.container(name);
    // One stat of the record per look: the cache's, which parses it again only when it was replaced.
    const rec = await this.records.read(name);
    if (!rec) return undefined;
    let w = this.watched.get(name);
    if (w?.rec === rec) return w;
    if (w && w.rec.createdAt === rec.createdAt) {
      w.rec = rec;
      return w;
    }
    // Not run yet (a container being made): neither file, told by two existence checks each tick until it runs
    // rather than by two reads failing, which cost an exception each.
    if (!fs.existsSync(p.pid) && !fs.existsSync(statePath(p.dir))) return undefined;
    const saved = await readState(p.dir);
    if (!saved && readPid(p.pid) === undefined) return undefined;
    // Never seen by a supervisor: as if it ran under an unknown pid, so that a live one is taken as a start and a
    // dead one as an exit (its code is in the exit file).
    const state: ContainerState = saved ?? { status: "running", pid: -1, restartCount: 0 };
    // A saved exit was that of the run whose pid the file still holds; a later one would have written another. So
    // was one never seen: a run found dead is taken as its exit, and a later run under another pid as a new one.
    const lastPid = saved?.status === "running" ? saved.pid : readPid(p.pid);
    this.forget(name);
    w = { rec, state, backoffMs: FIRST_BACKOFF_MS, lastPid };
    this.watched.set(name, w);
    return w;
  }

  private async started(w: Watched, bundle: string, pid: number, restartCount: number): Promise<void> {
    const h = w.rec.healthcheck && healthDefaults(w.rec.healthcheck);
    w.state = {
      status: "running",
      pid,
      startedAt: new Date().toISOString(),
      restartCount,
      ...(h && { health: { status: "starting", failingStreak: 0, log: [] } }),
    };
    w.lastPid = pid;
    w.nextProbeAt = h && Date.now() + h.interval * 1000;
    await writeState(bundle, w.state);
    this.event(w, restartCount > 0 ? "restart" : "start", { restartCount });
  }

  private async exited(w: Watched, bundle: string, now: number): Promise<void> {
    const code = exitCode(bundle);
    const oomKilled = oomKills(`/${runcIdOf(w.rec)}`) > 0;
    const ran = now - Date.parse(w.state.startedAt ?? "");
    if (ran >= BACKOFF_RESET_MS) w.backoffMs = FIRST_BACKOFF_MS;
    // w.rec is as of this tick (watch() rereads a rewritten record), so a restart policy `update` changed counts.
    const again = shouldRestart(w.rec.spec.restart, code, w.state.restartCount, stoppedByUser(bundle));
    w.state = {
      ...w.state,
      status: again ? "restarting" : "exited",
      pid: undefined,
      exitCode: code,
      oomKilled,
      finishedAt: new Date(now).toISOString(),
    };
    if (oomKilled) this.event(w, "oom");
    this.event(w, "die", { exitCode: code });
    if (again) {
      w.restartAt = now + w.backoffMs;
      w.backoffMs = Math.min(w.backoffMs * 2, MAX_BACKOFF_MS);
    }
    await writeState(bundle, w.state);
  }

  private async restart(w: Watched, name: string): Promise<void> {
    const p = this.paths.container(name);
    await withLock(lockPath(p.dir), async () => {
      // While it waited for the lock, an `up` may have replaced the container: the new one is not this one to restart
      // (its own policy, its own count); the next tick watches it afresh.
      const current = await this.records.read(name);
      if (current && (current.createdAt !== w.rec.createdAt || runcIdOf(current) !== runcIdOf(w.rec))) {
        this.forget(name);
        return;
      }
      // The user may have stopped or removed it while it waited for its back-off.
      if (!current || stoppedByUser(p.dir)) {
        w.state = { ...w.state, status: "exited" };
      } else {
        try {
          await relaunch(this.runc, p.dir, runcRefOf(w.rec), p.log, p.pid);
          await this.started(w, p.dir, readPid(p.pid)!, w.state.restartCount + 1);
          return;
        } catch (e) {
          console.error(`supervisor: restarting ${name} failed: ${(e as Error).message}`);
          w.state = { ...w.state, status: "exited" };
        }
      }
      if (fs.existsSync(p.dir)) await writeState(p.dir, w.state);
      // Held by a stop or removal under way: the next tick tries again, other containers are not kept waiting.
    }, { what: `container ${name}`, timeoutMs: 500 });
  }

  /** Starts a probe when one is due; its result is recorded when it ends (the loop does not wait for it). */
  private health(w: Watched, bundle: string): void {
    if (!w.rec.healthcheck || w.probing || Date.now() < (w.nextProbeAt ?? 0)) return;
    const h = healthDefaults(w.rec.healthcheck);
    const pid = w.state.pid;
    w.probing = true;
    void probe(runcRefOf(w.rec), h)
      .then(async (result) => {
        if (w.state.status !== "running" || w.state.pid !== pid) return;
        const before = w.state.health?.status;
        w.state = { ...w.state, health: judge(w.state, h, result) };
        await writeState(bundle, w.state);
        if (w.state.health!.status !== before) this.event(w, `health_status: ${w.state.health!.status}`);
      })
      .catch((e: Error) => console.error(`supervisor: health check of ${w.rec.spec.name}: ${e.message}`))
      .finally(() => {
        w.probing = false;
        w.nextProbeAt = Date.now() + h.interval * 1000;
      });
  }
}
