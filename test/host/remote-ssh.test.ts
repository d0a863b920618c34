// The remote runtime over real SSH (OpenSSH's client, simulated hosts' sshd, contract 4): one ssh process for
// every concurrent call; and every way a connection fails, each one error naming the host and the fix — berth
// missing there, the host key unknown or changed, the key refused, the address unreachable, the ssh process
// killed mid-upload (the remote left whole, the next call connecting again).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { remoteRuntime, RemoteError, type RemoteRuntime } from "../../native/remote/client";
import { makeSimHosts, type SimHosts } from "./sim-hosts";

let sim: SimHosts;
const opened: RemoteRuntime[] = [];
const open = (...a: Parameters<typeof remoteRuntime>) => {
  const r = remoteRuntime(...a);
  opened.push(r);
  return r;
};
const failure = async (p: Promise<unknown>) => (await p.then(() => undefined, (e: unknown) => e)) as RemoteError;

/** Our own ssh processes (children of this test process). */
function sshChildren(): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid && stat.includes("(ssh)")) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

beforeAll(async () => {
  sim = await makeSimHosts(2, [{}, { berth: false }]);
}, 60_000);

afterAll(async () => {
  for (const r of opened) await r.close().catch(() => undefined);
  await sim?.cleanup();
}, 60_000);

describe("remote runtime over ssh", () => {
  it("serves every concurrent call over one ssh connection; close() ends it", async () => {
    const h = sim.hosts[0];
    const rt = open(h.target);
    expect(rt.host).toBe(h.url);
    const names = [...Array(8)].map((_, i) => `btrs${i}`);
    await Promise.all(names.map((name) => rt.volumes.create({ name })));
    expect((await rt.volumes.list()).sort()).toEqual(expect.arrayContaining(names));
    expect(h.connections()).toHaveLength(1);
    expect(sshChildren()).toHaveLength(1);
    await Promise.all(names.map((name) => rt.volumes.remove(name)));
    await rt.close();
    expect(sshChildren()).toHaveLength(0);
  }, 60_000);

  it("the ssh process killed mid-upload: the call fails naming it, nothing half-made stays, the next call reconnects", async () => {
    const h = sim.hosts[0];
    const rt = open(h.target);
    const big = path.join(sim.dir, "big");
    fs.mkdirSync(big);
    execFileSync("truncate", ["-s", "400M", path.join(big, "zeros")]);
    await rt.volumes.list(); // connected
    const pending = rt.images.importRootfs({ ref: "btrs-big:1", tarball: big, config: {} });
    await new Promise((r) => setTimeout(r, 300));
    for (const pid of sshChildren()) process.kill(pid, "SIGKILL");
    const e = await failure(pending);
    expect(e).toBeInstanceOf(RemoteError);
    expect(e.reason).toBe("lost");
    expect(e.message).toMatch(new RegExp(`^connection to ${h.url} lost during images\\.importRootfs\\("btrs-big:1"\\) \\(ssh killed by SIGKILL\\).*run again`));
    // The next call is a new connection; the agent of the first dropped its half upload and its staging.
    expect(await rt.images.inspect("btrs-big:1")).toBeUndefined();
    const staging = path.join(h.root, "remote", "staging");
    for (let i = 0; i < 100 && fs.readdirSync(staging).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(fs.readdirSync(staging)).toEqual([]);
    await rt.close();
  }, 60_000);

  it("berth missing on the host: one error naming the host and README 'Many hosts'", async () => {
    const h = sim.hosts[1];
    const e = await failure(open(h.target).volumes.list());
    expect(e.reason).toBe("missing");
    expect(e.message).toMatch(new RegExp(`^berth is not installed on ${h.url} .*README "Many hosts"`));
  }, 30_000);

  it("a key the host does not accept: authentication refused, naming the host and what to do", async () => {
    const h = sim.hosts[0];
    const stranger = path.join(sim.dir, "stranger_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
    const e = await failure(open({ ...h.target, identityFile: stranger }).volumes.list());
    expect(e.reason).toBe("auth");
    expect(e.message).toMatch(new RegExp(`^${h.url}: authentication refused .*identityFile.*authorized_keys`));
  }, 30_000);

  it("an unknown host key is refused, never skipped; StrictHostKeyChecking=no is refused outright", async () => {
    const h = sim.hosts[0];
    const empty = path.join(sim.dir, "empty_known_hosts");
    fs.writeFileSync(empty, "");
    const sshOptions = h.target.sshOptions.map((o) => (o.startsWith("UserKnownHostsFile=") ? `UserKnownHostsFile=${empty}` : o));
    const e = await failure(open({ ...h.target, sshOptions }).volumes.list());
    expect(e.reason).toBe("host-key");
    expect(e.message).toMatch(new RegExp(`^${h.url}: its host key is not in known_hosts.*ssh-keyscan ${h.address.replace(/\./g, "\\.")} >> ~/.ssh/known_hosts`));
    expect(() => remoteRuntime({ ...h.target, sshOptions: ["StrictHostKeyChecking=no"] })).toThrow(/never skips host key checks/);
  }, 30_000);

  it("an address nobody answers on: unreachable, naming the host", async () => {
    const url = `ssh://root@${sim.addressAt(200)}`;
    const e = await failure(open({ ...sim.hosts[0].target, url }).volumes.list());
    expect(e.reason).toBe("unreachable");
    expect(e.message).toMatch(new RegExp(`^${url} is unreachable: `));
  }, 30_000);

  it("a changed host key is refused, naming the host and ssh-keygen -R", async () => {
    const h = sim.hosts[0];
    await h.rekey();
    const e = await failure(open(h.target).volumes.list());
    expect(e.reason).toBe("host-key");
    expect(e.message).toMatch(new RegExp(`^${h.url}: its host key has changed .*ssh-keygen -R '${h.address.replace(/\./g, "\\.")}'`));
  }, 30_000);
});
