// Private registries served on this host: the distribution registry (Debian's docker-registry) run as a detached
// host process by start-stop-daemon, listening directly on the address and port given, its storage in a
// directory berth names (a volume's data), optional htpasswd users (bcrypt) and TLS. A host process rather than a
// container: it needs no network or port rule to be reachable on a host address, and start-stop-daemon gives it
// its own session so it outlives berth.
import * as fs from "node:fs";
import * as path from "node:path";
import * as net from "node:net";
import { randomBytes } from "node:crypto";
import type { Host } from "../host/exec";
import type { Paths } from "../paths";
import type { Registries, RegistryInfo, RegistrySpec } from "../runtime";
import { readJson, writeJson } from "../json-file";
import { canonicalJson } from "../canonical-json";
import { checkName } from "../names";
import { withLock } from "../lock";

const BINARY = "/usr/bin/docker-registry";
const START_TIMEOUT_MS = 10_000;

interface Files {
  dir: string;
  spec: string;
  config: string;
  htpasswd: string;
  pid: string;
  log: string;
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

function configYaml(spec: RegistrySpec, f: Files, secret: string): string {
  const lines = [
    "version: 0.1",
    "log:",
    "  level: warn",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${yamlString(spec.storage)}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${yamlString(`${spec.address}:${spec.port}`)}`,
    `  secret: ${yamlString(secret)}`,
  ];
  if (spec.tls) lines.push("  tls:", `    certificate: ${yamlString(spec.tls.certificate)}`, `    key: ${yamlString(spec.tls.key)}`);
  if (spec.users && spec.users.length > 0) {
    lines.push("auth:", "  htpasswd:", `    realm: ${yamlString(`berth-registry ${spec.name}`)}`, `    path: ${yamlString(f.htpasswd)}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * Binds the storage ($1) over itself with nosymfollow (and nodev, nosuid: a container may plant device nodes and
 * setuid files there too), then runs the registry ($2) serving config $3.
 */
const CONFINED_START = 'mount --bind "$1" "$1" && mount -o remount,bind,nosymfollow,nodev,nosuid "$1" && exec "$2" serve "$3"';

function alive(pid: number): boolean {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`) === BINARY;
  } catch {
    return false;
  }
}

/** Whether a process exists and has not exited (a zombie nobody reaped yet counts as exited). */
function running(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  return !/^\d+ \(.*\) [ZX] /.test(stat);
}

function answers(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address === "0.0.0.0" ? "127.0.0.1" : address, port, timeout: 500 });
    s.on("connect", () => (s.destroy(), resolve(true)));
    s.on("error", () => resolve(false));
    s.on("timeout", () => (s.destroy(), resolve(false)));
  });
}

const HTPASSWD_USER = /^[^:\s]+$/;
const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

export class RegistryServers implements Registries {
  constructor(
    private readonly host: Host,
    private readonly paths: Paths,
  ) {}

  private files(name: string): Files {
    const dir = path.join(this.paths.root, "registries", name);
    const f = (n: string) => path.join(dir, n);
    return { dir, spec: f("registry.json"), config: f("config.yml"), htpasswd: f("htpasswd"), pid: f("registry.pid"), log: f("registry.log") };
  }

  /** One change of a registry at a time across berth processes: stop, rewrite and start are not atomic. */
  private locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return withLock(path.join(this.paths.locks, "registries", name), fn, { what: `registry ${name}` });
  }

  async ensure(spec: RegistrySpec): Promise<RegistryInfo> {
    checkName("registry", spec.name);
    return this.locked(spec.name, () => this.make(spec));
  }

  private async make(spec: RegistrySpec): Promise<RegistryInfo> {
    if (!fs.existsSync(BINARY)) throw new Error(`registry "${spec.name}": ${BINARY} is missing; run scripts/setup.sh (Debian package docker-registry)`);
    if (!fs.statSync(spec.storage, { throwIfNoEntry: false })?.isDirectory()) {
      throw new Error(`registry "${spec.name}": storage directory ${spec.storage} does not exist`);
    }
    for (const file of spec.tls ? [spec.tls.certificate, spec.tls.key] : []) {
      if (!fs.existsSync(file)) throw new Error(`registry "${spec.name}": TLS file ${file} not found`);
    }
    for (const [i, u] of (spec.users ?? []).entries()) {
      // Each is one htpasswd line: a newline or ':' in either would add a user of its own.
      if (!HTPASSWD_USER.test(u.username)) throw new Error(`registry "${spec.name}": users[${i}].username must be a user name without ':' or spaces`);
      if (!BCRYPT.test(u.passwordHash)) throw new Error(`registry "${spec.name}": users[${i}].passwordHash must be a bcrypt hash ($2a$, $2b$ or $2y$, cost, 53 characters)`);
    }
    const f = this.files(spec.name);
    const current = await this.inspect(spec.name);
    const recorded = await readJson<RegistrySpec>(f.spec);
    if (current?.status === "running" && recorded && canonicalJson(recorded) === canonicalJson(spec)) return current;
    // A port someone else holds is refused before the running registry is touched (unless it is the one holding it).
    const holdsPort = current?.status === "running" && recorded?.address === spec.address && recorded.port === spec.port;
    if (!holdsPort && (await answers(spec.address, spec.port))) {
      throw new Error(`registry "${spec.name}": ${spec.address}:${spec.port} is already in use on this host; pick another port`);
    }
    await this.stop(f);
    await fs.promises.mkdir(f.dir, { recursive: true });
    await writeJson(f.spec, spec);
    const htpasswd = (spec.users ?? []).map((u) => `${u.username}:${u.passwordHash}\n`).join("");
    await fs.promises.writeFile(f.htpasswd, htpasswd, { mode: 0o600 });
    await fs.promises.writeFile(f.config, configYaml(spec, f, randomBytes(16).toString("hex")), { mode: 0o600 });
    await fs.promises.writeFile(f.log, "", { mode: 0o600 });
    // The storage is a volume's, which containers may mount and fill with symlinks: the registry (root, on the
    // host) must not follow them out. It runs in a mount namespace of its own where the storage is bound over
    // itself with nosymfollow (the registry makes no symlinks: its links are files), so each one fails with ELOOP.
    // unshare and sh exec in turn: the pid start-stop-daemon records is the registry's.
    await this.host.run("start-stop-daemon", [
      "--start", "--background", "--make-pidfile", "--pidfile", f.pid, "--output", f.log,
      "--startas", "/usr/bin/unshare", "--", "--mount", "--propagation", "private", "--",
      "/bin/sh", "-c", CONFINED_START, "berth-registry", spec.storage, BINARY, f.config,
    ]);
    const deadline = Date.now() + START_TIMEOUT_MS;
    const pid = Number(await fs.promises.readFile(f.pid, "utf8").catch(() => "0"));
    for (;;) {
      // Until it has exec'd, the pid is start-stop-daemon's fork: only a vanished process has failed.
      if (!running(pid)) {
        const log = (await fs.promises.readFile(f.log, "utf8").catch(() => "")).trim().split("\n").slice(-5).join("\n");
        await this.stop(f);
        throw new Error(`registry "${spec.name}" exited at start (it is left stopped): ${log || "no output"}`);
      }
      if (alive(pid) && (await answers(spec.address, spec.port))) return (await this.inspect(spec.name))!;
      if (Date.now() > deadline) {
        await this.stop(f);
        throw new Error(`registry "${spec.name}" did not listen on ${spec.address}:${spec.port} within ${START_TIMEOUT_MS / 1000} s (it is left stopped)`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async inspect(name: string): Promise<RegistryInfo | undefined> {
    checkName("registry", name);
    const f = this.files(name);
    const spec = await readJson<RegistrySpec>(f.spec);
    if (!spec) return undefined;
    const pid = Number(await fs.promises.readFile(f.pid, "utf8").catch(() => "0"));
    const running = pid > 0 && alive(pid);
    const scheme = spec.tls ? "https" : "http";
    const host = spec.address === "0.0.0.0" ? "127.0.0.1" : spec.address;
    return {
      name,
      url: `${scheme}://${host}:${spec.port}`,
      endpoint: `${host}:${spec.port}`,
      status: running ? "running" : "stopped",
      pid: running ? pid : undefined,
      spec,
    };
  }

  async list(): Promise<string[]> {
    const dir = path.join(this.paths.root, "registries");
    const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
    return names.filter((n) => fs.existsSync(this.files(n).spec)).sort();
  }

  /** Stops the process; the storage is the caller's (a volume) and stays. */
  async remove(name: string): Promise<void> {
    checkName("registry", name);
    const f = this.files(name);
    await this.locked(name, async () => {
      await this.stop(f);
      await fs.promises.rm(f.dir, { recursive: true, force: true });
    });
  }

  private async stop(f: Files): Promise<void> {
    if (!fs.existsSync(f.pid)) return;
    const pid = Number(await fs.promises.readFile(f.pid, "utf8").catch(() => "0"));
    // Only a docker-registry started from this pid file is ours to stop.
    if (pid > 0 && alive(pid)) {
      await this.host.run("start-stop-daemon", ["--stop", "--oknodo", "--pidfile", f.pid, "--exec", BINARY, "--retry", "TERM/5/KILL/2"]);
    }
    await fs.promises.rm(f.pid, { force: true });
  }
}
