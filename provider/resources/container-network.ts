// The networking part of the Container resource: Docker's forms turned into the runtime's spec, the checks that
// need other resources (networks exist, static addresses fit them), and the host-wide things a container claims
// (host ports, static addresses) so that two resources of one program cannot both take one.
import type { z } from "zod";
import { ContainerArgs, parsePortString, type PortForm } from "../../sdk/schema";
import type { ContainerInfo, ContainerNetworking, PortMapping, Runtime } from "../../native/runtime";
import { isHostAddress, parseIPv4, parseSubnet } from "../../native/network/cidr";
import { DEFAULT_NETWORK, networkModeConflicts, resolveNetwork } from "../../native/network/options";
import type { NetworkSpec } from "../../native/runtime";
import { containsUnknown, isUnknown } from "../values";
import { declaredOthers, type CheckContext } from "./kind";
import { networkClaim } from "./network";
import type { CheckFailure } from "./provider";

type Args = z.infer<typeof ContainerArgs>;

/** Every published port, with 0 for a host port berth picks. */
function portsOf(inputs: Args): PortMapping[] {
  return (inputs.ports ?? []).map((p) => {
    const form: PortForm = typeof p === "string" ? parsePortString(p)! : p;
    return {
      hostIp: form.hostIp ?? "0.0.0.0",
      hostPort: form.hostPort ?? 0,
      containerPort: form.containerPort,
      protocol: form.protocol ?? "tcp",
    };
  });
}

// A list a preview does not know yet (fed whole by another resource's output) holds nothing known.
const attachmentsOf = (inputs: Args) => (isUnknown(inputs.networks) ? [] : inputs.networks ?? (inputs.network !== undefined ? [{ network: inputs.network }] : []));

/** The runtime's view: a container naming no network goes on the default bridge network, as with Docker. */
export function networkingOf(inputs: Args): ContainerNetworking & { ports: PortMapping[] } {
  const networks = attachmentsOf(inputs);
  return {
    networkMode: inputs.networkMode ?? (networks.length === 0 ? DEFAULT_NETWORK : undefined),
    networks,
    ports: portsOf(inputs),
    publishAll: inputs.publishAll,
    domainname: inputs.domainname,
    dns: inputs.dns,
    dnsSearch: inputs.dnsSearch,
    dnsOptions: inputs.dnsOptions,
    extraHosts: inputs.extraHosts,
    links: inputs.links,
    interfaces: inputs.interfaces,
  };
}

const portClaim = (p: PortMapping) => `host port ${p.hostIp}:${p.hostPort}/${p.protocol}`;
const ipClaim = (network: string, ip: string) => `address ${ip} on network ${network}`;
export const containerClaim = (name: string) => `container ${name}`;

/** Host ports and static addresses: no two resources of one program may hold the same. */
export function networkClaims(inputs: Args): string[] {
  return [
    ...knownFixedPorts(inputs).filter(([, p]) => p.hostPort !== 0).map(([, p]) => portClaim(p)),
    ...attachmentsOf(inputs).flatMap((a) => ("ip" in a && a.ip ? [ipClaim(a.network, a.ip)] : [])),
  ];
}

/** The fixed host ports among the ports whose value is known, with their index in `ports`. */
function knownFixedPorts(inputs: Args): Array<[number, PortMapping]> {
  if (isUnknown(inputs.ports)) return [];
  const ports = inputs.ports ?? [];
  if (ports.some(containsUnknown)) {
    return ports.flatMap((p, i) => (containsUnknown(p) ? [] : portsOf({ ports: [p] } as Args).map((m) => [i, m] as [number, PortMapping])));
  }
  return portsOf(inputs).map((m, i) => [i, m] as [number, PortMapping]);
}

/** Two fixed host ports that cannot both be published: same port and protocol, on one address or on all. */
const samePort = (p: PortMapping, q: PortMapping) =>
  p.hostPort === q.hostPort && p.protocol === q.protocol && (p.hostIp === q.hostIp || p.hostIp === "0.0.0.0" || q.hostIp === "0.0.0.0");

/** What a network named by a container will be: as the program declares it, else as the host has it. */
interface NetworkFacts {
  subnet: string;
  gateway: string;
  auxAddresses: Record<string, string>;
  passthru: boolean;
}

async function networkFacts(name: string, ctx: CheckContext, runtime: Runtime): Promise<NetworkFacts | "unknown" | undefined> {
  const declared = ctx.declared.get(networkClaim(name));
  if (declared) {
    if (containsUnknown(declared.inputs)) return "unknown";
    try {
      const rec = resolveNetwork({ ...(declared.inputs as unknown as NetworkSpec), name, nat: true });
      return { subnet: rec.subnet, gateway: rec.gateway, auxAddresses: rec.auxAddresses, passthru: rec.macvlanMode === "passthru" };
    } catch {
      return "unknown"; // the network's own check reports it
    }
  }
  const info = await runtime.networks.inspect(name);
  return info && { subnet: info.subnet, gateway: info.gateway, auxAddresses: {}, passthru: false };
}

/** What Docker would refuse that the schema alone cannot see; values not known yet are left for later. */
export async function networkFailures(inputs: Args, ctx: CheckContext, runtime: Runtime): Promise<CheckFailure[]> {
  const failures: CheckFailure[] = [];
  const declared = (claim: string) => ctx.declared.has(claim);
  const mode = inputs.networkMode;
  // A list not known yet may be empty: only what is sure to be there conflicts.
  const some = (v: unknown[] | undefined) => !isUnknown(v) && (v?.length ?? 0) > 0;
  const conflicts = isUnknown(mode) ? [] : networkModeConflicts(mode, {
    networks: inputs.networks !== undefined ? some(inputs.networks) : inputs.network !== undefined,
    ports: some(inputs.ports) || inputs.publishAll === true,
    links: some(inputs.links), interfaces: some(inputs.interfaces),
    hostname: inputs.hostname !== undefined, dns: inputs.dns !== undefined, extraHosts: inputs.extraHosts !== undefined, domainname: inputs.domainname !== undefined,
  });
  // Docker's word for "networks" beside a mode is the mode's.
  for (const c of conflicts) failures.push({ property: c.field === "networks" ? "networkMode" : c.field, reason: c.reason });
  if (mode?.startsWith("container:") && !isUnknown(mode)) {
    const other = mode.slice("container:".length);
    if (!declared(containerClaim(other)) && !(await runtime.containers.inspect(other))) {
      failures.push({ property: "networkMode", reason: `no container "${other}": declare it (berth.Container) or run it first` });
    }
  }
  const seen = new Set<string>();
  const siblings = declaredOthers(ctx, "container ");
  // The object this one replaces (or is) may hold its ports now: it goes first when they clash.
  const owners = [inputs.name, ctx.olds?.name].filter((n): n is string => typeof n === "string");
  for (const [i, p] of knownFixedPorts(inputs)) {
    if (p.hostPort === 0) continue;
    const claim = portClaim(p);
    if (seen.has(claim)) failures.push({ property: `ports[${i}]`, reason: `${claim} is published twice` });
    seen.add(claim);
    const sibling = siblings.find((c) => knownFixedPorts(c.inputs as Args).some(([, q]) => samePort(p, q)));
    if (sibling) {
      failures.push({ property: `ports[${i}]`, reason: `${claim} is already published by ${sibling.claim} in this program; pick another host port` });
      continue;
    }
    const taken = await runtime.containers.portTaken(p, owners);
    if (taken) failures.push({ property: `ports[${i}]`, reason: `${taken}; pick another host port, or stop what holds it` });
  }
  for (const [i, a] of attachmentsOf(inputs).entries()) {
    const property = inputs.networks ? `networks[${i}]` : "network";
    if (containsUnknown(a.network)) continue;
    const ip = "ip" in a && !isUnknown(a.ip) ? a.ip : undefined;
    if (a.network === DEFAULT_NETWORK) {
      if (ip) failures.push({ property: `${property}.ip`, reason: "user specified IP address is supported on user defined networks only" });
      continue;
    }
    const net = await networkFacts(a.network, ctx, runtime);
    if (!net) {
      failures.push({ property: inputs.networks ? `${property}.network` : property, reason: `no network "${a.network}": declare a berth.Network and pass its name` });
    }
    if (!net || net === "unknown") continue;
    if (ip) {
      const holder = siblings.find((c) => attachmentsOf(c.inputs as Args).some((o) => o.network === a.network && "ip" in o && o.ip === ip));
      if (holder) failures.push({ property: `${property}.ip`, reason: `Address already in use: ${ip} on network "${a.network}" is ${holder.claim}'s in this program` });
      if (!isHostAddress(parseSubnet(net.subnet), parseIPv4(ip)!)) {
        failures.push({ property: `${property}.ip`, reason: `Invalid address ${ip}: It does not belong to any of this network's subnets (${net.subnet})` });
      } else if (ip === net.gateway) {
        failures.push({ property: `${property}.ip`, reason: `Address already in use: ${ip} is the gateway of network "${a.network}"` });
      } else {
        const aux = Object.entries(net.auxAddresses).find(([, v]) => v === ip);
        if (aux) failures.push({ property: `${property}.ip`, reason: `Address already in use: ${ip} is auxiliary address "${aux[0]}" of network "${a.network}"` });
      }
    }
    if (net.passthru) {
      const sibling = siblings.find((c) => attachmentsOf(c.inputs as Args).some((o) => o.network === a.network));
      if (sibling) {
        const reason = `network "${a.network}" is macvlan passthru: its parent takes one container, and ${sibling.claim} is already on it`;
        failures.push({ property: inputs.networks ? `${property}.network` : property, reason });
      }
    }
  }
  return failures;
}

export const networkOutputsOf = (info: ContainerInfo) => ({ ips: info.ips ?? {}, ports: info.ports ?? [] });
