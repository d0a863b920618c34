import { z } from "zod";
import { cidr, ifname, ipv4, objectName, replaces } from "./fields";

export const NetworkArgs = z.strictObject({
  /** Host-wide network name; berth picks "<resource name>-<random>" when omitted. */
  name: replaces(objectName.optional()),
  /** "bridge" (default): a Linux bridge with NAT; "macvlan": children of a host NIC, on its LAN. */
  driver: replaces(z.enum(["bridge", "macvlan"], { error: 'must be "bridge" or "macvlan"' }).optional()),
  /** IPv4 subnet in network form, e.g. "10.89.0.0/24". */
  subnet: replaces(cidr),
  /** Defaults to the subnet's first address. */
  gateway: replaces(ipv4.optional()),
  /** CIDR inside the subnet that dynamic addresses come from; static ones (`ip`) may lie outside it. */
  ipRange: replaces(cidr.optional()),
  /** Addresses never given to a container, by name (Docker's --aux-address name=ip). */
  auxAddresses: replaces(z.record(z.string(), ipv4).optional()),
  /** Masquerade traffic leaving the network (default true). Changed in place. */
  nat: z.boolean().optional(),
  /** No traffic between the network and anything beyond the host (Docker's --internal). Changed in place. */
  internal: z.boolean().optional(),
  /** MTU of the bridge and of the containers' interfaces on it (68-65535; default the kernel's 1500). */
  mtu: replaces(z.number().int().min(68, { error: "must be 68-65535" }).max(65535, { error: "must be 68-65535" }).optional()),
  /** bridge: the device's name (default "bt" + a hash of the network name). */
  bridgeName: replaces(ifname.optional()),
  /** macvlan: host interface the containers' interfaces hang off; "eth0.50" makes the 802.1q link for VLAN 50. */
  parent: replaces(ifname.optional()),
  /** macvlan: how children of one parent see each other (default "bridge"). */
  macvlanMode: replaces(
    z.enum(["bridge", "vepa", "private", "passthru"], {
      error: "requested macvlan mode is not valid: use bridge (the default), vepa, private or passthru",
    }).optional(),
  ),
  /** macvlan: a host-side macvlan with an address from the pool, so the host can reach the containers. In place. */
  hostShim: z.boolean().optional(),
});

export const NetworkOutputs = z.object({
  name: z.string(),
  driver: z.string(),
  /** The Linux bridge device ("bt…"), or a macvlan network's parent. */
  bridge: z.string(),
  subnet: z.string(),
  gateway: z.string(),
  nat: z.boolean(),
  /** "ok", or what refresh found missing on the host (the next up puts it back). */
  status: z.string(),
});
