// Networks: a record per network under root/networks/<name>/, its bridge on the host, and its address pool.
import * as fs from "node:fs";
import type { NetworkInfo, NetworkSpec, Networks } from "../runtime";
import type { Host } from "../host/exec";
import type { Paths } from "../paths";
import { bridgeName, checkName } from "../names";
import { linkExists } from "../host/probe";
import { KeyedMutex } from "../mutex";
import { canonicalJson, listDir, readJson, writeJson } from "../json-file";
import { formatIPv4, formatSubnet, isHostAddress, overlaps, parseIPv4, parseSubnet } from "./cidr";
import { bridgeFaults, ensureBridge, removeBridge, type BridgeNetwork } from "./bridge";
import { fileIpam, type Ipam } from "./ipam";
import type { Iptables } from "./iptables";

export type NetworkRecord = BridgeNetwork;

const describe = (n: NetworkRecord): string => `subnet ${n.subnet}, gateway ${n.gateway}, nat ${n.nat}`;

export class BridgeNetworks implements Networks {
  // Creates are serialized so the overlap check sees every network made before.
  private readonly mutex = new KeyedMutex();

  constructor(
    private readonly host: Host,
    private readonly paths: Paths,
    private readonly iptables: Iptables,
  ) {}

  async create(spec: NetworkSpec): Promise<NetworkInfo> {
    const want = this.validate(spec);
    return this.mutex.run("create", async () => {
      const existing = await this.record(spec.name);
      if (existing && canonicalJson(existing) !== canonicalJson(want)) {
        throw new Error(
          `network "${spec.name}" already exists with ${describe(existing)}: ` +
            `remove it before creating it with ${describe(want)}`,
        );
      }
      if (!existing && linkExists(want.bridge)) {
        throw new Error(
          `network "${spec.name}": bridge ${want.bridge} already exists on this host, so another berth root uses ` +
            "this name; pick another name",
        );
      }
      for (const name of await listDir(this.paths.networks)) {
        const other = name === spec.name ? undefined : await this.record(name);
        if (other && overlaps(parseSubnet(other.subnet), parseSubnet(want.subnet))) {
          throw new Error(
            `subnet ${want.subnet} of network "${spec.name}" overlaps ${other.subnet} of network "${name}"`,
          );
        }
      }
      const p = this.paths.network(spec.name);
      await fs.promises.mkdir(p.ips, { recursive: true });
      await writeJson(p.record, want);
      await ensureBridge(this.host, this.iptables, want);
      return this.describe(want);
    });
  }

  async inspect(name: string): Promise<NetworkInfo | undefined> {
    checkName("network", name);
    const rec = await this.record(name);
    return rec && this.describe(rec);
  }

  async remove(name: string): Promise<void> {
    checkName("network", name);
    const rec = await this.record(name);
    // The record is written before any host object: without it there is nothing of ours on the host.
    if (rec) {
      const attached = (await this.ipam(rec).list()).map((a) => a.owner);
      if (attached.length > 0) {
        throw new Error(`network "${name}" still has containers attached (${attached.join(", ")}): remove them first`);
      }
      await removeBridge(this.host, this.iptables, name, rec.bridge);
    }
    await fs.promises.rm(this.paths.network(name).dir, { recursive: true, force: true });
  }

  record(name: string): Promise<NetworkRecord | undefined> {
    return readJson<NetworkRecord>(this.paths.network(name).record);
  }

  ipam(rec: NetworkRecord): Ipam {
    return fileIpam(this.paths.network(rec.network).ips, parseSubnet(rec.subnet), parseIPv4(rec.gateway) ?? 0);
  }

  private validate(spec: NetworkSpec): NetworkRecord {
    checkName("network", spec.name);
    const subnet = parseSubnet(spec.subnet);
    const gateway = spec.gateway === undefined ? subnet.base + 1 : parseIPv4(spec.gateway);
    if (gateway === undefined || !isHostAddress(subnet, gateway)) {
      throw new Error(
        `invalid gateway "${spec.gateway}" for network "${spec.name}": it must be a host address inside ${spec.subnet}`,
      );
    }
    return {
      network: spec.name,
      bridge: bridgeName(spec.name),
      subnet: formatSubnet(subnet),
      gateway: formatIPv4(gateway),
      nat: spec.nat,
    };
  }

  private async describe(rec: NetworkRecord): Promise<NetworkInfo> {
    return {
      name: rec.network,
      bridge: rec.bridge,
      subnet: rec.subnet,
      gateway: rec.gateway,
      nat: rec.nat,
      faults: await bridgeFaults(this.host, this.iptables, rec),
    };
  }
}
