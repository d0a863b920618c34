// A macvlan network's host side: nothing but the parent NIC — containers get macvlan children of it — plus, when
// asked, the 802.1q sub-interface the parent names ("eth0.50") and a host-side "shim" macvlan (bridge mode, a /32
// address, a route to the pool) through which the host reaches its own macvlan children, which the parent cannot.
import type { Host } from "../host/exec";
import { linkExists, linkIsUp } from "../host/probe";
import type { NetworkRecord } from "./options";
import { batch } from "./attach";

export type MacvlanNetwork = Pick<NetworkRecord, "bridge" | "subnet" | "ipRange" | "vlan" | "shim">;

const shimRoute = (n: MacvlanNetwork): string => n.ipRange ?? n.subnet;

export async function ensureMacvlan(host: Host, n: MacvlanNetwork, shimIp: string | undefined): Promise<void> {
  const cmds: string[] = [];
  if (n.vlan && !linkExists(n.bridge)) {
    cmds.push(`link add link ${n.vlan.nic} name ${n.bridge} type vlan id ${n.vlan.id}`, `link set ${n.bridge} up`);
  }
  if (n.shim && shimIp) {
    if (!linkExists(n.shim)) cmds.push(`link add ${n.shim} link ${n.bridge} type macvlan mode bridge`);
    cmds.push(
      `addr replace ${shimIp}/32 dev ${n.shim}`,
      `link set ${n.shim} up`,
      `route replace ${shimRoute(n)} dev ${n.shim} src ${shimIp}`,
    );
  }
  if (cmds.length > 0) await host.run("ip", ["-batch", "-"], { input: batch(cmds) });
}

/** Tolerates any part being gone already. */
export async function removeMacvlan(host: Host, n: MacvlanNetwork): Promise<void> {
  const cmds = [n.shim && linkExists(n.shim) && `link del ${n.shim}`, n.vlan && linkExists(n.bridge) && `link del ${n.bridge}`];
  const todo = cmds.filter((c): c is string => typeof c === "string");
  if (todo.length > 0) await host.run("ip", ["-batch", "-"], { input: batch(todo) });
}

export async function macvlanFaults(host: Host, n: MacvlanNetwork, shimIp: string | undefined): Promise<string[]> {
  const faults: string[] = [];
  if (!linkExists(n.bridge)) faults.push(`parent interface ${n.bridge} is missing`);
  if (!n.shim || !shimIp) return faults;
  if (!linkExists(n.shim)) return [...faults, `host shim ${n.shim} is missing`];
  if (!linkIsUp(n.shim)) faults.push(`host shim ${n.shim} is down`);
  const addrs = await host.run("ip", ["-4", "-o", "addr", "show", "dev", n.shim]);
  if (!addrs.includes(` ${shimIp}/32 `)) faults.push(`host shim ${n.shim} lacks address ${shimIp}/32`);
  const routes = await host.run("ip", ["-4", "route", "show", "dev", n.shim]);
  if (!routes.split("\n").some((l) => l.startsWith(`${shimRoute(n)} `))) {
    faults.push(`host shim ${n.shim} lacks its route to ${shimRoute(n)}`);
  }
  return faults;
}
