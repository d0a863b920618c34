// A container's network plumbing: a named network namespace (bind-mounted under /run/netns, so it outlives any
// process), a veth pair from the bridge into it, the address and default route. The namespace and veth are made
// before `runc create`, which joins the namespace by path; the inside can be configured while runc creates the
// container, as long as it is done before `runc start`. One `ip -batch` run for each side.
import type { Host } from "../host/exec";
import { linkExists, linkMaster, netnsExists } from "../host/probe";

export interface Attachment {
  netns: string;
  /** Host end of the veth pair; the container end is eth0. */
  veth: string;
  bridge: string;
  ip: string;
  prefix: number;
  gateway: string;
}

const batch = (cmds: string[]): string => cmds.join("\n") + "\n";

/** Docker's rule: the MAC follows from the address, so whatever a neighbour table remembers for it stays true. */
const macFor = (ip: string): string =>
  ["02", "42", ...ip.split(".").map((b) => Number(b).toString(16).padStart(2, "0"))].join(":");

/** The namespace, and the veth pair from the bridge into it. */
export async function plug(host: Host, a: Pick<Attachment, "netns" | "veth" | "bridge" | "ip">): Promise<void> {
  await host.run("ip", ["-batch", "-"], {
    input: batch([
      `netns add ${a.netns}`,
      // The peer is created inside the namespace, so its name never meets the host's own eth0.
      `link add ${a.veth} type veth peer name eth0 address ${macFor(a.ip)} netns ${a.netns}`,
      `link set ${a.veth} master ${a.bridge} up`,
      // Known up front: the first packet to the container need not wait for ARP, which could otherwise be stuck
      // retrying (a second apart) for an address probed before eth0 had it.
      `neigh replace ${a.ip} lladdr ${macFor(a.ip)} dev ${a.bridge} nud reachable`,
    ]),
  });
}

/** Inside the namespace: loopback, the address on eth0, the default route. */
export async function configure(host: Host, a: Attachment): Promise<void> {
  await host.run("ip", ["-n", a.netns, "-batch", "-"], {
    input: batch([
      "link set lo up",
      `addr add ${a.ip}/${a.prefix} dev eth0`,
      "link set eth0 up",
      `route add default via ${a.gateway}`,
    ]),
  });
}

/** Deletes the veth pair and the namespace; either may already be gone. */
export async function detach(host: Host, netns: string, veth: string): Promise<void> {
  const cmds = [linkExists(veth) && `link del ${veth}`, netnsExists(netns) && `netns del ${netns}`];
  const todo = cmds.filter((c): c is string => typeof c === "string");
  if (todo.length > 0) await host.run("ip", ["-batch", "-"], { input: batch(todo) });
}

export function attachmentFaults(a: Pick<Attachment, "netns" | "veth" | "bridge">): string[] {
  const faults: string[] = [];
  if (!netnsExists(a.netns)) faults.push(`network namespace ${a.netns} is missing`);
  if (!linkExists(a.veth)) faults.push(`veth ${a.veth} is missing`);
  else if (linkMaster(a.veth) !== a.bridge) faults.push(`veth ${a.veth} is not attached to bridge ${a.bridge}`);
  return faults;
}
