// Port rules of containers removed at once go in one iptables-restore (native/network/iptables.ts). On the real
// host: when one caller's rule was deleted by hand, or all of them (a firewall reload), the batch fails as a
// whole; one iptables-save then serves every caller, where each paid its own save and restore (a destroy of 100
// after a firewall reload ran 100 of them).
import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { realHost, type Host } from "../../native/host/exec";
import { Iptables } from "../../native/network/iptables";
import { containerTag, portRules } from "../../native/network/portmap";

// A root path of this test alone: its hash is in every tag, so no other berth user's rule is touched.
const root = `/tmp/berth-ipt-${randomBytes(4).toString("hex")}`;
const names = [0, 1, 2, 3].map((i) => `c${i}`);
const ports = names.map(() => 20000 + Math.floor(Math.random() * 40000));
const rulesOf = (i: number) => portRules(root, names[i], `10.254.${i}.2`, [{ hostIp: "127.0.0.1", hostPort: ports[i], containerPort: 80, protocol: "tcp" }]);
const ours = () => execFileSync("iptables-save", ["-t", "nat"], { encoding: "utf8" }).split("\n").filter((l) => names.some((n) => l.includes(containerTag(root, n))));

const calls: string[] = [];
const counting: Host = {
  run: (cmd, args, opts) => (calls.push(cmd), realHost.run(cmd, args, opts)),
  tryRun: (cmd, args, opts) => (calls.push(cmd), realHost.tryRun(cmd, args, opts)),
  writeSysctl: (k, v) => realHost.writeSysctl(k, v),
};

afterAll(async () => {
  const ipt = new Iptables(realHost);
  for (const n of names) await ipt.removeTagged(containerTag(root, n));
});

describe("iptables batch on the host", () => {
  const removeByHand = (line: string) => execFileSync("iptables", ["-t", "nat", ...line.replace(/^-A/, "-D").replace(/"/g, "").split(" ")]);
  const count = (cmd: string) => calls.filter((c) => c === cmd).length;

  it("one caller's rule deleted by hand: one save and one more restore serve the batch", async () => {
    const ipt = new Iptables(counting);
    await ipt.ensure(names.flatMap((_, i) => rulesOf(i)));
    expect(ours()).toHaveLength(4);
    // c2's delete line now fails, and with it the whole batch.
    removeByHand(ours().find((l) => l.includes(containerTag(root, "c2")))!);
    calls.length = 0;
    await Promise.all(names.map((n, i) => ipt.delete(rulesOf(i), containerTag(root, n))));
    expect(ours()).toEqual([]);
    expect([count("iptables-save"), count("iptables-restore")]).toEqual([1, 2]);
  });

  it("every rule deleted by hand (a firewall reload): one save serves the batch", async () => {
    const ipt = new Iptables(counting);
    await ipt.ensure(names.flatMap((_, i) => rulesOf(i)));
    for (const line of ours()) removeByHand(line);
    calls.length = 0;
    await Promise.all(names.map((n, i) => ipt.delete(rulesOf(i), containerTag(root, n))));
    expect(ours()).toEqual([]);
    // The repair has nothing of these to delete (berth's chains, when this left them empty, go in one restore).
    expect(count("iptables-save")).toBe(1);
    expect(count("iptables-restore")).toBeLessThanOrEqual(2);
  });
});
