// The networking part of the Container resource: Docker's forms turned into the runtime's spec, the checks that
// need other resources (networks exist, static addresses fit them), and the host-wide things a container claims
// (host ports, static addresses) so that two resources of one program cannot both take one.
import type { z } from "zod";
import { ContainerArgs, parsePortString, type PortForm } from "../../sdk/schema";
import type { ContainerInfo, ContainerNetworking, PortMapping, Runtime } from "../../native/runtime";
import { isHostAddress, parseIPv4, parseSubnet } from "../../native/network/cidr";
import { DEFAULT_NETWORK } from "../../native/network/networks";
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

const attachmentsOf = (inputs: Args) => inputs.networks ?? (inputs.network !== undefined ? [{ network: inputs.network }] : []);

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
    ...portsOf(inputs).filter((p) => p.hostPort !== 0).map(portClaim),
    ...attachmentsOf(inputs).flatMap((a) => ("ip" in a && a.ip ? [ipClaim(a.network, a.ip)] : [])),
  ];
}

/** What Docker would refuse that the schema alone cannot see. */
export async function networkFailures(inputs: Args, declared: (claim: string) => boolean, runtime: Runtime): Promise<CheckFailure[]> {
  const failures: CheckFailure[] = [];
  const mode = inputs.networkMode;
  if (mode !== undefined && mode !== DEFAULT_NETWORK && attachmentsOf(inputs).length > 0) {
    failures.push({ property: "networkMode", reason: `conflicting options: networks and network mode "${mode}"; give one or the other` });
  }
  if ((mode === "host" || mode === "none" || mode?.startsWith("container:")) && portsOf(inputs).length + (inputs.publishAll ? 1 : 0) > 0) {
    failures.push({ property: "ports", reason: `conflicting options: port publishing and network mode "${mode}"` });
  }
  if (mode?.startsWith("container:")) {
    const other = mode.slice("container:".length);
    if (!declared(containerClaim(other)) && !(await runtime.containers.inspect(other))) {
      failures.push({ property: "networkMode", reason: `no container "${other}": declare it (berth.Container) or run it first` });
    }
  }
  const seen = new Set<string>();
  for (const [i, p] of portsOf(inputs).entries()) {
    const claim = portClaim(p);
    if (p.hostPort !== 0 && seen.has(claim)) failures.push({ property: `ports[${i}]`, reason: `${claim} is published twice` });
    seen.add(claim);
  }
  for (const [i, a] of attachmentsOf(inputs).entries()) {
    const property = inputs.networks ? `networks[${i}]` : "network";
    const ip = "ip" in a ? a.ip : undefined;
    if (a.network === DEFAULT_NETWORK) {
      if (ip) failures.push({ property: `${property}.ip`, reason: "user specified IP address is supported on user defined networks only" });
      continue;
    }
    const info = await runtime.networks.inspect(a.network);
    if (!info && !declared(networkClaim(a.network))) {
      failures.push({ property: inputs.networks ? `${property}.network` : property, reason: `no network "${a.network}": declare a berth.Network and pass its name` });
    }
    if (info && ip) {
      if (!isHostAddress(parseSubnet(info.subnet), parseIPv4(ip)!)) {
        failures.push({ property: `${property}.ip`, reason: `Invalid address ${ip}: It does not belong to any of this network's subnets (${info.subnet})` });
      } else if (ip === info.gateway) {
        failures.push({ property: `${property}.ip`, reason: `Address already in use: ${ip} is the gateway of network "${a.network}"` });
      }
    }
  }
  return failures;
}

export const networkOutputsOf = (info: ContainerInfo) => ({ ips: info.ips ?? {}, ports: info.ports ?? [] });
