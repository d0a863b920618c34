// A container's network plumbing: a named network namespace (bind-mounted under /run/netns, so it outlives any
// process) and one interface per network — a veth pair from the bridge, or a macvlan child of the parent made
// straight inside the namespace — then addresses and the default route. The namespace and links are made before
// `runc run`, which joins the namespace by path; the inside is configured while the rootfs is mounted.
// One `ip -batch` run for each side.
import * as fs from "node:fs";
import type { Host } from "../host/exec";
import { linkExists, linkMaster, netnsExists } from "../host/probe";
import type { MacvlanMode, NetworkDriver } from "./types";
import type { PortMapping } from "../runtime";

export interface AttachmentRecord {
  network: string;
  driver: NetworkDriver;
  /** The interface inside the container: eth0, eth1, … in the order the networks are given. */
  ifname: string;
  /** bridge: the host end of the veth pair. */
  hostIf?: string;
  /** The bridge device, or the macvlan parent. */
  device: string;
  macvlanMode?: MacvlanMode;
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  aliases: string[];
  mtu?: number;
  /** The container's default route goes through this network's gateway (the first non-internal network). */
  defaultRoute: boolean;
}

/** How a container is networked, as berth made it; kept in the container's record. */
export interface ContainerNet {
  mode: "none" | "host" | "container" | "networks";
  /** networks mode: the named namespace berth made. */
  netns?: string;
  /** container mode: the container whose namespace this one shares. */
  joined?: string;
  attachments: AttachmentRecord[];
  /** Published ports with the host ports picked. */
  ports: PortMapping[];
}

/** Input for `ip -batch -`. */
export const batch = (cmds: string[]): string => cmds.join("\n") + "\n";

export const MAC_ADDRESS = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

/** Docker's rule: the MAC follows from the address, so whatever a neighbour table remembers for it stays true. */
export const macFor = (ip: string): string =>
  ["02", "42", ...ip.split(".").map((b) => Number(b).toString(16).padStart(2, "0"))].join(":");

/** The namespace and every link into it. */
export async function plug(host: Host, netns: string, attachments: AttachmentRecord[]): Promise<void> {
  const cmds = [`netns add ${netns}`];
  for (const a of attachments) {
    const mtu = a.mtu === undefined ? "" : ` mtu ${a.mtu}`;
    if (a.driver === "bridge") {
      cmds.push(
        // The peer is created inside the namespace, so its name never meets the host's own eth0.
        `link add ${a.hostIf}${mtu} type veth peer name ${a.ifname} address ${a.mac}${mtu} netns ${netns}`,
        `link set ${a.hostIf} master ${a.device} up`,
        // Known up front: the first packet to the container need not wait for ARP, which could otherwise be stuck
        // retrying (a second apart) for an address probed before the interface had it.
        `neigh replace ${a.ip} lladdr ${a.mac} dev ${a.device} nud reachable`,
      );
    } else {
      // passthru takes the parent's own MAC; a second passthru child of one parent is refused by the kernel.
      const address = a.macvlanMode === "passthru" ? "" : ` address ${a.mac}`;
      cmds.push(
        `link add link ${a.device} name ${a.ifname} netns ${netns}${address}${mtu} type macvlan mode ${a.macvlanMode}`,
      );
    }
  }
  await host.run("ip", ["-batch", "-"], { input: batch(cmds) });
}

/** Inside the namespace: loopback, each interface's address, the default route. */
export async function configure(host: Host, netns: string, attachments: AttachmentRecord[]): Promise<void> {
  const cmds = ["link set lo up"];
  for (const a of attachments) cmds.push(`addr add ${a.ip}/${a.prefix} dev ${a.ifname}`, `link set ${a.ifname} up`);
  const gw = attachments.find((a) => a.defaultRoute);
  if (gw) cmds.push(`route add default via ${gw.gateway} dev ${gw.ifname}`);
  await host.run("ip", ["-n", netns, "-batch", "-"], { input: batch(cmds) });
}

/** Deletes the interfaces and the namespace; any may be gone already. */
export async function unplug(host: Host, net: ContainerNet): Promise<void> {
  const children = net.attachments.filter((a) => !a.hostIf);
  if (net.netns && netnsExists(net.netns) && children.length > 0) {
    // Deleted now rather than with the namespace, whose teardown the kernel finishes later: a child made again
    // at once (a replacement with the same address, hence MAC) would otherwise meet the old one's MAC.
    await host.tryRun("ip", ["-n", net.netns, "-batch", "-"], { input: batch(children.map((a) => `link del ${a.ifname}`)) });
  }
  const cmds = net.attachments.filter((a) => a.hostIf && linkExists(a.hostIf)).map((a) => `link del ${a.hostIf}`);
  if (net.netns && netnsExists(net.netns)) cmds.push(`netns del ${net.netns}`);
  if (cmds.length > 0) await host.run("ip", ["-batch", "-"], { input: batch(cmds) });
}

interface LinkAddrs {
  ifname: string;
  address?: string;
  operstate?: string;
  flags?: string[];
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/** What is missing or changed: the namespace, host ends, their bridge, addresses, MACs, the default route. */
export async function attachmentFaults(host: Host, net: ContainerNet): Promise<string[]> {
  if (!net.netns) return [];
  if (!netnsExists(net.netns)) return [`network namespace ${net.netns} is missing`];
  const faults: string[] = [];
  for (const a of net.attachments.filter((x) => x.hostIf)) {
    if (!linkExists(a.hostIf!)) faults.push(`veth ${a.hostIf} is missing`);
    else if (linkMaster(a.hostIf!) !== a.device) faults.push(`veth ${a.hostIf} is not attached to bridge ${a.device}`);
  }
  if (net.attachments.length === 0) return faults;
  const links = JSON.parse(await host.run("ip", ["-n", net.netns, "-j", "addr", "show"])) as LinkAddrs[];
  for (const a of net.attachments) {
    const link = links.find((l) => l.ifname === a.ifname);
    if (!link) {
      faults.push(`interface ${a.ifname} is missing inside ${net.netns}`);
      continue;
    }
    if (!link.flags?.includes("UP")) faults.push(`interface ${a.ifname} is down`);
    if (!link.addr_info?.some((x) => x.family === "inet" && x.local === a.ip && x.prefixlen === a.prefix)) {
      faults.push(`interface ${a.ifname} lacks address ${a.ip}/${a.prefix}`);
    }
  }
  const gw = net.attachments.find((a) => a.defaultRoute);
  if (gw) {
    const routes = await host.run("ip", ["-n", net.netns, "-4", "route", "show", "default"]);
    if (!routes.includes(`via ${gw.gateway} dev ${gw.ifname}`)) faults.push(`default route via ${gw.gateway} is missing`);
  }
  return faults;
}

/** The network namespace file of a running process (container mode joins it). */
export const processNetns = (pid: number): string => `/proc/${pid}/ns/net`;

/** Whether two namespace files are the same namespace. */
export function sameNamespace(a: string, b: string): boolean {
  try {
    return fs.statSync(a).ino === fs.statSync(b).ino;
  } catch {
    return false;
  }
}
