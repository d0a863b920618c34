// A network's host side: a Linux bridge holding the gateway address, IP forwarding, and its iptables rules
// (forwarding in and out of the bridge, masquerading).
import type { Host } from "../host/exec";
import { linkExists, linkIsUp, readSysctl } from "../host/probe";
import { Chain, type Iptables, type Rule } from "./iptables";

export interface BridgeNetwork {
  network: string;
  bridge: string;
  /** "10.89.0.0/24" */
  subnet: string;
  gateway: string;
  nat: boolean;
}

/** Prefix of the iptables tags of a network's rules. */
const networkTag = (network: string): string => `berth:net:${network}:`;

const prefixOf = (n: BridgeNetwork): string => n.subnet.split("/")[1];

function bridgeRules(n: BridgeNetwork): Rule[] {
  const tag = networkTag(n.network);
  const rules: Rule[] = [
    { table: "filter", chain: Chain.forward, args: ["-i", n.bridge, "-j", "ACCEPT"], tag: `${tag}from-bridge` },
    { table: "filter", chain: Chain.forward, args: ["-o", n.bridge, "-j", "ACCEPT"], tag: `${tag}to-bridge` },
    // A port published on 127.0.0.1 is DNATed onto the bridge with a loopback source (route_localnet lets it
    // leave); masquerading gives the container an address it can answer.
    {
      table: "nat",
      chain: Chain.postrouting,
      args: ["-s", "127.0.0.0/8", "-o", n.bridge, "-j", "MASQUERADE"],
      tag: `${tag}localhost`,
    },
  ];
  if (n.nat) {
    rules.push({
      table: "nat",
      chain: Chain.postrouting,
      args: ["-s", n.subnet, "!", "-o", n.bridge, "-j", "MASQUERADE"],
      tag: `${tag}masquerade`,
    });
  }
  return rules;
}

export async function ensureBridge(host: Host, iptables: Iptables, n: BridgeNetwork): Promise<void> {
  const cmds = linkExists(n.bridge) ? [] : [`link add ${n.bridge} type bridge`];
  cmds.push(`addr replace ${n.gateway}/${prefixOf(n)} dev ${n.bridge}`, `link set ${n.bridge} up`);
  await host.run("ip", ["-batch", "-"], { input: cmds.join("\n") + "\n" });
  await host.writeSysctl("net.ipv4.ip_forward", "1");
  await host.writeSysctl(`net.ipv4.conf.${n.bridge}.route_localnet`, "1");
  await iptables.ensure(bridgeRules(n));
}

/** Tolerates any part being gone already. */
export async function removeBridge(host: Host, iptables: Iptables, network: string, bridge: string): Promise<void> {
  await iptables.removeTagged(networkTag(network));
  if (linkExists(bridge)) await host.run("ip", ["link", "del", bridge]);
}

export async function bridgeFaults(host: Host, iptables: Iptables, n: BridgeNetwork): Promise<string[]> {
  const faults: string[] = [];
  if (!linkExists(n.bridge)) {
    faults.push(`bridge ${n.bridge} is missing`);
  } else {
    if (!linkIsUp(n.bridge)) faults.push(`bridge ${n.bridge} is down`);
    const [link] = JSON.parse(await host.run("ip", ["-j", "-4", "addr", "show", "dev", n.bridge])) as {
      addr_info?: { local: string; prefixlen: number }[];
    }[];
    const want = `${n.gateway}/${prefixOf(n)}`;
    if (!link?.addr_info?.some((a) => `${a.local}/${a.prefixlen}` === want)) {
      faults.push(`bridge ${n.bridge} lacks gateway address ${want}`);
    }
  }
  if (readSysctl("net.ipv4.ip_forward") !== "1") faults.push("net.ipv4.ip_forward is off");
  faults.push(...(await iptables.missing(bridgeRules(n))));
  return faults;
}
