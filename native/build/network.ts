// The network of RUN steps, as Docker gives a build: an address on berth's default bridge network (NAT to
// whatever the host reaches), in a namespace the build's steps run in one after the other, plus resolv.conf and
// hosts files for them. The address is held for the whole build under an IPAM owner starting with "#" (no container name does), so the
// default network is not removed while the build may use it, and is released (the network with it, when no
// container uses it) when the build ends.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Host } from "../host/exec";
import { vethName } from "../names";
import { DEFAULT_NETWORK, buildOwner, staleBuildOwner, type BridgeNetworks, type NetworkRecord } from "../network/networks";
import { configure, macFor, plug, unplug, type AttachmentRecord } from "../network/attach";
import { parseSubnet } from "../network/cidr";
import type { Bind } from "../container/spec";

/** One build's place on the network: an address and a namespace, held from its first networked RUN to its end. */
export interface BuildNetwork {
  netnsPath: string;
  /** /etc/resolv.conf and /etc/hosts for its steps. */
  binds: Bind[];
  release(): Promise<void>;
}

/** Attaches a build (by a short unique id); its files are written under dir. */
export type StepNetworks = (id: string, dir: string) => Promise<BuildNetwork>;

/** The host's resolv.conf without loopback nameservers (a resolver on the host's loopback is not the step's). */
async function resolvConf(): Promise<string> {
  const text = await fs.promises.readFile("/etc/resolv.conf", "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => !/^\s*nameserver\s+(127\.|::1\b)/.test(l))
    .join("\n");
}

/** A build's namespace, named by its IPAM owner's id ("#build-PID.START-ID" → "berth-build-ID"). */
const netnsOf = (owner: string): string => `berth-build-${owner.replace(/^#build-[\d.]+-/, "")}`;

/** A build's interface on the default network: a veth pair from its bridge. */
function attachment(net: NetworkRecord, owner: string, ip: string): AttachmentRecord {
  return {
    network: DEFAULT_NETWORK,
    driver: "bridge",
    ifname: "eth0",
    hostIf: vethName(owner),
    device: net.bridge,
    ip,
    prefix: parseSubnet(net.subnet).prefix,
    gateway: net.gateway,
    mac: macFor(ip),
    aliases: [],
    mtu: net.mtu,
    defaultRoute: !net.internal,
  };
}

export function bridgeStepNetworks(host: Host, networks: BridgeNetworks): StepNetworks {
  return async (id, dir) => {
    const owner = buildOwner(id);
    // The default network found (or made) and an address held on it in one step: no removal comes between.
    const { rec: net, ip } = await networks.attach(owner);
    const ipam = networks.ipam(net);
    // What a build killed midway left: its namespace, veth and address.
    for (const stale of (await ipam.list()).filter((x) => staleBuildOwner(x.owner))) {
      await unplug(host, { mode: "networks", netns: netnsOf(stale.owner), attachments: [attachment(net, stale.owner, stale.ip)], ports: [] }).catch(() => undefined);
      await ipam.release(stale.owner);
    }
    const netns = netnsOf(owner);
    const a = attachment(net, owner, ip);
    const release = async () => {
      await unplug(host, { mode: "networks", netns, attachments: [a], ports: [] });
      await fs.promises.rm(dir, { recursive: true, force: true });
      await ipam.release(owner);
      await networks.releaseDefault();
    };
    try {
      await plug(host, netns, [a]);
      await configure(host, netns, [a]);
      await fs.promises.mkdir(dir, { recursive: true, mode: 0o755 });
      const files = { resolv: path.join(dir, "resolv.conf"), hosts: path.join(dir, "hosts") };
      await fs.promises.writeFile(files.resolv, await resolvConf(), { mode: 0o644 });
      await fs.promises.writeFile(files.hosts, `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${ip}\tberth-build\n`, { mode: 0o644 });
      return {
        netnsPath: `/run/netns/${netns}`,
        binds: [
          { source: files.resolv, destination: "/etc/resolv.conf", readOnly: true },
          { source: files.hosts, destination: "/etc/hosts", readOnly: true },
        ],
        release,
      };
    } catch (e) {
      await release().catch(() => undefined);
      throw e;
    }
  };
}
