// The networking fields of a Container (Docker's --network, --ip, --network-alias, --mac-address, --dns*,
// --add-host, --link, -p, -P, --domainname), spread into ContainerArgs.
import { z } from "zod";
import { ipv4, objectName, port, replaces } from "./fields";

const hostName = z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/, {
  error: "must be a host name of at most 63 letters, digits, '.' and '-'",
});
const CONTAINER_NAME = "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}";

export const NetworkAttachmentArgs = z.strictObject({
  /** A berth Network's name, or "bridge" for the default network. */
  network: objectName,
  /** A static address inside the network's subnet (Docker's --ip). */
  ip: ipv4.optional(),
  /** Further names other containers on this network resolve to this one. */
  aliases: z.array(hostName).optional(),
  /** Default: 02:42 followed by the address bytes, as Docker does. */
  mac: z.string().regex(/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/, { error: "must be a MAC such as 02:42:0a:00:00:05" }).optional(),
});

/** Docker's -p forms: "80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80", each with an optional "/udp". */
const PORT_STRING = /^(?:(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{0,5}):)?(\d{1,5})(?:\/(tcp|udp))?$/;

export interface PortForm {
  hostIp?: string;
  /** Absent: a free port is picked (reported in the ports output). */
  hostPort?: number;
  containerPort: number;
  protocol?: "tcp" | "udp";
}

/** A -p string as a port object; undefined when it is not one of Docker's forms. */
export function parsePortString(s: string): PortForm | undefined {
  const m = PORT_STRING.exec(s);
  if (!m) return undefined;
  const [, hostIp, hostPort, containerPort, protocol] = m;
  return {
    hostIp,
    hostPort: hostPort ? Number(hostPort) : undefined,
    containerPort: Number(containerPort),
    protocol: protocol as PortForm["protocol"],
  };
}

export const PortArgs = z.union(
  [
    z.strictObject({
      /** The port inside the container. */
      containerPort: port,
      /** Omitted: a free port is picked, reported in the ports output (Docker's "ip::ctr"). */
      hostPort: port.optional(),
      /** Host address to publish on (default "0.0.0.0", every address). */
      hostIp: ipv4.optional(),
      /** "tcp" (default) or "udp". */
      protocol: z.enum(["tcp", "udp"], { error: 'must be "tcp" or "udp"' }).optional(),
    }),
    z.string().refine(
      (s) => {
        const p = parsePortString(s);
        return p !== undefined && ipv4.optional().safeParse(p.hostIp).success &&
          [p.containerPort, p.hostPort ?? 1].every((n) => port.safeParse(n).success);
      },
      { error: 'must be Docker\'s -p form: "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80", optionally with "/udp"' },
    ),
  ],
  { error: 'must be a port object or a string such as "8080:80"' },
);

/** A pipework-style extra interface, added, changed and removed under the running container. */
export const InterfaceArgs = z.strictObject({
  /** A host bridge (made if missing) or a host NIC (the interface becomes a macvlan child of it). */
  host: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, { error: "must be a host interface name (1-15 characters)" }),
  /** Name inside the container (default "eth1"). */
  name: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, { error: "must be an interface name (1-15 characters)" }).optional(),
  /** "10.1.2.3/24", "10.1.2.3/24@10.1.2.1" (the gateway becomes the default route), "dhcp", or "0/0" (no address). */
  address: z.string().regex(/^((\d{1,3}\.){3}\d{1,3}\/\d{1,2}(@(\d{1,3}\.){3}\d{1,3})?|dhcp|0\/0)$/, {
    error: 'The IP address should include a netmask: use "IP/CIDR", "IP/CIDR@gateway", "dhcp" or "0/0"',
  }),
  /** "02:…", or "U:<text>" for a MAC derived from the text that stays the same across re-creations. */
  mac: z.string().regex(/^(U:.+|([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2})$/, { error: 'must be a MAC or "U:<text>"' }).optional(),
  /** 802.1q VLAN id (1-4094) of the link to a host NIC. */
  vlan: z.number().int().min(1, { error: "vlan id must be between 1-4094" }).max(4094, { error: "vlan id must be between 1-4094" }).optional(),
});

export const ContainerNetworkArgs = {
  /** Extra interfaces as pipework adds them; changed in place, without restarting the container. */
  interfaces: z.array(InterfaceArgs).optional(),
  /**
   * "bridge" (the default network), "none" (loopback only), "host" (the host's network), or "container:NAME"
   * (another container's). Default: "bridge" unless `network`/`networks` name networks.
   */
  networkMode: replaces(
    z.string().regex(new RegExp(`^(none|host|bridge|container:${CONTAINER_NAME})$`), {
      error: 'must be "bridge", "none", "host" or "container:NAME"',
    }).optional(),
  ),
  /** Networks to join, each with an optional static address, aliases and MAC; eth0, eth1, … in this order. */
  networks: replaces(z.array(NetworkAttachmentArgs).optional()),
  /** Ports to publish on the host: objects, or Docker's -p strings such as "127.0.0.1:8080:80". */
  ports: replaces(z.array(PortArgs).optional()),
  /** Publish every port the image exposes on a free host port (Docker's -P). */
  publishAll: replaces(z.boolean().optional()),
  /** The container's NIS domain name (Docker's --domainname). */
  domainname: replaces(hostName.optional()),
  /** Name servers for the container's /etc/resolv.conf (Docker's --dns). */
  dns: replaces(z.array(ipv4).optional()),
  /** Search domains for /etc/resolv.conf (Docker's --dns-search). */
  dnsSearch: replaces(z.array(hostName).optional()),
  /** Resolver options for /etc/resolv.conf, e.g. "ndots:2" (Docker's --dns-option). */
  dnsOptions: replaces(z.array(z.string().regex(/^[a-z0-9-]+(:\d+)?$/, { error: 'must be an option such as "ndots:2"' })).optional()),
  /** "host:ip" lines for /etc/hosts (Docker's --add-host). */
  extraHosts: replaces(
    z.array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9.-]*:(\d{1,3}\.){3}\d{1,3}$/, { error: 'must be "host:ip"' })).optional(),
  ),
  /** "name" or "name:alias": another container on a shared network, also known by alias (Docker's --link). */
  links: replaces(
    z.array(z.string().regex(new RegExp(`^${CONTAINER_NAME}(:[a-zA-Z0-9][a-zA-Z0-9.-]*)?$`), { error: 'must be "name" or "name:alias"' })).optional(),
  ),
};

export const ContainerNetworkOutputs = {
  /** Address on each network, by network name. */
  ips: z.record(z.string(), z.string()),
  /** Published ports with the host ports berth picked. */
  ports: z.array(z.object({ hostIp: z.string(), hostPort: z.number(), containerPort: z.number(), protocol: z.string() })),
};
