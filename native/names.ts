// Names of the things berth makes on the host. Everything starts with "berth"/"bt" so it can be told apart from
// what others made, and interface names stay within the kernel's 15 characters.
import * as path from "node:path";

export const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

type Kind = "container" | "network" | "volume" | "registry";

export function checkName(kind: Kind, name: string): void {
  if (!NAME.test(name)) {
    throw new Error(
      `invalid ${kind} name "${name}": use 1-63 characters from [a-zA-Z0-9_.-], starting with a letter or digit`,
    );
  }
}

/** sha256, loaded on first use: the supervisor imports this module but hashes nothing (node:crypto costs ~10 ms of its start). */
const sha256 = () => (require("node:crypto") as typeof import("node:crypto")).createHash("sha256");

function shortHash(domain: string, name: string): string {
  return sha256().update(`${domain}\0${name}`).digest("hex").slice(0, 10);
}

/** A short id of a berth root, for host-wide names that must tell roots apart (runc ids, iptables tags). */
export const rootId = (root: string): string => sha256().update(path.resolve(root)).digest("hex").slice(0, 10);

/**
 * The runc id of a container a root makes now; also the name of its cgroup and network namespace. All three are
 * host-wide (runc's state, /sys/fs/cgroup, /run/netns), so the root's id is in it: two roots on one machine may
 * both have a "web". Kept in the container's record, which is what every later use reads (runcIdOf).
 */
export const runcId = (root: string, container: string): string => `berth-${rootId(root)}-${container}`;

/** What a container record says of its host-wide names. */
interface Named {
  spec: { name: string };
  /** Absent in records made before the root was part of the id. */
  runcId?: string;
}
/** The container's runc id, as it was made: berth-<name> before the root was part of it. */
export const runcIdOf = (rec: Named): string => rec.runcId ?? `berth-${rec.spec.name}`;
/** What the host ends of the container's interfaces are named after: the runc id, or the name alone before. */
export const hostKeyOf = (rec: Named): string => rec.runcId ?? rec.spec.name;

/** A bridge's name from its key: the root and network name (the network's name alone before). */
export const bridgeName = (key: string): string => `bt${shortHash("bridge", key)}`;
export const vethName = (key: string): string => `bt${shortHash("veth", key)}`;
