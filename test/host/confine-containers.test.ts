// Confinement of what berth does with a container's files, on the real host: volume seeding through an image's
// symlinks, `cp` both ways through symlinks a container planted in its data mounts (running, paused and stopped,
// and while the container swaps a directory for a symlink under the copy), user lookup through a symlinked
// /etc/passwd, `diff` through a layer's symlink, berth's init layer beside an image's own /etc, /etc/hosts, /.berth
// or /proc. Every attempt aims at a canary directory on the host and asserts it unchanged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type Runtime } from "../../native";
import { supervisorPid } from "../../native/supervise/launch";
import { readTar, writeTar, type TarHeader, type TarSource } from "../../native/image/tar";
import { REPO, runcAt } from "./helpers";
import { runcId } from "../../native/names";
import { initLayersDir } from "../../native/snapshot/init-layer";
import { self } from "../../native/lock";

const tag = randomBytes(3).toString("hex");
const name = (what: string) => `tc${tag}${what}`;
let tmp: string;
let root: string;
let C: string;
let rt: Runtime;
const made: string[] = [];

const inside = (c: string, ...cmd: string[]): string => execFileSync("runc", runcAt(root, c, ["exec", runcId(root, c), ...cmd]), { encoding: "utf8" }).trim();

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
let tarball: string;

/** The busybox rootfs with extra entries appended (a later entry of the same path wins), less those `drop` matches. */
async function imageWith(ref: string, base: string, extra: Array<Partial<TarHeader> & { path: string }>, config: object = {}, drop?: RegExp) {
  async function* entries(): AsyncGenerator<TarSource> {
    for await (const e of readTar(fs.createReadStream(base))) {
      const chunks: Buffer[] = [];
      for await (const c of e.data) chunks.push(c);
      if (drop?.test(e.header.path.replace(/^\.\//, ""))) continue;
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
  rt = createNativeRuntime({ root });
  tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
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

  it("out twice into one place: a symlink the first copy left there is replaced by the second, never written through", async () => {
    // A backup copied out again: the first time /data/bk/f is a link to the canary's host path (copied as a link),
    // the second time a file, whose copy must replace the link rather than write the host file it names.
    inside(n, "sh", "-c", `mkdir -p /data/bk && ln -sfn ${C}/secret /data/bk/f`);
    const out = path.join(tmp, "backup");
    fs.mkdirSync(out);
    await rt.containers.copy(n, "from", "/data/bk", out);
    expect(fs.readlinkSync(path.join(out, "bk/f"))).toBe(`${C}/secret`);
    inside(n, "sh", "-c", "rm /data/bk/f && echo overwritten > /data/bk/f");
    await rt.containers.copy(n, "from", "/data/bk", out);
    expect(fs.readFileSync(path.join(out, "bk/f"), "utf8")).toBe("overwritten\n");
    expect(snapshot(C)).toBe(canary);
  });

  it("while the container swaps a directory for a symlink under the copy", async () => {
    // /data/race flips between a symlink to a directory of the volume and one to the canary's path, as fast as
    // the container can (both exist in the container, so most copies go through).
    const flip = `mkdir -p /data/real/cron.d; while :; do ln -sfn /data/real /data/race; ln -sfn ${C} /data/race; done`;
    execFileSync("runc", runcAt(root, n, ["exec", "-d", runcId(root, n), "sh", "-c", `(${flip}) >/dev/null 2>&1`]), { stdio: "ignore" });
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

describe("cp runs nothing the container can replace", () => {
  // The container's own program, were it run as the host's root in the host's pid namespace: it mounts a proc of
  // that namespace and writes through this test process's root into the canary.
  const evil = `#!/.b/busybox sh\n/.b/busybox mkdir -p /m; /.b/busybox mount -t proc proc /m && echo pwned > /m/${process.pid}/root${C}/pwned\n`;
  // /.berth is in berth's init layer, a lower directory with two mounts in it (busybox busy as PID 1's program): moving
  // it away takes CAP_SYS_ADMIN (a lazy unmount) and a copy (overlayfs refuses to rename a lower directory).
  const plant = (dir: string) =>
    `mkdir /.b && cp /.berth/busybox /.b/busybox && umount -l /.berth/busybox && umount -l /.berth/exit && rm -rf /.berth && /.b/busybox mkdir -p ${dir} && printf '${evil.replace(/\n/g, "\\n")}' > ${dir}/busybox && chmod 755 ${dir}/busybox`;
  const sysAdmin = { capAdd: ["SYS_ADMIN"] };

  it("running, paused or stopped: a container that swaps its /.berth/busybox for its own program", async () => {
    const n = await run("swap", plant("/.berth"), sysAdmin);
    expect(inside(n, "cat", "/.berth/busybox")).toContain("pwned");
    const payload = path.join(tmp, "payload3");
    fs.writeFileSync(payload, "payload");
    // Running, the copy runs as the container's own program would, with the container's privileges only.
    await rt.containers.copy(n, "to", "/tmp/", payload).catch(() => undefined);
    await rt.containers.copy(n, "from", "/etc/passwd", path.join(tmp, "out7")).catch(() => undefined);
    await rt.containers.pause(n);
    await rt.containers.copy(n, "to", "/tmp/paused", payload);
    await rt.containers.unpause(n);
    await rt.containers.stop(n, { graceSeconds: 0 });
    await rt.containers.copy(n, "to", "/tmp/stopped", payload);
    expect(fs.readFileSync(path.join(root, "containers", n, "upper/tmp/stopped"), "utf8")).toBe("payload");
    expect(fs.existsSync(path.join(C, "pwned"))).toBe(false);
    expect(snapshot(C)).toBe(canary);
  });

  it("runs as the container's root whatever its USER, as Docker's cp does", async () => {
    const n = name("user");
    made.push(n);
    await rt.containers.run({ name: n, image: "bb", command: ["sleep", "600"], user: "1000:1000", stopTimeout: 1 });
    expect(inside(n, "id", "-u")).toBe("1000");
    execFileSync("runc", runcAt(root, n, ["exec", "--user", "0:0", runcId(root, n), "sh", "-c", "echo secret > /root/key && chmod 600 /root/key"]));
    fs.writeFileSync(path.join(tmp, "payload5"), "payload");
    await rt.containers.copy(n, "to", "/etc/", path.join(tmp, "payload5"));
    expect(execFileSync("runc", runcAt(root, n, ["exec", "--user", "0:0", runcId(root, n), "cat", "/etc/payload5"]), { encoding: "utf8" })).toBe("payload");
    await rt.containers.copy(n, "from", "/root/key", path.join(tmp, "key"));
    expect(fs.readFileSync(path.join(tmp, "key"), "utf8")).toBe("secret\n");
  });

  it("stopped: a nested mount redirected by a symlink in the volume above it is refused before anything runs", async () => {
    // /data and /data/sub are two mounts; another container sharing /data's source (here: the host, for a
    // deterministic test) replaces its sub/ by a symlink to this container's /.berth, and /data/sub's source holds
    // a program named busybox. Mounted by path, /data/sub would land on /.berth and that program would run as root.
    const outer = path.join(tmp, "nest-outer");
    const inner = path.join(tmp, "nest-inner");
    const n = await run("nest", "true", { binds: [{ source: outer, target: "/data" }, { source: inner, target: "/data/sub" }] });
    await rt.containers.stop(n, { graceSeconds: 0 });
    const rootfs = path.join(root, "containers", n, "rootfs");
    fs.rmSync(path.join(outer, "sub"), { recursive: true, force: true });
    fs.symlinkSync(path.join(fs.realpathSync(rootfs), ".berth"), path.join(outer, "sub"));
    fs.writeFileSync(path.join(inner, "busybox"), `#!/bin/busybox sh\n/bin/busybox mkdir -p /m; /bin/busybox mount -t proc proc /m && echo pwned > /m/${process.pid}/root${C}/pwned\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(tmp, "payload6"), "payload");
    const copied = await rt.containers.copy(n, "to", "/tmp/", path.join(tmp, "payload6")).then(() => "copied", (e: Error) => e.message);
    expect(fs.existsSync(path.join(C, "pwned"))).toBe(false);
    expect(copied).toMatch(/is not where it was to be mounted/);
    expect(fs.existsSync(path.join(C, "pwned"))).toBe(false);
    expect(snapshot(C)).toBe(canary);
  });

  it("stopped: a /.berth replaced by a symlink into a volume is refused", async () => {
    const n = await run("swapvol", `${plant("/data/bb")} && rm -rf /.berth && ln -s /data/bb /.berth`, { ...sysAdmin, binds: [{ source: path.join(tmp, "swapvol"), target: "/data" }] });
    await rt.containers.stop(n, { graceSeconds: 0 });
    fs.writeFileSync(path.join(tmp, "payload4"), "payload");
    await expect(rt.containers.copy(n, "to", "/tmp/", path.join(tmp, "payload4"))).rejects.toThrow(/replaced \/\.berth .* by a symlink/);
    expect(snapshot(C)).toBe(canary);
  });
});

describe("an image's VOLUME over berth's /.berth", () => {
  it("is refused before anything is made: it hid berth's init and the exit status (every exit read as 137)", async () => {
    for (const v of ["/.berth/exit", "/.berth", "/.berth/../.berth/exit/"]) {
      const ref = `bvol${made.length}:1`;
      await imageWith(ref, tarball, [], { volumes: [v] });
      const n = name(`bvol${made.length}`);
      made.push(n);
      await expect(rt.containers.run({ name: n, image: ref, networkMode: "none", command: ["sh", "-c", "exit 3"] }), v).rejects.toThrow(
        `its image declares VOLUME ${v}, over /.berth, berth's own directory`,
      );
      expect(await rt.containers.inspect(n)).toBeUndefined();
      expect(fs.existsSync(path.join(root, "containers", n))).toBe(false);
    }
  });

  it("through a symlink in the image is refused too: runc follows the target's links inside the rootfs", async () => {
    // ln -s /.berth /x; VOLUME /x — and a relative link, and a link to a directory above a VOLUME's path.
    for (const [links, v] of [[[["x", "/.berth"]], "/x"], [[["y", ".berth/exit"]], "/y"], [[["z", "/"]], "/z/.berth"]] as const) {
      const ref = `bvol${made.length}:1`;
      await imageWith(ref, tarball, links.map(([p, to]) => ({ path: p, linkname: to })), { volumes: [v] });
      const n = name(`bvol${made.length}`);
      made.push(n);
      await expect(rt.containers.run({ name: n, image: ref, networkMode: "none", command: ["sh", "-c", "exit 3"] }), v).rejects.toThrow(
        `its image declares VOLUME ${v} (the image's symlinks lead it to /.berth`,
      );
      expect(await rt.containers.inspect(n)).toBeUndefined();
      expect(fs.existsSync(path.join(root, "containers", n))).toBe(false);
    }
    // A link elsewhere is followed there and is no concern.
    const ref = `bvol${made.length}:1`;
    await imageWith(ref, tarball, [{ path: "w", linkname: "/tmp" }], { volumes: ["/w"] });
    const n = name(`bvol${made.length}`);
    made.push(n);
    await rt.containers.run({ name: n, image: ref, networkMode: "none", command: ["sh", "-c", "exit 3"] });
  });
});

describe("a mount over the container's /, /proc or /sys", () => {
  it("is refused before anything is made, through the image's links too (VOLUME / copied the whole rootfs first)", async () => {
    const cases: Array<[string, Array<[string, string]>, object, Partial<ContainerSpec>, string]> = [
      ["/", [], { volumes: ["/"] }, {}, "its image declares VOLUME /, over the container's /"],
      ["/x", [["x", "/"]], { volumes: ["/x"] }, {}, "its image declares VOLUME /x (the image's symlinks lead it to /), over the container's /"],
      ["/x", [["x", "/"]], {}, { binds: [{ source: path.join(tmp, "rootbind"), target: "/x" }] }, "a mount at /x (the image's symlinks lead it to /), over the container's /"],
      ["/p", [["p", "proc/self"]], { volumes: ["/p"] }, {}, "its image declares VOLUME /p (the image's symlinks lead it to /proc/self), over the container's /proc/self"],
      ["/s", [["s", "/sys"]], { volumes: ["/s"] }, {}, "(the image's symlinks lead it to /sys), over the container's /sys"],
    ];
    for (const [v, links, config, extra, message] of cases) {
      const ref = `rvol${made.length}:1`;
      await imageWith(ref, tarball, links.map(([p, to]) => ({ path: p, linkname: to })), config);
      const n = name(`rvol${made.length}`);
      made.push(n);
      await expect(rt.containers.run({ name: n, image: ref, networkMode: "none", command: ["sh", "-c", "exit 3"], ...extra }), v).rejects.toThrow(message);
      expect(await rt.containers.inspect(n)).toBeUndefined();
      expect(fs.existsSync(path.join(root, "containers", n))).toBe(false);
    }
    expect(fs.existsSync(path.join(tmp, "rootbind"))).toBe(false);
  });
});

describe("a data mount swapped for a link into /.berth after the check", () => {
  it("lands under berth's own binds, made last: the exit status stays right", async () => {
    // Another container sharing the volume can swap /data/x for a link to /.berth/exit between the plan's check and
    // `runc run`; here the test swaps it from the host as soon as the bundle's config.json is written.
    const vol = path.join(tmp, "latevol");
    const other = path.join(tmp, "lateother");
    fs.mkdirSync(path.join(vol, "x"), { recursive: true });
    fs.mkdirSync(other, { recursive: true });
    const n = name("late");
    made.push(n);
    const config = path.join(root, "containers", n, "config.json");
    let swapped = false;
    const poll = () => {
      if (!fs.existsSync(config)) return void setImmediate(poll);
      fs.rmdirSync(path.join(vol, "x"));
      fs.symlinkSync("/.berth/exit", path.join(vol, "x"));
      swapped = true;
    };
    setImmediate(poll);
    await rt.containers.run({
      name: n, image: "bb", networkMode: "none", stopTimeout: 1, command: ["sh", "-c", "exit 3"],
      binds: [{ source: vol, target: "/data" }, { source: other, target: "/data/x" }],
    });
    expect(swapped).toBe(true);
    let i = await rt.containers.inspect(n);
    for (let t = 0; t < 200 && i?.status === "running"; t++) {
      await new Promise((r) => setTimeout(r, 25));
      i = await rt.containers.inspect(n);
    }
    expect(i?.state?.exitCode).toBe(3);
  });
});

describe("the exit status file a container can replace", () => {
  it("is neither waited on as a FIFO nor followed as a symlink to a host file", async () => {
    const num = path.join(tmp, "num");
    fs.writeFileSync(num, "42\n");
    const fifo = await run("exitfifo", "rm -f /.berth/exit/code && mkfifo /.berth/exit/code");
    const link = await run("exitlink", `rm -f /.berth/exit/code && ln -s ${num} /.berth/exit/code`);
    for (const n of [fifo, link]) execFileSync("runc", runcAt(root, n, ["kill", runcId(root, n), "KILL"]));
    for (const n of [fifo, link]) {
      for (let i = 0; i < 100 && !execFileSync("runc", runcAt(root, n, ["state", runcId(root, n)]), { encoding: "utf8" }).includes('"stopped"'); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // In a child process, bounded: a read blocked on the FIFO would block this one for good.
    const script = `const { createNativeRuntime } = require(${JSON.stringify(path.join(REPO, "dist/native"))});
      const rt = createNativeRuntime({ root: ${JSON.stringify(root)} });
      (async () => { for (const n of ${JSON.stringify([fifo, link])}) { const i = await rt.containers.inspect(n); console.log(n, i.status, i.state.exitCode); } process.exit(0); })();`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 20_000 });
    expect(r.status, `${r.signal} ${r.stderr}`).toBe(0);
    expect(r.stdout).toBe(`${fifo} stopped 137\n${link} stopped 137\n`);
  });
});

describe("the init layer", () => {
  /** The overlay's lower directories of a container's rootfs, top first, as the kernel has them. */
  const lowers = (n: string): string[] => {
    const at = path.join(root, "containers", n, "rootfs");
    const line = fs.readFileSync("/proc/self/mounts", "utf8").split("\n").find((l) => l.split(" ")[1] === at);
    return /lowerdir=([^,]+)/.exec(line ?? "")![1].split(":");
  };

  it("holds every mount point of an ordinary image's containers: their upper directories start empty", async () => {
    const [a, b] = [await run("inita", "true"), await run("initb", "true")];
    for (const n of [a, b]) expect(fs.readdirSync(path.join(root, "containers", n, "upper")).filter((e) => e !== "ready")).toEqual([]);
    // One layer for both, berth's own.
    expect(lowers(a)[0]).toBe(lowers(b)[0]);
    expect(path.dirname(lowers(a)[0])).toBe(initLayersDir(root));
    expect(inside(a, "cat", "/etc/hostname")).toBe(a);
    expect(inside(a, "cat", "/etc/hosts")).toBe(fs.readFileSync(path.join(root, "containers", a, "hosts"), "utf8").trim());
    // The image's /etc is still its own, attributes included.
    expect(inside(a, "cat", "/etc/passwd")).toContain("root:x:0:0");
    expect(inside(a, "stat", "-c", "%a %u %Y", "/etc")).toBe("755 0 946684800");
    expect(inside(a, "ls", "/.berth")).toBe("busybox\nexit");
    // The exit status still lands in the container's bundle, through /.berth/exit.
    const e = name("initexit");
    made.push(e);
    await rt.containers.run({ name: e, image: "bb", command: ["sh", "-c", "exit 3"], stopTimeout: 0 });
    const code = path.join(root, "containers", e, "exit/code");
    for (let i = 0; i < 200 && !fs.existsSync(code); i++) await new Promise((r) => setTimeout(r, 25));
    expect(fs.readFileSync(code, "utf8")).toBe("3\n");
  });

  it("is made whole: what a killed process left half-made is swept when a layer is next made, a live one's kept", async () => {
    const dir = initLayersDir(root);
    const dead = path.join(dir, "0123456789abcdef#tmp-4194000-1-0badc0de");
    const live = path.join(dir, `0123456789abcdef#tmp-${process.pid}-${self().start}-0000c0de`);
    for (const t of [dead, live]) fs.mkdirSync(path.join(t, "etc"), { recursive: true });
    // An image of another shape (no /sys) needs a layer of its own.
    await imageWith("nosys", tarball, [], {}, /^sys(\/|$)/);
    const n = name("nosys");
    made.push(n);
    await rt.containers.run({ name: n, image: "nosys", command: ["sleep", "600"], stopTimeout: 0 });
    expect(fs.readdirSync(path.join(lowers(n)[0]))).toContain("sys");
    expect([fs.existsSync(dead), fs.existsSync(live)]).toEqual([false, true]);
    fs.rmSync(live, { recursive: true });
  });

  // The canary's path is known once beforeAll has run. Each: what the image drops and adds, and what its init layer
  // must then not hold.
  const cases: Array<[string, RegExp | undefined, () => Array<Partial<TarHeader> & { path: string }>, string]> = [
    ["an /etc symlink to the host canary", /^etc(\/|$)/, () => [{ path: "etc", linkname: C }], "etc"],
    ["an /etc/hosts symlink to a host file", /^etc\/hosts$/, () => [{ path: "etc/hosts", linkname: `${C}/secret` }], "etc/hosts"],
    ["a /.berth symlink to the host canary", undefined, () => [{ path: ".berth", linkname: C }], ".berth"],
    ["a /proc that is a file", /^proc(\/|$)/, () => [{ path: "proc", type: "file", mode: 0o644 }], "proc"],
    ["its own /etc/hosts file", /^etc\/hosts$/, () => [{ path: "etc/hosts", type: "file", mode: 0o644 }], "etc/hosts"],
  ];
  for (const [i, [what, drop, extra, absent]] of cases.entries()) {
    it(`leaves out what an image has as something else, and the host unchanged: ${what}`, async () => {
      await imageWith(`init${i}`, tarball, extra(), {}, drop);
      const n = name(`init${i}`);
      made.push(n);
      // runc may refuse a /proc that is a file (the rest run, as with Docker); the host is unchanged either way.
      const ran = await rt.containers.run({ name: n, image: `init${i}`, command: ["sleep", "600"], stopTimeout: 0 }).then(() => true, () => false);
      if (absent !== "proc") expect(ran).toBe(true);
      if (ran) {
        expect(inside(n, "cat", "/etc/hostname")).toBe(n);
        expect(inside(n, "cat", "/etc/hosts")).toBe(fs.readFileSync(path.join(root, "containers", n, "hosts"), "utf8").trim());
        const init = lowers(n)[0];
        expect(path.dirname(init)).toBe(initLayersDir(root));
        expect(fs.existsSync(path.join(init, absent))).toBe(false);
      }
      expect(snapshot(C)).toBe(canary);
    });
  }
});
