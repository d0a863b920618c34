// Port rules of containers made or removed at once go to iptables in one iptables-restore (a fake host counts
// them); a batch that fails applies nothing, and then one iptables-save serves all its callers in one more restore.
import { describe, expect, it } from "vitest";
import type { CommandResult, Host } from "../../native/host/exec";
import { Iptables } from "../../native/network/iptables";
import { containerTag, portRules } from "../../native/network/portmap";

/**
 * A restore holding a line `refuse` accepts fails whole, as iptables-restore does on a line it cannot apply;
 * iptables-save prints `saved`.
 */
function fakeHost(refuse: (line: string) => boolean = () => false, saved = "", failedSaves = 0) {
  const restores: string[] = [];
  let saves = 0;
  const tryRun = async (cmd: string, _args: readonly string[], opts: { input?: string } = {}): Promise<CommandResult> => {
    await new Promise((r) => setTimeout(r, 5)); // a restore takes a while: what is asked meanwhile waits for the next
    if (cmd === "iptables-save") return (saves++, { code: 0, stdout: saved, stderr: "" });
    restores.push(opts.input ?? "");
    return (opts.input ?? "").split("\n").some(refuse) ? { code: 1, stdout: "", stderr: "Bad rule" } : { code: 0, stdout: "", stderr: "" };
  };
  const host: Host = {
    tryRun,
    run: async (cmd, args, opts) => {
      const r = await tryRun(cmd, args, opts);
      // The first failedSaves saves fail (xtables lock held too long, say).
      if (cmd === "iptables-save" && saves <= failedSaves) throw new Error("iptables-save: Resource temporarily unavailable");
      return r.stdout;
    },
    writeSysctl: async () => {},
  };
  return { host, restores, saves: () => saves };
}

const ROOT = "/var/lib/berth-test";
const rulesOf = (i: number) =>
  portRules(ROOT, `c${i}`, `10.9.0.${i + 2}`, [{ hostIp: "127.0.0.1", hostPort: 8000 + i, containerPort: 80, protocol: "tcp" }]);

describe("iptables batches", () => {
  it("applies the rules of containers made at once in one or two restores, each rule once", async () => {
    const { host, restores } = fakeHost();
    const ipt = new Iptables(host);
    await Promise.all(Array.from({ length: 10 }, (_, i) => ipt.add(rulesOf(i))));
    expect(restores.length).toBeLessThanOrEqual(2);
    const lines = restores.join("").split("\n").filter((l) => l.startsWith("-A "));
    expect(lines.length).toBe(Array.from({ length: 10 }, (_, i) => rulesOf(i).length).reduce((a, b) => a + b));
    for (let i = 0; i < 10; i++) expect(lines.filter((l) => l.includes(`--dport ${8000 + i} `)).length).toBeGreaterThan(0);
  });

  it("after a failed batch, one iptables-save serves every caller: one more restore, not a save and restore each", async () => {
    // c2's rule was deleted by hand: its delete fails the batch; the others' rules are there.
    const there = [0, 1, 3].flatMap(rulesOf).map((r) => `-A ${r.chain} ${r.args.join(" ")} -m comment --comment ${r.tag}`);
    const { host, restores, saves } = fakeHost((l) => l.startsWith("-D ") && l.includes("--dport 8002 "), `*nat\n:BERTH-DNAT - [0:0]\n${there.join("\n")}\nCOMMIT\n`);
    const ipt = new Iptables(host);
    await Promise.all(Array.from({ length: 4 }, (_, i) => ipt.delete(rulesOf(i), containerTag(ROOT, `c${i}`))));
    const deletes = (script: string) => script.split("\n").filter((l) => l.startsWith("-D "));
    expect(deletes(restores[0])).toHaveLength(4); // all four, in the one that failed
    expect(saves()).toBe(1);
    expect(restores).toHaveLength(2);
    expect(deletes(restores[1]).map((l) => /--dport (\d+)/.exec(l)![1])).toEqual(["8000", "8001", "8003"]);
  });

  it("a repair whose iptables-save fails is no repair: each caller falls back on its own, none fails", async () => {
    const { host, saves } = fakeHost((l) => l.startsWith("-D ") && l.includes("--dport 8002 "), "", 1);
    const ipt = new Iptables(host);
    await Promise.all(Array.from({ length: 4 }, (_, i) => ipt.delete(rulesOf(i), containerTag(ROOT, `c${i}`))));
    // The repair's save, which failed, then each caller's own.
    expect(saves()).toBe(5);
  });

  it("a bad rule to add fails the repair too: the deletes are repaired without it, and only its caller falls back (and fails)", async () => {
    const there = [0, 1].flatMap(rulesOf).map((r) => `-A ${r.chain} ${r.args.join(" ")} -m comment --comment ${r.tag}`);
    const { host, saves } = fakeHost((l) => l.startsWith("-A ") && l.includes("--dport 8009 "), `*nat\n:BERTH-DNAT - [0:0]\n${there.join("\n")}\nCOMMIT\n`);
    const ipt = new Iptables(host);
    const [d0, d1, bad] = await Promise.allSettled([
      ipt.delete(rulesOf(0), containerTag(ROOT, "c0")),
      ipt.delete(rulesOf(1), containerTag(ROOT, "c1")),
      ipt.add(rulesOf(9)),
    ]);
    expect([d0.status, d1.status, bad.status]).toEqual(["fulfilled", "fulfilled", "rejected"]);
    // The repair's save, then only the bad add's own (ensure tries three times): none for the deletes.
    expect(saves()).toBe(4);
  });

  it("a caller alone in a failed batch falls back on its own", async () => {
    const { host, restores, saves } = fakeHost((l) => l.startsWith("-D "));
    await new Iptables(host).delete(rulesOf(0), containerTag(ROOT, "c0"));
    expect([restores.length, saves()]).toEqual([1, 1]);
  });
});
