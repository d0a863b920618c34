// The seam between berth's provider and whatever runs containers. The native runtime (this folder) implements it
// on the host kernel; a Docker Engine backend can implement it later and pass the same conformance tests.
// Nothing here knows about Pulumi, URNs or state files.
import type { ContainerLifecycle, ContainerRuntimeSpec, ContainerState, Healthcheck } from "./runtime-lifecycle";

export * from "./runtime-lifecycle";
//
// Every create is an "ensure": called again with the same spec it finishes what a crash left half-done and
// changes nothing that is already right. Every remove succeeds when the object is already gone.
import type { ContainerNetworking, NetworkDriver, NetworkOptions } from "./network/types";
export type * from "./network/types";

/** What an image says about how to run it (the subset of the OCI image config berth uses). */
export interface ImageConfig {
  cmd?: string[];
  entrypoint?: string[];
  /** KEY=VALUE pairs, as in the OCI config. */
  env?: string[];
  workdir?: string;
  user?: string;
  /** "80/tcp", "53/udp". */
  exposedPorts?: string[];
  /** VOLUME paths: each gets an anonymous volume, seeded with what the image has there. */
  volumes?: string[];
  healthcheck?: Healthcheck;
  /** STOPSIGNAL: what stopping a container sends when the container names no stopSignal (as given: untrusted). */
  stopSignal?: string;
}

export interface ImageInfo {
  /** The name the image is stored under, e.g. "quickstart-base:latest". */
  ref: string;
  /** "sha256:<hex>" of the config blob: the image's identity. */
  id: string;
  /** "sha256:<hex>" of the manifest blob. */
  manifestDigest: string;
  /** Uncompressed layer digests (diff ids), bottom first. */
  layers: string[];
  /** Bytes of all layer blobs. */
  size: number;
  config: ImageConfig;
  /** When the image was made, when its config says (berth's own images leave it out, to stay reproducible). */
  created?: string;
}

export interface ImportRootfsRequest {
  ref: string;
  /** A tar of a root filesystem, imported as the image's single layer. */
  tarball: string;
  config: ImageConfig;
}

export interface NetworkSpec extends NetworkOptions {
  /** berth's name for the network; host objects derive their names from it. */
  name: string;
  /** IPv4 CIDR in network form, e.g. "10.89.0.0/24". */
  subnet: string;
  /** Defaults to the first host address of the subnet. */
  gateway?: string;
  /** Masquerade traffic leaving the subnet for other interfaces. */
  nat: boolean;
}

export interface NetworkInfo {
  name: string;
  driver: NetworkDriver;
  /** Linux bridge device, "bt…" (at most 15 characters); for macvlan, the parent interface. */
  bridge: string;
  subnet: string;
  gateway: string;
  nat: boolean;
  /** What is missing or wrong on the host compared to the spec it was made from; empty when healthy. */
  faults: string[];
}

export interface VolumeSpec {
  name: string;
  labels?: Record<string, string>;
  /** A host directory that holds the data instead of berth's (Docker's local driver with o=bind); kept on remove. */
  device?: string;
}

export interface VolumeInfo {
  name: string;
  /** Host directory holding the data; mounted into containers. */
  mountpoint: string;
  labels: Record<string, string>;
  faults: string[];
}

export interface PortMapping {
  /** Host address to listen on, e.g. "127.0.0.1"; "0.0.0.0" for every address. */
  hostIp: string;
  /** 0: a free port picked when the container is made (reported in ContainerInfo.ports). */
  hostPort: number;
  containerPort: number;
  protocol: "tcp" | "udp";
}

export interface VolumeMount {
  /** A volume created with volumes.create. */
  volume: string;
  /** Absolute path inside the container. */
  target: string;
  readOnly?: boolean;
}

export interface ContainerSpec extends ContainerNetworking, ContainerRuntimeSpec {
  /** berth's name for the container; the runc id is "berth-<name>". */
  name: string;
  /** An image ref or id known to images.inspect. */
  image: string;
  /** Override the image's ENTRYPOINT / CMD, with Docker's rules for combining them. */
  entrypoint?: string[];
  command?: string[];
  /** Added to (and overriding) the image's env. */
  env?: Record<string, string>;
  workdir?: string;
  /** Defaults to the container name, cut to 63 characters. */
  hostname?: string;
  /** The network to attach to (one in this slice); none means a loopback-only namespace. */
  network?: string;
  ports?: PortMapping[];
  mounts?: VolumeMount[];
}

export type ContainerStatus = "running" | "stopped" | "missing";

export interface ContainerInfo {
  name: string;
  /** runc container id, "berth-<root id>-<name>" ("berth-<name>" if made before roots were told apart). */
  id: string;
  status: ContainerStatus;
  /** Host pid of the container's init while running. */
  pid?: number;
  /** The container's address on its (first) network. */
  ip?: string;
  /** Address on each network it is attached to. */
  ips?: Record<string, string>;
  /** The published ports, with the host ports picked for those asked as 0 (and for publishAll). */
  ports?: PortMapping[];
  imageId: string;
  /** Host objects the container should have but doesn't (netns, veth, mount, port rule); empty when healthy. */
  faults: string[];
  /** What the supervisor saw: exit code, restarts, health. */
  state?: ContainerState;
  /** Frozen by pause (status stays "running"). */
  paused?: boolean;
  /** What it was made from, and when (inspect). */
  spec?: ContainerSpec;
  createdAt?: string;
}

export interface BuildImageRequest {
  ref: string;
  /** Build context directory. */
  context: string;
  /** Dockerfile path, relative to the context unless absolute (default "Dockerfile"). */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  /** Build secrets by id (RUN --mount=type=secret). */
  secrets?: Record<string, string>;
  /**
   * Credentials for the registry of an image the build pulls (FROM, COPY --from, RUN --mount=from), asked only
   * when that registry wants some; without it, the docker login of the runtime's host. The remote runtime passes
   * its caller's (as `docker -H ssh://… build` builds with the client's login), for that call only.
   */
  registryAuth?: (registry: string) => Promise<RegistryAccess["auth"]>;
  /** Progress lines, BuildKit's plain format. */
  log?: (line: string) => void;
}

export interface BuildCachePruneOptions {
  /** Every entry, not only those no image uses. */
  all?: boolean;
  /** Only entries not used for longer than this (ms). */
  unusedForMs?: number;
  /** Keep the most recently used entries up to this many bytes. */
  keepBytes?: number;
}

export interface BuildCachePruneResult {
  /** What went: "layer sha256:…" and "cache mount ID". */
  deleted: string[];
  reclaimedBytes: number;
}

export interface BuildImageResult {
  info: ImageInfo;
  /** Layer-making instructions that ran, and those answered by the build cache. */
  ran: string[];
  cached: string[];
}

/** How to reach a registry. */
export interface RegistryAccess {
  auth?: { username: string; password: string };
  /** Plain HTTP (default: HTTPS, loopback registries may answer plain HTTP). */
  insecure?: boolean;
  /** PEM file of a CA to trust, for a registry with a self-signed certificate. */
  ca?: string;
}

export interface ImageStore {
  importRootfs(req: ImportRootfsRequest): Promise<ImageInfo>;
  /** A `docker save` archive or an OCI image layout (directory or tar), stored as ref. */
  importArchive(req: { ref: string; path: string }): Promise<ImageInfo>;
  build(req: BuildImageRequest): Promise<BuildImageResult>;
  /**
   * Pulls "host[:port]/name[:tag|@digest]" and stores it under `localRef` (default: the ref without its digest),
   * so pulling for one name never touches an image stored under another.
   */
  pull(ref: string, access?: RegistryAccess, localRef?: string): Promise<ImageInfo>;
  /** Pushes a stored image to a registry ref; returns "host/name@sha256:…". */
  push(source: string, target: string, access?: RegistryAccess): Promise<string>;
  /** The manifest digest a registry ref points at now (read only). */
  resolve(ref: string, access?: RegistryAccess): Promise<string>;
  /** Writes images to a tar that `docker load` reads (and that is an OCI image layout too). */
  save(refs: string[], file: string): Promise<void>;
  /** Imports every image of a `docker save` archive or OCI layout tar under the names it holds (`docker load`). */
  load(file: string): Promise<ImageInfo[]>;
  tag(source: string, ref: string): Promise<ImageInfo>;
  inspect(refOrId: string): Promise<ImageInfo | undefined>;
  /** Every stored image, one entry per name. */
  list(): Promise<ImageInfo[]>;
  /**
   * Drops one use of the ref (see hold); with its last use the ref goes, and blobs and unpacked layers no other
   * image, container or lease uses are deleted.
   */
  remove(ref: string): Promise<void>;
  /** `docker builder prune`: build cache entries and RUN cache mounts (no image's, or all), by age or size. */
  pruneBuildCache(opts: BuildCachePruneOptions): Promise<BuildCachePruneResult>;
  /**
   * One more user of a ref, taken before it is made: several resources may declare one name (a replacement and
   * the image it replaces, stacks sharing a root); each remove drops one use.
   */
  hold(ref: string): Promise<void>;
}

export interface RegistrySpec {
  name: string;
  /** Host address to listen on. */
  address: string;
  port: number;
  /** Host directory holding the registry's data (a volume's). */
  storage: string;
  /** htpasswd users; passwords only as bcrypt hashes. */
  users?: Array<{ username: string; passwordHash: string }>;
  tls?: { certificate: string; key: string };
}

export interface RegistryInfo {
  name: string;
  /** "http://127.0.0.1:5000" */
  url: string;
  /** "127.0.0.1:5000", the prefix of image refs on it. */
  endpoint: string;
  status: "running" | "stopped";
  pid?: number;
  /** What it was started with (inspect). */
  spec?: RegistrySpec;
}

export interface Registries {
  /** Starts the registry, or restarts it when its spec changed; a running one with the same spec is left alone. */
  ensure(spec: RegistrySpec): Promise<RegistryInfo>;
  inspect(name: string): Promise<RegistryInfo | undefined>;
  /** The names of the registries this root has (running or not). */
  list(): Promise<string[]>;
  /** Stops it; its storage stays. */
  remove(name: string): Promise<void>;
}

/** Why an input would be refused, naming the field (read-only checks made before anything changes). */
export interface InputProblem {
  field: string;
  reason: string;
}

export interface Networks {
  create(spec: NetworkSpec): Promise<NetworkInfo>;
  /**
   * Why create would refuse this spec on this host: what only the host can tell of its input (a macvlan parent
   * that is not there, a VLAN parent on a kernel without 802.1q) and clashes with what it has now (overlapping
   * subnet, parent or bridge in use), not counting the networks named in `except` (one being replaced). Read only.
   */
  conflicts(spec: NetworkSpec, except?: string[]): Promise<InputProblem | undefined>;
  inspect(name: string): Promise<NetworkInfo | undefined>;
  /** Names of every network under this root. */
  list(): Promise<string[]>;
  /** Refuses (throws) while a container is attached. */
  remove(name: string): Promise<void>;
}

export interface Volumes {
  create(spec: VolumeSpec): Promise<VolumeInfo>;
  inspect(name: string): Promise<VolumeInfo | undefined>;
  /** Names of every volume under this root. */
  list(): Promise<string[]>;
  /** Deletes the data. Refuses (throws) while a container mounts the volume. */
  remove(name: string): Promise<void>;
}

export interface Containers extends ContainerLifecycle {
  /** Creates and starts the container, detached: it keeps running after the caller exits. */
  run(spec: ContainerSpec): Promise<ContainerInfo>;
  /**
   * Why a fixed host port could not be published now: another berth container (not one of `owners`) holds it,
   * or another process listens on it. Read only.
   */
  portTaken(p: PortMapping, owners: string[]): Promise<string | undefined>;
  /**
   * What run would refuse that depends on this host or the image's files, of the fields given: limits the host
   * cannot give (CPUs, cpuset, throttled devices: fields named as the limit, "cpus"), devices it lacks, and — given
   * `name` and a stored `image` — a command found neither in the image nor its mounts. A caller may ask before
   * every value is known. Read only.
   */
  problems(spec: Partial<ContainerSpec>): Promise<InputProblem[]>;
  inspect(name: string): Promise<ContainerInfo | undefined>;
  /**
   * Finishes a removal stopped midway (its process killed after the record went: no container any more, but its
   * directory and addresses left). Resolves to whether there was one.
   */
  finishRemoval(name: string): Promise<boolean>;
  /** Stops (SIGTERM, then SIGKILL after the grace period) and deletes everything the container had on the host. */
  remove(name: string, opts?: { graceSeconds?: number }): Promise<void>;
}

export type ObjectKind = "image" | "container" | "network" | "volume" | "registry";

/** Which stack resource (by URN) made or adopted each object, so nothing removes it behind the stack's back. */
export interface Owners {
  claim(kind: ObjectKind, name: string, urn: string): Promise<void>;
  /** The object left its stack (deleted by it, or removed with --force). */
  release(kind: ObjectKind, name: string): Promise<void>;
  ownerOf(kind: ObjectKind, name: string): Promise<string | undefined>;
  /** Every owned object of a kind: name → URN. */
  list(kind: ObjectKind): Promise<Map<string, string>>;
}

/** One row of `berth system df`, as Docker's: bytes on disk, and what a prune would free. */
export interface DiskUsage {
  type: "Images" | "Containers" | "Local Volumes" | "Build Cache";
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

export interface PruneReport {
  containers: string[];
  images: string[];
  /** Build cache objects, as `builder prune` names them ("layer sha256:…", "cache mount ID"). */
  buildCache: string[];
  reclaimedBytes: number;
}

/** One finding of a host check: what berth needs there, and the fix when it is missing. */
export interface HostCheck {
  /** "runc", "root", "overlayfs". */
  name: string;
  /** "warn": only some resources need it. */
  level: "ok" | "warn" | "error";
  detail: string;
  fix?: string;
}

export interface SystemUsage {
  df(): Promise<DiskUsage[]>;
  /** What this host lacks for berth (tools, kernel features, its root), each with its fix. Read only. */
  check(): Promise<HostCheck[]>;
  /**
   * Removes stopped containers, the build cache, and (with `all`) images no container uses, then every blob and
   * layer nothing uses any more. Volumes and networks stay.
   */
  prune(opts?: { all?: boolean }): Promise<PruneReport>;
}

export interface Runtime {
  images: ImageStore;
  system: SystemUsage;
  networks: Networks;
  volumes: Volumes;
  containers: Containers;
  registries: Registries;
  owners: Owners;
}
