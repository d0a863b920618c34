// Host-local style address allocation: one file per handed-out address, holding its owner's name. The file is
// written under a temp name and hard-linked into place (link fails if the address is taken), so two processes can
// never get the same address and a crash never leaves an address without a known owner to release it.
import * as fs from "node:fs";
import * as path from "node:path";
import { listDir } from "../json-file";
import { broadcast, formatIPv4, formatSubnet, parseIPv4, type Subnet } from "./cidr";

export interface Allocation {
  ip: string;
  owner: string;
}

export interface Ipam {
  /** A free address for owner; the network, broadcast and gateway addresses are never handed out. */
  allocate(owner: string): Promise<string>;
  /** Frees every address owner holds; nothing to free is fine. */
  release(owner: string): Promise<void>;
  list(): Promise<Allocation[]>;
}

export function fileIpam(dir: string, subnet: Subnet, gateway: number): Ipam {
  const list = async (): Promise<Allocation[]> => {
    const out: Allocation[] = [];
    for (const ip of await listDir(dir)) {
      if (parseIPv4(ip) === undefined) continue; // a stray temp file is not an allocation
      const owner = await fs.promises.readFile(path.join(dir, ip), "utf8").catch(() => undefined);
      if (owner !== undefined) out.push({ ip, owner });
    }
    return out;
  };
  return {
    list,
    async allocate(owner) {
      await fs.promises.mkdir(dir, { recursive: true });
      const taken = new Set(await listDir(dir));
      const claim = path.join(dir, `.${owner}.${process.pid}.tmp`);
      await fs.promises.writeFile(claim, owner);
      try {
        for (let n = subnet.base + 1; n < broadcast(subnet); n++) {
          const ip = formatIPv4(n);
          if (n === gateway || taken.has(ip)) continue;
          try {
            await fs.promises.link(claim, path.join(dir, ip));
            return ip;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
          }
        }
      } finally {
        await fs.promises.rm(claim, { force: true });
      }
      throw new Error(`no free address left in ${formatSubnet(subnet)} for "${owner}"`);
    },
    async release(owner) {
      for (const a of await list()) {
        if (a.owner === owner) await fs.promises.rm(path.join(dir, a.ip), { force: true });
      }
    },
  };
}
