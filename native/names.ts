// Names of the things berth makes on the host. Everything starts with "berth"/"bt" so it can be told apart from
// what others made, and interface names stay within the kernel's 15 characters.
import { createHash } from "node:crypto";
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

function shortHash(domain: string, name: string): string {
  return createHash("sha256").update(`${domain}\0${name}`).digest("hex").slice(0, 10);
}

/** A short id of a berth root, for host-wide names that must tell roots apart (iptables tags). */
export const rootId = (root: string): string => createHash("sha256").update(path.resolve(root)).digest("hex").slice(0, 10);

/** runc container id, also the name of the container's network namespace. */
export const runcId = (container: string): string => `berth-${container}`;
export const netnsName = runcId;
export const bridgeName = (network: string): string => `bt${shortHash("bridge", network)}`;
export const vethName = (container: string): string => `bt${shortHash("veth", container)}`;
