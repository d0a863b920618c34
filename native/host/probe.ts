// Read-only looks at host state through /proc, /sys and /run: cheaper than spawning a tool, and no side effects,
// so they sit outside the Host door.
import * as fs from "node:fs";
import * as os from "node:os";
import type { HostLinks } from "../network/options";
import { statFields } from "../lock";

export function linkExists(ifname: string): boolean {
  return fs.existsSync(`/sys/class/net/${ifname}`);
}

/** Whether this kernel can make 802.1q links: the module is loaded, or there to be loaded. */
export function vlanSupported(): boolean {
  return fs.existsSync("/proc/net/vlan") || fs.existsSync(`/lib/modules/${os.release()}/kernel/net/8021q`);
}

/** This host's interfaces, for resolving network specs. */
export const hostLinks: HostLinks = { linkExists, vlanSupported };

/** The bridge (or other master) a link is enslaved to, if any. */
export function linkMaster(ifname: string): string | undefined {
  try {
    return fs.readlinkSync(`/sys/class/net/${ifname}/master`).split("/").pop();
  } catch {
    return undefined;
  }
}

export function linkIsUp(ifname: string): boolean {
  try {
    const flags = parseInt(fs.readFileSync(`/sys/class/net/${ifname}/flags`, "utf8"), 16);
    return (flags & 0x1) !== 0; // IFF_UP
  } catch {
    return false;
  }
}

/** Where `ip netns add` bind-mounts a named network namespace. */
export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

export function netnsExists(name: string): boolean {
  return fs.existsSync(netnsPath(name));
}

export async function isMounted(target: string): Promise<boolean> {
  const mounts = await fs.promises.readFile("/proc/self/mounts", "utf8");
  // /proc/mounts escapes blanks as octal; berth's paths have none, so a plain compare is exact.
  return mounts.split("\n").some((line) => line.split(" ")[1] === target);
}

export function readSysctl(key: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/sys/${key.replace(/\./g, "/")}`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Whether a process is gone or only a zombie (what `runc state` calls "stopped"). */
export function processExited(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state === undefined || state === "Z" || state === "X";
}
