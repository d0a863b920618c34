// Helpers for tests that run berth on this host: the CLI as a user runs it, and what berth left on the host.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { freePort as kernelFreePort } from "../../native/network/portmap";
import { supervisorPid } from "../../native/supervise/launch";
import { createNativeRuntime, type Runtime } from "../../native";
import { containerPaths } from "../../native/paths";
import { runcArgs, runcRefOf } from "../../native/container/runc-root";
import type { ContainerRecord } from "../../native/container/record";

export const REPO = path.resolve(__dirname, "../..");
export const QUICKSTART = path.join(REPO, "examples/quickstart");

/** The busybox rootfs tarball the quick start imports, made once. */
export function ensureQuickstartRootfs(): void {
  const tar = path.join(QUICKSTART, "busybox-rootfs.tar");
  if (!fs.existsSync(tar)) execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function berth(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return collect(startBerth(args, env));
}

/** A child's exit code and whole output. */
export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

/** Starts the CLI in its own process group, so a test can kill it and the program it runs, and nothing else. */
export function startBerth(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(path.join(REPO, "bin/berth"), args, { env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
}

/** A TCP port free on 127.0.0.1 now. */
export const freePort = (): Promise<number> => kernelFreePort("127.0.0.1");

export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

/** How a command line runs on the host being looked at: as is on this machine, or wrapped (a simulated host). */
export type HostWrap = (argv: string[]) => string[];

const lines = (wrap: HostWrap, argv: string[]) => {
  const [cmd, ...args] = wrap(argv);
  try {
    // stderr not passed on: `runc list` says "load container X: container does not exist" of a container another
    // process is making or removing at that moment (its directory without its state.json), and lists it not.
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n").filter(Boolean);
  } catch {
    return [];
  }
};

/**
 * runc's command line for container `name` of berth root `root`: the state root its record names (runc-root.ts),
 * then args. What a test runs through runc itself goes there, as berth's own calls do.
 */
export function runcAt(root: string, name: string, args: string[]): string[] {
  const rec = JSON.parse(fs.readFileSync(containerPaths(root, name).record, "utf8")) as ContainerRecord;
  return runcArgs(runcRefOf(rec), args);
}

/**
 * runc's default state root, every berth root's on tmpfs and the default BERTH_RUN's (a root whose locks are on disk:
 * runc-root.ts), as one shell word list.
 */
const RUNC_ROOTS = "/run/runc /dev/shm/berth-locks-*/runc /run/berth/runc";

/** The ids of berth's runc containers on the host, in every state root berth uses. */
export const runcIds = (wrap: HostWrap = (argv) => argv): string[] =>
  lines(wrap, ["sh", "-c", `for r in ${RUNC_ROOTS}; do [ -d "$r" ] && runc --root "$r" list -q; done; true`]).filter((n) => /^(berth|bt)/.test(n));

/** Every berth object on the host, by kind (netns, links, mounts, iptables rules, runc containers). */
export function hostObjects(wrap: HostWrap = (argv) => argv): Record<string, string[]> {
  return {
    netns: lines(wrap, ["ip", "netns", "list"]).map((l) => l.split(" ")[0]).filter((n) => /^(berth|bt)/.test(n)),
    links: lines(wrap, ["ip", "-o", "link", "show"]).map((l) => l.split(": ")[1]?.split("@")[0] ?? "").filter((n) => /^(berth|bt)/.test(n)),
    mounts: lines(wrap, ["cat", "/proc/mounts"]).filter((l) => l.includes("berth")).map((l) => l.split(" ")[1]),
    iptables: lines(wrap, ["iptables-save"]).filter((l) => /berth/i.test(l)),
    runc: runcIds(wrap),
  };
}

/**
 * The host objects that belong to one stack: those naming one of its resources (or a bridge of its networks) or
 * lying under its berth root. Other berth users on this host (tests run in parallel) are not counted.
 */
export function stackObjects(state: { resources?: { outputs?: Record<string, unknown> }[] }, root: string): Record<string, string[]> {
  const needles = [root];
  for (const r of state.resources ?? []) {
    for (const key of ["name", "bridge"]) if (typeof r.outputs?.[key] === "string") needles.push(r.outputs[key] as string);
  }
  const objects = hostObjects();
  return Object.fromEntries(Object.entries(objects).map(([kind, items]) => [kind, items.filter((i) => needles.some((n) => i.includes(n)))]));
}

/** What appeared since `before` (objects other berth users on this host had then are not counted). */
export function leakedSince(before: Record<string, string[]>, wrap?: HostWrap): Record<string, string[]> {
  const now = hostObjects(wrap);
  const leaks: Record<string, string[]> = {};
  for (const [kind, items] of Object.entries(now)) {
    const extra = items.filter((i) => !before[kind].includes(i));
    if (extra.length > 0) leaks[kind] = extra;
  }
  return leaks;
}

export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000, everyMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function onPath(bin: string): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A `pulumi` binary (with pulumi-language-nodejs beside it) on PATH; CI has none, and tests needing it skip. */
export const PULUMI = onPath("pulumi");

/**
 * The Pulumi CLI on a scratch file backend and home, with berth's plugin (bin/) on PATH and `berthRoot` as the
 * host state: `run(cwd, stack, ...args)` runs one non-interactive command on that stack.
 */
export function pulumiCli(scratch: string, berthRoot: string) {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.join(REPO, "bin")}:${process.env.PATH}`,
    PULUMI_HOME: path.join(scratch, "home"),
    PULUMI_BACKEND_URL: `file://${scratch}`,
    PULUMI_CONFIG_PASSPHRASE: "berth-test",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    BERTH_ROOT: berthRoot,
  };
  const run = (cwd: string, stack: string, ...args: string[]) =>
    new Promise<CliResult>((resolve) => {
      const child = spawn(PULUMI!, [...args, "--stack", stack, "--non-interactive", "--cwd", cwd], { env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  return { env, run };
}

/** Stops the supervisor a test's berth root started (it would exit 5 s after its last container anyway). */
export function stopSupervisor(root: string): void {
  const pid = supervisorPid(root);
  if (pid) process.kill(pid, "SIGTERM");
}

/**
 * Removes a root's tmpfs locks directory (native/lock-dir.ts), once the root's processes are gone. For a root made
 * from another mount namespace (a simulated host, `ip netns exec`): the sweep after the last test file judges only
 * directories named from its own; and for one whose directory holds what no sweep can judge dead.
 */
export function removeLocksDir(root: string): void {
  let target: string;
  try {
    target = fs.readlinkSync(path.join(root, "locks"));
  } catch {
    return; // no root, or its locks on its disk
  }
  if (target.startsWith("/dev/shm/berth-locks-")) fs.rmSync(target, { recursive: true, force: true });
}

/**
 * Tears down, through berth, whatever a test's berth root still holds — every container, registry, network and
 * volume — and stops its supervisor, however the test's destroy went (it failed, or the run was interrupted before
 * it). Call it before removing the root's directory: once that is gone, what was left (a running container, its
 * netns, bridge and iptables rules) can no longer be found through berth.
 */
export async function clearRoot(root: string, runDir?: string): Promise<void> {
  if (!fs.existsSync(root)) return;
  const rt = createNativeRuntime({ root, runDir });
  const each = async (kind: keyof Pick<Runtime, "containers" | "registries" | "networks" | "volumes">, remove: (name: string) => Promise<void>) => {
    for (const name of await rt[kind].list().catch(() => [])) {
      await remove(name).catch((e: Error) => console.warn(`clearRoot ${root}: ${kind} ${name}: ${e.message}`));
    }
  };
  await each("containers", (n) => rt.containers.remove(n, { graceSeconds: 0 }));
  await each("registries", (n) => rt.registries.remove(n));
  await each("networks", (n) => rt.networks.remove(n));
  await each("volumes", (n) => rt.volumes.remove(n));
  const pid = supervisorPid(root);
  if (pid === undefined) return;
  process.kill(pid, "SIGTERM");
  // Gone before the directory it writes in is removed.
  await waitFor(`supervisor ${pid} of ${root} to exit`, () => (fs.existsSync(`/proc/${pid}`) ? undefined : true), 10_000, 20).catch(() => undefined);
}

/** A fresh berth root under /tmp with the busybox rootfs imported as "bb"; remove() clears it (clearRoot) and deletes it. */
export async function busyboxRoot(prefix: string): Promise<{ tmp: string; root: string; rt: Runtime; remove(): Promise<void> }> {
  const tmp = fs.mkdtempSync(path.join("/tmp", prefix));
  const root = path.join(tmp, "root");
  const rt = createNativeRuntime({ root });
  const tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
  const remove = async () => {
    await clearRoot(root);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  return { tmp, root, rt, remove };
}

/** Destroys each stack of a test program, removes its config and state files, then empties and removes the root. */
export async function removeStacks(program: string, project: string, stacks: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const root = env.BERTH_ROOT!;
  for (const s of stacks) {
    await berth(["destroy", "--yes", program, "--stack", s], env);
    const state = path.join(program, ".pulumi/stacks", project, `${s}.json`);
    for (const f of [path.join(program, `Pulumi.${s}.yaml`), state, `${state}.bak`]) fs.rmSync(f, { force: true });
  }
  await clearRoot(root);
  fs.rmSync(root, { recursive: true, force: true });
}

/** A temp dir with a root (BERTH_ROOT/BERTH_RUN below it, for CLI runs) holding `busybox:latest`, for build tests. */
export async function busyboxBuildRoot(): Promise<{ root: string; env: NodeJS.ProcessEnv; rt: Runtime }> {
  const root = fs.mkdtempSync("/tmp/berth-test-");
  const env = { BERTH_ROOT: path.join(root, "state"), BERTH_RUN: path.join(root, "run") };
  const tar = path.join(root, "busybox.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
  const rt = createNativeRuntime({ root: env.BERTH_ROOT, runDir: env.BERTH_RUN });
  await rt.images.importRootfs({ ref: "busybox:latest", tarball: tar, config: {} });
  return { root, env, rt };
}

/**
 * Arguments to `ip` that run cmd in the named network namespace as `ip netns exec` does, with the cgroup
 * hierarchies mounted again: `ip netns exec` mounts a fresh /sys (so /sys/class/net lists the namespace's
 * interfaces), which hides the cgroup mounts below /sys/fs/cgroup, and runc then fails with "no cgroup mount found
 * in mountinfo". Mounting a hierarchy again attaches to the same one, so runc's cgroups there are the host's.
 */
export function inNetns(netns: string, cmd: string[]): string[] {
  const script = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" "))
    .filter((f) => f[3] === "/" && (f[4] === "/sys/fs/cgroup" || f[4]?.startsWith("/sys/fs/cgroup/")))
    .map((f) => {
      const [fstype, source, options] = f.slice(f.indexOf("-") + 1);
      return `mkdir -p ${f[4]} && mount -t ${fstype} -o ${options} ${source} ${f[4]}`;
    });
  return ["netns", "exec", netns, "sh", "-c", [...script, 'exec "$@"'].join(" && "), "sh", ...cmd];
}
