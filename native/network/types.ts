// The networking part of the runtime seam: network options beyond subnet/gateway/NAT, and how a container joins
// networks (Docker's --network, --ip, --network-alias, --mac-address, --dns, --add-host, --link) and carries
// pipework-style extra interfaces.

export type NetworkDriver = "bridge" | "macvlan";
export type MacvlanMode = "bridge" | "vepa" | "private" | "passthru";

export interface NetworkOptions {
  /** Default "bridge". */
  driver?: NetworkDriver;
  /** CIDR inside the subnet that dynamic addresses come from (static ones may lie outside it). */
  ipRange?: string;
  /** Addresses never handed out, by the name of what holds them (Docker's --aux-address). */
  auxAddresses?: Record<string, string>;
  /** No traffic in or out of the network beyond the host: no forwarding, no NAT (bridge). */
  internal?: boolean;
  mtu?: number;
  /** The bridge device's name; default "bt" + a hash of the network name. */
  bridgeName?: string;
  /** macvlan: the host interface the children hang off; "eth0.50" asks for an 802.1q sub-interface. */
  parent?: string;
  /** macvlan: default "bridge". */
  macvlanMode?: MacvlanMode;
  /** macvlan: a host-side macvlan with an address from the pool, so the host reaches its containers. */
  hostShim?: boolean;
}

export interface NetworkAttachmentSpec {
  network: string;
  /** A static address (Docker's --ip); default: the next free one of the network's range. */
  ip?: string;
  /** Further names the container answers to on this network. */
  aliases?: string[];
  /** Default: derived from the address (02:42:<address bytes>), as Docker does. */
  mac?: string;
}

/**
 * A pipework-style interface: on a host bridge (made if missing) through a veth pair, or a macvlan child of a
 * host NIC; changed in place under the running container and re-applied whenever it is made again.
 */
export interface DeclaredInterface {
  /** Host bridge ("bt…", made if missing) or host NIC (macvlan child). */
  host: string;
  /** Name inside the container; default "eth1". */
  name?: string;
  /** "10.1.2.3/24", "10.1.2.3/24@10.1.2.1" (the gateway becomes the default route), "dhcp", or "0/0" (none). */
  address: string;
  /** "02:…", or "U:<text>" for a stable MAC derived from text. */
  mac?: string;
  /** 802.1q VLAN id on the host side. */
  vlan?: number;
}

export interface ContainerNetworking {
  /**
   * "none": loopback only; "host": the host's own network; "container:NAME": another container's namespace;
   * "bridge": berth's default bridge network (made on first use, removed with its last container).
   * Unset: the networks below, or loopback only when there are none.
   */
  networkMode?: string;
  networks?: NetworkAttachmentSpec[];
  domainname?: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** "host:ip" lines added to /etc/hosts. */
  extraHosts?: string[];
  /** "name" or "name:alias": another container on a shared network, resolvable by that alias. */
  links?: string[];
  /** Publish every port the image exposes, each on a free host port of 0.0.0.0 (Docker's -P). */
  publishAll?: boolean;
  interfaces?: DeclaredInterface[];
}
