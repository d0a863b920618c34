// Address allocation and subnet parsing: no host objects, only a temp directory (and processes claiming in it).
import { afterEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileIpam } from "../../native/network/ipam";
import { parseIPv4, parseSubnet, formatSubnet, overlaps } from "../../native/network/cidr";
import { REPO } from "./helpers";

const dirs: string[] = [];
const tempDir = (): string => {
  const d = fs.mkdtempSync("/tmp/berth-test-ipam-");
  dirs.push(d);
  return `${d}/ips`;
};
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && !c.signalCode) c.kill("SIGKILL");
  dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

describe("parseSubnet", () => {
  it("accepts a network-form CIDR", () => {
    expect(formatSubnet(parseSubnet("10.89.0.0/24"))).toBe("10.89.0.0/24");
  });
  it("names the right network address when given a host address", () => {
    expect(() => parseSubnet("10.89.0.1/24")).toThrow('invalid subnet "10.89.0.1/24": it should be 10.89.0.0/24');
  });
  it.each(["10.89.0.0", "10.89.0.0/33", "10.89.0.0/31", "300.1.1.0/24", "banana"])("rejects %s", (s) => {
    expect(() => parseSubnet(s)).toThrow(/expected an IPv4 CIDR/);
  });
  it("detects overlaps", () => {
    expect(overlaps(parseSubnet("10.0.0.0/16"), parseSubnet("10.0.5.0/24"))).toBe(true);
    expect(overlaps(parseSubnet("10.1.0.0/24"), parseSubnet("10.1.1.0/24"))).toBe(false);
  });
});

describe("fileIpam", () => {
  it("never hands out the network, broadcast or gateway address, and says when the pool is empty", async () => {
    const ipam = fileIpam(tempDir(), { subnet: parseSubnet("10.9.0.0/29"), reserved: [parseIPv4("10.9.0.1")!] });
    const got = [];
    for (let i = 0; i < 5; i++) got.push(await ipam.allocate(`c${i}`));
    expect(got).toEqual(["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"]);
    await expect(ipam.allocate("c5")).rejects.toThrow('no free address left in 10.9.0.0/29 for "c5"');
  });

  it("gives distinct addresses to concurrent allocations, also from separate instances", async () => {
    const dir = tempDir();
    const subnet = parseSubnet("10.9.0.0/26");
    const gateway = parseIPv4("10.9.0.1")!;
    const got = await Promise.all(
      Array.from({ length: 40 }, (_, i) => fileIpam(dir, { subnet, reserved: [gateway] }).allocate(`c${i}`)),
    );
    expect(new Set(got).size).toBe(40);
    expect(got).not.toContain("10.9.0.1");
    expect((await fileIpam(dir, { subnet, reserved: [gateway] }).list()).length).toBe(40);
  });

  it("releases by owner, idempotently, and reuses the freed address", async () => {
    const ipam = fileIpam(tempDir(), { subnet: parseSubnet("10.9.0.0/24"), reserved: [parseIPv4("10.9.0.1")!] });
    const a = await ipam.allocate("a");
    await ipam.allocate("b");
    await ipam.release("a");
    await ipam.release("a");
    expect((await ipam.list()).map((x) => x.owner)).toEqual(["b"]);
    expect(await ipam.allocate("c")).toBe(a);
  });
});

describe("fileIpam's owner index", () => {
  const pool = { subnet: parseSubnet("10.9.0.0/24"), reserved: [parseIPv4("10.9.0.1")!] };
  const index = (dir: string, owner: string) => fs.readFileSync(`${dir}/.owners/${owner}`, "utf8");

  it("lists each owner's addresses, and a release removes exactly those and the entry", async () => {
    const dir = tempDir();
    const ipam = fileIpam(dir, pool);
    const a = await ipam.allocate("a");
    await ipam.claim("a", "10.9.0.77");
    const b = await ipam.allocate("b");
    expect(index(dir, "a").split("\n").sort()).toEqual([a, "10.9.0.77"].sort());
    expect(index(dir, "b")).toBe(b);
    expect((await ipam.owners()).sort()).toEqual(["a", "b"]);
    await ipam.release("a");
    expect(fs.existsSync(`${dir}/.owners/a`)).toBe(false);
    expect(await ipam.list()).toEqual([{ ip: b, owner: "b" }]);
    expect(await ipam.owners()).toEqual(["b"]);
  });

  it("keeps the index unchanged when a claim is refused", async () => {
    const dir = tempDir();
    const ipam = fileIpam(dir, pool);
    await ipam.claim("a", "10.9.0.5");
    const b = await ipam.allocate("b");
    await expect(ipam.claim("b", "10.9.0.5")).rejects.toThrow('Address already in use: 10.9.0.5 is held by container "a"');
    expect(index(dir, "b")).toBe(b);
  });

  // What a claim leaves when killed after linking an address but before indexing it: the claim file, linked.
  const linkedNotIndexed = (dir: string) => {
    fs.writeFileSync(`${dir}/.owners/crashed#claim`, "crashed");
    fs.linkSync(`${dir}/.owners/crashed#claim`, `${dir}/10.9.0.40`);
  };
  /** A pool where "other" and "crashed" took an address each, then a claim of "crashed" crashed (linkedNotIndexed). */
  const crashedBesideOther = async () => {
    const dir = tempDir();
    const ipam = fileIpam(dir, pool);
    await ipam.allocate("other");
    await ipam.allocate("crashed");
    linkedNotIndexed(dir);
    return { dir, ipam };
  };
  /** Releases "crashed": only "other"'s address and index entry are left. */
  const releasesAll = async (ipam: ReturnType<typeof fileIpam>, dir: string) => {
    await ipam.release("crashed");
    expect((await ipam.list()).map((x) => x.owner)).toEqual(["other"]);
    expect(fs.readdirSync(`${dir}/.owners`)).toEqual(["other"]);
  };

  it("after a crash between linking and indexing, a release still finds the address, and the owner counts", async () => {
    const { dir, ipam } = await crashedBesideOther();
    expect((await ipam.owners()).sort()).toEqual(["crashed", "other"]);
    // A claim after the crash neither fails on the file left nor writes through it into the address it is linked as.
    const again = await ipam.allocate("crashed");
    expect(fs.readFileSync(`${dir}/10.9.0.40`, "utf8")).toBe("crashed");
    expect(fs.existsSync(`${dir}/.owners/crashed#claim`)).toBe(false);
    expect(index(dir, "crashed").split("\n")).toContain(again);
    expect(index(dir, "crashed").split("\n")).toContain("10.9.0.40");
    await releasesAll(ipam, dir);
  });

  it("after a crash while the index was written in place, the next claim and a release still find every address", async () => {
    const dir = tempDir();
    const ipam = fileIpam(dir, pool);
    await ipam.allocate("other");
    const first = await ipam.allocate("crashed");
    linkedNotIndexed(dir);
    fs.writeFileSync(`${dir}/.owners/crashed`, ""); // killed while writing the index in place: cut to nothing
    await ipam.claim("crashed", "10.9.0.50");
    expect(index(dir, "crashed").split("\n").sort()).toEqual([first, "10.9.0.40", "10.9.0.50"].sort());
    await releasesAll(ipam, dir);
  });

  it.each([false, true])("after an older berth's crash between marking and linking, a release (after a claim: %s) still finds the address", async (claimFirst) => {
    const dir = tempDir();
    const ipam = fileIpam(dir, pool);
    await ipam.allocate("other");
    // What an older berth's allocate left when killed after linking the address but before listing it under its owner.
    fs.writeFileSync(`${dir}/.owners/crashed`, "*");
    fs.writeFileSync(`${dir}/10.9.0.40`, "crashed");
    expect(await ipam.owners()).toContain("crashed");
    if (claimFirst) {
      const again = await ipam.allocate("crashed");
      expect(index(dir, "crashed").split("\n").sort()).toEqual(["10.9.0.40", again].sort());
    }
    await releasesAll(ipam, dir);
  });

  /**
   * A real process claiming 10.9.0.9 for "web" over and over, caught (SIGSTOP) while it holds the claim file; it stops
   * once `stop` exists.
   */
  async function stoppedMidClaim(dir: string, stop: string): Promise<ChildProcess> {
    const claim = `${dir}/.owners/web#claim`;
    for (let attempt = 0; attempt < 20; attempt++) {
      const child = spawn(process.execPath, ["-e", `const { fileIpam } = require(${JSON.stringify(`${REPO}/dist/native/network/ipam.js`)});
        const { parseSubnet } = require(${JSON.stringify(`${REPO}/dist/native/network/cidr.js`)});
        const ipam = fileIpam(${JSON.stringify(dir)}, { subnet: parseSubnet("10.9.0.0/24"), reserved: [] });
        console.log("go");
        (async () => { while (!require("fs").existsSync(${JSON.stringify(stop)})) await ipam.claim("web", "10.9.0.9"); })();`], { stdio: ["ignore", "pipe", "inherit"] });
      children.push(child);
      await new Promise((r) => child.stdout!.once("data", r));
      // Polled without yielding: the claim file lives for microseconds of each claim.
      const deadline = Date.now() + 2000;
      while (Date.now() < deadline && !fs.existsSync(claim));
      child.kill("SIGSTOP");
      await new Promise((r) => setTimeout(r, 20));
      if (fs.existsSync(claim)) return child;
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    }
    throw new Error("never caught the claiming process with its claim file");
  }

  it("two processes claiming for one owner at once: exactly one wins; a killed one's claim is taken over", async () => {
    const dir = tempDir();
    const ipam = fileIpam(dir, { subnet: parseSubnet("10.9.0.0/24"), reserved: [] });
    await ipam.claim("web", "10.9.0.9");
    const stop = `${dir}/../stop`;
    const live = await stoppedMidClaim(dir, stop);
    // The other process's claim is live: this one is refused and changes nothing (it took that one for a crashed
    // claim's file, and both went on: one address left out of the index, never released).
    await expect(ipam.allocate("web")).rejects.toThrow(/another berth process is taking an address for "web" at this moment/);
    await expect(ipam.claim("web", "10.9.0.20")).rejects.toThrow(/another berth process is taking an address for "web"/);
    expect(await ipam.list()).toEqual([{ ip: "10.9.0.9", owner: "web" }]);
    fs.writeFileSync(stop, "");
    live.kill("SIGCONT");
    await new Promise((r) => (live.exitCode !== null ? r(null) : live.once("exit", r)));
    expect(live.exitCode).toBe(0);
    expect([await ipam.list(), index(dir, "web"), fs.readdirSync(`${dir}/.owners`)]).toEqual([[{ ip: "10.9.0.9", owner: "web" }], "10.9.0.9", ["web"]]);

    // Killed holding its claim: the next claim takes it over, and a release then frees every address of "web".
    fs.rmSync(stop);
    const killed = await stoppedMidClaim(dir, stop);
    killed.kill("SIGKILL");
    await new Promise((r) => (killed.signalCode ? r(null) : killed.once("exit", r)));
    const ip = await ipam.allocate("web");
    expect(index(dir, "web").split("\n").sort()).toEqual(["10.9.0.9", ip].sort());
    await ipam.release("web");
    expect([await ipam.list(), fs.readdirSync(`${dir}/.owners`)]).toEqual([[], []]);
  });

  it("a breaker of a crashed claim killed right after removing it: the crash is in the index, and a release frees the address", async () => {
    const { dir, ipam } = await crashedBesideOther();
    // A real claim for "crashed" breaking the crashed claim's file, SIGKILLed once it has moved it aside: it never
    // rescans, nor writes the index.
    const breaker = spawnSync(process.execPath, ["-e", `const fs = require("fs");
      const rename = fs.renameSync;
      fs.renameSync = (from, to) => { rename(from, to); if (to.includes("#claim.dead#tmp-")) process.kill(process.pid, "SIGKILL"); };
      const { fileIpam } = require(${JSON.stringify(`${REPO}/dist/native/network/ipam.js`)});
      const { parseSubnet } = require(${JSON.stringify(`${REPO}/dist/native/network/cidr.js`)});
      fileIpam(${JSON.stringify(dir)}, { subnet: parseSubnet("10.9.0.0/24"), reserved: [] }).allocate("crashed");`], { encoding: "utf8" });
    expect(breaker.signal, breaker.stderr).toBe("SIGKILL");
    expect(fs.existsSync(`${dir}/.owners/crashed#claim`)).toBe(false);
    // What it left: its guard, its claim file's name and the one moved aside, all of a process that is gone.
    const left = fs.readdirSync(`${dir}/.owners`).filter((n) => n.startsWith("crashed#"));
    expect(left.map((n) => n.replace(/#tmp-.*/, "#tmp-")).sort()).toEqual(["crashed#claim#tmp-", "crashed#claim.break", "crashed#claim.dead#tmp-"]);
    await ipam.release("crashed");
    expect((await ipam.list()).map((x) => x.owner)).toEqual(["other"]);
    // The next break of a crashed claim (another owner's) sweeps what the killed breaker left.
    fs.writeFileSync(`${dir}/.owners/next#claim`, "next");
    await ipam.allocate("next");
    expect(fs.readdirSync(`${dir}/.owners`).sort()).toEqual(["next", "other"]);
  });

  it("never removes an address its index names but another owner holds now", async () => {
    const dir = tempDir();
    const ipam = fileIpam(dir, pool);
    const ip = await ipam.allocate("b");
    fs.writeFileSync(`${dir}/.owners/a`, ip); // a stale entry: a released this address, then b took it
    await ipam.release("a");
    expect(await ipam.list()).toEqual([{ ip, owner: "b" }]);
  });

  it("scans a pool made before the index (no marker), so addresses of older runs are released too", async () => {
    const dir = tempDir();
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(`${dir}/10.9.0.9`, "old");
    const ipam = fileIpam(dir, pool);
    expect(await ipam.owners()).toEqual(["old"]);
    await ipam.release("old");
    expect(await ipam.list()).toEqual([]);
  });
});
