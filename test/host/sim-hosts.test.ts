// The simulated hosts themselves (sim-hosts.ts): each answers SSH with its own key and environment, reaches the
// others on the segment, refuses a changed host key, and cleanup leaves nothing behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import { execFileSync, spawn } from "node:child_process";
import { makeSimHosts, REPO, type SimHosts } from "./sim-hosts";

let sim: SimHosts;
const readCmdline = (pid: string): string => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "";
  }
};

beforeAll(async () => {
  sim = await makeSimHosts(3, [{}, { berth: false }, { bridge: true }]);
});
afterAll(async () => sim?.cleanup());

describe("simulated hosts", () => {
  it("each answers SSH inside its own namespace, with its berth root and PATH", async () => {
    for (const h of sim.hosts) {
      const res = await h.ssh(["sh", "-c", 'echo "$BERTH_ROOT $BERTH_RUN"; ip -o -4 addr show; ls /sys/class/net; grep -c " cgroup" /proc/self/mountinfo; command -v berth || echo none']);
      expect(res.stderr).toBe("");
      expect(res.code).toBe(0);
      const [env, ...rest] = res.stdout.trim().split("\n");
      expect(env).toBe(`${h.root} ${h.runDir}`);
      expect(rest.join("\n")).toContain(`inet ${h.address}/`);
      // Its /sys is its own (its NIC, not the machine's eth0), with the machine's cgroups that runc needs.
      expect(rest).toContain(h.nic);
      expect(rest).not.toContain("eth0");
      expect(Number(rest.at(-2))).toBeGreaterThan(0);
      expect(rest.at(-1)).toBe(h.name === "h2" ? "none" : `${h.root.replace(/\/root$/, "/bin")}/berth`);
    }
    expect(fs.realpathSync(`${sim.hosts[0].root.replace(/\/root$/, "/bin")}/berth`)).toBe(`${REPO}/bin/berth`);
  });

  it("hosts reach each other on the segment, the bridged host through its bridge", () => {
    const [a, b, c] = sim.hosts;
    expect(a.exec("busybox", ["ping", "-c1", "-W2", b.address]).status).toBe(0);
    expect(b.exec("busybox", ["ping", "-c1", "-W2", c.address]).status).toBe(0);
    expect(c.exec("ip", ["-o", "link", "show", "master", c.bridge!]).stdout).toContain(c.nic);
    // The machine's own routes never lead there: only the test's veth does.
    expect(execFileSync("ip", ["route", "get", a.address], { encoding: "utf8" })).not.toContain("eth0");
  });

  it("a changed host key is refused by ssh, naming the host-key change", async () => {
    const h = sim.hosts[2];
    await h.rekey();
    const res = await h.ssh(["true"]);
    expect(res.code).toBe(255);
    expect(res.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it("killConnections drops a live session; sshd keeps listening", async () => {
    const h = sim.hosts[0];
    const pending = h.ssh(["sleep", "30"]);
    const deadline = Date.now() + 5000;
    while (h.connections().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(h.killConnections()).toBeGreaterThan(0);
    expect((await pending).code).toBe(255);
    expect((await h.ssh(["true"])).code).toBe(0);
  });

  it("cleanup stops its sshd and removes namespaces, links and files, and can run twice", async () => {
    const other = await makeSimHosts(1);
    const [h] = other.hosts;
    const ours = () => fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p) && readCmdline(p).includes(other.dir));
    expect(ours().length).toBeGreaterThan(0);
    await other.cleanup();
    await other.cleanup();
    expect(ours()).toEqual([]);
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toContain(h.netns);
    expect(fs.existsSync(other.dir)).toBe(false);
    expect(execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })).not.toContain(h.netns.slice(0, 6) + "r");
  });

  it("hosts a killed run left behind are torn down by the next makeSimHosts", async () => {
    // A run killed outright (no afterAll): its own process, SIGKILLed once its hosts answer.
    const code = `require(${JSON.stringify(`${REPO}/dist/test/host/sim-hosts.js`)}).makeSimHosts(1).then((s) => console.log(s.dir, s.hosts[0].netns))`;
    const child = spawn(process.execPath, ["-e", `${code}; setInterval(() => {}, 1000)`], { stdio: ["ignore", "pipe", "inherit"] });
    const [dir, netns] = await new Promise<string[]>((resolve) => child.stdout!.once("data", (d) => resolve(String(d).trim().split(" "))));
    const sshds = () => fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p) && readCmdline(p).includes(dir));
    expect(sshds().length).toBeGreaterThan(0);
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const next = await makeSimHosts(1);
    try {
      expect(fs.existsSync(dir)).toBe(false);
      expect(sshds()).toEqual([]);
      expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toContain(netns);
    } finally {
      await next.cleanup();
    }
  });
});
