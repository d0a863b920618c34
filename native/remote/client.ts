// The remote runtime (contract 3): a Runtime whose calls run on another host, through `berth agent` over ONE
// `ssh` process per target that every concurrent call shares, started on the first call. OpenSSH's own client, so
// ~/.ssh/config, the agent and known_hosts apply; host keys are always checked (BatchMode: never a prompt).
// Every failure names the host and what to do: unreachable, authentication refused, host key unknown or changed,
// berth missing or too old there, the connection lost during a call (which one).
import { spawn, type ChildProcess } from "node:child_process";
import type { BuildImageRequest, RegistryAccess, Runtime } from "../runtime";
import { hello, helloMismatch, jsonFrame, NotBerth, readFrames, BERTH_VERSION } from "./protocol";
import { answering, isAsyncIterable, Peer } from "./peer";
import { runtimeOf, type Method } from "./methods";
import { receiveFiles, sendFiles } from "./files";
import { parseSshUrl, sshOptionProblem } from "./ssh-options";
import { lazyStream } from "./lazy-stream";
import { dockerConfigAuth } from "../registry/client";
import { parseRegistryRef } from "../registry/reference";

export interface RemoteTarget {
  /** ssh://[user@]host[:port] */
  url: string;
  identityFile?: string;
  /** Extra ssh options, "Key=value" each (passed as -o). */
  sshOptions?: string[];
  /** The berth root on the remote host (default: its own, $BERTH_ROOT or /var/lib/berth). */
  root?: string;
  /** Tests only: the command that starts the agent, instead of ssh (e.g. `ip netns exec NS berth agent`). */
  command?: string[];
}

export type RemoteRuntime = Runtime & { close(): Promise<void>; readonly host: string };

/** Why a remote host cannot be used, by kind, for callers that act on it (tests, `berth host check`). */
export type RemoteFailure = "url" | "unreachable" | "auth" | "host-key" | "missing" | "version" | "protocol" | "lost";

export class RemoteError extends Error {
  constructor(
    readonly host: string,
    readonly reason: RemoteFailure,
    message: string,
  ) {
    super(message);
    this.name = "RemoteError";
  }
}

interface Address {
  user?: string;
  hostname: string;
  port?: number;
}

export function parseHostUrl(url: string): Address {
  const a = parseSshUrl(url);
  if (!a) {
    throw new RemoteError(url, "url", `invalid host ${JSON.stringify(url)}: expected ssh://[user@]host[:port], e.g. ssh://root@10.0.0.2, ` +
      `where the user and host are letters, digits, '.', '_' and '-' (not first), or [an IPv6 address]; an alias with other characters goes in ~/.ssh/config`);
  }
  return { user: a.user, hostname: a.host, port: a.port };
}

const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Refuses an sshOptions entry berth does not take (ssh-options.ts says why). */
function checkSshOption(url: string, o: string): void {
  const problem = sshOptionProblem(o);
  if (problem) throw new RemoteError(url, problem.hostKeys ? "host-key" : "url", `sshOptions entry ${JSON.stringify(o)} for ${url} refused: ${problem.message}`);
}

/** The ssh command line for a target; OpenSSH takes the first value it gets for an option, so the user's come first. */
export function sshArgv(t: RemoteTarget): string[] {
  const a = parseHostUrl(t.url);
  const options = t.sshOptions ?? [];
  for (const o of options) checkSshOption(t.url, o);
  const has = (key: string) => options.some((o) => o.trim().toLowerCase().startsWith(key.toLowerCase()));
  const agent = ["berth", "agent", ...(t.root ? ["--root", t.root] : [])].map(shellQuote).join(" ");
  return [
    "ssh", "-T", "-o", "BatchMode=yes",
    ...(t.identityFile ? ["-i", t.identityFile] : []),
    ...(a.port ? ["-p", String(a.port)] : []),
    ...options.flatMap((o) => ["-o", o]),
    // A dead peer is noticed within a minute, and an address that never answers fails in 20 s, not 2 minutes.
    ...(has("ConnectTimeout") ? [] : ["-o", "ConnectTimeout=20"]),
    ...(has("ServerAliveInterval") ? [] : ["-o", "ServerAliveInterval=15"]),
    "--", a.user ? `${a.user}@${a.hostname}` : a.hostname, agent,
  ];
}

/** What ssh's exit says about the host, as an error the user can act on. */
function connectError(t: RemoteTarget, code: number | null, signal: string | null, stderr: string): RemoteError {
  const a = parseHostUrl(t.url);
  const host = t.url;
  const said = stderr.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("@@@") && !/^Warning: Permanently added/.test(l));
  const last = said.slice(-2).join(" ") || (signal ? `ssh killed by ${signal}` : `ssh exited with code ${code}`);
  const keyscan = `ssh-keyscan ${a.port ? `-p ${a.port} ` : ""}${a.hostname} >> ~/.ssh/known_hosts`;
  const known = a.port ? `[${a.hostname}]:${a.port}` : a.hostname;
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|host key for .* has changed/i.test(stderr)) {
    return new RemoteError(host, "host-key", `${host}: its host key has changed since it was recorded in known_hosts, and ssh refused it (a reinstalled host, or someone in between). If the change is expected: ssh-keygen -R '${known}', check the new key's fingerprint, then ${keyscan}`);
  }
  if (/Host key verification failed|No \S+ host key is known/i.test(stderr)) {
    return new RemoteError(host, "host-key", `${host}: its host key is not in known_hosts, and berth never skips the check. Check the host's key fingerprint, then add it: ${keyscan} (or connect once with ssh ${a.port ? `-p ${a.port} ` : ""}${a.hostname})`);
  }
  if (/Permission denied|Too many authentication failures|no mutual signature/i.test(stderr)) {
    return new RemoteError(host, "auth", `${host}: authentication refused (${last}): give the Provider an identityFile, load the key into ssh-agent, or add your public key to ${a.user ?? "the user"}'s ~/.ssh/authorized_keys there`);
  }
  if (/unknown command "agent"/.test(stderr)) {
    return new RemoteError(host, "version", `berth on ${host} is too old to serve as an agent (it has no 'berth agent'): install berth v${BERTH_VERSION} there (see README "Many hosts")`);
  }
  if (code === 127 || /berth: (command )?not found|No such file or directory/.test(stderr)) {
    return new RemoteError(host, "missing", `berth is not installed on ${host} (${last}): install berth there and put it on the PATH of non-interactive ssh sessions — see README "Many hosts"`);
  }
  if (code === 255 || /Could not resolve|Connection refused|timed out|No route to host|Network is unreachable|Connection closed|Connection reset/i.test(stderr)) {
    return new RemoteError(host, "unreachable", `${host} is unreachable: ${last}`);
  }
  return new RemoteError(host, "lost", `${host}: the berth agent exited (${signal ? `signal ${signal}` : `code ${code}`}) before answering: ${last}`);
}

/** A call's short name for messages: containers.run("web"). */
function callName(method: string, args: unknown[]): string {
  const first = args[0] as { name?: unknown; ref?: unknown } | string | undefined;
  const label = typeof first === "string" ? first : typeof first === "object" && first !== null ? (first.name ?? first.ref) : undefined;
  return `${method}(${typeof label === "string" ? JSON.stringify(label) : ""})`;
}

/** Where a registry call has its reference; its RegistryAccess comes next. */
const REGISTRY_REF: Record<string, number> = { "images.pull": 0, "images.resolve": 0, "images.push": 1 };

/**
 * A registry call without credentials gets the caller's `docker login` ones, as `docker -H ssh://…` sends its
 * own: the agent would otherwise use the remote host's config (someone else's, or none). They travel in the call.
 * A build asks for them, registry by registry, when a pull of its wants some (and only while the build runs).
 */
async function callerAuth(method: string, args: unknown[]): Promise<void> {
  if (method === "images.build") {
    const req = args[0] as BuildImageRequest | undefined;
    if (typeof req !== "object" || req === null) return; // the agent says what is wrong with it
    const given = req.registryAuth;
    // Once per registry and call: the agent asking again (each base image, or an agent misbehaving) runs no
    // credential helper twice.
    const asked = new Map<string, Promise<RegistryAccess["auth"]>>();
    req.registryAuth = answering((registry: string) => {
      if (typeof registry !== "string") return Promise.reject<RegistryAccess["auth"]>(new Error("a registry name is expected"));
      if (!asked.has(registry)) asked.set(registry, given ? given(registry) : dockerConfigAuth(registry));
      return asked.get(registry)!;
    });
    return;
  }
  if (!Object.hasOwn(REGISTRY_REF, method)) return;
  const at = REGISTRY_REF[method];
  const [ref, access = {}] = args.slice(at, at + 2) as [unknown, RegistryAccess | undefined];
  if (typeof ref !== "string" || access.auth) return;
  let registry: string;
  try {
    registry = parseRegistryRef(ref).registry;
  } catch {
    return; // the agent says what is wrong with the reference
  }
  const auth = await dockerConfigAuth(registry);
  if (auth) args[at + 1] = { ...access, auth };
}

/** A copy of the arguments' plain objects and arrays (paths in them are replaced); functions and streams shared. */
function cloneArgs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneArgs);
  // A stream made as a plain object with its own Symbol.asyncIterator would lose it in a copy.
  if (isAsyncIterable(v)) return v;
  if (typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, cloneArgs(x)]));
  }
  return v;
}

interface Session {
  peer: Peer;
  child: ChildProcess;
  exited: Promise<void>;
}

const STDERR_KEPT = 16 << 10;

class Connection {
  private session?: Promise<Session>;
  /** The session once connected, until it is lost. */
  private live?: Session;
  /** Calls and open streams: while there are none, the ssh process does not keep this process alive. */
  private active = 0;

  constructor(private readonly target: RemoteTarget) {
    if (!target.command) sshArgv(target); // a bad URL or option is refused now, not at the first call
    else parseHostUrl(target.url);
  }

  private connect(): Promise<Session> {
    const t = this.target;
    const argv = t.command ?? sshArgv(t);
    const child = spawn(argv[0], argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-STDERR_KEPT);
    });
    child.stdin!.on("error", () => {});
    let spawnError: Error | undefined;
    const exited = new Promise<[number | null, string | null]>((resolve) => {
      child.on("error", (e) => {
        spawnError = e;
        resolve([null, null]);
      });
      child.on("close", (code, signal) => resolve([code, signal]));
    });
    child.stdin!.write(jsonFrame(hello()));
    const frames = readFrames(child.stdout!)[Symbol.asyncIterator]();
    const failed = async (): Promise<never> => {
      const [code, signal] = await exited;
      if (spawnError) {
        throw new RemoteError(t.url, "unreachable", `cannot run ${argv[0]} to reach ${t.url}: ${spawnError.message} (berth uses OpenSSH's client: apt-get install openssh-client)`);
      }
      throw connectError(t, code, signal, stderr);
    };
    return (async () => {
      let first: IteratorResult<unknown>;
      try {
        first = await Promise.race([frames.next(), exited.then(failed)]);
      } catch (e) {
        child.kill();
        if (!(e instanceof NotBerth)) throw e;
        const text = e.seen.toString("utf8").replace(/[^\x20-\x7e]+/g, " ").trim().slice(0, 120);
        throw new RemoteError(t.url, "protocol", `${t.url} did not answer as a berth agent: it printed "${text}". Something prints to stdout at login (a shell profile): make it print nothing for non-interactive sessions`);
      }
      const msg = (first.value as { kind: string; msg?: { t: string; protocol: number; berth: string } } | undefined)?.msg;
      if (first.done || msg?.t !== "hello") return failed();
      const mismatch = helloMismatch(msg, t.url);
      if (mismatch) {
        child.stdin!.end();
        throw new RemoteError(t.url, "version", mismatch);
      }
      const peer = new Peer(child.stdin!, "client");
      const session: Session = { peer, child, exited: exited.then(() => undefined) };
      void peer.receive({ [Symbol.asyncIterator]: () => frames }).catch(() => undefined).then(async () => {
        // The agent never ends a session on its own: it is gone (killed, or ssh lost the connection).
        const ended = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref())]);
        const cause = ended ? (ended[1] ? `ssh killed by ${ended[1]}` : `ssh exited with code ${ended[0]}`) : "the stream ended";
        const said = stderr.trim().split("\n").filter(Boolean).slice(-1)[0];
        if (this.live === session) this.live = this.session = undefined;
        peer.fail((method, args) => new RemoteError(t.url, "lost",
          `connection to ${t.url} lost during ${callName(method, args)} (${cause}${said ? `: ${said}` : ""}): ` +
          `the host finishes what it had started; run again to settle the rest`));
        child.kill();
      });
      this.live = session;
      this.hold(0);
      return session;
    })();
  }

  private open(): Promise<Session> {
    if (!this.session) {
      const s = this.connect();
      this.session = s;
      s.catch(() => {
        if (this.session === s) this.session = undefined;
      });
    }
    return this.session;
  }

  /** Keeps this process alive while calls or streams are active, and only then. */
  private hold(delta: number): void {
    this.active += delta;
    const child = this.live?.child;
    if (!child) return;
    const on = this.active > 0;
    for (const handle of [child, child.stdin, child.stdout, child.stderr] as unknown as Array<{ ref?: () => void; unref?: () => void }>) {
      if (on) handle.ref?.();
      else handle.unref?.();
    }
  }

  async call(m: Method, args: unknown[]): Promise<unknown> {
    const s = await this.open();
    this.hold(1);
    try {
      const a = cloneArgs(args) as unknown[];
      await callerAuth(m.name, a);
      const downloads = await sendFiles(m.files(a));
      const result = await s.peer.call(m.name, a);
      if (downloads.length === 0) return result;
      const { value, files } = result as { value: unknown; files: AsyncIterable<Uint8Array>[] };
      await receiveFiles(m.name, this.target.url, downloads, files);
      return value;
    } finally {
      this.hold(-1);
    }
  }

  /** A stream result, returned at once; connecting (if need be) and calling on the first next(). */
  stream(m: Method, args: unknown[]): AsyncIterableIterator<unknown> {
    let held = false;
    return lazyStream(
      async () => {
        const s = await this.open();
        this.hold(1);
        held = true;
        return s.peer.stream(m.name, cloneArgs(args) as unknown[]);
      },
      async () => {
        if (held) this.hold(-1);
      },
    );
  }

  /** Waits for calls in flight, then ends the session: the agent sees the end of its input and exits. */
  async close(): Promise<void> {
    const s = await this.session?.catch(() => undefined);
    if (!s) return;
    await s.peer.idle();
    if (this.live === s) this.live = this.session = undefined;
    s.child.stdin!.end();
    const timer = setTimeout(() => s.child.kill(), 10_000);
    await s.exited;
    clearTimeout(timer);
  }
}

/** The runtime of a remote host; nothing happens until the first call (then one ssh process serves them all). */
export function remoteRuntime(target: RemoteTarget): RemoteRuntime {
  const conn = new Connection(target);
  const runtime = runtimeOf((m, args) => (m.stream ? conn.stream(m, args) : conn.call(m, args)));
  return Object.defineProperties(runtime, {
    host: { value: target.url, enumerable: true, configurable: true },
    close: { value: () => conn.close(), configurable: true },
  }) as RemoteRuntime;
}
