// berth's native runtime: containers on the host kernel through runc, iproute2 and iptables, no daemon.
import * as fs from "node:fs";
import type { Runtime } from "./runtime";
import { realHost, type Host } from "./host/exec";
import { layout } from "./paths";
import { ContentStore } from "./image/store";
import { NativeImages } from "./image/images";
import { bridgeStepNetworks } from "./build/network";
import { RegistryServers } from "./registry/server";
import { BridgeNetworks } from "./network/networks";
import { Iptables } from "./network/iptables";
import { PortClaims } from "./network/portmap";
import { ContainerNetworking } from "./network/container-net";
import { DirVolumes } from "./volume/volumes";
import { ContainerRecords } from "./container/record";
import { RuncContainers } from "./container/containers";
import { ensureSupervisor } from "./supervise/launch";
import { OwnerFiles } from "./owners";
import { NativeSystem } from "./system";
import { ensureLockDir } from "./lock-dir";

export * from "./runtime";
export { HostCommandError, realHost, type Host, type CommandResult, type RunOptions } from "./host/exec";

export interface NativeRuntimeOptions {
  /** Persistent state: images, volumes, container and network records. Default $BERTH_ROOT or /var/lib/berth. */
  root?: string;
  /** Volatile host-wide state (published-port claims). Default $BERTH_RUN or /run/berth. */
  runDir?: string;
  /** Where host side effects go; a fake one lets tests run without root. */
  host?: Host;
}

/**
 * berth's root is root's alone (0700): it holds secrets (records, OCI configs, logs) and image content (setuid
 * files of any image). Nothing in it needs another user's traversal: runc, overlayfs (which checks lower files
 * with the mounter's credentials) and bind mounts reach it as root, and a container's processes see only their
 * own mounts, whatever their uid. A shared directory (/, or sticky like /tmp) is refused rather than closed.
 */
function confineRoot(root: string): void {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  const st = fs.statSync(root);
  if ((st.mode & 0o777) !== 0o700) {
    if (root === "/" || st.mode & 0o1000) {
      throw new Error(`berth root ${root} is a shared directory: set BERTH_ROOT (or berth:root) to a directory of berth's own`);
    }
    fs.chmodSync(root, 0o700);
  }
  ensureLockDir(root);
}

/** Calls that only read a root: on one that does not exist they answer as on an empty one, and make nothing. */
const READS = new Set<PropertyKey>(["inspect", "list", "problems", "portTaken", "conflicts", "ownerOf", "df", "logs", "top", "diff", "stats"]);

/**
 * The runtime of a root that does not exist yet: made (confineRoot) at the first call that may write, so that a
 * preview, `ps` or `inspect` on a fresh root changes nothing on the host, not even a locks directory.
 */
function confinedOnWrite(rt: Runtime, root: string): Runtime {
  let confined = false;
  const wrap = <T extends object>(part: T): T =>
    new Proxy(part, {
      get(target, key) {
        const value = Reflect.get(target, key) as unknown;
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (!confined && (!READS.has(key) || fs.existsSync(root))) {
            confineRoot(root);
            confined = true;
          }
          return value.apply(target, args) as unknown;
        };
      },
    });
  return Object.fromEntries(Object.entries(rt).map(([k, part]) => [k, wrap(part as object)])) as unknown as Runtime;
}

/** The berth root of a machine whose environment names none. */
export const DEFAULT_ROOT = "/var/lib/berth";

/**
 * The berth root a runtime uses: the one given, else $BERTH_ROOT, else DEFAULT_ROOT. An empty one counts as none
 * (`BERTH_ROOT= berth …` made the working directory a root).
 */
export const rootOf = (root?: string): string => root || process.env.BERTH_ROOT || DEFAULT_ROOT;

export function createNativeRuntime(opts: NativeRuntimeOptions = {}): Runtime {
  const paths = layout(
    rootOf(opts.root),
    opts.runDir || process.env.BERTH_RUN || "/run/berth",
  );
  const host = opts.host ?? realHost;
  // Overlay mount options name layers under the root, joined by ',' and ':'.
  if (!opts.host && /[,:]/.test(paths.root)) {
    throw new Error(`berth root ${paths.root} has a ',' or ':' in its path, which an overlay mount cannot name: set BERTH_ROOT (or berth:root) to a path without them`);
  }
  // A fake host (unit tests) touches no disk.
  const fresh = !opts.host && !fs.existsSync(paths.root);
  if (!opts.host && !fresh) confineRoot(paths.root);
  const records = new ContainerRecords(paths);
  const iptables = new Iptables(host);
  const store = new ContentStore(host, paths, async () => (await records.list()).map((r) => r.layers ?? []));
  const networks = new BridgeNetworks(host, paths, iptables);
  const volumes = new DirVolumes(paths, async (volume) =>
    (await records.list())
      .filter((r) => r.dataMounts?.some((m) => m.source === paths.volume(volume).data))
      .map((r) => r.spec.name),
  );
  const ports = new PortClaims(paths);
  const net = new ContainerNetworking(host, paths, networks, iptables, ports);
  // A fake host (unit tests) has no containers to supervise.
  const supervise = opts.host ? async () => undefined : () => ensureSupervisor(paths.root);
  // Whatever command opens a root with containers makes sure they are supervised (after a double fault, see
  // supervise/launch.ts, nothing else would).
  if (!opts.host && fs.existsSync(paths.containers) && fs.readdirSync(paths.containers).length > 0) {
    void supervise().catch((e: Error) => console.error(`berth: starting the supervisor of ${paths.root} failed: ${e.message}`));
  }
  const containers = new RuncContainers({ host, paths, images: store, records, net, supervise });
  const registries = new RegistryServers(host, paths);
  const owners = new OwnerFiles(paths.root);
  const images = new NativeImages(host, store, bridgeStepNetworks(host, networks));
  const system = new NativeSystem(paths, store, records, containers, owners, (o) => images.pruneBuildCache(o));
  const rt = { images, system, networks, volumes, containers, registries, owners };
  return fresh ? confinedOnWrite(rt, paths.root) : rt;
}
