// /etc/hosts, /etc/hostname and /etc/resolv.conf of a container: files berth writes per container and
// bind-mounts over the image's (the content comes from the network side). A container sharing another's network
// namespace shares its hosts and resolv.conf files too, as Docker does.
import * as fs from "node:fs";
import type { ContainerPaths } from "../paths";
import type { Bind } from "./spec";

/** Synchronous writes: a few hundred bytes each, where fs.promises costs a thread-pool round trip per call. */
export function writeEtcFiles(
  p: ContainerPaths,
  hostname: string,
  files: { hosts: string; resolvConf: string },
  joined?: { hosts: string; resolvConf: string },
): Bind[] {
  // A joined container's own hosts and resolv.conf would be read by nobody: every file is an inode made.
  if (!joined) fs.writeFileSync(p.hosts, files.hosts);
  fs.writeFileSync(p.hostname, `${hostname}\n`);
  if (!joined) fs.writeFileSync(p.resolvConf, files.resolvConf);
  return [
    { source: joined?.hosts ?? p.hosts, destination: "/etc/hosts" },
    { source: p.hostname, destination: "/etc/hostname" },
    { source: joined?.resolvConf ?? p.resolvConf, destination: "/etc/resolv.conf" },
  ];
}
