// runc driven through the OCI runtime verbs (run, state, kill, delete) and runc's pause and resume, each in the
// state root its container was made in (runc-root.ts): `runc --root DIR list` shows them.
import type { Host } from "../host/exec";
import { HostCommandError, describeCommand } from "../host/exec";
import { runcArgs, type RuncRef } from "./runc-root";

export type RuncStatus = "creating" | "created" | "running" | "paused" | "stopped";

export interface RuncState {
  id: string;
  pid: number;
  status: RuncStatus;
  bundle: string;
}

const isGone = (stderr: string): boolean => /container does not exist/.test(stderr);

export class Runc {
  constructor(private readonly host: Host) {}

  /**
   * Creates and starts the container in one call (`runc run --detach`: one process, where create + start are
   * two). Its stdio goes to logFile; runc returns once init runs, in its own session, holding no pipe to us. Its
   * pid is written to pidFile.
   */
  async run(c: RuncRef, bundle: string, logFile: string, pidFile: string): Promise<void> {
    await this.host.run("runc", runcArgs(c, ["run", "--detach", "--bundle", bundle, "--pid-file", pidFile, c.id]), { logFile });
  }

  /** undefined when runc has no such container. */
  async state(c: RuncRef): Promise<RuncState | undefined> {
    const args = runcArgs(c, ["state", c.id]);
    const r = await this.host.tryRun("runc", args);
    if (r.code === 0) return JSON.parse(r.stdout) as RuncState;
    if (isGone(r.stderr)) return undefined;
    throw new HostCommandError(describeCommand("runc", args), r);
  }

  /** Signals every process of the container; one that stopped or vanished meanwhile is not an error. */
  async kill(c: RuncRef, signal: string): Promise<void> {
    const args = runcArgs(c, ["kill", "--all", c.id, signal]);
    const r = await this.host.tryRun("runc", args);
    if (r.code !== 0 && !isGone(r.stderr) && !/not running/.test(r.stderr)) {
      throw new HostCommandError(describeCommand("runc", args), r);
    }
  }

  /** Freezes every process of the container (the freezer cgroup). */
  async pause(c: RuncRef): Promise<void> {
    await this.host.run("runc", runcArgs(c, ["pause", c.id]));
  }

  async resume(c: RuncRef): Promise<void> {
    await this.host.run("runc", runcArgs(c, ["resume", c.id]));
  }

  /**
   * Runs cmd with the container paused, pause and resume included, as one host process in a session of its own:
   * a berth killed meanwhile (or a Ctrl-C to its process group) would otherwise leave the container frozen, the
   * resume being its to send.
   */
  async pausedWhile(c: RuncRef, cmd: string, args: string[]): Promise<void> {
    const script = 'r=$1 id=$2; shift 2; runc ${r:+--root "$r"} pause "$id" || exit; "$@"; rc=$?; ' +
      'runc ${r:+--root "$r"} resume "$id" || exit; exit $rc';
    const [, root = ""] = runcArgs(c, []); // none, or --root DIR
    await this.host.run("setsid", ["-w", "sh", "-c", script, "berth-paused", root, c.id, cmd, ...args]);
  }

  /**
   * Deletes a container. Callers stop it first: runc deletes a stopped one at once, while --force on a live one
   * SIGKILLs it and then polls at 100 ms. An already deleted container is fine.
   */
  async delete(c: RuncRef): Promise<void> {
    const args = runcArgs(c, ["delete", "--force", c.id]);
    const r = await this.host.tryRun("runc", args);
    if (r.code !== 0 && !isGone(r.stderr)) throw new HostCommandError(describeCommand("runc", args), r);
  }
}
