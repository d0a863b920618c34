// A long-lived /bin/sh that starts berth's host commands for it. Node forks a child from its main thread, and a
// fork copies the page tables of the whole heap: at berth's size under a 100-container `up` that blocked the
// event loop 10+ ms per spawn, five spawns per container. The shell is started once, while the heap is small, and
// its own forks cost a fraction of a millisecond.
//
// Protocol: the shell reads its script from its stdin (`sh -s DIR`), and for command ID berth sends the line
// "if [ -d DIR ]; then ( COMMAND REDIRECTIONS 3>&-; REPORT ) & jobs >/dev/null; else echo 'ID gone'; fi": its
// arguments single-quoted, its stdin from DIR/ID.in when it has input, stdout and stderr to DIR/ID.out|err. The
// shell runs the command in a background subshell, so commands run concurrently; `jobs` reaps those that ended
// (a shell that never waits would keep every one as a zombie; a double fork would cost a process more), and each
// reports "ID CODE FLAGS" on fd 3 (its stdout, a pipe) in one write, FLAGS saying which outputs are non-empty: so
// a command costs berth's main thread no file but its input and outputs, and no read of an empty one. The lines
// are the script itself, not input to a `read` loop: `read` takes its input a byte per system call (it must not
// read past the line), ~400 calls per command, where the shell reads its script in blocks.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CommandResult } from "./exec";
import { stagingPath, sweepShared } from "../staging";

// Its directory goes with it: its input ends when berth's process does, however it ended (a signal whose default
// is to end the process never runs berth's exit handler, and vitest ends its workers so), and a signal sent to the
// shell itself removes it before the shell ends. A directory removed under the shell (see started()) makes no
// command run: it reports "ID gone" instead.
//
// The shell runs in a session of its own, so every command does: what a detached command leaves behind (a
// container's init) is in no session of ours, without a `setsid` process per container. A command under way when
// berth ends is not killed with it (a background job of sh ignores Ctrl-C's SIGINT, and out of the terminal's
// session it gets no hangup either): one writing to a logFile finishes. One whose outputs go to DIR races the EXIT
// trap's removal of DIR: a line read just before berth's end may fail its redirections and never run the command.
const PREAMBLE = `exec 3>&1
trap 'rm -rf "$1"' EXIT
trap 'exit 130' INT TERM HUP
`;

/** Where shells' directories are made: on tmpfs where there is one. */
const PARENT = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();

/** Single-quoted for sh: nothing inside is expanded. */
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** How a command ended: its exit code, and which of its outputs have something ("o", "e"), or "gone" (see SHELL). */
interface Report {
  code: number;
  flags: string;
}

function readQuietly(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function unlinkQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // gone with its directory
  }
}

export interface SpawnRequest {
  cmd: string;
  args: readonly string[];
  input?: string;
  /** Appended to (stdout and stderr), in the shell's session like every command; see RunOptions.logFile. */
  logFile?: string;
  /** See RunOptions.cwd. */
  cwd?: string;
}

export class Spawner {
  private child?: ChildProcess;
  private dir?: string;
  private next = 0;
  private readonly pending = new Map<number, (report: Report) => void>();

  /**
   * Whether the request can go through the shell: a line break in an argument would end its script line, and sh
   * drops NUL bytes from a script where spawn refuses them (an argument checked as "a\0b" would run as "ab"). A
   * relative cwd goes to spawn too: `cd` would look it up in CDPATH (printing where it went) and take "-" for OLDPWD.
   */
  static fits(req: SpawnRequest): boolean {
    return (req.cwd === undefined || path.isAbsolute(req.cwd)) &&
      ![req.cmd, ...req.args, req.logFile ?? "", req.cwd ?? ""].some((a) => /[\n\0]/.test(a));
  }

  async run(req: SpawnRequest): Promise<CommandResult> {
    const { dir, child, sent } = this.started();
    const id = this.next++;
    const file = (ext: string) => path.join(dir, `${id}.${ext}`);
    const [out, err] = [file("out"), file("err")];
    const redirect = [
      req.input === undefined ? "</dev/null" : `<${quote(file("in"))}`,
      ...(req.logFile ? [`>>${quote(req.logFile)}`, "2>&1"] : [`>${quote(out)}`, `2>${quote(err)}`]),
    ];
    const argv = [req.cmd, ...req.args].map(quote).join(" ");
    // Absolute (see fits), and -P: the directory chdir(2) would reach, whatever symlinks and ".." it names.
    const command = req.cwd === undefined ? argv : `{ cd -P -- ${quote(req.cwd)} && ${argv}; }`;
    const report = req.logFile ? `echo "${id} $?" >&3` : `c=$?; s=; [ -s ${quote(out)} ] && s=o; [ -s ${quote(err)} ] && s=\${s}e; echo "${id} $c $s" >&3`;
    if (req.input !== undefined) {
      try {
        fs.writeFileSync(file("in"), req.input, { mode: 0o600 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        return this.restarted(req);
      }
    }
    const done = new Promise<Report>((resolve) => this.pending.set(id, resolve));
    sent.add(id);
    this.ref(true);
    child.stdin!.write(`if [ -d "$1" ]; then ( ${command} ${redirect.join(" ")} 3>&-; ${report} ) & jobs >/dev/null; else echo '${id} gone'; fi\n`);
    const { code, flags } = await done;
    if (req.input !== undefined) unlinkQuietly(file("in"));
    if (flags === "gone") return this.restarted(req);
    const take = (f: string, flag: string): string => {
      if (req.logFile) return "";
      const text = flags.includes(flag) ? readQuietly(f) : "";
      unlinkQuietly(f);
      return text;
    };
    const [stdout, stderr] = [take(out, "o"), take(err, "e")];
    // The shell's own message ("DIR: 4: CMD: not found"), not a command's child missing ("sh: 1: x: not found").
    if (code === 127 && stderr.includes(`${dir}: `) && /not found/.test(stderr)) {
      // As spawn reports a missing command, so callers see the same error either way.
      throw Object.assign(new Error(`spawn ${req.cmd} ENOENT`), { code: "ENOENT", errno: -2, syscall: `spawn ${req.cmd}`, path: req.cmd });
    }
    return { code, stdout, stderr };
  }

  /**
   * The shell's directory was removed under it (by hand, or by a berth that cannot see this process): nothing of
   * the request ran. Its shell ends, and the request goes to a new one.
   */
  private restarted(req: SpawnRequest): Promise<CommandResult> {
    if (this.dir && !fs.existsSync(this.dir)) {
      this.child?.stdin!.end();
      this.child = this.dir = undefined;
    }
    return this.run(req);
  }

  /** Commands sent to the shell running now that have not reported yet. */
  private sent = new Set<number>();

  private started(): { dir: string; child: ChildProcess; sent: Set<number> } {
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
    // Named DIR ($0), so its own "not found" is told from a command's (see run()).
    const child = spawn("/bin/sh", ["-s", dir], { argv0: dir, stdio: ["pipe", "pipe", "inherit"], detached: true });
    child.stdin!.write(PREAMBLE);
    const sent = new Set<number>();
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const [word, code, flags = ""] = line.split(" ");
        const id = Number(word);
        const resolve = this.pending.get(id);
        this.pending.delete(id);
        sent.delete(id);
        if (this.pending.size === 0) this.ref(false);
        resolve?.(code === "gone" ? { code: 128, flags: "gone" } : { code: Number(code), flags });
      }
    });
    // The shell died (killed from outside): the next call starts another. What it started still reports through the
    // pipe, which their subshells hold open until they have; a command the shell never started failed.
    const gone = () => {
      if (this.child === child) this.child = undefined;
    };
    const unreported = () => {
      for (const id of sent) {
        this.pending.get(id)?.({ code: 128, flags: "" });
        this.pending.delete(id);
      }
      sent.clear();
      if (this.pending.size === 0) this.ref(false);
    };
    child.on("exit", gone);
    // Its pipe may close before its exit is seen: no command may be sent to it meanwhile, to wait forever.
    child.stdout!.on("close", () => (gone(), unreported()));
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
