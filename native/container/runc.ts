// runc driven through the OCI runtime verbs (run, state, kill, delete) and runc's pause and resume.
// runc's default root is used, so `runc list` shows berth's containers.
import type { Host } from "../host/exec";
import { HostCommandError, describeCommand } from "../host/exec";

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
  async run(id: string, bundle: string, logFile: string, pidFile: string): Promise<void> {
    await this.host.run("runc", ["run", "--detach", "--bundle", bundle, "--pid-file", pidFile, id], { logFile });
  }

  /** undefined when runc has no such container. */
  async state(id: string): Promise<RuncState | undefined> {
    const args = ["state", id];
    const r = await this.host.tryRun("runc", args);
    if (r.code === 0) return JSON.parse(r.stdout) as RuncState;
    if (isGone(r.stderr)) return undefined;
    throw new HostCommandError(describeCommand("runc", args), r);
  }

  /** Signals every process of the container; one that stopped or vanished meanwhile is not an error. */
  async kill(id: string, signal: string): Promise<void> {
    const args = ["kill", "--all", id, signal];
    const r = await this.host.tryRun("runc", args);
    if (r.code !== 0 && !isGone(r.stderr) && !/not running/.test(r.stderr)) {
      throw new HostCommandError(describeCommand("runc", args), r);
    }
  }

  /** Freezes every process of the container (the freezer cgroup). */
  async pause(id: string): Promise<void> {
    await this.host.run("runc", ["pause", id]);
  }

  async resume(id: string): Promise<void> {
    await this.host.run("runc", ["resume", id]);
  }

  /**
   * Runs cmd with the container paused, pause and resume included, as one host process in a session of its own:
   * a berth killed meanwhile (or a Ctrl-C to its process group) would otherwise leave the container frozen, the
   * resume being its to send.
   */
  async pausedWhile(id: string, cmd: string, args: string[]): Promise<void> {
    const script = 'id=$1; shift; runc pause "$id" || exit; "$@"; rc=$?; runc resume "$id" || exit; exit $rc';
    await this.host.run("setsid", ["-w", "sh", "-c", script, "berth-paused", id, cmd, ...args]);
  }

  /**
   * Deletes a container. Callers stop it first: runc deletes a stopped one at once, while --force on a live one
   * SIGKILLs it and then polls at 100 ms. An already deleted container is fine.
   */
  async delete(id: string): Promise<void> {
    const args = ["delete", "--force", id];
    const r = await this.host.tryRun("runc", args);
    if (r.code !== 0 && !isGone(r.stderr)) throw new HostCommandError(describeCommand("runc", args), r);
  }
}
