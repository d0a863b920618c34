// A long-lived /bin/sh that starts berth's host commands for it. Node forks a child from its main thread, and a
// fork copies the page tables of the whole heap: at berth's size under a 100-container `up` that blocked the
// event loop 10+ ms per spawn, five spawns per container. The shell is started once, while the heap is small, and
// its own forks cost a fraction of a millisecond.
//
// Protocol: for command ID berth writes DIR/ID.sh (the command, its redirections to DIR/ID.in|out|err, and
// `echo "ID $?"` to fd 3) and sends "ID\n"; the shell sources the file in a double-forked subshell, so commands run
// concurrently and it never accumulates children, and each reports on fd 3 (its stdout, a pipe) in one write.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CommandResult } from "./exec";
import { stagingPath, sweepShared } from "../staging";

// Its directory goes with it: its input ends when berth's process does, however it ended (a signal whose default
// is to end the process never runs berth's exit handler, and vitest ends its workers so), and a signal sent to the
// shell too (Ctrl-C reaches the whole process group) removes it before the shell ends.
const SHELL = `exec 3>&1
trap 'rm -rf "$0"; exit 130' INT TERM HUP
while IFS= read -r id; do . "$0/$id.sh"; done
rm -rf "$0"`;

/** Where shells' directories are made: on tmpfs where there is one. */
const PARENT = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();

/** Single-quoted for sh: nothing inside is expanded. */
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface SpawnRequest {
  cmd: string;
  args: readonly string[];
  input?: string;
  /** Appended to (stdout and stderr), the command in its own session; see RunOptions.logFile. */
  logFile?: string;
}

export class Spawner {
  private child?: ChildProcess;
  private dir?: string;
  private next = 0;
  private readonly pending = new Map<number, (code: number) => void>();

  /**
   * Whether the request can go through the shell: a line break in an argument would end its script line, and sh
   * drops NUL bytes from a script where spawn refuses them (an argument checked as "a\0b" would run as "ab").
   */
  static fits(req: SpawnRequest): boolean {
    return ![req.cmd, ...req.args, req.logFile ?? ""].some((a) => /[\n\0]/.test(a));
  }

  async run(req: SpawnRequest): Promise<CommandResult> {
    const { dir, child, sent } = this.started();
    const id = this.next++;
    const file = (ext: string) => path.join(dir, `${id}.${ext}`);
    const redirect = [
      req.input === undefined ? "</dev/null" : `<${quote(file("in"))}`,
      ...(req.logFile ? [`>>${quote(req.logFile)}`, "2>&1"] : [`>${quote(file("out"))}`, `2>${quote(file("err"))}`]),
    ];
    // setsid: what a detached command leaves behind (a container's init) is in no session of ours.
    const command = [...(req.logFile ? ["setsid"] : []), req.cmd, ...req.args].map(quote).join(" ");
    if (req.input !== undefined) fs.writeFileSync(file("in"), req.input, { mode: 0o600 });
    fs.writeFileSync(file("sh"), `( ( ${command} ${redirect.join(" ")} 3>&-; echo "${id} $?" >&3 ) & )\n`, { mode: 0o600 });
    const done = new Promise<number>((resolve) => this.pending.set(id, resolve));
    sent.add(id);
    this.ref(true);
    child.stdin!.write(`${id}\n`);
    const code = await done;
    const take = (ext: string) => {
      try {
        return fs.readFileSync(file(ext), "utf8");
      } catch {
        return "";
      } finally {
        fs.rmSync(file(ext), { force: true });
      }
    };
    const [stdout, stderr] = [take("out"), take("err")];
    for (const ext of ["in", "sh"]) fs.rmSync(file(ext), { force: true });
    // The shell's own message ("DIR: 1: DIR/ID.sh: CMD: not found"), not a command's child missing ("sh: 1: x: not found").
    if (code === 127 && stderr.includes(`${file("sh")}: `) && /not found/.test(stderr)) {
      // As spawn reports a missing command, so callers see the same error either way.
      throw Object.assign(new Error(`spawn ${req.cmd} ENOENT`), { code: "ENOENT", errno: -2, syscall: `spawn ${req.cmd}`, path: req.cmd });
    }
    return { code, stdout, stderr };
  }

  /** Commands sent to the shell running now that have not reported yet. */
  private sent = new Set<number>();

  private started(): { dir: string; child: ChildProcess; sent: Set<number> } {
    if (this.dir && !fs.existsSync(this.dir)) {
      // Removed under us (by hand, or by a berth that cannot see this process): start afresh. The old shell ends.
      this.child?.stdin!.end();
      this.child = this.dir = undefined;
    }
    if (this.child && this.dir) return { dir: this.dir, child: this.child, sent: this.sent };
    if (!this.dir) {
      try {
        // What berths killed with their shells left (an iptables-restore script, a command's output), in memory.
        sweepShared(PARENT, "berth-spawn");
      } catch {
        // Leftovers cost memory, not correctness: the command still runs.
      }
    }
    // Named after its owner (native/staging.ts); private (0700): inputs and outputs of root's commands.
    const dir = this.dir ?? stagingPath(PARENT, "berth-spawn");
    if (!this.dir) {
      fs.mkdirSync(dir, { mode: 0o700 });
      // At once on a normal exit; the shell would, a moment later.
      process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    }
    const child = spawn("/bin/sh", ["-c", SHELL, dir], { stdio: ["pipe", "pipe", "inherit"] });
    const sent = new Set<number>();
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const [id, code] = line.split(" ").map(Number);
        const resolve = this.pending.get(id);
        this.pending.delete(id);
        sent.delete(id);
        if (this.pending.size === 0) this.ref(false);
        resolve?.(code);
      }
    });
    // The shell died (killed from outside): the next call starts another. What it started still reports through the
    // pipe, which their subshells hold open until they have; a command the shell never started failed.
    const gone = () => {
      if (this.child === child) this.child = undefined;
    };
    const unreported = () => {
      for (const id of sent) {
        this.pending.get(id)?.(128);
        this.pending.delete(id);
      }
      sent.clear();
      if (this.pending.size === 0) this.ref(false);
    };
    child.on("exit", gone);
    child.stdout!.on("close", unreported);
    child.on("error", () => (gone(), unreported()));
    child.stdin!.on("error", () => {});
    this.child = child;
    this.dir = dir;
    this.sent = sent;
    this.ref(this.pending.size > 0);
    return { dir, child, sent };
  }

  /** The shell keeps the process alive only while a command is under way. */
  private ref(on: boolean): void {
    const c = this.child;
    if (!c) return;
    const streams = [c.stdout, c.stdin] as unknown as { ref(): void; unref(): void }[];
    if (on) {
      c.ref();
      for (const s of streams) s.ref();
    } else {
      c.unref();
      for (const s of streams) s.unref();
    }
  }
}
