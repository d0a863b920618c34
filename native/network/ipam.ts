// Host-local style address allocation: one file per handed-out address, holding its owner's name. The file is
// written whole first (`.owners/<owner>#claim`) and hard-linked into place (link fails if the address is taken), so
// two processes can never get the same address and a crash never leaves an address without a known owner.
//
// An owner index (`.owners/<owner>`: the addresses it holds) lets a release remove its own without reading every
// address of the network. It is a superset: while the claim file is there (from before the address is taken until
// the index names it) a release scans, and so does the next claim, which writes the index from that scan: a crash at
// any point leaves a release or a claim that scans, never an index that misses an address — and the index itself can
// be written in place. An older berth's "*" entry is scanned the same way. A pool made before the index existed has
// no INDEXED marker, and its releases scan. A claim makes two files (claim and index) and renames none: each file
// made or deleted costs.
//
// Synchronous calls throughout: each claim reads and writes a handful of small files, and through fs.promises each
// cost a few thread-pool round trips (~30× the CPU of the calls themselves).
import * as fs from "node:fs";
import * as path from "node:path";
import { listDir, readText } from "../json-file";
import { broadcast, formatIPv4, formatSubnet, isHostAddress, parseIPv4, type Subnet } from "./cidr";

export interface Allocation {
  ip: string;
  owner: string;
}

export interface Pool {
  subnet: Subnet;
  /** Where dynamic addresses come from (default: the whole subnet). */
  range?: Subnet;
  /** Never handed out: the gateway, auxiliary addresses. */
  reserved: number[];
}

export interface Ipam {
  /** A free address of the range for owner; the network, broadcast and reserved addresses are never handed out. */
  allocate(owner: string): Promise<string>;
  /** The given address for owner (Docker's --ip); throws "Address already in use" when it is taken or reserved. */
  claim(owner: string, ip: string): Promise<string>;
  /** Frees every address owner holds; nothing to free is fine. */
  release(owner: string): Promise<void>;
  list(): Promise<Allocation[]>;
  /** Who holds (or is taking) an address. */
  owners(): Promise<string[]>;
}

/** In a pool directory made with the index: every owner's addresses are in `.owners`. */
export const INDEXED = ".indexed";
/** The index entry of an owner an older berth left between taking an address and indexing it. */
const UNKNOWN = "*";
/** Beside an owner's index entry while it takes an address: its name, linked under the address. */
const CLAIMING = "#claim";

/** Makes a pool directory, indexed from the start when it is new. */
export function makePool(dir: string): void {
  if (fs.mkdirSync(dir, { recursive: true })) fs.writeFileSync(path.join(dir, INDEXED), "");
}

export function fileIpam(dir: string, pool: Pool): Ipam {
  const { subnet, reserved } = pool;
  const range = pool.range ?? subnet;
  const list = async (): Promise<Allocation[]> => {
    const out: Allocation[] = [];
    for (const ip of await listDir(dir)) {
      if (parseIPv4(ip) === undefined) continue; // a stray temp file is not an allocation
      const owner = readText(path.join(dir, ip));
      if (owner !== undefined) out.push({ ip, owner });
    }
    return out;
  };
  const indexFile = (owner: string) => path.join(dir, ".owners", owner);
  const indexed = (owner: string): string[] =>
    (readText(indexFile(owner)) ?? "").split("\n").filter(Boolean);
  const claimFile = (owner: string) => indexFile(owner) + CLAIMING;
  /** Runs take with the claim file, to be hard-linked under an address; indexes what it took. */
  const withClaimFile = async (owner: string, take: (claim: string) => Promise<string>): Promise<string> => {
    makePool(dir);
    fs.mkdirSync(path.dirname(indexFile(owner)), { recursive: true });
    const claim = claimFile(owner);
    const index = indexed(owner);
    // A crashed claim's file or an older berth's "*": the index may miss an address, so it is made again from a scan.
    const held = fs.existsSync(claim) || index.includes(UNKNOWN) ? (await list()).filter((a) => a.owner === owner).map((a) => a.ip) : index;
    try {
      fs.writeFileSync(claim, owner, { flag: "wx" });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      // A crashed claim's, maybe linked under its address: unlinked, never written through.
      fs.rmSync(claim);
      fs.writeFileSync(claim, owner, { flag: "wx" });
    }
    let ip: string | undefined;
    try {
      return (ip = await take(claim));
    } finally {
      // In place: until the claim file goes, a release scans whatever the index says.
      const ips = ip === undefined || held.includes(ip) ? held : [...held, ip];
      if (ips.length === 0) fs.rmSync(indexFile(owner), { force: true });
      else fs.writeFileSync(indexFile(owner), ips.join("\n"));
      fs.rmSync(claim, { force: true });
    }
  };
  /** false when the address is taken already. */
  const link = (claim: string, ip: string): boolean => {
    try {
      fs.linkSync(claim, path.join(dir, ip));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      return false;
    }
  };
  return {
    list,
    async owners() {
      if (!fs.existsSync(path.join(dir, INDEXED))) return [...new Set((await list()).map((a) => a.owner))];
      // An owner taking an address has its claim file there, maybe no entry yet; other "#" names are temp files.
      const entries = await listDir(path.join(dir, ".owners"));
      return [...new Set(entries.flatMap((o) => (o.endsWith(CLAIMING) ? [o.slice(0, -CLAIMING.length)] : o.includes("#", 1) ? [] : [o])))];
    },
    allocate: (owner) =>
      withClaimFile(owner, async (claim) => {
        const taken = new Set(await listDir(dir));
        for (let n = range.base; n <= broadcast(range); n++) {
          const ip = formatIPv4(n);
          if (!isHostAddress(subnet, n) || reserved.includes(n) || taken.has(ip)) continue;
          if (link(claim, ip)) return ip;
        }
        throw new Error(`no free address left in ${formatSubnet(range)} for "${owner}"`);
      }),
    async claim(owner, ip) {
      const n = parseIPv4(ip);
      if (n === undefined || !isHostAddress(subnet, n)) {
        throw new Error(`Invalid address ${ip}: It does not belong to any of this network's subnets (${formatSubnet(subnet)})`);
      }
      const inUse = (by: string) => new Error(`Address already in use: ${ip} is held by ${by}`);
      if (reserved.includes(n)) throw inUse("the network (its gateway or an auxiliary address)");
      return withClaimFile(owner, async (claim) => {
        if (link(claim, ip)) return ip;
        const holder = readText(path.join(dir, ip)) ?? "?";
        if (holder !== owner) throw inUse(`container "${holder}"`);
        return ip;
      });
    },
    async release(owner) {
      const ips = indexed(owner);
      const scan = ips.includes(UNKNOWN) || fs.existsSync(claimFile(owner)) || !fs.existsSync(path.join(dir, INDEXED));
      for (const a of scan ? await list() : ips.map((ip) => ({ ip, owner }))) {
        // Checked before removal: an index may name an address its owner let go of and another took since.
        const holder = readText(path.join(dir, a.ip));
        if (a.owner === owner && holder === owner) fs.rmSync(path.join(dir, a.ip), { force: true });
      }
      fs.rmSync(indexFile(owner), { force: true });
      fs.rmSync(claimFile(owner), { force: true });
    },
  };
}
