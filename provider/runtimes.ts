// The one place that decides which runtime a provider configuration reaches: this machine's native runtime, or
// berth's agent on another machine over SSH (native/remote). Everything else asks here, so a provider, the plugin,
// the day-2 commands and `berth host check` all reach a host the same way.
import * as os from "node:os";
import * as path from "node:path";
import { createNativeRuntime } from "../native";
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
 * machine are two roots of one machine; `ssh://a` and `ssh://root@a:22` are one machine.
 */
export function targetOf(config: ProviderConfig): { machine: string; root: string; label: string } {
  const ssh = config.host ? parseSshUrl(config.host) : undefined;
  const machine = ssh ? `ssh://${ssh.host.toLowerCase()}:${ssh.port ?? 22}` : THIS_MACHINE;
  const root = config.root ?? (ssh ? "(the agent's root)" : (process.env.BERTH_ROOT ?? "/var/lib/berth"));
  return { machine, root: `${machine} ${root}`, label: config.host ?? THIS_MACHINE };
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
