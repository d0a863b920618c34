// Confinement of what berth does with a container's files, on the real host: volume seeding through an image's
// symlinks, `cp` both ways through symlinks a container planted in its data mounts (running, paused and stopped,
// and while the container swaps a directory for a symlink under the copy), user lookup through a symlinked
// /etc/passwd, `diff` through a layer's symlink. Every attempt aims at a canary directory on the host and
// asserts it unchanged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type Runtime } from "../../native";
import { supervisorPid } from "../../native/supervise/launch";
import { readTar, writeTar, type TarHeader, type TarSource } from "../../native/image/tar";
import { REPO } from "./helpers";

const tag = randomBytes(3).toString("hex");
const name = (what: string) => `tc${tag}${what}`;
let tmp: string;
let root: string;
let C: string;
let rt: Runtime;
const made: string[] = [];

const inside = (c: string, ...cmd: string[]): string => execFileSync("runc", ["exec", `berth-${c}`, ...cmd], { encoding: "utf8" }).trim();

function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p);
    const what = st.isSymbolicLink() ? fs.readlinkSync(p) : st.isFile() ? fs.readFileSync(p, "utf8") : "dir";
    out.push(`${rel} ${what} ${st.mode.toString(8)} ${st.uid} ${st.mtimeMs} ${st.nlink}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n), `${rel}/${n}`);
  };
  walk(dir, ".");
  return out.join("\n");
}
let canary: string;

/** The busybox rootfs with extra entries appended (a later entry of the same path wins). */
async function imageWith(ref: string, base: string, extra: Array<Partial<TarHeader> & { path: string }>, config: object = {}) {
  async function* entries(): AsyncGenerator<TarSource> {
    for await (const e of readTar(fs.createReadStream(base))) {
      const chunks: Buffer[] = [];
      for await (const c of e.data) chunks.push(c);
      const data = Buffer.concat(chunks);
      yield { header: e.header, data: () => data };
    }
    for (const x of extra) {
      yield { header: { type: "symlink", mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: "", devmajor: 0, devminor: 0, ...x } };
    }
  }
  const file = path.join(tmp, `${ref}.tar`);
  await new Promise((resolve, reject) => writeTar(entries()).pipe(fs.createWriteStream(file)).on("finish", resolve).on("error", reject));
  await rt.images.importRootfs({ ref, tarball: file, config: { cmd: ["sh"], ...config } });
}

async function run(what: string, script: string, extra: Partial<ContainerSpec> = {}) {
  const n = name(what);
  made.push(n);
  await rt.containers.run({ name: n, image: "bb", command: ["sh", "-c", `${script}; touch /ready; exec sleep 600`], stopTimeout: 1, ...extra });
  for (let i = 0; i < 200 && inside(n, "sh", "-c", "test -e /ready && echo y || true") !== "y"; i++) await new Promise((r) => setTimeout(r, 25));
  return n;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-confine-");
  root = path.join(tmp, "root");
  C = path.join(tmp, "canary");
  fs.mkdirSync(path.join(C, "ssh"), { recursive: true });
  fs.mkdirSync(path.join(C, "cron.d"));
  fs.writeFileSync(path.join(C, "ssh/ssh_host_key"), "PRIVATE KEY");
  fs.writeFileSync(path.join(C, "passwd"), "evil:x:4242:4242::/:/bin/sh\n");
  fs.writeFileSync(path.join(C, "secret"), "host secret");
  canary = snapshot(C);
  const tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  rt = createNativeRuntime({ root });
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
  await imageWith("seedout", tarball, [{ path: "x", linkname: C }], { volumes: ["/x/ssh"] });
  await imageWith("seedin", tarball, [{ path: "y", linkname: "/etc" }], { volumes: ["/y"] });
  await imageWith("pwout", tarball, [{ path: "etc/passwd", linkname: `${C}/passwd` }]);
});

afterAll(async () => {
  for (const c of made) await rt.containers.remove(c, { graceSeconds: 0 }).catch(() => undefined);
  const pid = supervisorPid(root);
  if (pid) process.kill(pid, "SIGTERM");
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("volume seeding", () => {
  it("follows an image's symlink inside the rootfs only: VOLUME /x/ssh with /x -> a host directory gets nothing of it", async () => {
    const n = name("seedout");
    made.push(n);
    await rt.containers.run({ name: n, image: "seedout", command: ["sleep", "600"], stopTimeout: 1 });
    expect(snapshot(C)).toBe(canary);
    // Mounted where the kernel resolves it inside the container, empty: the host's keys were not copied.
    expect(inside(n, "ls", "-A", `${C}/ssh`)).toBe("");
    const volumes = path.join(root, "containers", n, "volumes");
    for (const v of fs.readdirSync(volumes)) expect(fs.readdirSync(path.join(volumes, v))).toEqual([]);
  });

  it("seeds from the image's own directory through an in-image symlink (VOLUME /y with /y -> /etc)", async () => {
    const n = name("seedin");
    made.push(n);
    await rt.containers.run({ name: n, image: "seedin", command: ["sleep", "600"], stopTimeout: 1 });
    expect(inside(n, "cat", "/y/passwd")).toContain("root:x:0:0");
  });
});

describe("user lookup", () => {
  it("reads /etc/passwd inside the rootfs: a symlink to a host passwd finds nothing there", async () => {
    await expect(rt.containers.run({ name: name("pw"), image: "pwout", user: "evil", command: ["true"] })).rejects.toThrow(
      /unable to find user evil/,
    );
    made.push(name("pw"));
  });
});

describe("cp through planted symlinks", () => {
  let data: string;
  let n: string;
  beforeAll(async () => {
    data = path.join(tmp, "data");
    // The container plants absolute symlinks to the canary's host path in its bind mount, and makes the
    // same paths inside itself so that copies have somewhere to land in the container.
    n = await run(
      "cp",
      `mkdir -p ${C}/cron.d && echo inside > ${C}/secret && ln -s ${C} /data/evil && ln -s ${C}/secret /data/leak && ln -s ../../../../../../..${C} /data/rel`,
      { binds: [{ source: data, target: "/data" }] },
    );
  });

  const hostFile = () => {
    const f = path.join(tmp, "payload");
    fs.writeFileSync(f, "payload");
    return f;
  };

  it("into a running container: the write lands in the container, never the host", async () => {
    for (const dest of ["/data/evil/cron.d/x", "/data/rel/cron.d/y", "/data/evil/cron.d/"]) {
      await rt.containers.copy(n, "to", dest, hostFile());
    }
    expect(snapshot(C)).toBe(canary);
    expect(inside(n, "cat", `${C}/cron.d/x`, `${C}/cron.d/y`, `${C}/cron.d/payload`)).toBe("payloadpayloadpayload");
  });

  it("out of a running container: a symlink is copied as a symlink, and a path through one reads the container's file", async () => {
    const out = path.join(tmp, "out1");
    await rt.containers.copy(n, "from", "/data/leak", out);
    expect(fs.readlinkSync(out)).toBe(`${C}/secret`);
    await rt.containers.copy(n, "from", "/data/evil/secret", path.join(tmp, "out2"));
    expect(fs.readFileSync(path.join(tmp, "out2"), "utf8")).toBe("inside\n");
    fs.mkdirSync(path.join(tmp, "out3"));
    await rt.containers.copy(n, "from", "/data/rel", path.join(tmp, "out3"));
    expect(fs.lstatSync(path.join(tmp, "out3/rel")).isSymbolicLink()).toBe(true);
    expect(snapshot(C)).toBe(canary);
  });

  it("while the container swaps a directory for a symlink under the copy", async () => {
    // /data/race flips between a symlink to a directory of the volume and one to the canary's path, as fast as
    // the container can (both exist in the container, so most copies go through).
    const flip = `mkdir -p /data/real/cron.d; while :; do ln -sfn /data/real /data/race; ln -sfn ${C} /data/race; done`;
    execFileSync("runc", ["exec", "-d", `berth-${n}`, "sh", "-c", `(${flip}) >/dev/null 2>&1`], { stdio: "ignore" });
    let copied = 0;
    for (let i = 0; i < 30; i++) {
      if (await rt.containers.copy(n, "to", "/data/race/cron.d/z", hostFile()).then(() => true, () => false)) copied++;
      await rt.containers.copy(n, "from", "/data/race/secret", path.join(tmp, `race-${i}`)).catch(() => undefined);
      const got = fs.existsSync(path.join(tmp, `race-${i}`)) ? fs.readFileSync(path.join(tmp, `race-${i}`), "utf8") : "";
      expect(got).not.toBe("host secret");
    }
    expect(copied).toBeGreaterThan(0);
    expect(snapshot(C)).toBe(canary);
  });

  it("paused and stopped: the same copies stay inside the container", async () => {
    await rt.containers.pause(n);
    await rt.containers.copy(n, "to", "/data/evil/cron.d/paused", hostFile());
    await rt.containers.unpause(n);
    await rt.containers.stop(n, { graceSeconds: 0 });
    await rt.containers.copy(n, "to", "/data/evil/cron.d/stopped", hostFile());
    await rt.containers.copy(n, "to", "/data/rel/cron.d/stopped2", hostFile());
    await rt.containers.copy(n, "from", "/data/evil/secret", path.join(tmp, "out4"));
    expect(fs.readFileSync(path.join(tmp, "out4"), "utf8")).toBe("inside\n");
    await rt.containers.copy(n, "from", "/data/leak", path.join(tmp, "out5"));
    expect(fs.readlinkSync(path.join(tmp, "out5"))).toBe(`${C}/secret`);
    // A data mount copied out arrives under the container's name for it, not the host directory's.
    fs.mkdirSync(path.join(tmp, "out6"));
    await rt.containers.copy(n, "from", "/data", path.join(tmp, "out6"));
    expect(fs.readdirSync(path.join(tmp, "out6"))).toEqual(["data"]);
    expect(snapshot(C)).toBe(canary);
    const upper = path.join(root, "containers", n, "upper");
    expect(fs.readFileSync(path.join(upper, C, "cron.d/stopped"), "utf8")).toBe("payload");
    expect(fs.readFileSync(path.join(upper, C, "cron.d/stopped2"), "utf8")).toBe("payload");
    await rt.containers.start(n);
    expect(inside(n, "cat", `${C}/cron.d/paused`)).toBe("payload");
  });
});

describe("cp into a stopped container", () => {
  it("stays inside it while another container sharing its volume swaps a directory for a symlink", async () => {
    const data = path.join(tmp, "shared");
    const n = await run("stopped", `mkdir -p ${C}/cron.d`, { binds: [{ source: data, target: "/data" }, { source: path.join(tmp, "ro"), target: "/ro", readOnly: true }] });
    await rt.containers.stop(n, { graceSeconds: 0 });
    const flip = `mkdir -p /data/real/cron.d; while :; do ln -sfn /data/real /data/race; ln -sfn ${C} /data/race; done`;
    await run("racer", `{ (${flip}) >/dev/null 2>&1 & }`, { binds: [{ source: data, target: "/data" }] });
    const payload = path.join(tmp, "payload2");
    fs.writeFileSync(payload, "payload");
    let copied = 0;
    for (let i = 0; i < 20; i++) {
      if (await rt.containers.copy(n, "to", "/data/race/cron.d/z", payload).then(() => true, () => false)) copied++;
      await rt.containers.copy(n, "from", "/data/race/secret", path.join(tmp, `srace-${i}`)).catch(() => undefined);
      const p = path.join(tmp, `srace-${i}`);
      expect(fs.existsSync(p) ? fs.readFileSync(p, "utf8") : "").not.toBe("host secret");
    }
    expect(copied).toBeGreaterThan(0);
    expect(snapshot(C)).toBe(canary);
    // A read-only mount stays read-only for cp, as in the running container.
    await expect(rt.containers.copy(n, "to", "/ro/x", payload)).rejects.toThrow(/Read-only file system/);
    expect(fs.readdirSync(path.join(tmp, "ro"))).toEqual([]);
  });
});

describe("diff", () => {
  it("never looks through a layer's symlink on the host", async () => {
    // /x is the image's symlink to the canary; the container makes it a directory holding the canary's names.
    const n = await run("diff", `rm /x && mkdir -p /x/ssh && touch /x/ssh/ssh_host_key`, { image: "seedout" });
    const changes = await rt.containers.diff(n);
    expect(changes).toEqual(expect.arrayContaining(["C /x", "A /x/ssh", "A /x/ssh/ssh_host_key"]));
    expect(snapshot(C)).toBe(canary);
  });
});
