// The single door for host side effects: every process berth spawns (runc, ip, iptables, mount, tar) and every
// sysctl it writes goes through a Host, so unit tests can swap in a fake and the real one stays small.
import { execFile, spawn } from "node:child_process";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StringDecoder } from "node:string_decoder";
import * as fs from "node:fs";
import { Spawner } from "./spawner";

export interface RunOptions {
  /** Fed to the command's stdin (e.g. an `ip -batch -` or `iptables-restore` script). */
  input?: string;
  /**
   * Append the command's stdout and stderr to this file and start it out of berth's session (in the spawner
   * shell's, or a session of its own when spawned). What the command leaves behind (a container's init under
   * `runc run --detach`) then holds the file, not a pipe to us, so it neither keeps berth's process alive nor dies
   * with it. The command's own errors are read back from the file.
   */
  logFile?: string;
  /** The directory the command runs in; berth's own working directory when not given. Relative to berth's own. */
  cwd?: string;
  /** Called with each chunk of stdout and stderr as it arrives (a build step's output, shown live). */
  onOutput?: (chunk: string) => void;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Host {
  /** Runs a command to completion; throws HostCommandError unless it exits 0. Resolves to its stdout. */
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<string>;
  /** Runs a command and reports how it ended, for callers that expect some failures ("does not exist"). */
  tryRun(cmd: string, args: readonly string[], opts?: RunOptions): Promise<CommandResult>;
  /** Writes /proc/sys/<key with dots as slashes>, e.g. "net.ipv4.ip_forward". */
  writeSysctl(key: string, value: string): Promise<void>;
}

export class HostCommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: CommandResult,
  ) {
    const why = result.stderr.trim() || result.stdout.trim() || "no output";
    super(`\`${command}\` failed (exit ${result.code}): ${why}`);
    this.name = "HostCommandError";
  }
}

export function describeCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].join(" ");
}

async function spawnAndWait(spawner: Spawner | undefined, cmd: string, args: readonly string[], opts: RunOptions): Promise<CommandResult> {
  let logFd: number | undefined;
  let logStart = 0;
  if (opts.logFile) {
    logFd = fs.openSync(opts.logFile, "a", 0o600); // a container's output may hold secrets
    logStart = fs.fstatSync(logFd).size;
  }
  const req = { cmd, args, input: opts.input, logFile: opts.logFile, cwd: opts.cwd };
  if (spawner && !opts.onOutput && Spawner.fits(req)) {
    if (logFd !== undefined) fs.closeSync(logFd); // made with its mode; the shell appends to it
    const result = await spawner.run(req);
    if (opts.logFile && result.code !== 0) result.stderr = readFrom(opts.logFile, logStart);
    return result;
  }
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    stdio: [opts.input === undefined ? "ignore" : "pipe", logFd ?? "pipe", logFd ?? "pipe"],
    detached: logFd !== undefined,
  });
  // The child holds its own copy of the descriptor from here on.
  if (logFd !== undefined) fs.closeSync(logFd);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  // A decoder per stream: a character split across two chunks is passed on whole, not as two U+FFFD.
  const [outText, errText] = [new StringDecoder("utf8"), new StringDecoder("utf8")];
  child.stdout?.on("data", (b: Buffer) => (out.push(b), opts.onOutput?.(outText.write(b))));
  child.stderr?.on("data", (b: Buffer) => (err.push(b), opts.onOutput?.(errText.write(b))));
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  const code = await new Promise<number>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  let stderr = Buffer.concat(err).toString();
  if (opts.logFile && code !== 0) stderr = readFrom(opts.logFile, logStart);
  return { code, stdout: Buffer.concat(out).toString(), stderr };
}

function readFrom(file: string, start: number): string {
  const buf = fs.readFileSync(file);
  return buf.subarray(start).toString();
}

/** The host, its commands started by `spawner` when given (see spawner.ts), else each spawned by Node. */
function hostVia(spawner?: Spawner): Host {
  return {
    async run(cmd, args, opts = {}) {
      const result = await spawnAndWait(spawner, cmd, args, opts);
      if (result.code !== 0) throw new HostCommandError(describeCommand(cmd, args), result);
      return result.stdout;
    },
    tryRun: (cmd, args, opts = {}) => spawnAndWait(spawner, cmd, args, opts),
    async writeSysctl(key, value) {
      const file = `/proc/sys/${key.replace(/\./g, "/")}`;
      try {
        await fs.promises.writeFile(file, value);
      } catch (e) {
        throw new Error(`writing sysctl ${key}=${value} (${file}) failed: ${(e as Error).message}`);
      }
    },
  };
}

export const realHost: Host = hostVia(new Spawner());
/**
 * Each command spawned by Node: for the supervisor, whose small heap forks cheaply, and which should not keep a
 * shell beside it for as long as containers run (its memory is counted per container).
 */
export const directHost: Host = hostVia();

/**
 * Runs a command with byte streams on both ends (a tar piped in or out). `stdout` must be consumed; `done` settles
 * when the command has exited, rejecting with its stderr unless it exited 0.
 */
export function runPiped(
  cmd: string,
  args: readonly string[],
  stdin?: AsyncIterable<Buffer> | NodeJS.ReadableStream,
): { stdout: Readable; done: Promise<void> } {
  const child = spawn(cmd, args, { stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"] });
  const err: Buffer[] = [];
  child.stderr!.on("data", (b: Buffer) => err.push(b));
  let fed: Promise<void> = Promise.resolve();
  if (stdin) {
    // The command may stop reading early (it failed): that is reported through its exit, not as EPIPE here.
    child.stdin!.on("error", () => {});
    fed = pipeline(stdin as AsyncIterable<Buffer>, child.stdin!).catch(() => {});
  }
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c, signal) => {
      const code = c ?? (signal ? 128 : 1);
      if (code === 0) resolve();
      else reject(new HostCommandError(describeCommand(cmd, args), { code, stdout: "", stderr: Buffer.concat(err).toString() }));
    });
  }).finally(() => fed);
  // Piped at once: Node resumes (and so discards) a child's unread stdout when the child exits. Destroying ours
  // closes the pipe, so a command blocked on writing ends.
  const stdout = child.stdout!.pipe(new PassThrough());
  stdout.on("close", () => child.stdout!.destroy());
  done.catch(() => {}); // the caller may still be busy with stdout when the command fails: it awaits done later
  return { stdout, done };
}

/** Where an interactive command's stdin comes from and its output goes (ExecOptions' streams). */
export interface CommandStreams {
  stdin?: AsyncIterable<Uint8Array>;
  /** A promise returned holds the output back until it settles (flow control). */
  stdout?: (chunk: Uint8Array) => void;
  stderr?: (chunk: Uint8Array) => void;
}

/**
 * Runs `argv` fed from `stdin` (none: an empty stdin), handing its output to the callbacks (none: dropped);
 * resolves to its exit code once it has exited and its output is all handed over. Reading stdin stops then.
 */
export async function runStreams(argv: readonly string[], streams: CommandStreams, spawned?: (pid: number) => void): Promise<number> {
  const child = spawn(argv[0], argv.slice(1), {
    stdio: [streams.stdin ? "pipe" : "ignore", streams.stdout ? "pipe" : "ignore", streams.stderr ? "pipe" : "ignore"],
  });
  if (child.pid !== undefined) spawned?.(child.pid);
  for (const [from, to] of [[child.stdout, streams.stdout], [child.stderr, streams.stderr]] as const) {
    from?.on("data", (b: Buffer) => {
      const held: unknown = to!(b);
      if (held instanceof Promise) {
        from.pause();
        void held.catch(() => undefined).then(() => from.resume());
      }
    });
  }
  const input = streams.stdin?.[Symbol.asyncIterator]();
  if (input) {
    const sink = child.stdin!;
    sink.on("error", () => {}); // the command may exit without reading it all: its exit code says how it went
    void (async () => {
      for (let r = await input.next(); !r.done && !sink.destroyed; r = await input.next()) {
        if (!sink.write(r.value)) await new Promise((resolve) => sink.once("drain", resolve).once("close", resolve));
      }
      sink.end();
    })().catch(() => sink.end());
  }
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  } finally {
    // Not awaited: a source waiting for more (a terminal) may only settle its return() when it next reads.
    Promise.resolve(input?.return?.()).catch(() => {});
  }
}

/**
 * `argv` on a pseudo-terminal of its own, made by util-linux `script` (its output and input are the terminal's),
 * sized `rows`×`cols`: how runc's `exec --tty` gets the terminal it wants when the caller's ends are streams.
 */
export function inTerminal(argv: readonly string[], size = { rows: 24, cols: 80 }): string[] {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  const rows = Math.trunc(size.rows);
  const cols = Math.trunc(size.cols);
  // No echo from this outer terminal: input sent before runc makes it raw would otherwise come back twice.
  const script = `stty raw -echo rows ${rows} cols ${cols} 2>/dev/null; exec ${quoted}`;
  return ["env", "SHELL=/bin/sh", "script", "--quiet", "--flush", "--return", "--echo", "never", "--command", script, "/dev/null"];
}

export interface TerminalSize {
  rows: number;
  cols: number;
}

/**
 * runStreams of `argv` on a terminal of its own (inTerminal), resized to each size `resizes` gives: the window
 * size of the terminal `script` made is set (stty on what its child, by then `argv`, has as stdin), and the
 * kernel signals SIGWINCH to the terminal's foreground process — runc, which resizes the container's terminal
 * the same way, as docker's exec passes a resize on. `script` itself passes sizes on only from a terminal of its
 * own, and berth's end is a stream.
 */
export async function runInTerminal(argv: readonly string[], size: TerminalSize | undefined, resizes: AsyncIterable<TerminalSize> | undefined, streams: CommandStreams): Promise<number> {
  if (!resizes) return runStreams(inTerminal(argv, size), streams);
  let scriptPid: number | undefined;
  let ended = false;
  const sizes = resizes[Symbol.asyncIterator]();
  let tty: string | undefined;
  const following = (async () => {
    for (let r = await sizes.next(); !r.done && !ended; r = await sizes.next()) {
      const rows = Math.trunc(Number(r.value.rows));
      const cols = Math.trunc(Number(r.value.cols));
      if (!(rows > 0 && cols > 0 && rows < 1 << 16 && cols < 1 << 16)) continue;
      // Not found in time (a slow exec on a busy host): this size is skipped, the next one looks again.
      const at = (tty ??= await terminalOf(() => scriptPid, argv[0], () => ended));
      if (!at) continue;
      await new Promise<void>((resolve) => execFile("stty", ["-F", at, "rows", String(rows), "cols", String(cols)], () => resolve()));
    }
  })().catch(() => undefined);
  try {
    return await runStreams(inTerminal(argv, size), streams, (pid) => (scriptPid = pid));
  } finally {
    ended = true;
    void sizes.return?.()?.catch(() => undefined);
  }
}

/** How long a resize waits for the command to run on its terminal (runc takes milliseconds, more under load). */
export const TERMINAL_WAIT_MS = 5_000;

/**
 * The terminal `script` (pid, once spawned) runs its command on, once that command runs (`program`: until then the
 * shell that sets the first size would undo a resize): /proc/CHILD/fd/0. Undefined once `over()`, or when the
 * command has not shown within TERMINAL_WAIT_MS (that resize is dropped; /proc is not polled for all along, only
 * looked at again on the next resize).
 */
async function terminalOf(scriptPid: () => number | undefined, program: string, over: () => boolean): Promise<string | undefined> {
  const name = program.split("/").pop()!.slice(0, 15);
  const deadline = Date.now() + TERMINAL_WAIT_MS;
  for (let pause = 5; !over() && Date.now() < deadline; pause = Math.min(pause * 2, 200)) {
    const pid = scriptPid();
    try {
      const [child] = pid === undefined ? [] : fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ");
      if (child && fs.readFileSync(`/proc/${child}/comm`, "utf8").trim() === name) return `/proc/${child}/fd/0`;
    } catch {
      // not started yet, or gone
    }
    await new Promise((r) => setTimeout(r, pause));
  }
  return undefined;
}
