// berth's on-disk layout. root holds what must survive a reboot (images, volumes, records); runDir holds what is
// host-wide and as volatile as the kernel objects it stands for (published-port claims).
import * as path from "node:path";
import { checkName } from "./names";

export interface Paths {
  root: string;
  /** OCI image layout: index.json + blobs/sha256/<hex>. */
  imageIndex: string;
  blobs: string;
  blob(digest: string): string;
  /** Ingest area for blobs and layers being written; same filesystem as their final place so rename is atomic. */
  ingest: string;
  layers: string;
  layer(diffId: string): string;
  containers: string;
  container(name: string): ContainerPaths;
  networks: string;
  network(name: string): { dir: string; record: string; ips: string };
  volumes: string;
  volume(name: string): { dir: string; record: string; data: string };
  /** The root's cross-process locks (native/lock.ts): images, networks, volumes, hosts (files), containers/<name>, supervisor. */
  locks: string;
  /** The volatile host-wide directory (BERTH_RUN). */
  runDir: string;
  portClaims: string;
  /** Host-wide claims on the subnets of berth roots' default networks. */
  defaultSubnetClaims: string;
}

export interface ContainerPaths {
  /** The OCI bundle directory (config.json + rootfs). */
  dir: string;
  record: string;
  config: string;
  rootfs: string;
  upper: string;
  work: string;
  log: string;
  /** Written by `runc run`: the host pid of the container's init. */
  pid: string;
  hosts: string;
  hostname: string;
  resolvConf: string;
}

/** A digest berth may name a file by (anything else may be a path: "sha256:../x"). */
export const isDigest = (d: unknown): d is string => typeof d === "string" && /^sha256:[0-9a-f]{64}$/.test(d);

/** A digest's hex, for a file name; throws on anything else (a path). */
export function hexOf(digest: string): string {
  if (!isDigest(digest)) throw new Error(`invalid digest "${digest}": expected sha256:<64 hex digits>`);
  return digest.slice(7);
}

/**
 * A container's files under a berth root (any root: port claims point into other roots too). Every name is
 * checked here, where it becomes a path, whoever passes it (the SDK, the plugin, `berth import`, a record).
 */
export function containerPaths(root: string, name: string): ContainerPaths {
  checkName("container", name);
  const dir = path.join(path.resolve(root), "containers", name);
  // Joined by hand: dir is normalized and name checked, and this runs for every look at a container (hot).
  const at = (file: string) => `${dir}/${file}`;
  return {
    dir,
    record: at("container.json"),
    config: at("config.json"),
    rootfs: at("rootfs"),
    upper: at("upper"),
    work: at("work"),
    log: at("container.log"),
    pid: at("init.pid"),
    hosts: at("hosts"),
    hostname: at("hostname"),
    resolvConf: at("resolv.conf"),
  };
}

export function layout(root: string, runDir: string): Paths {
  const r = path.resolve(root);
  const blobs = path.join(r, "blobs", "sha256");
  const layers = path.join(r, "layers");
  const containers = path.join(r, "containers");
  const networks = path.join(r, "networks");
  const volumes = path.join(r, "volumes");
  return {
    root: r,
    imageIndex: path.join(r, "index.json"),
    blobs,
    blob: (digest) => path.join(blobs, hexOf(digest)),
    ingest: path.join(r, "ingest"),
    layers,
    layer: (diffId) => path.join(layers, hexOf(diffId)),
    containers,
    container: (name) => containerPaths(r, name),
    networks,
    network(name) {
      checkName("network", name);
      const dir = path.join(networks, name);
      return { dir, record: path.join(dir, "network.json"), ips: path.join(dir, "ips") };
    },
    volumes,
    volume(name) {
      checkName("volume", name);
      const dir = path.join(volumes, name);
      return { dir, record: path.join(dir, "volume.json"), data: path.join(dir, "_data") };
    },
    locks: path.join(r, "locks"),
    runDir: path.resolve(runDir),
    portClaims: path.join(path.resolve(runDir), "ports"),
    defaultSubnetClaims: path.join(path.resolve(runDir), "default-subnets"),
  };
}
