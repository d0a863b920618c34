// Simulated hosts on this machine, for the many-hosts tests and benchmark (contract 4): N network namespaces, each a
// "machine" with a NIC on one layer-2 segment, its own OpenSSH server (Debian's sshd, started here with its own
// config, host key and authorized key) and its own berth root; the test process reaches them over SSH through a veth
// of its own into the segment. Nothing here touches ~/.ssh, the system's sshd or the machine's own interfaces, and
// cleanup() removes everything made (also when makeSimHosts fails midway). No vitest here: the bench imports it.
//
//   root netns ── bt<tag>r ─┐            segment netns bt<tag>seg: bridge bt<tag>br
//   host i netns ── bt<tag>n<i> (its NIC) ─┘ (peer bt<tag>p<i> enslaved in the bridge)
//
// A host is a network namespace *and* a mount namespace of its own, kept (bind-mounted) under the temp dir, that
// every process of the host enters (`nsenter`, see inHost): its /sys is that of its network namespace (so berth
// sees the host's NICs), with the machine's cgroup mounts moved in (`ip netns exec` would drop them, and runc
// needs them); its /run is its own; the mounts berth makes there (overlays, container namespaces) are seen by all
// of the host's processes, as on a machine, and by nothing outside it. Cgroups and /tmp stay the machine's.
import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { coveringSubnet, overlaps, parseSubnet, type Subnet } from "../../native/network/cidr";
import { collect, removeLocksDir, stopSupervisor, type CliResult } from "./helpers";

/** The checkout (this file also runs compiled, from dist/test/host, under the bench). */
export const REPO = (() => {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "bin/berth")) && fs.existsSync(path.join(dir, "package.json"))) return dir;
  }
  throw new Error(`sim-hosts: no berth checkout above ${__dirname}`);
})();
const SSHD = "/usr/sbin/sshd";
// Run in a host's new mount namespace, already in its network namespace: a sysfs of that network namespace
// mounted at $1, the machine's cgroup tree moved onto it, and it moved onto /sys; a /run of its own (so its
// container namespaces, runc state and locks are the host's, as on another machine).
const HOST_SYS = [
  'mount -t sysfs sysfs "$1"', 'mount --move /sys/fs/cgroup "$1/fs/cgroup"', "umount -l /sys", 'mount --move "$1" /sys',
  "mount -t tmpfs -o mode=755 tmpfs /run", "mkdir -m 755 /run/sshd",
].join("; ");

export interface SimHostOptions {
  /** `berth` on the host's PATH (this checkout's bin/berth); false for the "berth missing" case. Default true. */
  berth?: boolean;
  /** A Linux bridge carries the host's NIC (the seeds' pipework br0, BRIDGE=br0) and holds the host's address.
   * Default false: the address is on the NIC. */
  bridge?: boolean;
}

/** What a remote runtime needs to reach a host (contract 3's RemoteTarget shape). */
export interface SimTarget {
  url: string;
  identityFile: string;
  sshOptions: string[];
  root: string;
}

export interface SimHost {
  /** "h1", "h2", … */
  readonly name: string;
  /** Its network namespace. */
  readonly netns: string;
  /** The command line that runs argv inside the host (its network and mount namespaces). */
  inHost(argv: string[]): string[];
  /** Its address on the segment, where sshd listens. */
  readonly address: string;
  /** Its NIC on the segment (inside its namespace): a macvlan parent, or the bridge port when `bridge` is set. */
  readonly nic: string;
  /** The bridge carrying the NIC, when asked for. */
  readonly bridge?: string;
  /** Its berth root and run directory (as sshd's SetEnv gives them to every session). */
  readonly root: string;
  readonly runDir: string;
  readonly url: string;
  readonly target: SimTarget;
  /** Runs a command inside the host, as its admin would at its console. */
  exec(cmd: string, args: string[], input?: string): SpawnSyncReturns<string>;
  /** Runs this checkout's `berth` on the host, with its root, as its admin would (not over SSH). */
  berth(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** Runs a command over SSH, as the client tests use it. */
  ssh(command: string[], opts?: { input?: string; timeoutMs?: number }): Promise<CliResult>;
  /** Gives the host a new host key (the client's known_hosts keeps the old one). */
  rekey(): Promise<void>;
  /** Kills every SSH connection to the host (the server's per-connection processes); sshd keeps listening. */
  killConnections(): number;
  /** Pids of the server's per-connection processes now. */
  connections(): number[];
}

export interface SimHosts {
  readonly hosts: SimHost[];
  /** The temp dir holding keys, known_hosts, configs, logs and the berth roots. */
  readonly dir: string;
  /** Client side: private key, known_hosts, and the ssh -o options that use them (never ~/.ssh). */
  readonly identityFile: string;
  readonly knownHosts: string;
  readonly sshOptions: string[];
  /** `ssh …` arguments before the destination: -F none, -i KEY and the options. */
  readonly sshArgs: string[];
  /** The segment's subnet (CIDR) and the test process's own address on it. */
  readonly subnet: string;
  readonly clientAddress: string;
  /** An address on the segment no host uses: .base + n (n ≥ 100 is left to the tests). */
  addressAt(n: number): string;
  /** Removes everything made; safe to call twice. */
  cleanup(): Promise<void>;
}

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const quiet = (cmd: string, args: string[]): void => void spawnSync(cmd, args, { stdio: "ignore" });
const ipv4 = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");

/** A /24 in 10.160.0.0/11 (no other test's range) that no route of this machine's covers, the default aside. */
function freeSubnet(): Subnet {
  const routes = run("ip", ["-4", "route", "show", "table", "all"]).split("\n")
    .map((l) => coveringSubnet(l.split(" ").find((t) => /^\d/.test(t)) ?? ""))
    .filter((s): s is Subnet => s !== undefined);
  for (let i = 0; i < 50; i++) {
    const s = parseSubnet(`10.${160 + (randomBytes(1)[0] % 32)}.${randomBytes(1)[0]}.0/24`);
    if (!routes.some((r) => overlaps(r, s))) return s;
  }
  throw new Error("sim-hosts: no free /24 in 10.160.0.0/11 (every one tried is routed on this machine)");
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port, timeout: 500 });
    const done = (ok: boolean) => (sock.destroy(), resolve(ok));
    sock.once("connect", () => done(true)).once("error", () => done(false)).once("timeout", () => done(false));
  });
}

/** Children of a process (from /proc), for sshd's per-connection processes. */
function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) kids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return kids;
}

function keygen(file: string, comment: string): string {
  fs.rmSync(file, { force: true });
  fs.rmSync(`${file}.pub`, { force: true });
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  return fs.readFileSync(`${file}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
}

/** The berth roots' containers, networks and volumes removed by berth itself, inside the host. */
async function emptyRoot(host: Pick<SimHost, "root" | "berth">): Promise<void> {
  if (!fs.existsSync(host.root)) return;
  const ids = await host.berth(["ps", "-aq"]);
  const names = ids.stdout.split("\n").filter(Boolean);
  if (names.length > 0) await host.berth(["rm", "-f", ...names]);
  const nets = (await host.berth(["network", "ls", "-q"])).stdout.split("\n").filter((n) => n && n !== "bridge");
  if (nets.length > 0) await host.berth(["network", "rm", "-f", ...nets]);
  const vols = (await host.berth(["volume", "ls", "-q"])).stdout.split("\n").filter(Boolean);
  if (vols.length > 0) await host.berth(["volume", "rm", "-f", ...vols]);
}

/** What host i of a set is, from the set's tag and directory alone: a later run can tear a stale one down. */
function hostParts(tag: string, dir: string, i: number) {
  const name = `h${i}`;
  const netns = `bt${tag}h${i}`;
  const home = path.join(dir, name);
  const mntns = path.join(dir, "mnt", name);
  const root = path.join(home, "root");
  const runDir = path.join(home, "run");
  const inHost = (argv: string[]) => ["nsenter", `--net=/run/netns/${netns}`, `--mount=${mntns}`, "--", ...argv];
  const berth = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    collect(spawn("nsenter", inHost([path.join(REPO, "bin/berth"), ...args]).slice(1), {
      env: { ...process.env, BERTH_ROOT: root, BERTH_RUN: runDir, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"],
    }));
  return { name, netns, home, mntns, root, runDir, inHost, berth };
}

/** Removes a set of hosts: their roots emptied by berth, supervisors and sshds stopped, namespaces, links, dir. */
async function teardown(tag: string, dir: string, count: number, stopSshds: () => Promise<void>): Promise<void> {
  const parts = Array.from({ length: count }, (_, i) => hostParts(tag, dir, i + 1));
  for (const h of parts) if (fs.existsSync(h.root)) await emptyRoot(h).catch(() => undefined);
  for (const h of parts) {
    try {
      stopSupervisor(h.root);
    } catch {
      // none running
    }
  }
  await stopSshds();
  for (const h of parts) quiet("umount", [h.mntns]);
  quiet("umount", [path.join(dir, "mnt")]);
  for (const h of parts) quiet("ip", ["netns", "del", h.netns]);
  quiet("ip", ["netns", "del", `bt${tag}seg`]);
  quiet("ip", ["link", "del", `bt${tag}r`]);
  // Each root's tmpfs locks directory: made from the host's mount namespace, which no sweep from here judges.
  for (const h of parts) removeLocksDir(h.root);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A process's start time (clock ticks after boot), which tells it from a later process given the same pid. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/**
 * Hosts a killed run left (its owner process is gone, so no afterAll ran): torn down, their sshds stopped by the
 * pids the run recorded, each checked to be that sshd still (start time, and its config under the set's dir).
 */
async function sweepStale(): Promise<void> {
  for (const entry of fs.readdirSync(os.tmpdir())) {
    const dir = path.join(os.tmpdir(), entry);
    const m = /^berth-sim-([0-9a-f]{4})-/.exec(entry);
    let owner: { pid: number; start: string; count: number; sshds: Array<{ pid: number; start: string }> };
    try {
      owner = JSON.parse(fs.readFileSync(path.join(dir, "owner.json"), "utf8"));
    } catch {
      continue;
    }
    if (!m || startTime(owner.pid) === owner.start) continue;
    await teardown(m[1], dir, owner.count, async () => {
      for (const s of owner.sshds) {
        const cmdline = fs.existsSync(`/proc/${s.pid}/cmdline`) ? fs.readFileSync(`/proc/${s.pid}/cmdline`, "utf8") : "";
        if (startTime(s.pid) === s.start && cmdline.includes(dir)) {
          for (const kid of childrenOf(s.pid)) killQuietly(kid);
          killQuietly(s.pid);
        }
      }
    });
  }
}

/** Makes `count` simulated hosts (options per host by index), sshd answering on each before it returns. */
export async function makeSimHosts(count: number, options: SimHostOptions[] = []): Promise<SimHosts> {
  await sweepStale();
  const tag = randomBytes(2).toString("hex");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-sim-${tag}-`));
  // Who owns the set, and the sshds it started: what sweepStale needs should this process be killed.
  const owner = { pid: process.pid, start: startTime(process.pid), count, sshds: [] as Array<{ pid: number; start?: string }> };
  const record = () => fs.writeFileSync(path.join(dir, "owner.json"), JSON.stringify(owner));
  record();
  const seg = `bt${tag}seg`;
  const br = `bt${tag}br`;
  const subnet = freeSubnet();
  const addressAt = (n: number) => ipv4(subnet.base + n);
  const prefix = `/${subnet.prefix}`;
  const sshds = new Map<string, ChildProcess>();
  const hosts: SimHost[] = [];
  const mntDir = path.join(dir, "mnt"); // the hosts' mount namespaces, bound here

  const identityFile = path.join(dir, "client_ed25519");
  const knownHosts = path.join(dir, "known_hosts");
  const sshOptions = [
    `UserKnownHostsFile=${knownHosts}`, "GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes", "IdentitiesOnly=yes",
    "BatchMode=yes", "ConnectTimeout=5", "LogLevel=ERROR",
  ];
  const sshArgs = ["-F", "none", "-i", identityFile, ...sshOptions.flatMap((o) => ["-o", o])];

  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await teardown(tag, dir, count, async () => void (await Promise.all([...sshds.values()].map(stopProcess))));
  };

  try {
    // The segment: a bridge in a namespace of its own, and the test process's veth into it.
    run("ip", ["netns", "add", seg]);
    run("ip", ["-n", seg, "link", "add", br, "type", "bridge"]);
    run("ip", ["-n", seg, "link", "set", br, "up"]);
    run("ip", ["link", "add", `bt${tag}r`, "type", "veth", "peer", "name", `bt${tag}rp`, "netns", seg]);
    run("ip", ["-n", seg, "link", "set", `bt${tag}rp`, "master", br, "up"]);
    run("ip", ["addr", "add", `${addressAt(1)}${prefix}`, "dev", `bt${tag}r`]);
    run("ip", ["link", "set", `bt${tag}r`, "up"]);

    const clientPub = keygen(identityFile, `berth-sim-${tag}-client`);
    fs.writeFileSync(path.join(dir, "authorized_keys"), `${clientPub}\n`, { mode: 0o600 });
    // A mount namespace can be kept by binding it onto a file only where mounts do not propagate.
    fs.mkdirSync(mntDir);
    run("mount", ["--bind", mntDir, mntDir]);
    run("mount", ["--make-private", mntDir]);
    const known: string[] = [];

    for (let i = 1; i <= count; i++) {
      const opts = options[i - 1] ?? {};
      const { name, netns, home, mntns, root, runDir, inHost, berth } = hostParts(tag, dir, i);
      const nic = `bt${tag}n${i}`;
      const address = addressAt(10 + i);
      fs.mkdirSync(path.join(home, "bin"), { recursive: true });
      if (opts.berth !== false) fs.symlinkSync(path.join(REPO, "bin/berth"), path.join(home, "bin/berth"));

      run("ip", ["netns", "add", netns]);
      run("ip", ["-n", netns, "link", "set", "lo", "up"]);
      run("ip", ["link", "add", nic, "netns", netns, "type", "veth", "peer", "name", `bt${tag}p${i}`, "netns", seg]);
      run("ip", ["-n", seg, "link", "set", `bt${tag}p${i}`, "master", br, "up"]);
      run("ip", ["-n", netns, "link", "set", nic, "up"]);
      const bridge = opts.bridge ? `bt${tag}b${i}` : undefined;
      if (bridge) {
        run("ip", ["-n", netns, "link", "add", bridge, "type", "bridge"]);
        run("ip", ["-n", netns, "link", "set", nic, "master", bridge]);
        run("ip", ["-n", netns, "link", "set", bridge, "up"]);
      }
      run("ip", ["-n", netns, "addr", "add", `${address}${prefix}`, "dev", bridge ?? nic]);
      fs.writeFileSync(mntns, "");
      fs.mkdirSync(path.join(home, "sys"));
      run("unshare", [`--mount=${mntns}`, "--propagation", "private", "nsenter", `--net=/run/netns/${netns}`, "sh", "-ec", HOST_SYS, "sh", path.join(home, "sys")]);

      const hostKey = path.join(home, "ssh_host_ed25519_key");
      known.push(`${address} ${keygen(hostKey, `berth-sim-${tag}-${name}`)}`);
      // PATH: this host's bin (berth, or nothing), node's directory, the system's. SHLVL=1 keeps bash from reading
      // root's ~/.bashrc for each command (it does when started by sshd at level 1): a fresh host has none.
      const pathVar = [path.join(home, "bin"), path.dirname(process.execPath), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"].join(":");
      const config = path.join(home, "sshd_config");
      fs.writeFileSync(config, [
        `ListenAddress ${address}:22`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no", // the keys live under /tmp, which is world-writable
        "PidFile none",
        "PrintMotd no",
        "PrintLastLog no",
        "MaxStartups 100",
        "MaxSessions 100",
        `SetEnv BERTH_ROOT=${root} BERTH_RUN=${runDir} PATH=${pathVar} SHLVL=1`,
        "LogLevel VERBOSE",
        "",
      ].join("\n"));
      const log = path.join(home, "sshd.log");
      const startSshd = () => {
        const [cmd, ...args] = inHost([SSHD, "-D", "-f", config, "-E", log]);
        const child = spawn(cmd, args, { stdio: "ignore" });
        sshds.set(name, child);
        owner.sshds.push({ pid: child.pid!, start: startTime(child.pid!) });
        record();
        return child;
      };
      let sshd = startSshd();

      const url = `ssh://root@${address}`;
      const host: SimHost = {
        name, netns, inHost, address, nic, bridge, root, runDir, url,
        target: { url, identityFile, sshOptions, root },
        exec: (cmd, args, input) => spawnSync("nsenter", inHost([cmd, ...args]).slice(1), { encoding: "utf8", input }),
        berth,
        ssh: (command, o = {}) => {
          // ssh hands the remote shell one string: each argument quoted, as a user's shell would have.
          const line = command.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
          const child = spawn("ssh", [...sshArgs, `root@${address}`, "--", line], { stdio: ["pipe", "pipe", "pipe"], timeout: o.timeoutMs });
          child.stdin!.end(o.input ?? "");
          return collect(child);
        },
        rekey: async () => {
          keygen(hostKey, `berth-sim-${tag}-${name}-new`);
          await stopProcess(sshd);
          sshd = startSshd();
          await waitListening(address, sshd, log);
        },
        // nsenter execs sshd, so the spawned pid is the listener; its children are the connections.
        connections: () => (sshd.pid === undefined ? [] : childrenOf(sshd.pid)),
        killConnections: () => {
          const pids = host.connections();
          for (const pid of pids) killQuietly(pid);
          return pids.length;
        },
      };
      hosts.push(host);
    }
    fs.writeFileSync(knownHosts, `${known.join("\n")}\n`);
    for (const h of hosts) await waitListening(h.address, sshds.get(h.name)!, path.join(dir, h.name, "sshd.log"));
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { hosts, dir, identityFile, knownHosts, sshOptions, sshArgs, subnet: `${ipv4(subnet.base)}${prefix}`, clientAddress: addressAt(1), addressAt, cleanup };
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Kills a started sshd and its connections (by pid), and waits for it to be gone. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once("exit", r));
  for (const kid of childrenOf(child.pid)) killQuietly(kid);
  killQuietly(child.pid);
  await gone;
}

async function waitListening(address: string, sshd: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await tcpOpen(address, 22))) {
    if (sshd.exitCode !== null || Date.now() > deadline) {
      const why = fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim() : "(no log)";
      throw new Error(`sim-hosts: sshd on ${address} ${sshd.exitCode !== null ? `exited ${sshd.exitCode}` : "did not listen in 10 s"}: ${why}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
