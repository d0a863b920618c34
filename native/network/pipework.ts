// pipework's extra interfaces, declared: on a host bridge (made if missing) through a veth pair whose host end is
// enslaved to it, or as a macvlan (bridge mode) child of a host NIC; with a static address and optional gateway
// (which becomes the default route), DHCP (busybox udhcpc, run once in the container's namespace), or none; an
// optional MAC, also pipework's stable "U:<text>" form. Applied to a running container's namespace, reconciled in
// place when the declaration changes, and applied again whenever the container is made again.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import type { Host } from "../host/exec";
import { linkExists, vlanSupported } from "../host/probe";
import { vethName } from "../names";
import { parseIPv4 } from "./cidr";
import { IFNAME } from "./options";
import { batch, MAC_ADDRESS } from "./attach";
import type { DeclaredInterface } from "./types";

const isBridge = (ifname: string): boolean => fs.existsSync(`/sys/class/net/${ifname}/bridge`);
export const ifnameOf = (i: DeclaredInterface): string => i.name ?? "eth1";
/** Host end of the veth pair of a container's declared interface, from its host key (names.ts hostKeyOf). */
const hostEnd = (key: string, i: DeclaredInterface): string => vethName(`${key}/${ifnameOf(i)}`);

/** pipework's rule: "U:<text>" is 02 followed by the first five bytes of md5("<text>\n"). */
export function macOf(mac: string): string {
  if (!mac.startsWith("U:")) return mac.toLowerCase();
  const hex = createHash("md5").update(`${mac.slice(2)}\n`).digest("hex");
  return ["02", ...hex.slice(0, 10).match(/../g)!].join(":");
}

interface StaticAddress {
  cidr: string;
  gateway?: string;
}

/** "10.1.2.3/24@10.1.2.1" → address and gateway; "dhcp" and "0/0" → undefined. */
function staticAddress(address: string): StaticAddress | undefined {
  if (address === "dhcp" || address === "0/0") return undefined;
  const [cidr, gateway] = address.split("@");
  return { cidr, gateway };
}

/** Whether a declared interface takes the default route (a gateway, or whatever router DHCP hands out). */
export const routesDefault = (i: DeclaredInterface): boolean => i.address === "dhcp" || i.address.includes("@");

/** Refuses what pipework would, naming the interface; changes nothing. */
export function checkInterfaces(container: string, interfaces: DeclaredInterface[]): void {
  const refuse = (i: DeclaredInterface, why: string): never => {
    throw new Error(`container "${container}", interface ${ifnameOf(i)}: ${why}`);
  };
  const names = new Set<string>();
  for (const i of interfaces) {
    if (!IFNAME.test(ifnameOf(i))) refuse(i, "invalid interface name: use 1-15 letters, digits, '_', '.' or '-'");
    if (ifnameOf(i) === "lo" || ifnameOf(i) === "eth0" || names.has(ifnameOf(i))) refuse(i, "name is taken; give each its own, e.g. eth1, eth2");
    names.add(ifnameOf(i));
    const s = staticAddress(i.address);
    if (s) {
      const [ip, bits, ...rest] = s.cidr.split("/");
      if (bits === undefined) refuse(i, `The IP address should include a netmask ("${i.address}"), e.g. 10.1.2.3/24@10.1.2.1`);
      if (parseIPv4(ip) === undefined || rest.length > 0 || !(Number(bits) >= 1 && Number(bits) <= 32)) refuse(i, `invalid address "${i.address}"`);
      if (s.gateway !== undefined && parseIPv4(s.gateway) === undefined) refuse(i, `invalid gateway "${s.gateway}"`);
    }
    if (i.mac !== undefined && !/^U:.+$/.test(i.mac) && !MAC_ADDRESS.test(i.mac)) {
      refuse(i, `invalid MAC "${i.mac}": use six hex pairs or "U:<text>"`);
    }
    if (i.vlan !== undefined) {
      if (!(Number.isInteger(i.vlan) && i.vlan >= 1 && i.vlan <= 4094)) refuse(i, `vlan id must be between 1-4094, received: ${i.vlan}`);
      if (!vlanSupported()) refuse(i, `VLAN ${i.vlan} on ${i.host} needs 802.1q support, which this kernel lacks`);
    }
    if (!IFNAME.test(i.host)) refuse(i, `invalid host interface "${i.host}"`);
    if (i.host === "lo") refuse(i, "loopback cannot carry an interface");
  }
}

/** Adds one interface to the namespace at netnsPath (named ns, or a running process's). */
export async function addInterface(host: Host, key: string, netns: string, i: DeclaredInterface, dhcpScript: string): Promise<void> {
  const ifname = ifnameOf(i);
  const mac = i.mac === undefined ? "" : ` address ${macOf(i.mac)}`;
  const vlanHost = i.vlan === undefined ? i.host : `${i.host}.${i.vlan}`;
  const outside: string[] = [];
  if (linkExists(i.host) && !isBridge(i.host)) {
    if (i.vlan !== undefined && !linkExists(vlanHost)) outside.push(`link add link ${i.host} name ${vlanHost} type vlan id ${i.vlan}`, `link set ${vlanHost} up`);
    outside.push(`link add link ${vlanHost} name ${ifname} netns ${netns}${mac} type macvlan mode bridge`);
  } else {
    if (!linkExists(i.host)) outside.push(`link add ${i.host} type bridge`, `link set ${i.host} up`);
    const end = hostEnd(key, i);
    // pipework takes the MTU from the bridge.
    const mtu = linkExists(i.host) ? ` mtu ${fs.readFileSync(`/sys/class/net/${i.host}/mtu`, "utf8").trim()}` : "";
    outside.push(`link add ${end}${mtu} type veth peer name ${ifname}${mac}${mtu} netns ${netns}`, `link set ${end} master ${i.host} up`);
  }
  await host.run("ip", ["-batch", "-"], { input: batch(outside) });
  const s = staticAddress(i.address);
  const inside = [`link set ${ifname} up`];
  if (s) {
    inside.push(`addr add ${s.cidr} dev ${ifname}`);
    if (s.gateway) {
      // An off-link gateway needs a route to itself first, as pipework adds.
      inside.push(`route replace ${s.gateway}/32 dev ${ifname}`, `route replace default via ${s.gateway} dev ${ifname}`);
    }
  }
  await host.run("ip", ["-n", netns, "-batch", "-"], { input: batch(inside) });
  if (i.address === "dhcp") {
    await host.run("ip", ["netns", "exec", netns, "busybox", "udhcpc", "-q", "-n", "-t", "5", "-T", "1", "-i", ifname, "-s", dhcpScript]);
  }
}

/** Removes one interface: its veth pair (from the host end) or its macvlan child (inside). */
export async function removeInterface(host: Host, key: string, netns: string, i: DeclaredInterface): Promise<void> {
  const end = hostEnd(key, i);
  if (linkExists(end)) await host.run("ip", ["link", "del", end]);
  else await host.tryRun("ip", ["-n", netns, "link", "del", ifnameOf(i)]);
}

/** Declared interfaces missing inside, or without their static address. */
export async function interfaceFaults(host: Host, netns: string, interfaces: DeclaredInterface[]): Promise<string[]> {
  if (interfaces.length === 0) return [];
  const links = JSON.parse(await host.run("ip", ["-n", netns, "-j", "addr", "show"])) as {
    ifname: string;
    addr_info?: { local: string; prefixlen: number }[];
  }[];
  const faults: string[] = [];
  for (const i of interfaces) {
    const link = links.find((l) => l.ifname === ifnameOf(i));
    const s = staticAddress(i.address);
    if (!link) faults.push(`declared interface ${ifnameOf(i)} is missing`);
    else if (s && !link.addr_info?.some((a) => `${a.local}/${a.prefixlen}` === s.cidr)) {
      faults.push(`declared interface ${ifnameOf(i)} lacks address ${s.cidr}`);
    }
  }
  return faults;
}

/** The udhcpc script: puts the leased address and router on the interface. */
export const DHCP_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$router" ]; then set -- $router; ip route replace default via "$1" dev "$interface"; fi
    ;;
esac
`;
