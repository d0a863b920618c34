// The container options beyond the process itself, applied to the base OCI config: capabilities, privileged
// mode, read-only root, tmpfs mounts, devices, ulimits, sysctls, shared namespaces and resource limits.
import * as fs from "node:fs";
import { CAPABILITIES } from "./capabilities";
import type { ContainerRuntimeSpec } from "../runtime";
import { DEFAULT_CAPABILITIES, seccompProfile, type OciMount, type OciSpec } from "./spec";
import { deviceNumbers, ociResources, type OciResources } from "./limits";

interface OciDevice {
  path: string;
  type: string;
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** The OCI config with the fields berth's base config leaves out. */
export type FullOciSpec = OciSpec & {
  process: OciSpec["process"] & { rlimits?: Array<{ type: string; soft: number; hard: number }> };
  linux: OciSpec["linux"] & {
    resources: OciSpec["linux"]["resources"] & OciResources & { devices: Array<Record<string, unknown>> };
    devices?: OciDevice[];
    sysctl?: Record<string, string>;
    cgroupsPath?: string;
  };
};

const capName = (c: string): string => `CAP_${c.toUpperCase().replace(/^CAP_/, "")}`;
let hostCapabilities: string[] | undefined;

/**
 * Docker's "all" (privileged, capAdd ALL): every capability in berth's own bounding set, as the daemon's: one it
 * lacks (a host that runs berth in a confined namespace) cannot be granted, and runc would fail on it.
 */
function allCapabilities(): string[] {
  if (!hostCapabilities) {
    const bounding = BigInt(`0x${/^CapBnd:\s+(\w+)/m.exec(fs.readFileSync("/proc/self/status", "utf8"))![1]}`);
    // CAPABILITIES is in the kernel's bit order.
    hostCapabilities = CAPABILITIES.filter((_, bit) => (bounding >> BigInt(bit)) & 1n).map(capName);
  }
  return hostCapabilities;
}

/** Docker's rule: start from the defaults (or all with "ALL"), add capAdd, then drop capDrop ("ALL" drops all). */
export function capabilities(o: Pick<ContainerRuntimeSpec, "capAdd" | "capDrop" | "privileged">): string[] {
  if (o.privileged) return allCapabilities();
  const isAll = (c: string) => c.toUpperCase() === "ALL";
  const caps = new Set(o.capAdd?.some(isAll) ? allCapabilities() : DEFAULT_CAPABILITIES);
  for (const c of o.capAdd ?? []) if (!isAll(c)) caps.add(capName(c));
  if (o.capDrop?.some(isAll)) caps.clear();
  for (const c of o.capDrop ?? []) caps.delete(capName(c));
  return [...caps];
}

/** "/dev/sda:/dev/xvda:rwm" → its parts, with Docker's defaults (same path, "rwm"). */
function parseDevice(d: string): { host: string; inner: string; access: string } {
  const [host, ...rest] = d.split(":");
  const inner = rest[0]?.startsWith("/") ? rest.shift()! : host;
  return { host, inner, access: rest[0] ?? "rwm" };
}

/** Devices that are not there, in Docker's words. */
export function deviceProblems(devices: string[] = []): Array<{ field: string; reason: string }> {
  return devices.flatMap((d, i) => {
    const { host } = parseDevice(d);
    const st = fs.statSync(host, { throwIfNoEntry: false });
    if (st?.isCharacterDevice() || st?.isBlockDevice()) return [];
    const why = st ? "not a device node" : "no such file or directory";
    const reason = `error gathering device information while adding custom device "${host}": ${why}`;
    return [{ field: `devices[${i}]`, reason }];
  });
}

function tmpfsMount(t: NonNullable<ContainerRuntimeSpec["tmpfs"]>[number]): OciMount {
  const options = ["nosuid", "nodev", "noexec", ...(t.size ? [`size=${t.size}`] : []), ...(t.mode ? [`mode=${t.mode}`] : [])];
  return { destination: t.target, type: "tmpfs", source: "tmpfs", options };
}

/**
 * Applies the options to a base config. `shared` maps "pid" / "ipc" / "uts" / "network" to a namespace path to
 * join, or to "host" for the host's own (the namespace is then left out).
 */
export function applyOptions(base: OciSpec, o: ContainerRuntimeSpec, shared: Record<string, string>, cgroupsPath: string): FullOciSpec {
  const config = base as FullOciSpec;
  const caps = capabilities(o);
  config.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
  // Docker's rule: the profile follows the capabilities (capAdd SYS_ADMIN allows mount…); privileged runs without one.
  if (o.privileged) delete config.linux.seccomp;
  else config.linux.seccomp = seccompProfile(caps);
  config.root.readonly = o.readOnly ?? false;
  config.mounts.push(...(o.tmpfs ?? []).map(tmpfsMount));
  // The host's UTS namespace has the host's name: runc refuses to set one there.
  if (shared.uts === "host") delete (config as Partial<OciSpec>).hostname;
  config.linux.namespaces = config.linux.namespaces.flatMap((ns) => {
    const to = shared[ns.type];
    if (to === "host") return [];
    return [to ? { type: ns.type, path: to } : ns];
  });
  if (o.sysctls) config.linux.sysctl = o.sysctls;
  if (o.ulimits) {
    config.process.rlimits = o.ulimits.map((u) => ({ type: `RLIMIT_${u.name.toUpperCase()}`, soft: u.soft, hard: u.hard }));
  }
  config.linux.cgroupsPath = cgroupsPath;
  config.linux.resources = { ...config.linux.resources, ...ociResources(o.limits) };
  if (o.privileged) {
    config.process.noNewPrivileges = false;
    config.linux.maskedPaths = [];
    config.linux.readonlyPaths = [];
    config.linux.resources.devices = [{ allow: true, access: "rwm" }];
    for (const m of config.mounts) {
      if (m.destination === "/sys" || m.destination === "/sys/fs/cgroup") m.options = m.options?.filter((x) => x !== "ro");
    }
  }
  const devices = (o.devices ?? []).map(parseDevice).map(({ host, inner, access }) => {
    const st = fs.statSync(host);
    return { dev: { path: inner, type: st.isBlockDevice() ? "b" : "c", ...deviceNumbers(st.rdev), fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid }, access };
  });
  if (devices.length > 0) {
    config.linux.devices = devices.map((d) => d.dev);
    config.linux.resources.devices.push(
      ...devices.map(({ dev, access }) => ({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access })),
    );
  }
  return config;
}
