// The one place that decides which runtime a provider configuration reaches: this machine's native runtime, or
// berth's agent on another machine over SSH (native/remote). Everything else asks here, so a provider, the plugin,
// the day-2 commands and `berth host check` all reach a host the same way.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createNativeRuntime, DEFAULT_ROOT, rootOf } from "../native";
import type { Runtime } from "../native/runtime";
import { remoteRuntime } from "../native/remote/client";
import { parseSshUrl } from "../sdk/schema";
import type { ProviderConfig } from "./resources";

/** A runtime with an end: a remote one holds an SSH connection until closed. */
export type HostRuntime = Runtime & { close(): Promise<void>; readonly host: string };

/** How a local runtime names its host in messages. */
export const THIS_MACHINE = "this machine";

/** `~` and `~/…` as the user's home directory (identityFile), as OpenSSH reads them. */
export function expandHome(file: string): string {
  return file === "~" || file.startsWith("~/") ? path.join(os.homedir(), file.slice(1)) : file;
}

/** The runtime of one provider configuration: this machine's own, or berth's agent on `host`. */
export function openRuntime(config: ProviderConfig): HostRuntime {
  if (!config.host) {
    const local = createNativeRuntime({ root: config.root, runDir: config.runDir });
    return { ...local, host: THIS_MACHINE, close: async () => undefined };
  }
  return remoteRuntime({
    url: config.host,
    identityFile: config.identityFile && expandHome(config.identityFile),
    sshOptions: config.sshOptions,
    root: config.root,
  });
}

/**
 * Which machine and which berth root a configuration reaches, as keys: what is exclusive on a machine (host
 * ports, bridges, macvlan parents) is compared per `machine`, named objects per `root`. Two roots on this
 * machine are two roots of one machine; `ssh://a` and `ssh://root@a:22` are one machine, and so are a name and
 * the address this machine's files give it (ssh's config HostName/Port, /etc/hosts); ssh to loopback port 22 is
 * this machine. A name known only to DNS is
 * not looked up (a preview makes no network round trip): such a name and its address count as two machines.
 * No root is the default root: this machine's $BERTH_ROOT or /var/lib/berth; the agent's /var/lib/berth.
 */
export function targetOf(config: ProviderConfig): { machine: string; root: string } {
  const ssh = config.host ? parseSshUrl(config.host) : undefined;
  const machine = ssh ? machineOf(ssh.host, ssh.port, config.sshOptions) : THIS_MACHINE;
  return { machine, root: `${machine} ${rootIn(config)}` };
}

/** The berth root a configuration names, the default one filled in (an agent's environment is taken to set none). */
export const rootIn = (config: { host?: string; root?: string }): string =>
  normalRoot(config.host ? (config.root ?? DEFAULT_ROOT) : rootOf(config.root));

/** "/srv/berth/" and "/srv//berth" are "/srv/berth". */
export const normalRoot = (root: string): string => path.posix.normalize(root).replace(/(.)\/+$/, "$1");

const machines = new Map<string, string>();
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1)$/;

/** "ssh://ADDRESS:PORT" of the machine ssh would reach, from this machine's files only; cached per process. */
function machineOf(host: string, port: number | undefined, sshOptions: string[] = []): string {
  const key = JSON.stringify([host, port, sshOptions]);
  let machine = machines.get(key);
  if (machine === undefined) {
    const seen = sshView(host, port, sshOptions);
    const name = seen?.hostname ?? host.toLowerCase();
    const address = hostsFileAddress(name) ?? name;
    const sshPort = seen?.port ?? port ?? 22;
    // sshd on this machine's loopback is this machine; another port may be forwarded to a VM, so it is not.
    machine = LOOPBACK.test(address) && sshPort === 22 ? THIS_MACHINE : `ssh://${address}:${sshPort}`;
    machines.set(key, machine);
  }
  return machine;
}

/** What `ssh -G` says it would connect to (its config applied, nothing sent); undefined without ssh. */
function sshView(host: string, port: number | undefined, sshOptions: string[]): { hostname?: string; port?: number } | undefined {
  const args = ["-G", ...sshOptions.flatMap((o) => ["-o", o]), ...(port ? ["-p", String(port)] : []), "--", host];
  const out = spawnSync("ssh", args, { encoding: "utf8", timeout: 5000 });
  if (out.status !== 0 || !out.stdout) return undefined;
  const value = (k: string) => new RegExp(`^${k} (\\S+)$`, "m").exec(out.stdout)?.[1];
  const p = Number(value("port"));
  return { hostname: value("hostname")?.toLowerCase(), port: Number.isInteger(p) && p > 0 ? p : undefined };
}

/** The address /etc/hosts gives a name (the first line naming it, as the resolver reads it). */
function hostsFileAddress(name: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync("/etc/hosts", "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [address, ...names] = line.replace(/#.*/, "").trim().split(/\s+/);
    if (address && names.some((n) => n.toLowerCase() === name)) return address.toLowerCase();
  }
  return undefined;
}

/**
 * One runtime per configuration for as long as a command runs, closed at its end: every resource of a provider,
 * and every provider with the same configuration, share one connection.
 */
export class RuntimePool {
  private readonly open = new Map<string, Runtime>();
  private readonly closers: Array<() => Promise<void>> = [];

  constructor(private readonly make: (config: ProviderConfig) => Runtime) {}

  get(config: ProviderConfig): Runtime {
    const key = JSON.stringify([config.host, config.identityFile, config.sshOptions, config.root, config.runDir]);
    let rt = this.open.get(key);
    if (!rt) {
      rt = this.make(config);
      this.open.set(key, rt);
      const close = (rt as Partial<HostRuntime>).close;
      if (close) this.closers.push(() => close.call(rt));
    }
    return rt;
  }

  async close(): Promise<void> {
    const closers = this.closers.splice(0);
    this.open.clear();
    await Promise.allSettled(closers.map((close) => close()));
  }
}
