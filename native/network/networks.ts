// Networks: a record per network under root/networks/<name>/, its host side (a bridge, or a macvlan parent with
// an optional shim), and its address pool. The default "bridge" network is made on a container's first use, like
// Docker's docker0, on a subnet no host route uses, and removed with its last container.
import * as fs from "node:fs";
import * as path from "node:path";
import type { InputProblem, NetworkInfo, NetworkSpec, Networks } from "../runtime";
import type { Host } from "../host/exec";
import { layout, type Paths } from "../paths";
import { checkName } from "../names";
import { hostLinks, linkExists } from "../host/probe";
import { ownerAlive, self, withLock, writeLinked } from "../lock";
import { listDir, readJson, writeJson } from "../json-file";
import { canonicalJson } from "../canonical-json";
import { coveringSubnet, formatSubnet, overlaps, parseIPv4, parseSubnet, type Subnet } from "./cidr";
import { bridgeFaults, ensureBridge, removeBridge } from "./bridge";
import { ensureMacvlan, macvlanFaults, removeMacvlan } from "./macvlan";
import { fileIpam, makePool, type Ipam } from "./ipam";
import type { Iptables } from "./iptables";
import { DEFAULT_NETWORK, derivedBridge, keepFormerNames, NetworkInputError, refusePredefined, resolveNetwork, type NetworkHost, type NetworkRecord } from "./options";

export type { NetworkRecord } from "./options";
export { DEFAULT_NETWORK };
/** A default-subnet claim whose network did not appear within this long was left by a failed attempt. */
const STALE_CLAIM_MS = 60_000;
/** The IPAM owner of a macvlan network's host shim address (no container name contains "#"). */
const SHIM_OWNER = "#host-shim";
/**
 * IPAM owner of a build's RUN steps, "#build-PID.START-ID": its process, as a lock's owner is (no container name
 * starts with "#"). An older berth wrote "#build-PID-ID".
 */
export const buildOwner = (id: string): string => `#build-${process.pid}.${self().start}-${id}`;
/** A build owner whose process is gone (killed mid-build): its claim holds nothing up. */
export function staleBuildOwner(owner: string): boolean {
  const m = /^#build-(\d+)(?:\.(\d+))?-/.exec(owner);
  if (!m) return false;
  return m[2] === undefined ? !fs.existsSync(`/proc/${m[1]}`) : !ownerAlive({ pid: Number(m[1]), start: Number(m[2]) });
}
/** Fields a live network can change; any other difference means removing and re-creating it. */
const IN_PLACE: (keyof NetworkRecord)[] = ["nat", "internal", "shim"];

const describe = (n: NetworkRecord): string =>
  `driver ${n.driver}, subnet ${n.subnet}, gateway ${n.gateway}` + (n.ipRange ? `, ip range ${n.ipRange}` : "");
const withoutInPlace = (n: NetworkRecord): string =>
  canonicalJson(Object.fromEntries(Object.entries(n).filter(([k]) => !IN_PLACE.includes(k as keyof NetworkRecord))));

export class BridgeNetworks implements Networks {

  constructor(
    private readonly host: Host,
    private readonly paths: Paths,
    private readonly iptables: Iptables,
  ) {}

  /** Where this root's networks are made: resolveNetwork derives their interface names from the root. */
  private get on(): NetworkHost {
    return { links: hostLinks, root: this.paths.root };
  }

  async create(spec: NetworkSpec): Promise<NetworkInfo> {
    refusePredefined(spec.name);
    const want = resolveNetwork(spec, this.on);
    return this.locked(() => this.make(want));
  }

  /** Network changes one at a time across berth processes, so the overlap check sees every network made before. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(path.join(this.paths.locks, "networks"), fn, { what: `the networks of ${this.paths.root}` });
  }

  async inspect(name: string): Promise<NetworkInfo | undefined> {
    checkName("network", name);
    const rec = await this.record(name);
    return rec && this.describe(rec);
  }

  async remove(name: string): Promise<void> {
    checkName("network", name);
    await this.locked(async () => {
      const rec = await this.record(name);
      // The record is written before any host object: without it there is nothing of ours on the host.
      if (rec) {
        const attached = await this.attached(rec);
        if (attached.length > 0) {
          throw new Error(`network "${name}" still has containers attached (${attached.join(", ")}): remove them first`);
        }
        await this.removeHostSide(rec);
      }
      await fs.promises.rm(this.paths.network(name).dir, { recursive: true, force: true });
    });
  }

  record(name: string): Promise<NetworkRecord | undefined> {
    return readJson<NetworkRecord>(this.paths.network(name).record);
  }

  ipam(rec: NetworkRecord): Ipam {
    const subnet = parseSubnet(rec.subnet);
    return fileIpam(this.paths.network(rec.network).ips, {
      subnet,
      range: rec.ipRange === undefined ? undefined : parseSubnet(rec.ipRange),
      reserved: [rec.gateway, ...Object.values(rec.auxAddresses)].map((a) => parseIPv4(a)!),
    });
  }

  /** The default network, made now if this root has none. */
  ensureDefault(): Promise<NetworkRecord> {
    return this.locked(() => this.makeDefault());
  }

  /**
   * An address for owner on the network (the default one when none is named, made now if missing; `ip` when
   * given), in one step under the lock: another process's removal of the network — the default one goes with its
   * last container — cannot come between finding the network and holding an address on it.
   */
  attach(owner: string, net?: NetworkRecord, ip?: string): Promise<{ rec: NetworkRecord; ip: string }> {
    return this.locked(async () => {
      const rec = net ? await this.record(net.network) : await this.makeDefault();
      if (!rec) throw new Error(`network "${net!.network}" was removed while container "${owner}" was joining it`);
      const ipam = this.ipam(rec);
      return { rec, ip: ip !== undefined ? await ipam.claim(owner, ip) : await ipam.allocate(owner) };
    });
  }

  private async makeDefault(): Promise<NetworkRecord> {
    const existing = await this.record(DEFAULT_NETWORK);
    if (existing) return (await this.make(existing), existing);
    const taken = [...(await this.records()).map((r) => parseSubnet(r.subnet)), ...(await this.hostRoutes())];
    for (let second = 17; second <= 31; second++) {
      const subnet = parseSubnet(`172.${second}.0.0/16`);
      if (taken.some((t) => overlaps(t, subnet)) || !(await this.claimDefaultSubnet(second))) continue;
      const rec = resolveNetwork({ name: DEFAULT_NETWORK, subnet: formatSubnet(subnet), nat: true }, this.on);
      await this.make(rec);
      return rec;
    }
    throw new Error("no free subnet for the default bridge network in 172.17.0.0-172.31.255.255: name a network");
  }

  /**
   * Another berth root making its default network at the same moment sees no route for it yet: a claim file per
   * candidate subnet, made exclusively, settles who gets it. A claim whose root has no default network is stale.
   */
  private async claimDefaultSubnet(second: number): Promise<boolean> {
    const dir = this.paths.defaultSubnetClaims;
    const file = path.join(dir, `172.${second}.0.0-16`);
    await fs.promises.mkdir(dir, { recursive: true });
    // Every root's claims change under one host-wide lock, so a stale claim is removed by one process only.
    return withLock(`${dir}.lock`, async () => {
      if (await writeLinked(file, this.paths.root)) return true;
      const holder = await fs.promises.readFile(file, "utf8").catch(() => "");
      if (holder === this.paths.root) return true;
      // Stale: its root has no default network (any more), and the claim is not one made moments ago.
      const age = Date.now() - (await fs.promises.stat(file).then((st) => st.mtimeMs, () => 0));
      const made = holder !== "" && fs.existsSync(layout(holder, dir).network(DEFAULT_NETWORK).record);
      if (made || age < STALE_CLAIM_MS) return false;
      await fs.promises.rm(file, { force: true });
      return writeLinked(file, this.paths.root);
    }, { what: "the default-network subnet claims" });
  }

  private async releaseDefaultSubnet(subnet: string): Promise<void> {
    const file = path.join(this.paths.defaultSubnetClaims, subnet.replace("/", "-"));
    if ((await fs.promises.readFile(file, "utf8").catch(() => "")) === this.paths.root) await fs.promises.rm(file, { force: true });
  }

  /** Removes the default network once no container uses it. */
  async releaseDefault(): Promise<void> {
    const rec = await this.record(DEFAULT_NETWORK);
    if (rec && (await this.attached(rec)).length === 0) {
      await this.remove(DEFAULT_NETWORK).catch(() => undefined);
      if (!(await this.record(DEFAULT_NETWORK))) await this.releaseDefaultSubnet(rec.subnet);
    }
  }

  private async make(asked: NetworkRecord): Promise<NetworkInfo> {
    const name = asked.network;
    const existing = await this.record(name);
    // The 802.1q link berth made at first create exists now, so the spec resolves without it: still berth's to remove.
    const named = keepFormerNames(existing, asked, this.paths.root);
    const want = existing?.vlan && !named.vlan && existing.bridge === named.bridge ? { ...named, vlan: existing.vlan } : named;
    if (existing && withoutInPlace(existing) !== withoutInPlace(want)) {
      throw new Error(
        `network "${name}" already exists with ${describe(existing)}: remove it before creating it with ${describe(want)}`,
      );
    }
    const conflict = await this.conflictOf(want, existing);
    if (conflict) throw conflict;
    const p = this.paths.network(name);
    makePool(p.ips);
    await writeJson(p.record, want);
    try {
      await this.ensureHostSide(want, existing);
    } catch (e) {
      // A network that never came up leaves nothing behind; a live one keeps its old record.
      if (existing) await writeJson(p.record, existing);
      else await this.removeHostSide(want).then(() => fs.promises.rm(p.dir, { recursive: true, force: true }));
      throw e;
    }
    return this.describe(want);
  }

  /** Why this spec could not be made now on this host (read only: a preview's check). */
  async conflicts(spec: NetworkSpec, except: string[] = []): Promise<InputProblem | undefined> {
    let want: NetworkRecord;
    try {
      refusePredefined(spec.name);
      want = resolveNetwork(spec, this.on);
    } catch (e) {
      if (e instanceof NetworkInputError) return { field: e.field, reason: e.message };
      throw e;
    }
    const conflict = await this.conflictOf(want, await this.record(want.network), except);
    return conflict && { field: conflict.field, reason: conflict.message };
  }

  private async conflictOf(want: NetworkRecord, existing: NetworkRecord | undefined, except: string[] = []): Promise<NetworkInputError | undefined> {
    const name = want.network;
    if (!existing && want.driver === "bridge" && linkExists(want.bridge)) {
      return new NetworkInputError(
        want.bridge === derivedBridge(this.paths.root, name) ? "name" : "bridgeName",
        `network "${name}": bridge ${want.bridge} already exists on this host and is not this network's; ` +
          "pick another name or bridgeName, or delete the bridge if nothing uses it",
      );
    }
    for (const other of await this.records()) {
      if (other.network === name || except.includes(other.network)) continue;
      if (overlaps(parseSubnet(other.subnet), parseSubnet(want.subnet))) {
        return new NetworkInputError(
          "subnet",
          `Pool overlaps with other one on this address space: ${want.subnet} overlaps ${other.subnet} of network "${other.network}"`,
        );
      }
      if (want.driver === "macvlan" && other.driver === "macvlan" && other.bridge === want.bridge) {
        return new NetworkInputError("parent", `network ${other.network} is already using parent interface ${want.bridge}`);
      }
    }
    return undefined;
  }

  private async ensureHostSide(rec: NetworkRecord, old: NetworkRecord | undefined): Promise<void> {
    if (rec.driver === "bridge") return ensureBridge(this.host, this.iptables, this.paths.root, rec);
    const ipam = this.ipam(rec);
    if (old?.shim && !rec.shim) {
      await removeMacvlan(this.host, { ...old, vlan: undefined });
      await ipam.release(SHIM_OWNER);
    }
    const shimIp = rec.shim ? ((await this.shimIp(rec)) ?? (await ipam.allocate(SHIM_OWNER))) : undefined;
    await ensureMacvlan(this.host, rec, shimIp);
  }

  private async removeHostSide(rec: NetworkRecord): Promise<void> {
    if (rec.driver === "bridge") await removeBridge(this.host, this.iptables, this.paths.root, rec);
    else await removeMacvlan(this.host, rec);
  }

  private async shimIp(rec: NetworkRecord): Promise<string | undefined> {
    return (await this.ipam(rec).list()).find((a) => a.owner === SHIM_OWNER)?.ip;
  }

  private async attached(rec: NetworkRecord): Promise<string[]> {
    return (await this.ipam(rec).owners()).filter((o) => o !== SHIM_OWNER && !staleBuildOwner(o));
  }

  async list(): Promise<string[]> {
    return (await this.records()).map((r) => r.network);
  }

  async records(): Promise<NetworkRecord[]> {
    const all = await Promise.all((await listDir(this.paths.networks)).map((n) => this.record(n)));
    return all.filter((r): r is NetworkRecord => r !== undefined);
  }

  /** Destinations the host routes already (its own networks, other roots' bridges), but not the default route. */
  private async hostRoutes(): Promise<Subnet[]> {
    const routes = JSON.parse(await this.host.run("ip", ["-j", "-4", "route", "show"])) as { dst: string }[];
    return routes.map((r) => coveringSubnet(r.dst)).filter((s): s is Subnet => s !== undefined && s.prefix > 0);
  }

  private async describe(rec: NetworkRecord): Promise<NetworkInfo> {
    const faults =
      rec.driver === "bridge"
        ? await bridgeFaults(this.host, this.iptables, this.paths.root, rec)
        : await macvlanFaults(this.host, rec, await this.shimIp(rec));
    return {
      name: rec.network,
      driver: rec.driver,
      bridge: rec.bridge,
      subnet: rec.subnet,
      gateway: rec.gateway,
      nat: rec.nat,
      faults,
    };
  }
}
