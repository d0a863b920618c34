// Docker's default seccomp profile on real containers: a user namespace (a syscall Docker's profile refuses and the
// kernel itself would allow an unprivileged process) fails with EPERM in the command and in `exec`; privileged runs
// unfiltered; capAdd SYS_ADMIN gets what Docker's profile then allows (unshare, mount).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { execFileSync, spawnSync } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type Runtime } from "../../native";
import { supervisorPid } from "../../native/supervise/launch";
import { runcId } from "../../native/names";
import { containerPaths } from "../../native/paths";
import { DEFAULT_CAPABILITIES, seccompProfile, type OciSeccomp } from "../../native/container/spec";
import { REPO, runcAt, waitFor } from "./helpers";

const tag = randomBytes(3).toString("hex");
const name = (what: string) => `ts${tag}${what}`;
let tmp: string;
let root: string;
let rt: Runtime;
const made: string[] = [];

const exec = (c: string, ...cmd: string[]) => spawnSync("runc", runcAt(root, c, ["exec", runcId(root, c), ...cmd]), { encoding: "utf8" });
const allowed = (p: OciSeccomp, syscall: string) => p.syscalls.some((r) => r.action === "SCMP_ACT_ALLOW" && !r.args && r.names.includes(syscall));

// The command tries a user namespace itself, then stays up for `exec`.
async function run(what: string, extra: Partial<ContainerSpec> = {}): Promise<string> {
  const n = name(what);
  made.push(n);
  await rt.containers.run({ name: n, image: "bb", command: ["sh", "-c", "unshare -U true; echo rc=$?; exec sleep 600"], stopTimeout: 1, ...extra });
  return n;
}

const log = (c: string): Promise<string> =>
  waitFor(`${c}'s first line`, () => {
    const text = fs.readFileSync(path.join(root, "containers", c, "container.log"), "utf8");
    return /rc=\d+/.test(text) ? text : undefined;
  });

/** The Seccomp mode of the container's first process as the kernel reports it (0 none, 2 filter). */
const seccompMode = (c: string): string => {
  const pid = JSON.parse(execFileSync("runc", runcAt(root, c, ["state", runcId(root, c)]), { encoding: "utf8" })).pid as number;
  return /Seccomp:\s+(\d)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1];
};

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-seccomp-");
  root = path.join(tmp, "root");
  const tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  rt = createNativeRuntime({ root });
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
});

afterAll(async () => {
  for (const c of made) await rt.containers.remove(c, { graceSeconds: 0 }).catch(() => undefined);
  const pid = supervisorPid(root);
  if (pid) process.kill(pid, "SIGTERM");
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("the profile, resolved as Docker's setupSeccomp", () => {
  it("allows the default set, refuses namespaces and mounts, and lets capabilities enable their entries", () => {
    const p = seccompProfile(DEFAULT_CAPABILITIES);
    expect(p).toMatchObject({ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1 });
    // Docker's three, less x32 on a kernel built without it (this machine's).
    const config = fs.existsSync("/proc/config.gz") ? gunzipSync(fs.readFileSync("/proc/config.gz")).toString() : "CONFIG_X86_X32_ABI=y";
    const x32 = /^CONFIG_X86_X32(_ABI)?=y$/m.test(config) ? ["SCMP_ARCH_X32"] : [];
    expect(p.architectures).toEqual(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", ...x32]);
    for (const s of ["read", "execve", "chroot", "arch_prctl", "ptrace"]) expect(allowed(p, s), s).toBe(true);
    for (const s of ["unshare", "mount", "setns", "bpf", "perf_event_open", "keyctl", "reboot", "clone3"]) expect(allowed(p, s), s).toBe(false);
    // clone only without namespace flags; clone3 answers ENOSYS so libcs fall back to it.
    expect(p.syscalls.find((r) => r.names.includes("clone"))?.args).toEqual([{ index: 0, value: 0x7e020000, op: "SCMP_CMP_MASKED_EQ" }]);
    expect(p.syscalls.find((r) => r.names.includes("clone3"))).toMatchObject({ action: "SCMP_ACT_ERRNO", errnoRet: 38 });

    const admin = seccompProfile([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]);
    for (const s of ["unshare", "mount", "setns", "clone", "clone3"]) expect(allowed(admin, s), s).toBe(true);
    expect(admin.syscalls.some((r) => r.names.includes("clone") && r.args)).toBe(false);
    expect(allowed(seccompProfile([...DEFAULT_CAPABILITIES, "CAP_PERFMON"]), "perf_event_open")).toBe(true);
    // Capabilities dropped take their entries with them (chroot needs CAP_SYS_CHROOT).
    expect(allowed(seccompProfile(["CAP_CHOWN"]), "chroot")).toBe(false);
  });
});

describe("containers", () => {
  it("refuses a user namespace with EPERM in the command and in exec; ordinary work runs", async () => {
    const c = await run("default");
    expect(await log(c)).toMatch(/unshare.*Operation not permitted[\s\S]*rc=1/);
    expect(seccompMode(c)).toBe("2");
    const r = exec(c, "unshare", "-U", "true");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("Operation not permitted");
    expect(exec(c, "sh", "-c", "echo ok | cat; ps >/dev/null; sleep 0.01; chroot / true && echo chroot").stdout).toBe("ok\nchroot\n");
    const config = JSON.parse(fs.readFileSync(containerPaths(root, c).config, "utf8"));
    expect(config.linux.seccomp.defaultAction).toBe("SCMP_ACT_ERRNO");
  });

  it("runs a privileged container with no profile, as Docker", async () => {
    const c = await run("priv", { privileged: true });
    expect(await log(c)).toContain("rc=0");
    expect(seccompMode(c)).toBe("0");
    expect(exec(c, "unshare", "-U", "true").status).toBe(0);
    expect(JSON.parse(fs.readFileSync(containerPaths(root, c).config, "utf8")).linux.seccomp).toBeUndefined();
    // Every capability berth holds, and no more: runc cannot grant one outside its own bounding set.
    const bounding = (status: string) => /^CapBnd:\s+(\w+)/m.exec(status)![1];
    expect(bounding(exec(c, "cat", "/proc/1/status").stdout)).toBe(bounding(fs.readFileSync("/proc/self/status", "utf8")));
  });

  it("gives capAdd SYS_ADMIN what Docker's profile then allows: unshare, mount", async () => {
    const c = await run("admin", { capAdd: ["SYS_ADMIN"] });
    expect(await log(c)).toContain("rc=0");
    expect(seccompMode(c)).toBe("2");
    expect(exec(c, "unshare", "-U", "true").status).toBe(0);
    const m = exec(c, "sh", "-c", "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && grep -c ' /mnt/t ' /proc/mounts");
    expect(m.stderr).toBe("");
    expect(m.stdout.trim()).toBe("1");
  });
});
