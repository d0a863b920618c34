// Name resolution between containers: berth writes each container's /etc/hosts itself — its own names, then
// every container it shares a user network with (by name and by its aliases there), its links, extra hosts — and
// rewrites the files of all containers on a network whenever one joins or leaves it. So a replaced container's
// new address is what its peers resolve as soon as it runs, without a DNS server process per network. The files
// are rewritten in place (same inode), because each is bind-mounted into its container.
import * as fs from "node:fs";
import type { ContainerNet } from "./attach";

export interface HostsEntry {
  ip: string;
  names: string[];
}

/** What hosts files are made from: a container's name, networking and options. */
export interface Resolvable {
  name: string;
  hostname: string;
  domainname?: string;
  net?: ContainerNet;
  links?: string[];
  extraHosts?: string[];
  createdAt: string;
}

/** "name:alias" (or "name") → [name, alias]. */
export function parseLink(link: string): [string, string] {
  const [name, alias = name] = link.split(":");
  return [name, alias];
}

/** "host:ip" → entry. */
export function parseExtraHost(line: string): HostsEntry {
  const i = line.lastIndexOf(":");
  return { ip: line.slice(i + 1), names: [line.slice(0, i)] };
}

const networksOf = (c: Resolvable): Set<string> => new Set((c.net?.attachments ?? []).map((a) => a.network));

/** Containers whose hosts files name c, or that c's names: they share a network with it. */
export function peersOf(c: Resolvable, all: Resolvable[]): Resolvable[] {
  const mine = networksOf(c);
  return all.filter((o) => o.name !== c.name && (o.net?.attachments ?? []).some((a) => mine.has(a.network)));
}

export function hostsFile(c: Resolvable, all: Resolvable[]): string {
  const entries: HostsEntry[] = [
    { ip: "127.0.0.1", names: ["localhost"] },
    { ip: "::1", names: ["localhost", "ip6-localhost", "ip6-loopback"] },
  ];
  const fqdn = c.domainname ? [`${c.hostname}.${c.domainname}`] : [];
  for (const a of c.net?.attachments ?? []) entries.push({ ip: a.ip, names: [...fqdn, c.hostname] });
  // Newest first: while a replacement and the container it replaces both exist, the name means the new one.
  const peers = peersOf(c, all).sort((x, y) => (x.createdAt < y.createdAt ? 1 : -1));
  const links = new Map((c.links ?? []).map(parseLink));
  const mine = networksOf(c);
  for (const p of peers) {
    for (const a of p.net!.attachments.filter((x) => mine.has(x.network))) {
      const alias = links.get(p.name);
      entries.push({ ip: a.ip, names: [p.name, ...a.aliases, ...(alias && alias !== p.name ? [alias] : [])] });
    }
  }
  entries.push(...(c.extraHosts ?? []).map(parseExtraHost));
  return entries.map((e) => `${e.ip}\t${e.names.join(" ")}`).join("\n") + "\n";
}

/** resolv.conf from the container's dns options, or the host's unless it points at a local resolver (127.x). */
export async function resolvConf(opts: { dns?: string[]; dnsSearch?: string[]; dnsOptions?: string[] }): Promise<string> {
  let hostFile = "";
  try {
    hostFile = fs.readFileSync("/etc/resolv.conf", "utf8"); // synchronous: read per container, cheaper by far
  } catch {
    // None: the container gets none either.
  }
  const host = /^\s*nameserver\s+127\./m.test(hostFile) ? "" : hostFile;
  if (!opts.dns?.length && !opts.dnsSearch?.length && !opts.dnsOptions?.length) return host;
  const hostLines = (key: string) => host.split("\n").filter((l) => l.trim().startsWith(`${key} `));
  const lines = [
    ...(opts.dns?.length ? opts.dns.map((d) => `nameserver ${d}`) : hostLines("nameserver")),
    ...(opts.dnsSearch?.length ? [`search ${opts.dnsSearch.join(" ")}`] : hostLines("search")),
    ...(opts.dnsOptions?.length ? [`options ${opts.dnsOptions.join(" ")}`] : hostLines("options")),
  ];
  return lines.join("\n") + "\n";
}
