// Port rules of containers made or removed at once go to iptables in one iptables-restore (a fake host counts
// them); a batch that fails applies nothing, each caller then tries its own rules alone, and only one whose own
// rules fail settles them from a fresh iptables-save.
import { describe, expect, it } from "vitest";
import type { CommandResult, Host } from "../../native/host/exec";
import { Iptables } from "../../native/network/iptables";
import { portRules } from "../../native/network/portmap";

/** A restore holding a line `refuse` accepts fails whole, as iptables-restore does on a line it cannot apply. */
function fakeHost(refuse: (line: string) => boolean = () => false) {
  const restores: string[] = [];
  let saves = 0;
  const tryRun = async (cmd: string, _args: readonly string[], opts: { input?: string } = {}): Promise<CommandResult> => {
    await new Promise((r) => setTimeout(r, 5)); // a restore takes a while: what is asked meanwhile waits for the next
    if (cmd === "iptables-save") return (saves++, { code: 0, stdout: "", stderr: "" });
    restores.push(opts.input ?? "");
    return (opts.input ?? "").split("\n").some(refuse) ? { code: 1, stdout: "", stderr: "Bad rule" } : { code: 0, stdout: "", stderr: "" };
  };
  const host: Host = {
    tryRun,
    run: async (cmd, args, opts) => (await tryRun(cmd, args, opts)).stdout,
    writeSysctl: async () => {},
  };
  return { host, restores, saves: () => saves };
}

const rulesOf = (i: number) =>
  portRules("/var/lib/berth-test", `c${i}`, `10.9.0.${i + 2}`, [{ hostIp: "127.0.0.1", hostPort: 8000 + i, containerPort: 80, protocol: "tcp" }]);

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

  it("after a failed batch, each caller tries its own lines alone: only the one with the bad line falls back to a fresh iptables-save", async () => {
    const { host, restores, saves } = fakeHost((l) => l.startsWith("-D ") && l.includes("--dport 8002 "));
    const ipt = new Iptables(host);
    await Promise.all(Array.from({ length: 4 }, (_, i) => ipt.delete(rulesOf(i), `berth:ctr:c${i}:`)));
    expect(restores[0].split("\n").filter((l) => l.startsWith("-D ")).length).toBe(4); // all four, in the one that failed
    // Then the four alone (three apply), then the fourth's own save (nothing to delete is left in an empty save).
    expect(restores.length).toBe(5);
    expect(saves()).toBe(1);
  });
});
