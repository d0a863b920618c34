// What berth's root shows other users and other roots, on the real host: the root is 0700 (a non-root user can
// read nothing in it, not even a setuid file of an image), records, OCI configs and logs are 0600, a container
// running as uid 1000 still starts and reads its files, names are checked where they become paths whoever calls
// the runtime, registry password hashes are whole bcrypt hashes, and two roots with a container of the same name
// keep their own iptables rules (older, root-less tags taken over).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { supervisorPid } from "../../native/supervise/launch";
import { rootId } from "../../native/names";
import { REPO, freePort } from "./helpers";

const tag = randomBytes(3).toString("hex");
const NAME = `tr${tag}same`;
let tmp: string;
const roots: string[] = [];
const rts: Runtime[] = [];

const mode = (p: string) => (fs.statSync(p).mode & 0o7777).toString(8);
const natRules = () => execFileSync("iptables-save", ["-t", "nat"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(NAME));
/** Runs a shell command as the unprivileged user nobody. */
const asNobody = (cmd: string) => spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", cmd], { encoding: "utf8" });

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-root-");
  fs.chmodSync(tmp, 0o755);
  const tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  for (const r of ["a", "b"]) {
    const root = path.join(tmp, r);
    // An older root, made 0755 before berth closed it.
    fs.mkdirSync(root, { mode: 0o755 });
    fs.chmodSync(root, 0o755);
    roots.push(root);
    const rt = createNativeRuntime({ root });
    rts.push(rt);
    await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
    await rt.networks.create({ name: `tr${tag}${r}`, subnet: `10.231.${r === "a" ? 1 : 2}.0/24`, nat: false });
  }
});

afterAll(async () => {
  for (const rt of rts) await rt.containers.remove(NAME, { graceSeconds: 0 }).catch(() => undefined);
  for (const [i, rt] of rts.entries()) await rt.networks.remove(`tr${tag}${"ab"[i]}`).catch(() => undefined);
  for (const root of roots) {
    const pid = supervisorPid(root);
    if (pid) process.kill(pid, "SIGTERM");
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("modes", () => {
  it("keeps the root 0700 and secrets 0600; a container running as uid 1000 still reads its files", async () => {
    const [rt] = rts;
    const root = roots[0];
    await rt.containers.run({
      name: NAME,
      image: "bb",
      user: "1000",
      network: `tr${tag}a`,
      env: { SECRET: "hunter2" },
      command: ["sh", "-c", "cat /etc/passwd >/dev/null && id -u && echo out-$SECRET && exec sleep 600"],
      stopTimeout: 1,
      ports: [{ containerPort: 80, hostPort: await freePort(), hostIp: "127.0.0.1", protocol: "tcp" }],
    });
    const dir = path.join(root, "containers", NAME);
    let log = "";
    for (let i = 0; i < 100 && !log.includes("out-hunter2"); i++) {
      await new Promise((r) => setTimeout(r, 50));
      log = fs.readFileSync(path.join(dir, "container.log"), "utf8");
    }
    expect(log).toContain("1000\nout-hunter2");
    expect(mode(root)).toBe("700");
    for (const f of ["container.json", "config.json", "container.log"]) expect([f, mode(path.join(dir, f))]).toEqual([f, "600"]);
    // Another local user sees nothing: not the records, not the logs, not an image's files. (That user can list
    // the directory above the root: the refusals below are the root's modes, not a setpriv that failed.)
    expect(asNobody(`ls ${tmp}`).status).toBe(0);
    for (const p of [path.join(dir, "config.json"), path.join(dir, "container.log"), path.join(root, "layers"), path.join(dir, "rootfs/bin/busybox")]) {
      const r = asNobody(`cat ${p} || ls ${p}`);
      expect([p, r.status]).not.toEqual([p, 0]);
      expect(r.stdout).not.toContain("hunter2");
    }
  });

  it("refuses a shared directory as the root instead of closing it", () => {
    expect(() => createNativeRuntime({ root: "/tmp" })).toThrow(/berth root \/tmp is a shared directory/);
    expect(mode("/tmp")).toBe("1777");
  });

  it("refuses a root whose path an overlay mount cannot name, before making it", () => {
    for (const bad of [path.join(tmp, "a,b"), path.join(tmp, "a:b")]) {
      expect(() => createNativeRuntime({ root: bad })).toThrow(/has a ',' or ':' in its path/);
      expect(fs.existsSync(bad)).toBe(false);
    }
  });
});

describe("names reach paths only when valid, whoever calls the runtime", () => {
  const bad = ["..", "../x", "a/b", ".", "", "-x", "a\nb"];
  it("refuses them for networks, volumes, containers and volumesFrom", async () => {
    const rt = rts[1];
    for (const n of bad) {
      await expect(rt.networks.create({ name: n, subnet: "10.250.0.0/24", nat: false })).rejects.toThrow(/invalid network name/);
      await expect(rt.networks.inspect(n)).rejects.toThrow(/invalid network name/);
      await expect(rt.volumes.create({ name: n })).rejects.toThrow(/invalid volume name/);
      await expect(rt.containers.run({ name: n, image: "bb" })).rejects.toThrow(/invalid container name/);
      await expect(rt.containers.run({ name: `tr${tag}vf`, image: "bb", volumesFrom: [n] })).rejects.toThrow(/volumesFrom\[0\]/);
      if (n) await expect(rt.containers.run({ name: `tr${tag}net`, image: "bb", network: n })).rejects.toThrow(/invalid network name/);
    }
    await expect(rt.networks.create({ name: "bridgey", subnet: "10.250.0.0/24", nat: false, bridgeName: ".." })).rejects.toThrow(/invalid interface name/);
    expect(fs.readdirSync(roots[1]).sort()).not.toContain("x");
  });

  it("refuses image names that are not references: an archive's own names, a tag", async () => {
    const rt = rts[1];
    const dir = path.join(tmp, "archive-names");
    fs.mkdirSync(dir);
    await rt.images.save(["bb"], path.join(tmp, "bb.tar"));
    execFileSync("tar", ["-C", dir, "-xf", path.join(tmp, "bb.tar")]);
    const before = (await rt.images.list()).map((i) => i.ref).sort();
    for (const name of ["../../../../tmp/evil:1", "evil\u001b]0;owned\u0007:1", "Upper/Case:1"]) {
      const docker = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
      docker[0].RepoTags = [name];
      fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(docker));
      const evil = path.join(tmp, "renamed.tar");
      execFileSync("tar", ["-C", dir, "-cf", evil, "."]);
      await expect(rt.images.load(evil), name).rejects.toThrow(/invalid reference format/);
      await expect(rt.images.tag("bb", name), name).rejects.toThrow(/invalid reference format/);
    }
    expect((await rt.images.list()).map((i) => i.ref).sort()).toEqual(before);
  });

  it("refuses a registry password hash with a line after it", async () => {
    const hash = "$2b$04$g32UqPkwiUVxLQBuAYSnqOJiLT9pevsU.pL0YVBKkKM3OxOFOUZbq";
    const storage = path.join(tmp, "regdata");
    fs.mkdirSync(storage);
    await expect(
      rts[1].registries.ensure({ name: `tr${tag}reg`, address: "127.0.0.1", port: await freePort(), storage, users: [{ username: "ci", passwordHash: `${hash}\nevil:${hash}` }] }),
    ).rejects.toThrow(/users\[0\]\.passwordHash must be a bcrypt hash/);
    await expect(
      rts[1].registries.ensure({ name: `tr${tag}reg`, address: "127.0.0.1", port: await freePort(), storage, users: [{ username: "ci\nevil", passwordHash: hash }] }),
    ).rejects.toThrow(/users\[0\]\.username/);
    expect(fs.existsSync(path.join(roots[1], "registries", `tr${tag}reg`, "htpasswd"))).toBe(false);
  });
});

describe("iptables tags", () => {
  it("tell two roots apart: removing a container another root does not have leaves this root's rules alone", async () => {
    const [a, b] = rts;
    const rules = natRules();
    expect(rules).toHaveLength(1);
    expect(rules[0]).toContain(`berth:ctr@${rootId(roots[0])}:${NAME}:`);
    // Root b has no such container: its remove (as a destroy of something gone does) must not touch root a's.
    await b.containers.remove(NAME, { graceSeconds: 0 });
    expect(natRules()).toEqual(rules);
    expect((await a.containers.inspect(NAME))?.status).toBe("running");
  });

  it("take over a rule tagged before roots were part of the tag", async () => {
    const [a] = rts;
    const current = natRules()[0];
    const legacy = current.replace(`berth:ctr@${rootId(roots[0])}:`, "berth:ctr:");
    const words = (line: string) => line.slice(3).split(" ").filter(Boolean).map((w) => w.replace(/^"|"$/g, ""));
    execFileSync("iptables", ["-t", "nat", "-D", ...words(current)]);
    execFileSync("iptables", ["-t", "nat", "-A", ...words(legacy)]);
    // Still this container's rule: no fault reported.
    expect((await a.containers.inspect(NAME))?.faults).toEqual([]);
    await a.containers.remove(NAME, { graceSeconds: 0 });
    expect(natRules()).toEqual([]);
  });
});
