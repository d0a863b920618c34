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
// made or deleted costs. The claim file is made under its process's name first (takeClaim), so a claim file another
// process holds is told from a crashed one's; the process breaking a crashed claim's file marks the owner's index
// "*" first, so the address that claim may have taken is scanned for even if the breaker dies too.
//
// Synchronous calls throughout: each claim reads and writes a handful of small files, and through fs.promises each
// cost a few thread-pool round trips (~30× the CPU of the calls themselves).
import * as fs from "node:fs";
import * as path from "node:path";
import { listDir, readText } from "../json-file";
import { deadOwner, tryLock, withLock } from "../lock";
import { liveTemp, sweepTemps, tempBeside } from "../staging";
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
/** The index entry of an owner whose claim crashed (or an older berth's, left between taking an address and indexing it). */
const UNKNOWN = "*";
/** Beside an owner's index entry while it takes an address: its name, linked under the address. */
const CLAIMING = "#claim";

/** Makes a pool directory, indexed from the start when it is new. */
export function makePool(dir: string): void {
  if (fs.mkdirSync(dir, { recursive: true })) fs.writeFileSync(path.join(dir, INDEXED), "");
}

/**
 * Makes owner's claim file, exclusively: written under an owner-named name (staging.ts's tempBeside, `mine`, kept
 * until the claim file goes) and hard-linked into place, so a claim file with no live process's name beside it is a
 * crashed claim's (no extra inode: one file, two names). A live one refuses this claim: of two processes claiming
 * for one owner at once exactly one goes on (each took the other's file for a crashed one, and one address was
 * left out of the index).
 */
async function takeClaim(owner: string, claim: string, mine: string): Promise<void> {
  fs.writeFileSync(mine, owner, { flag: "wx" });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.linkSync(mine, claim);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    // Judged and removed under a guard: two processes finding one crashed claim never remove each other's new one.
    const found = await withLock(`${claim}.break`, async () => breakDeadClaim(claim));
    if (found === "live") break;
    if (found === "removed") await sweepDead(path.dirname(claim));
  }
  throw new Error(
    `another berth process is taking an address for "${owner}" at this moment (${claim} is its claim): ` +
      `one container name is made by one process at a time; run again once it is done`,
  );
}

/** Whether a live process's owner-named name (takeClaim's `mine`) is the file ino, claim's now or before. */
function claimedLive(claim: string, ino: number): boolean {
  const dir = path.dirname(claim);
  const prefix = `${path.basename(claim)}#tmp-`;
  return fs.readdirSync(dir).some((n) => n.startsWith(prefix) && liveTemp(n) && fs.statSync(path.join(dir, n), { throwIfNoEntry: false })?.ino === ino);
}

/**
 * Under the claim's guard: removes a claim file no live process holds — a crashed claim's, maybe linked under its
 * address: unlinked, never written through. It is moved aside first and judged again there: one that its process
 * let go of and another took meanwhile (linked by a process not under the guard) is seen there and put back.
 */
function breakDeadClaim(claim: string): "live" | "removed" | "gone" {
  const st = fs.statSync(claim, { throwIfNoEntry: false });
  if (!st) return "gone";
  if (claimedLive(claim, st.ino)) return "live";
  // In the owner's index before the claim file goes (and a release stops scanning): the next claim or release
  // scans for the address the crashed claim may have taken, whether or not this process lives to.
  fs.appendFileSync(claim.slice(0, -CLAIMING.length), `\n${UNKNOWN}`);
  const aside = tempBeside(`${claim}.dead`);
  try {
    fs.renameSync(claim, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    throw e;
  }
  const live = claimedLive(claim, fs.statSync(aside).ino);
  if (live) {
    try {
      fs.linkSync(aside, claim);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  fs.rmSync(aside);
  return live ? "live" : "removed";
}

/**
 * What claimers and breakers that are gone left in the owners' directory: their temp names (a crashed claimer's
 * own, a claim file moved aside) and their guards (`#claim.break`, broken as any dead lock is).
 */
async function sweepDead(owners: string): Promise<void> {
  sweepTemps(owners);
  for (const n of fs.readdirSync(owners)) {
    const guard = path.join(owners, n);
    if (n.endsWith(`${CLAIMING}.break`) && deadOwner(guard)) (await tryLock(guard))?.();
  }
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
    const mine = tempBeside(claim);
    let held: string[] | undefined;
    let ip: string | undefined;
    try {
      await takeClaim(owner, claim, mine);
      const index = indexed(owner);
      // A crashed claim's "*" (or an older berth's): the index may miss an address, so it is made again from a scan.
      held = index.includes(UNKNOWN) ? (await list()).filter((a) => a.owner === owner).map((a) => a.ip) : index;
      return (ip = await take(claim));
    } finally {
      if (held) {
        // In place: until the claim file goes, a release scans whatever the index says.
        const ips = ip === undefined || held.includes(ip) ? held : [...held, ip];
        if (ips.length === 0) fs.rmSync(indexFile(owner), { force: true });
        else fs.writeFileSync(indexFile(owner), ips.join("\n"));
        fs.rmSync(claim, { force: true });
      }
      fs.rmSync(mine, { force: true }); // after the claim file: while that is there, this name says it is live
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
