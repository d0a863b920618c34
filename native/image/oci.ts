// The OCI image-spec documents berth writes, and the mapping between the OCI config and runtime.ts's ImageConfig.
import type { ImageConfig } from "../runtime";
import { referenceProblem } from "./reference";

export const MediaType = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** Manifest media types berth reads, and the index types that point at them. */
export const MANIFEST_TYPES = [MediaType.manifest, MediaType.dockerManifest];
export const INDEX_TYPES = [MediaType.index, MediaType.dockerManifestList];

export const REF_ANNOTATION = "org.opencontainers.image.ref.name";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  /** In an index: which os/architecture the manifest is for. */
  platform?: { os: string; architecture: string };
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType: typeof MediaType.index;
  manifests: Descriptor[];
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface Healthcheck {
  Test: string[];
  /** Nanoseconds, as Docker stores them. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  Retries?: number;
}

/** The image config's runtime part, with the fields Docker's builder sets. */
export interface RunConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  Volumes?: Record<string, Record<string, never>>;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: Healthcheck;
  OnBuild?: string[];
  Shell?: string[];
}

export interface HistoryEntry {
  created_by: string;
  empty_layer?: boolean;
  comment?: string;
}

export interface OciImageConfig {
  architecture: string;
  os: string;
  author?: string;
  created?: string;
  config: RunConfig;
  rootfs: { type: "layers"; diff_ids: string[] };
  history?: HistoryEntry[];
}

export const isGzip = (mediaType: string): boolean => mediaType.endsWith("gzip");

const ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386" };

export const HOST_ARCH = ARCH[process.arch] ?? process.arch;

const nanos = (s: number | undefined) => (s === undefined ? undefined : Math.round(s * 1e9));
/** Docker writes 0 for "the default". */
const seconds = (ns: number | undefined) => (ns ? ns / 1e9 : undefined);

/** No timestamps or history: the same rootfs and config always give the same image id. */
export function toOciConfig(c: ImageConfig, diffIds: string[]): OciImageConfig {
  return {
    architecture: HOST_ARCH,
    os: "linux",
    config: {
      User: c.user,
      ExposedPorts: c.exposedPorts && Object.fromEntries(c.exposedPorts.map((p) => [p, {}])),
      Env: c.env,
      Entrypoint: c.entrypoint,
      Cmd: c.cmd,
      WorkingDir: c.workdir,
      Volumes: c.volumes && Object.fromEntries(c.volumes.map((v) => [v, {}])),
      StopSignal: c.stopSignal,
      Healthcheck: c.healthcheck && {
        Test: c.healthcheck.test,
        Interval: nanos(c.healthcheck.interval),
        Timeout: nanos(c.healthcheck.timeout),
        StartPeriod: nanos(c.healthcheck.startPeriod),
        Retries: c.healthcheck.retries,
      },
    },
    rootfs: { type: "layers", diff_ids: diffIds },
  };
}

export function fromOciConfig(o: OciImageConfig): ImageConfig {
  const c = o.config ?? {};
  const out: ImageConfig = {};
  if (c.Cmd) out.cmd = c.Cmd;
  if (c.Entrypoint) out.entrypoint = c.Entrypoint;
  if (c.Env) out.env = c.Env;
  if (c.WorkingDir) out.workdir = c.WorkingDir;
  if (c.User) out.user = c.User;
  if (c.ExposedPorts) out.exposedPorts = Object.keys(c.ExposedPorts);
  if (c.Volumes) out.volumes = Object.keys(c.Volumes);
  // A crafted config may hold any JSON here: kept as its text, which names no signal, so it is refused at check.
  if (c.StopSignal) out.stopSignal = typeof c.StopSignal === "string" ? c.StopSignal : JSON.stringify(c.StopSignal);
  const h = c.Healthcheck;
  if (h) {
    const [interval, timeout, startPeriod] = [h.Interval, h.Timeout, h.StartPeriod].map(seconds);
    out.healthcheck = { test: h.Test, interval, timeout, startPeriod, retries: h.Retries || undefined };
  }
  return out;
}

/**
 * A ref an image is to be stored under, normalized: refused unless in Docker's reference format, whoever names it
 * (an archive's RepoTags and index names are the archive's to choose: "../x", control characters, anything).
 */
export function nameRef(ref: string): string {
  const problem = referenceProblem(ref);
  if (problem) throw new Error(problem);
  return normalizeRef(ref);
}

/** "name" means "name:latest", as in Docker; a tag or digest that is already there is kept. */
export function normalizeRef(ref: string): string {
  if (!/^[^\s]+$/.test(ref)) throw new Error(`invalid image ref "${ref}": expected NAME[:TAG], e.g. "app:latest"`);
  const last = ref.slice(ref.lastIndexOf("/") + 1);
  return last.includes(":") || last.includes("@") ? ref : `${ref}:latest`;
}
