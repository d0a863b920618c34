// Containers that stay up, on the real host: limits in the cgroup files and changed in place, isolation options
// seen from inside, bad input refused before anything is made, exit codes and OOM kills recorded, restart
// policies, the supervisor killed and re-adopting, health transitions, bounded logs, and volume data.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type ContainerState, type Runtime } from "../../native";
import { ensureSupervisor, supervisorPid, supervisorRunning } from "../../native/supervise/launch";
import { cgroupFile } from "../../native/supervise/cgroup";
import { runcId } from "../../native/names";
import { tryLock } from "../../native/lock";
import { killLockPath, readState } from "../../native/supervise/state";
import { containerPaths } from "../../native/paths";
import { REPO, runcAt, waitFor } from "./helpers";
import { statusText } from "../../provider/cli/containers";

const tag = randomBytes(3).toString("hex");
const name = (what: string) => `tl${tag}${what}`;
const VOL = name("vol");
let tmp: string;
let root: string;
let rt: Runtime;
const made: string[] = [];

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8" });
const inside = (c: string, ...cmd: string[]): string => sh("runc", runcAt(root, c, ["exec", runcId(root, c), ...cmd])).trim();
const cg = (c: string, controller: string, v1: string, v2: string) =>
  fs.readFileSync(cgroupFile(`/${runcId(root, c)}`, controller, v1, v2), "utf8").trim();

async function run(what: string, extra: Partial<ContainerSpec> = {}) {
  const n = name(what);
  made.push(n);
  return rt.containers.run({ name: n, image: "bb", command: ["sleep", "600"], stopTimeout: 1, ...extra });
}

const parentOf = (pid: number): number => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
};

/** The container's command: the child of berth's init. */
const commandPid = (init: number): number => Number(sh("pgrep", ["-P", String(init)]).trim());

async function state(c: string): Promise<ContainerState | undefined> {
  return (await rt.containers.inspect(c))?.state;
}

/** Polls the supervisor's view until it matches. */
async function until(c: string, what: string, ok: (s: ContainerState) => boolean, ms = 15_000): Promise<ContainerState> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await state(c);
    if (s && ok(s)) return s;
    if (Date.now() > deadline) throw new Error(`${c}: timed out waiting for ${what}; state: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-life-");
  root = path.join(tmp, "root");
  // Small enough that a test can push a log past it.
  process.env.BERTH_LOG_MAX_BYTES = "4096";
  const tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  rt = createNativeRuntime({ root });
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
  await rt.images.importRootfs({ ref: "bbvol", tarball, config: { cmd: ["sh"], volumes: ["/bin"] } });
});

afterAll(async () => {
  for (const c of made) await rt.containers.remove(c, { graceSeconds: 0 }).catch(() => undefined);
  await rt.volumes.remove(VOL).catch(() => undefined);
  // The supervisor this test's root started (it would also leave by itself once idle).
  const pid = supervisorPid(root);
  if (pid) process.kill(pid, "SIGTERM");
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("limits", () => {
  it("writes memory, swap, reservation, CPU, cpuset, pids and I/O limits to the container's cgroup", async () => {
    const c = name("lim");
    const disk = fs.statSync("/dev/vda", { throwIfNoEntry: false })?.isBlockDevice() ? "/dev/vda" : undefined;
    await run("lim", {
      limits: {
        memory: 64 << 20,
        memoryReservation: 32 << 20,
        cpus: 0.5,
        cpuShares: 512,
        cpuset: "0",
        pidsLimit: 50,
        ...(disk && { deviceReadBps: [{ path: disk, rate: 1 << 20 }] }),
      },
    });
    expect(cg(c, "memory", "memory.limit_in_bytes", "memory.max")).toBe(String(64 << 20));
    expect(cg(c, "memory", "memory.soft_limit_in_bytes", "memory.low")).toBe(String(32 << 20));
    if (!fs.existsSync("/sys/fs/cgroup/cgroup.controllers")) {
      // Docker's default: memory+swap is twice the memory.
      expect(cg(c, "memory", "memory.memsw.limit_in_bytes", "")).toBe(String(128 << 20));
      expect(cg(c, "cpu", "cpu.cfs_quota_us", "")).toBe("50000");
      expect(cg(c, "cpu", "cpu.shares", "")).toBe("512");
    }
    expect(cg(c, "cpuset", "cpuset.cpus", "cpuset.cpus")).toBe("0");
    expect(cg(c, "pids", "pids.max", "pids.max")).toBe("50");
    if (disk) {
      const { rdev } = fs.statSync(disk);
      const dev = `${Math.floor(rdev / 256)}:${rdev & 0xff}`;
      expect(cg(c, "blkio", "blkio.throttle.read_bps_device", "io.max")).toContain(`${dev} ${1 << 20}`);
    }
  });

  it("changes limits under the running process, and keeps them for the next start", async () => {
    const c = name("lim");
    const pid = (await rt.containers.inspect(c))!.pid;
    await rt.containers.update(c, { limits: { memory: 128 << 20, pidsLimit: 20 }, restart: "always" });
    expect(cg(c, "memory", "memory.limit_in_bytes", "memory.max")).toBe(String(128 << 20));
    expect(cg(c, "pids", "pids.max", "pids.max")).toBe("20");
    expect((await rt.containers.inspect(c))!.pid).toBe(pid);
    await rt.containers.stop(c, { graceSeconds: 0 });
    await rt.containers.start(c);
    expect(cg(c, "memory", "memory.limit_in_bytes", "memory.max")).toBe(String(128 << 20));
  });

  it("stops every process of a container at once with no grace, in its own PID namespace or the host's", async () => {
    for (const [what, extra] of [["kall", {}], ["khost", { pid: "host" }]] as const) {
      const info = await run(what, { command: ["sh", "-c", "sleep 600 & sleep 600 & wait"], ...extra });
      const procs = () => cg(name(what), "pids", "cgroup.procs", "cgroup.procs").split("\n").filter(Boolean);
      const within = async (ok: () => boolean) => {
        for (const deadline = Date.now() + 3000; !ok() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      };
      await within(() => procs().length >= 4); // init, sh, two sleeps
      expect(procs().length, what).toBeGreaterThanOrEqual(4);
      await rt.containers.stop(name(what), { graceSeconds: 0 });
      await within(() => procs().length === 0);
      expect(procs(), what).toEqual([]);
      expect(fs.existsSync(`/proc/${info.pid}/cmdline`) && fs.readFileSync(`/proc/${info.pid}/cmdline`).length > 0, what).toBe(false);
    }
  });

  it("refuses what the host cannot give before making anything", async () => {
    const cpus = fs.readFileSync("/proc/cpuinfo", "utf8").match(/^processor/gm)!.length;
    const bad: Array<[Partial<ContainerSpec>, string]> = [
      [{ limits: { cpus: 64 } }, `cpus: Range of CPUs is from 0.01 to ${cpus}.00, as there are only ${cpus} CPUs available`],
      [{ limits: { cpuset: "77" } }, "cpuset: Requested CPUs are not available - requested 77, available: 0-"],
      [{ devices: ["/dev/berth-none"] }, 'error gathering device information while adding custom device "/dev/berth-none"'],
      [{ volumesFrom: ["nosuch"] }, 'volumesFrom names "nosuch": No such container'],
      [{ pid: "container:nosuch" }, 'pid "container:nosuch": No such container: nosuch'],
    ];
    for (const [extra, message] of bad) {
      await expect(run("bad", extra)).rejects.toThrow(message);
      expect(fs.existsSync(path.join(root, "containers", name("bad")))).toBe(false);
    }
  });
});

describe("isolation options", () => {
  it("applies user, read-only root, tmpfs, capabilities, ulimits, sysctls and devices", async () => {
    const c = name("opt");
    await run("opt", {
      user: "1000:1000",
      readOnly: true,
      tmpfs: [{ target: "/scratch", size: 1 << 20 }],
      capAdd: ["NET_ADMIN"],
      capDrop: ["CHOWN"],
      ulimits: [{ name: "nofile", soft: 512, hard: 1024 }],
      sysctls: { "net.ipv4.tcp_keepalive_time": "123" },
      devices: ["/dev/fuse:/dev/myfuse:r"],
    });
    expect(inside(c, "id", "-u")).toBe("1000");
    expect(spawnSync("runc", runcAt(root, c, ["exec", runcId(root, c), "touch", "/file"])).status).not.toBe(0);
    expect(inside(c, "grep", " /scratch ", "/proc/mounts")).toMatch(/tmpfs .*size=1024k/);
    expect(inside(c, "grep", "open files", "/proc/1/limits")).toMatch(/files\s+512\s+1024\s/);
    expect(inside(c, "cat", "/proc/sys/net/ipv4/tcp_keepalive_time")).toBe("123");
    expect(inside(c, "ls", "-l", "/dev/myfuse")).toMatch(/^c.* 10,\s+229 /);
    const bounding = BigInt(`0x${/CapBnd:\s+(\w+)/.exec(inside(c, "cat", "/proc/1/status"))![1]}`);
    expect(bounding & (1n << 12n)).toBe(1n << 12n); // CAP_NET_ADMIN
    expect(bounding & 1n).toBe(0n); // CAP_CHOWN
  });

  it("shares the pid namespace of another container and the host's uts", async () => {
    const first = name("lim");
    const c = name("share");
    await run("share", { pid: `container:${first}`, uts: "host" });
    expect(inside(c, "ps")).toContain("sleep 600");
    expect(inside(c, "hostname")).toBe(sh("hostname", []).trim());
  });

  it("runs the command under berth's init, which reaps and forwards the stop signal", async () => {
    const c = name("sig");
    await run("sig", {
      command: ["sh", "-c", "trap 'echo got INT; exit 7' INT; while :; do sleep 0.05; done"],
      stopSignal: "SIGINT",
    });
    await rt.containers.stop(c);
    const s = await until(c, "exit", (st) => st.status === "exited");
    expect(s.exitCode).toBe(7);
    expect(fs.readFileSync(path.join(root, "containers", c, "container.log"), "utf8")).toContain("got INT");
  });

  it("stops with a real-time stop signal, which runc knows only by number", async () => {
    const c = name("rt");
    await run("rt", { command: ["sleep", "600"], stopSignal: "SIGRTMIN+3" });
    await rt.containers.stop(c, { graceSeconds: 5 });
    // sleep dies of signal 37 (34 + 3) well within the grace period, not of the SIGKILL after it (137).
    expect((await until(c, "exit", (st) => st.status === "exited")).exitCode).toBe(128 + 37);
  });
});

describe("supervision", () => {
  it("is started once when containers made at once all find none running yet", async () => {
    const fresh = path.join(tmp, "fresh");
    const argv = (pid: string): string[] => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      } catch {
        return []; // ended meanwhile
      }
    };
    const watchdogs = () => fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p) && argv(p).includes("berth-watchdog") && argv(p).includes(fresh));
    try {
      // Each call once started its own (a node process each) until the first held the supervisor lock.
      await Promise.all(Array.from({ length: 5 }, () => ensureSupervisor(fresh)));
      expect(watchdogs()).toHaveLength(1);
      expect(supervisorRunning(fresh)).toBe(true);
    } finally {
      const pid = supervisorPid(fresh);
      if (pid) process.kill(pid, "SIGTERM");
    }
  });

  it("starts it without NODE_EXTRA_CA_CERTS: it opens no TLS connection, and node would parse that bundle at each start", async () => {
    const fresh = path.join(tmp, "fresh-env");
    const saved = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = "/etc/ssl/certs/ca-certificates.crt";
    try {
      await ensureSupervisor(fresh);
      const env = fs.readFileSync(`/proc/${supervisorPid(fresh)}/environ`, "utf8").split("\0");
      expect(env.filter((e) => e.startsWith("NODE_EXTRA_CA_CERTS="))).toEqual([]);
      // The rest of the environment is the caller's (BERTH_RUN, BERTH_LOG_MAX_BYTES, PATH for runc).
      expect(env).toContain(`PATH=${process.env.PATH}`);
    } finally {
      if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = saved;
      const pid = supervisorPid(fresh);
      if (pid) process.kill(pid, "SIGTERM");
    }
  });

  it("records a memory hog's OOM kill", async () => {
    const c = name("oom");
    await run("oom", { command: ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"], limits: { memory: 16 << 20 } });
    const s = await until(c, "exit", (st) => st.status === "exited");
    expect(s).toMatchObject({ exitCode: 137, oomKilled: true });
  });

  it("on-failure:3 restarts exactly three times, and the log keeps every run", async () => {
    const c = name("fail3");
    await run("fail3", { command: ["sh", "-c", "echo run; exit 3"], restart: "on-failure:3" });
    const s = await until(c, "three restarts", (st) => st.status === "exited" && st.restartCount === 3);
    expect(s.exitCode).toBe(3);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await state(c))!.restartCount).toBe(3);
    expect(fs.readFileSync(path.join(root, "containers", c, "container.log"), "utf8")).toBe("run\n".repeat(4));
  });

  it("records the exit code of a container whose user is not root: named, numeric uid, uid:gid", async () => {
    const users = { unamed: "nobody", unum: "1234", upair: "65534:65534" };
    await Promise.all(Object.entries(users).map(([what, user]) => run(what, { user, command: ["sh", "-c", "exit 3"] })));
    for (const what of Object.keys(users)) expect((await until(name(what), "its exit", (st) => st.status === "exited")).exitCode).toBe(3);
  });

  it("gives the exit directory to the container's user again at start (one made by an older berth is root's)", async () => {
    const c = name("uold");
    // Long enough for the supervisor to see each run running (its starts are what tell one exit from the next).
    await run("uold", { user: "nobody", command: ["sh", "-c", "sleep 0.5; exit 3"] });
    // As the supervisor recorded them (inspect says what it will record of an exit not recorded yet).
    const recorded = (what: string, ok: (st: ContainerState) => boolean) =>
      waitFor(what, async () => {
        const st = await readState(path.join(root, "containers", c));
        return st && ok(st) ? st : undefined;
      }, 15_000, 50);
    const first = await recorded("its exit", (st) => st.status === "exited");
    fs.chownSync(path.join(root, "containers", c, "exit"), 0, 0);
    await rt.containers.start(c);
    const again = await recorded("its second exit", (st) => st.status === "exited" && st.startedAt !== first.startedAt);
    expect(again.exitCode).toBe(3);
  });

  it("restarts a non-root container on failure, seeing its real code", async () => {
    const c = name("ufail");
    await run("ufail", { user: "nobody", command: ["sh", "-c", "exit 5"], restart: "on-failure:2" });
    const s = await until(c, "two restarts", (st) => st.status === "exited" && st.restartCount === 2);
    expect(s.exitCode).toBe(5);
  });

  it("reads no host file and waits on no FIFO that a container planted as its exit status", async () => {
    const secret = path.join(tmp, "secret");
    fs.writeFileSync(secret, "42\n");
    // The link names a host file absent inside: init's own write through it fails, the link stays for berth.
    await run("ulink", { user: "nobody", command: ["sh", "-c", `ln -s ${secret} /.berth/exit/code; exit 4`] });
    expect((await until(name("ulink"), "its exit", (st) => st.status === "exited")).exitCode).toBe(137);
    // init blocks writing to the FIFO; a stop kills it and the status is read without waiting for a writer.
    await run("ufifo", { user: "nobody", command: ["sh", "-c", "mkfifo /.berth/exit/code; exit 4"] });
    await until(name("ufifo"), "the FIFO", () => fs.lstatSync(path.join(root, "containers", name("ufifo"), "exit", "code"), { throwIfNoEntry: false })?.isFIFO() ?? false);
    await rt.containers.stop(name("ufifo"), { graceSeconds: 0 });
    expect((await until(name("ufifo"), "its exit", (st) => st.status === "exited", 5000)).exitCode).toBe(137);
    // A directory planted there keeps init from writing its status; the restart clears it and the next run's counts.
    await run("udir", { command: ["sh", "-c", "[ -e /ran ] && exit 6; touch /ran; mkdir /.berth/exit/code; exit 4"], restart: "on-failure:1" });
    expect((await until(name("udir"), "its restart", (st) => st.status === "exited" && st.restartCount === 1)).exitCode).toBe(6);
  });

  it("always restarts after a crash but not after a stop", async () => {
    const c = name("always");
    await run("always", { restart: "always" });
    const first = await until(c, "running", (st) => st.status === "running");
    process.kill(commandPid(first.pid!), "SIGKILL");
    await until(c, "a restart", (st) => st.status === "running" && st.restartCount === 1);
    await rt.containers.stop(c);
    await until(c, "stopped", (st) => st.status === "exited");
    await new Promise((r) => setTimeout(r, 800));
    expect((await state(c))!.status).toBe("exited");
    expect((await rt.containers.inspect(c))!.status).toBe("stopped");
    await rt.containers.start(c);
    expect((await until(c, "running", (st) => st.status === "running")).restartCount).toBe(0);
  });

  it("sees a run that began and ended between two of its looks: the start, then the exit code", async () => {
    const c = name("blink");
    await run("blink");
    await until(c, "running", (st) => st.status === "running");
    await rt.containers.stop(c, { graceSeconds: 0 });
    const stopped = await until(c, "stopped", (st) => st.status === "exited");
    // The supervisor is held still while the container starts and is killed, so it cannot see the run live.
    const supervisor = supervisorPid(root)!;
    process.kill(supervisor, "SIGSTOP");
    try {
      await rt.containers.start(c);
      const pid = (await rt.containers.inspect(c))!.pid!;
      await rt.containers.kill(c, "KILL");
      await waitFor("the run to end", () => (fs.existsSync(`/proc/${pid}`) ? undefined : true));
    } finally {
      process.kill(supervisor, "SIGCONT");
    }
    const seen = await until(c, "the run recorded", (st) => st.startedAt !== stopped.startedAt && st.status === "exited", 5000);
    expect(seen.exitCode).toBe(137);
    expect(Date.parse(seen.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(seen.startedAt!));
  });

  it("records a kill's die only once the kill has recorded its event, however soon it sees the death", async () => {
    const c = name("killed");
    await run("killed");
    await until(c, "running", (st) => st.status === "running");
    const bundle = containerPaths(root, c).dir;
    const since = Date.now();
    // A kill under way (its lock held, as between its signal and its event): the death is there to see at once.
    const release = (await tryLock(killLockPath(bundle)))!;
    try {
      execFileSync("runc", runcAt(root, c, ["kill", "--all", runcId(root, c), "KILL"]));
      await new Promise((r) => setTimeout(r, 1000));
      // The supervisor's own record (inspect reads an unrecorded exit from the files).
      expect((await readState(bundle))?.status).toBe("running");
    } finally {
      release();
    }
    const died = await waitFor("the die recorded", async () => { const st = await readState(bundle); return st?.status === "exited" ? st : undefined; }, 5000, 50);
    expect(died.exitCode).toBe(137);
    expect(Date.parse(died.finishedAt!)).toBeGreaterThan(since + 1000);
  });

  it("comes back by itself after its supervisor's SIGKILL: a dead container is restarted within 5 s, no command run", async () => {
    const c = name("adopt");
    await run("adopt", { restart: "always" });
    const before = await until(c, "running", (st) => st.status === "running");
    const supervisor = supervisorPid(root)!;
    const watchdog = parentOf(supervisor);
    expect(fs.readFileSync(`/proc/${watchdog}/cmdline`, "utf8")).toContain("berth-watchdog");
    process.kill(supervisor, "SIGKILL");
    await waitFor("the supervisor to die", () => (fs.existsSync(`/proc/${supervisor}`) ? undefined : true));
    expect((await rt.containers.inspect(c))!.pid).toBe(before.pid);
    // The container dies right after; nothing but the watchdog is there to bring a supervisor back.
    const killedAt = Date.now();
    process.kill(commandPid(before.pid!), "SIGKILL");
    const after = await until(c, "a restart", (st) => st.status === "running" && st.restartCount === 1, 5000);
    console.log(`restarted ${Date.now() - killedAt} ms after the supervisor's SIGKILL`);
    expect(after.pid).not.toBe(before.pid);
    expect(supervisorPid(root)).not.toBe(supervisor);
    expect(parentOf(supervisorPid(root)!)).toBe(watchdog);
  });

  it("replaces a killed watchdog, and after both die the next command brings a supervisor back", async () => {
    const c = name("pair");
    await run("pair", { restart: "always" });
    await until(c, "running", (st) => st.status === "running");
    const supervisor = supervisorPid(root)!;
    const watchdog = parentOf(supervisor);
    process.kill(watchdog, "SIGKILL");
    // The orphaned supervisor starts a new pair and steps down.
    const next = await waitFor("a new supervisor", () => {
      const pid = supervisorPid(root);
      return pid !== undefined && pid !== supervisor && parentOf(pid) !== watchdog ? pid : undefined;
    });
    expect(fs.readFileSync(`/proc/${parentOf(next)}/cmdline`, "utf8")).toContain("berth-watchdog");
    // A double fault: both killed at once. ps and inspect tell the truth meanwhile, and the next runtime opened on
    // the root (any berth command) starts a supervisor again.
    const pair = [parentOf(next), next];
    for (const pid of pair) process.kill(pid, "SIGKILL");
    await waitFor("both to die", () => (pair.some((p) => fs.existsSync(`/proc/${p}`)) ? undefined : true));
    const running = (await state(c))!;
    process.kill(commandPid(running.pid!), "SIGKILL");
    let seen = await rt.containers.inspect(c);
    for (const deadline = Date.now() + 5000; seen?.status !== "stopped" && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 50));
      seen = await rt.containers.inspect(c);
    }
    expect(seen!.state).toMatchObject({ status: "exited", exitCode: 137 });
    expect(statusText(seen!)).toMatch(/^Exited \(137\) (\d+ seconds?|Less than a second) ago$/);
    expect(Date.parse(seen!.state!.finishedAt!)).toBeGreaterThan(Date.now() - 10_000);
    expect(supervisorRunning(root)).toBe(false);
    createNativeRuntime({ root });
    await until(c, "a restart", (st) => st.status === "running" && st.restartCount >= 1, 5000);
  });

  it("health goes starting → healthy → unhealthy", async () => {
    const c = name("health");
    await run("health", {
      command: ["sh", "-c", "sleep 1; touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 600"],
      healthcheck: { test: ["CMD-SHELL", "test -f /tmp/ok"], interval: 0.2, timeout: 2, retries: 2 },
    });
    expect((await until(c, "starting", (st) => st.health !== undefined)).health!.status).toBe("starting");
    await until(c, "healthy", (st) => st.health?.status === "healthy");
    const s = await until(c, "unhealthy", (st) => st.health?.status === "unhealthy");
    expect(s.health!.failingStreak).toBeGreaterThanOrEqual(2);
    expect(s.health!.log.at(-1)!.exitCode).toBe(1);
    // Bounded at BERTH_LOG_MAX_BYTES like container logs: the older half may have moved to events.log.1.
    const events = ["events.log.1", "events.log"].map((f) => path.join(root, f)).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, "utf8")).join("");
    expect(events).toContain(`container health_status: healthy ${c}`);
    expect(events).toContain(`container health_status: unhealthy ${c}`);
  });

  it("keeps a container's log within its bound", async () => {
    const c = name("chatty");
    await run("chatty", { command: ["sh", "-c", "for i in $(seq 1 400); do echo line-$i-0123456789; done; sleep 600"] });
    const log = path.join(root, "containers", c, "container.log");
    await waitFor("the log to be cut", () => (fs.existsSync(`${log}.1`) ? true : undefined), 10_000, 50);
    await new Promise((r) => setTimeout(r, 400));
    expect(fs.statSync(log).size).toBeLessThanOrEqual(4096);
  });
});

describe("volumes", () => {
  it("keeps a named volume's data across replacement; binds, anonymous and image volumes, volumes-from", async () => {
    await rt.volumes.create({ name: VOL });
    const hostDir = path.join(tmp, "made", "by", "bind");
    const spec: Partial<ContainerSpec> = {
      image: "bbvol",
      mounts: [{ volume: VOL, target: "/data" }],
      binds: [{ source: hostDir, target: "/host" }],
      anonymousVolumes: ["/anon"],
    };
    const c = name("data");
    await run("data", spec);
    inside(c, "sh", "-c", "echo kept > /data/f; echo bound > /host/f");
    // The image's VOLUME /bin is an anonymous volume seeded with the image's files (or nothing would run).
    expect(inside(c, "grep", "-c", " /bin ", "/proc/mounts")).toBe("1");
    expect(inside(c, "grep", "-c", " /anon ", "/proc/mounts")).toBe("1");
    expect(fs.readFileSync(path.join(hostDir, "f"), "utf8")).toBe("bound\n");
    const reader = name("reader");
    await run("reader", { volumesFrom: [`${c}:ro`] });
    expect(inside(reader, "cat", "/data/f")).toBe("kept");
    expect(spawnSync("runc", runcAt(root, reader, ["exec", runcId(root, reader), "touch", "/data/g"])).status).not.toBe(0);
    await expect(rt.volumes.remove(VOL)).rejects.toThrow(`volume "${VOL}" is in use by container(s)`);
    await rt.containers.remove(reader, { graceSeconds: 0 });
    await rt.containers.remove(c, { graceSeconds: 0 });
    await run("data", { ...spec, command: ["sleep", "601"] });
    expect(inside(c, "cat", "/data/f")).toBe("kept");
  });

  it("keeps a volume on a host directory (driver options) in that directory, also after the volume is removed", async () => {
    const device = path.join(tmp, "device");
    const vol = `${VOL}dev`;
    await expect(rt.volumes.create({ name: vol, device })).rejects.toThrow(`device ${device} is not a directory on this host`);
    fs.mkdirSync(device);
    await rt.volumes.create({ name: vol, device });
    const c = name("dev");
    await run("dev", { mounts: [{ volume: vol, target: "/data" }] });
    inside(c, "sh", "-c", "echo on-host > /data/f");
    expect(fs.readFileSync(path.join(device, "f"), "utf8")).toBe("on-host\n");
    await rt.containers.remove(c, { graceSeconds: 0 });
    await rt.volumes.remove(vol);
    expect(fs.readFileSync(path.join(device, "f"), "utf8")).toBe("on-host\n");
  });
});
