// Pure: no host access (the provider imports it). A network spec checked and resolved into the record berth keeps:
// Docker's refusals for bad network input, each naming the field, made before anything on the host changes. What
// depends on the host's interfaces (a macvlan parent, 802.1q support) is asked of `HostLinks` when one is given.
import type { NetworkSpec } from "../runtime";
import type { MacvlanMode, NetworkDriver } from "./types";
import { bridgeName, checkName } from "../names";
import { contains, formatIPv4, formatSubnet, isHostAddress, parseIPv4, parseSubnet, within, type Subnet } from "./cidr";

export interface NetworkRecord {
  network: string;
  driver: NetworkDriver;
  /** The bridge device; for macvlan, the parent interface. */
  bridge: string;
  subnet: string;
  gateway: string;
  ipRange?: string;
  auxAddresses: Record<string, string>;
  nat: boolean;
  internal: boolean;
  mtu?: number;
  macvlanMode?: MacvlanMode;
  /** macvlan on "<nic>.<id>": berth makes the 802.1q link and removes it with the network. */
  vlan?: { nic: string; id: number };
  /** macvlan host shim device ("bt…"); its address is allocated from the pool. */
  shim?: string;
}

/** A bad network input: the field, and the message (Docker's wording where Docker has one). */
export class NetworkInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "NetworkInputError";
  }
}

/** The network a container joins when it names none (Docker's "bridge"). */
export const DEFAULT_NETWORK = "bridge";

/** The fields of a container that a network mode may exclude: whether each is given. */
export interface ModeFields {
  networks: boolean;
  ports: boolean;
  links: boolean;
  interfaces: boolean;
  hostname: boolean;
  dns: boolean;
  extraHosts: boolean;
  domainname: boolean;
}

/**
 * What Docker refuses beside a network mode, field by field: the one rule the runtime applies at run and the
 * provider at check, so preview refuses what up would.
 */
export function networkModeConflicts(mode: string | undefined, given: ModeFields): Array<{ field: keyof ModeFields; reason: string }> {
  const out: Array<{ field: keyof ModeFields; reason: string }> = [];
  if (mode === undefined || mode === DEFAULT_NETWORK) return out;
  if (given.networks) out.push({ field: "networks", reason: `conflicting options: networks and network mode "${mode}"; give one or the other` });
  const shared = mode.startsWith("container:");
  if (mode !== "none" && mode !== "host" && !shared) return out;
  if (given.ports) out.push({ field: "ports", reason: `conflicting options: port publishing and network mode "${mode}"` });
  if (given.links) out.push({ field: "links", reason: `conflicting options: links and network mode "${mode}"` });
  if (mode !== "none" && given.interfaces) out.push({ field: "interfaces", reason: `conflicting options: interfaces and network mode "${mode}"` });
  for (const f of ["hostname", "dns", "extraHosts", "domainname"] as const) {
    if (shared && given[f]) out.push({ field: f, reason: `conflicting options: ${f} and network mode "${mode}" (it shares the other container's)` });
  }
  return out;
}

/** What resolving a macvlan parent needs to know of the host's interfaces. */
export interface HostLinks {
  linkExists(ifname: string): boolean;
  /** Whether this kernel can make 802.1q links. */
  vlanSupported(): boolean;
}

/** Names the system reserves, as Docker does for its predefined networks. */
const PREDEFINED_NETWORKS = ["bridge", "host", "none"];

/** A network a user declares may not take a predefined name. */
export function refusePredefined(name: string): void {
  if (PREDEFINED_NETWORKS.includes(name)) {
    throw new NetworkInputError("name", `"${name}" is a predefined network name: pick another name`);
  }
}
export const MACVLAN_MODES: readonly MacvlanMode[] = ["bridge", "vepa", "private", "passthru"];
/** What the kernel takes as an interface name (it refuses "." and ".."; the rest is berth's narrower set). */
export const IFNAME = /^(?!\.\.?$)[a-zA-Z0-9_.-]{1,15}$/;

function address(field: string, value: string): number {
  const ip = parseIPv4(value);
  if (ip === undefined) throw new NetworkInputError(field, `invalid address "${value}": expected IPv4 such as 10.89.0.5`);
  return ip;
}

function subnetOf(field: string, value: string): Subnet {
  try {
    return parseSubnet(value);
  } catch (e) {
    throw new NetworkInputError(field, (e as Error).message);
  }
}

/** A bridge or shim name berth derives for a network of a root ("" for a network's bridge, "\0shim"). */
const derivedName = (root: string, network: string, what: string): string => bridgeName(`${root}\0${network}${what}`);
/** The bridge of a root's network when the spec names none. */
export const derivedBridge = (root: string, network: string): string => derivedName(root, network, "");

/**
 * A network made before its interface names carried the root keeps those it had (derived from its name alone)
 * where the spec asks for the derived ones: they are the same network's.
 */
export function keepFormerNames(existing: NetworkRecord | undefined, want: NetworkRecord, root: string): NetworkRecord {
  const keep = (what: string, had: string | undefined, now: string | undefined): string | undefined =>
    had === bridgeName(`${want.network}${what}`) && now === derivedName(root, want.network, what) ? had : now;
  if (!existing) return want;
  return { ...want, bridge: keep("", existing.bridge, want.bridge)!, shim: keep("\0shim", existing.shim, want.shim) };
}

/** Where a network is made: the host's interfaces, and the berth root whose names it carries. */
export interface NetworkHost {
  links: HostLinks;
  root: string;
}

/**
 * Checks a spec; throws NetworkInputError naming the first bad field. Without `host`, a macvlan parent is taken as
 * existing (and so needing no 802.1q link): only the host can tell. The interfaces it names for the network
 * (bridge, shim) are host-wide, so they derive from the berth root it is made in; a check of the spec alone gives
 * names no root uses.
 */
export function resolveNetwork(spec: NetworkSpec, host?: NetworkHost): NetworkRecord {
  checkName("network", spec.name);
  const derived = (what: string) => derivedName(host?.root ?? "", spec.name, what);
  const driver = spec.driver ?? "bridge";
  const subnet = subnetOf("subnet", spec.subnet);
  const gateway = spec.gateway === undefined ? subnet.base + 1 : address("gateway", spec.gateway);
  if (!isHostAddress(subnet, gateway)) {
    throw new NetworkInputError("gateway", `no matching subnet for gateway ${spec.gateway}: use an address inside ${spec.subnet}`);
  }
  let ipRange: string | undefined;
  if (spec.ipRange !== undefined) {
    const range = subnetOf("ipRange", spec.ipRange);
    if (!within(subnet, range)) {
      throw new NetworkInputError("ipRange", `no matching subnet for range ${spec.ipRange}: it must lie inside ${spec.subnet}`);
    }
    ipRange = formatSubnet(range);
  }
  const auxAddresses: Record<string, string> = {};
  for (const [name, value] of Object.entries(spec.auxAddresses ?? {})) {
    const ip = address(`auxAddresses.${name}`, value);
    if (!contains(subnet, ip)) {
      throw new NetworkInputError(`auxAddresses.${name}`, `no matching subnet for aux-address ${value}: it must lie inside ${spec.subnet}`);
    }
    auxAddresses[name] = formatIPv4(ip);
  }
  if (spec.mtu !== undefined && !(Number.isInteger(spec.mtu) && spec.mtu >= 68 && spec.mtu <= 65535)) {
    throw new NetworkInputError("mtu", `invalid MTU ${spec.mtu}: use 68-65535`);
  }
  const common = {
    network: spec.name,
    driver,
    subnet: formatSubnet(subnet),
    gateway: formatIPv4(gateway),
    ipRange,
    auxAddresses,
    nat: spec.nat && !spec.internal,
    internal: spec.internal ?? false,
    mtu: spec.mtu,
  };
  const forbid = (field: "parent" | "macvlanMode" | "hostShim" | "bridgeName", why: string): void => {
    if (spec[field] !== undefined) throw new NetworkInputError(field, `${field} ${why}`);
  };
  if (driver === "bridge") {
    for (const f of ["parent", "macvlanMode", "hostShim"] as const) forbid(f, 'applies to driver "macvlan" only');
    const bridge = spec.bridgeName ?? derived("");
    if (!IFNAME.test(bridge)) {
      throw new NetworkInputError("bridgeName", `invalid interface name "${bridge}": use 1-15 letters, digits, '_', '.' or '-'`);
    }
    return { ...common, bridge };
  }
  forbid("bridgeName", 'applies to driver "bridge" only');
  const mode = spec.macvlanMode ?? "bridge";
  if (!MACVLAN_MODES.includes(mode)) {
    throw new NetworkInputError(
      "macvlanMode",
      `requested macvlan mode '${mode}' is not valid, 'bridge' mode is the macvlan driver default (use ${MACVLAN_MODES.join(", ")})`,
    );
  }
  const parent = spec.parent;
  if (parent === undefined) throw new NetworkInputError("parent", 'driver "macvlan" needs a parent interface, e.g. "eth0"');
  const sub = /^(.+)\.(\d+)$/.exec(parent);
  const nic = sub ? sub[1] : parent;
  if (!IFNAME.test(parent)) throw new NetworkInputError("parent", `invalid interface name "${parent}"`);
  if (nic === "lo") throw new NetworkInputError("parent", "loopback interface is not a valid macvlan parent link");
  if (host && !host.links.linkExists(nic)) {
    throw new NetworkInputError("parent", `parent interface "${nic}" does not exist on this host: name an existing NIC`);
  }
  let vlan: NetworkRecord["vlan"];
  if (host && sub && !host.links.linkExists(parent)) {
    const id = Number(sub[2]);
    if (!(id >= 1 && id <= 4094)) throw new NetworkInputError("parent", `vlan id must be between 1-4094, received: ${id}`);
    if (!host.links.vlanSupported()) {
      throw new NetworkInputError(
        "parent",
        `failed to create ${parent} vlan link: operation not supported (this kernel has no 802.1q/8021q support); ` +
          `use an existing interface as parent`,
      );
    }
    vlan = { nic, id };
  }
  return {
    ...common,
    nat: false,
    bridge: parent,
    macvlanMode: mode,
    vlan,
    shim: spec.hostShim ? derived("\0shim") : undefined,
  };
}
