// Published ports: a DNAT rule per mapping in BERTH-DNAT (reached from PREROUTING and OUTPUT for local
// destinations, 127.0.0.1 included), and a claim file per host port so no two berth containers — in any berth
// root on this host — publish the same one. A port some other process listens on is refused too.
import * as fs from "node:fs";
import * as net from "node:net";
import * as dgram from "node:dgram";
import * as path from "node:path";
import type { PortMapping } from "../runtime";
import { containerPaths, type Paths } from "../paths";
import { listDir, readJson } from "../json-file";
import { parseIPv4 } from "./cidr";
import { Chain, type Rule } from "./iptables";
import { rootId } from "../names";
import { withLock, writeLinked } from "../lock";
import { isTemp, sweepTemps } from "../staging";

/**
 * Prefix of the iptables tags of a container's rules: the root's id and the container's name, so that two roots
 * with a container of the same name never touch each other's rules.
 */
export const containerTag = (root: string, container: string): string => `berth:ctr@${rootId(root)}:${container}:`;
/** The tag prefix before the root was part of it; such rules are taken over when their rule matches exactly. */
const formerContainerTag = (container: string): string => `berth:ctr:${container}:`;

const ANY = "0.0.0.0";
const address = (p: PortMapping): string => `${p.hostIp}:${p.hostPort}/${p.protocol}`;

export function validatePorts(container: string, ports: PortMapping[]): void {
  const seen = new Set<string>();
  for (const p of ports) {
    if (parseIPv4(p.hostIp) === undefined) {
      throw new Error(
        `invalid hostIp "${p.hostIp}" for container "${container}": ` +
          "expected an IPv4 address such as 127.0.0.1 or 0.0.0.0",
      );
    }
    for (const [field, value, min] of [["hostPort", p.hostPort, 0], ["containerPort", p.containerPort, 1]] as const) {
      if (!Number.isInteger(value) || value < min || value > 65535) {
        throw new Error(`invalid ${field} ${value} for container "${container}": use ${min}-65535`);
      }
    }
    if (p.protocol !== "tcp" && p.protocol !== "udp") {
      throw new Error(`invalid protocol "${String(p.protocol)}" for container "${container}": use "tcp" or "udp"`);
    }
    const key = `${p.protocol}/${p.hostPort}`;
    if (p.hostPort !== 0 && seen.has(key)) throw new Error(`container "${container}" publishes ${address(p)} twice`);
    seen.add(key);
  }
}

export function portRules(root: string, container: string, containerIp: string, ports: PortMapping[]): Rule[] {
  return ports.map((p) => ({
    table: "nat",
    chain: Chain.dnat,
    args: [
      ...(p.hostIp === ANY ? [] : ["-d", `${p.hostIp}/32`]),
      ...["-p", p.protocol, "-m", p.protocol, "--dport", String(p.hostPort)],
      ...["-j", "DNAT", "--to-destination", `${containerIp}:${p.containerPort}`],
    ],
    tag: `${containerTag(root, container)}${p.protocol}:${p.hostIp}:${p.hostPort}`,
    formerTag: `${formerContainerTag(container)}${p.protocol}:${p.hostIp}:${p.hostPort}`,
  }));
}

interface Claim {
  root: string;
  container: string;
}

export class PortClaims {
  constructor(private readonly paths: Paths) {}

  /**
   * Claims every mapping for the container or none of them, picking a free host port for those asking for 0;
   * throws naming the address:port that is taken. Resolves to the mappings with their host ports.
   */
  async claim(container: string, ports: PortMapping[]): Promise<PortMapping[]> {
    if (ports.length === 0) return [];
    await fs.promises.mkdir(this.paths.portClaims, { recursive: true });
    // Host-wide, across roots and processes: a stale claim is judged and replaced by one claimer at a time.
    return withLock(`${this.paths.portClaims}.lock`, async () => {
      // A claim a killed process left under its temp name would read as a claim of another address (refuseOverlap).
      sweepTemps(this.paths.portClaims);
      return this.claimAll(container, ports);
    }, { what: "the published-port claims" });
  }

  private async claimAll(container: string, ports: PortMapping[]): Promise<PortMapping[]> {
    const mine: Claim = { root: this.paths.root, container };
    const made: string[] = [];
    const out: PortMapping[] = [];
    try {
      for (const asked of ports) {
        for (let attempt = 1; ; attempt++) {
          const p = asked.hostPort === 0 ? { ...asked, hostPort: await freePort(asked.hostIp, asked.protocol) } : asked;
          try {
            made.push(await this.claimOne(p, mine));
            await this.refuseOverlap(p, (c) => c.container === mine.container && c.root === mine.root);
            await refuseListener(p);
            out.push(p);
            break;
          } catch (e) {
            // A picked port someone took in the meantime: pick again.
            if (asked.hostPort !== 0 || attempt === 5) throw e;
            if (made.at(-1)?.endsWith(`-${p.hostPort}-${p.hostIp}`)) await fs.promises.rm(made.pop()!, { force: true });
          }
        }
      }
    } catch (e) {
      await Promise.all(made.map((f) => fs.promises.rm(f, { force: true })));
      throw e;
    }
    return out;
  }

  /** Why the mapping could not be claimed now by any of `owners`; changes nothing. */
  async taken(p: PortMapping, owners: string[]): Promise<string | undefined> {
    const holder = await readJson<Claim>(path.join(this.paths.portClaims, `${p.protocol}-${p.hostPort}-${p.hostIp}`)).catch(() => undefined);
    const ours = (c: Claim) => c.root === this.paths.root && owners.includes(c.container);
    try {
      if (holder && holderExists(holder) && !ours(holder)) throw allocated(p, holder);
      await this.refuseOverlap(p, ours);
      // Berth's own rules bind nothing: a listener is another process.
      await refuseListener(p);
    } catch (e) {
      return (e as Error).message;
    }
    return undefined;
  }

  async release(container: string): Promise<void> {
    for (const name of (await listDir(this.paths.portClaims)).filter((n) => !isTemp(n))) {
      const file = path.join(this.paths.portClaims, name);
      const c = await readJson<Claim>(file).catch(() => undefined);
      if (c?.root === this.paths.root && c.container === container) await fs.promises.rm(file, { force: true });
    }
  }

  private async claimOne(p: PortMapping, mine: Claim): Promise<string> {
    const file = path.join(this.paths.portClaims, `${p.protocol}-${p.hostPort}-${p.hostIp}`);
    for (;;) {
      // Linked whole: a reader never sees an empty claim (and takes it for stale).
      if (await writeLinked(file, JSON.stringify(mine))) return file;
      const holder = await readJson<Claim>(file).catch(() => undefined);
      if (holder && holderExists(holder)) throw allocated(p, holder);
      // Its container is gone (e.g. berth's root was wiped): the claim is stale.
      await fs.promises.rm(file, { force: true });
    }
  }

  /** 0.0.0.0:P and 127.0.0.1:P cannot both be published. */
  private async refuseOverlap(p: PortMapping, isMine: (holder: Claim) => boolean): Promise<void> {
    const prefix = `${p.protocol}-${p.hostPort}-`;
    for (const name of (await listDir(this.paths.portClaims)).filter((n) => !isTemp(n))) {
      const ip = name.slice(prefix.length);
      if (!name.startsWith(prefix) || ip === p.hostIp || (ip !== ANY && p.hostIp !== ANY)) continue;
      const holder = await readJson<Claim>(path.join(this.paths.portClaims, name)).catch(() => undefined);
      // Another container: of another name, or of the same name in another root.
      if (holder && holderExists(holder) && !isMine(holder)) {
        throw allocated({ ...p, hostIp: ip }, holder);
      }
    }
  }
}

const holderExists = (c: Claim): boolean => fs.existsSync(containerPaths(c.root, c.container).record);

const allocated = (p: PortMapping, holder: Claim): Error =>
  new Error(`cannot publish ${address(p)}: port is already allocated by berth container "${holder.container}"`);

/** Binds hostIp:port (0: any free one) for a moment; resolves to the port bound. */
function bindOnce(hostIp: string, port: number, protocol: "tcp" | "udp"): Promise<number> {
  return new Promise((resolve, reject) => {
    if (protocol === "tcp") {
      const server = net.createServer();
      server.once("error", reject);
      server.listen({ host: hostIp, port, exclusive: true }, () => {
        const bound = (server.address() as net.AddressInfo).port;
        server.close(() => resolve(bound));
      });
    } else {
      const socket = dgram.createSocket("udp4");
      socket.once("error", reject);
      socket.bind(port, hostIp, () => {
        const bound = socket.address().port;
        socket.close(() => resolve(bound));
      });
    }
  });
}

/** A port the kernel considers free on this address and protocol (it picks one for port 0). */
export const freePort = (hostIp: string, protocol: "tcp" | "udp" = "tcp"): Promise<number> => bindOnce(hostIp, 0, protocol);

/** Binds the address for a moment to learn whether another process holds it. */
async function refuseListener(p: PortMapping): Promise<void> {
  const err = await bindOnce(p.hostIp, p.hostPort, p.protocol).then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e,
  );
  if (!err) return;
  const why =
    err.code === "EADDRINUSE"
      ? "address already in use by another process"
      : err.code === "EADDRNOTAVAIL"
        ? `${p.hostIp} is not an address of this host`
        : err.message;
  throw new Error(`cannot publish ${address(p)}: ${why}`);
}
