// A network's host side: a Linux bridge holding the gateway address, IP forwarding, and its iptables rules
// (forwarding in and out of the bridge, or only within it when internal; masquerading).
import type { Host } from "../host/exec";
import { linkExists, linkIsUp, readSysctl } from "../host/probe";
import { Chain, type Iptables, type Rule } from "./iptables";
import type { NetworkRecord } from "./options";
import { rootId } from "../names";

export type BridgeNetwork = Pick<NetworkRecord, "network" | "bridge" | "subnet" | "gateway" | "nat" | "internal" | "mtu">;

/**
 * Prefix of the iptables tags of a network's rules: the root's id and the network's name, so that two roots with a
 * network of the same name never touch each other's rules.
 */
export const networkTag = (root: string, network: string): string => `berth:net@${rootId(root)}:${network}:`;
/** The tag prefix before the root was part of it; such rules are taken over when their rule matches exactly. */
const formerNetworkTag = (network: string): string => `berth:net:${network}:`;

const prefixOf = (n: BridgeNetwork): string => n.subnet.split("/")[1];

function bridgeRules(root: string, n: BridgeNetwork): Rule[] {
  const tag = networkTag(root, n.network);
  const rule = (table: Rule["table"], chain: Rule["chain"], args: string[], what: string): Rule =>
    ({ table, chain, args, tag: `${tag}${what}`, formerTag: `${formerNetworkTag(n.network)}${what}` });
  const forward = (args: string[], what: string): Rule => rule("filter", Chain.forward, args, what);
  const rules: Rule[] = n.internal
    ? [
        forward(["-i", n.bridge, "-o", n.bridge, "-j", "ACCEPT"], "within-bridge"),
        forward(["-i", n.bridge, "-j", "DROP"], "internal-out"),
        forward(["-o", n.bridge, "-j", "DROP"], "internal-in"),
      ]
    : [forward(["-i", n.bridge, "-j", "ACCEPT"], "from-bridge"), forward(["-o", n.bridge, "-j", "ACCEPT"], "to-bridge")];
  rules.push(
    // A port published on 127.0.0.1 is DNATed onto the bridge with a loopback source (route_localnet lets it
    // leave); masquerading gives the container an address it can answer.
    rule("nat", Chain.postrouting, ["-s", "127.0.0.0/8", "-o", n.bridge, "-j", "MASQUERADE"], "localhost"),
  );
  if (n.nat) rules.push(rule("nat", Chain.postrouting, ["-s", n.subnet, "!", "-o", n.bridge, "-j", "MASQUERADE"], "masquerade"));
  return rules;
}

export async function ensureBridge(host: Host, iptables: Iptables, root: string, n: BridgeNetwork): Promise<void> {
  const cmds = linkExists(n.bridge) ? [] : [`link add ${n.bridge} type bridge`];
  if (n.mtu !== undefined) cmds.push(`link set ${n.bridge} mtu ${n.mtu}`);
  cmds.push(`addr replace ${n.gateway}/${prefixOf(n)} dev ${n.bridge}`, `link set ${n.bridge} up`);
  await host.run("ip", ["-batch", "-"], { input: cmds.join("\n") + "\n" });
  await host.writeSysctl("net.ipv4.ip_forward", "1");
  await host.writeSysctl(`net.ipv4.conf.${n.bridge}.route_localnet`, "1");
  // sync, not ensure: switching NAT or internal in place drops the rules that no longer apply.
  await iptables.sync(networkTag(root, n.network), bridgeRules(root, n));
}

/** Tolerates any part being gone already. */
export async function removeBridge(host: Host, iptables: Iptables, root: string, n: BridgeNetwork): Promise<void> {
  await iptables.removeTagged(networkTag(root, n.network), bridgeRules(root, n));
  if (linkExists(n.bridge)) await host.run("ip", ["link", "del", n.bridge]);
}

export async function bridgeFaults(host: Host, iptables: Iptables, root: string, n: BridgeNetwork): Promise<string[]> {
  const faults: string[] = [];
  if (!linkExists(n.bridge)) {
    faults.push(`bridge ${n.bridge} is missing`);
  } else {
    if (!linkIsUp(n.bridge)) faults.push(`bridge ${n.bridge} is down`);
    // Without -4, so the link (and its MTU) is listed even when it has no IPv4 address left.
    const [link] = JSON.parse(await host.run("ip", ["-j", "addr", "show", "dev", n.bridge])) as {
      mtu?: number;
      addr_info?: { family: string; local: string; prefixlen: number }[];
    }[];
    const want = `${n.gateway}/${prefixOf(n)}`;
    if (!link?.addr_info?.some((a) => a.family === "inet" && `${a.local}/${a.prefixlen}` === want)) {
      faults.push(`bridge ${n.bridge} lacks gateway address ${want}`);
    }
    if (n.mtu !== undefined && link?.mtu !== n.mtu) faults.push(`bridge ${n.bridge} has MTU ${link?.mtu}, not ${n.mtu}`);
  }
  if (readSysctl("net.ipv4.ip_forward") !== "1") faults.push("net.ipv4.ip_forward is off");
  faults.push(...(await iptables.missing(bridgeRules(root, n))));
  return faults;
}
