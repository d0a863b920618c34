// /etc/hosts, /etc/hostname and /etc/resolv.conf of a container: files berth writes per container and
// bind-mounts over the image's.
import * as fs from "node:fs";
import type { ContainerPaths } from "../paths";
import type { Bind } from "./spec";

/** The host's resolv.conf, unless it points at a local resolver (127.x) the container could not reach. */
async function resolvConf(): Promise<string> {
  const host = await fs.promises.readFile("/etc/resolv.conf", "utf8").catch(() => "");
  return /^\s*nameserver\s+127\./m.test(host) ? "" : host;
}

export async function writeEtcFiles(p: ContainerPaths, hostname: string, ip: string | undefined): Promise<Bind[]> {
  const hosts = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    ...(ip ? [`${ip}\t${hostname}`] : []),
    "",
  ].join("\n");
  await Promise.all([
    fs.promises.writeFile(p.hosts, hosts),
    fs.promises.writeFile(p.hostname, `${hostname}\n`),
    resolvConf().then((text) => fs.promises.writeFile(p.resolvConf, text)),
  ]);
  return [
    { source: p.hosts, destination: "/etc/hosts" },
    { source: p.hostname, destination: "/etc/hostname" },
    { source: p.resolvConf, destination: "/etc/resolv.conf" },
  ];
}
