// The OCI image-spec documents berth writes, and the mapping between the OCI config and runtime.ts's ImageConfig.
import type { ImageConfig } from "../runtime";

export const MediaType = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
} as const;

export const REF_ANNOTATION = "org.opencontainers.image.ref.name";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType: typeof MediaType.index;
  manifests: Descriptor[];
}

export interface OciManifest {
  schemaVersion: 2;
  mediaType: typeof MediaType.manifest;
  config: Descriptor;
  layers: Descriptor[];
}

export interface OciImageConfig {
  architecture: string;
  os: "linux";
  config: {
    User?: string;
    ExposedPorts?: Record<string, Record<string, never>>;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    Volumes?: Record<string, Record<string, never>>;
    /** Docker's extension; durations in nanoseconds. */
    Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  };
  rootfs: { type: "layers"; diff_ids: string[] };
}

const ARCH: Record<string, string> = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386" };

const nanos = (s: number | undefined) => (s === undefined ? undefined : Math.round(s * 1e9));
/** Docker writes 0 for "the default". */
const seconds = (ns: number | undefined) => (ns ? ns / 1e9 : undefined);

/** No timestamps or history: the same rootfs and config always give the same image id. */
export function toOciConfig(c: ImageConfig, diffIds: string[]): OciImageConfig {
  return {
    architecture: ARCH[process.arch] ?? process.arch,
    os: "linux",
    config: {
      User: c.user,
      ExposedPorts: c.exposedPorts && Object.fromEntries(c.exposedPorts.map((p) => [p, {}])),
      Env: c.env,
      Entrypoint: c.entrypoint,
      Cmd: c.cmd,
      WorkingDir: c.workdir,
      Volumes: c.volumes && Object.fromEntries(c.volumes.map((v) => [v, {}])),
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
  const h = c.Healthcheck;
  if (h) out.healthcheck = { test: h.Test, interval: seconds(h.Interval), timeout: seconds(h.Timeout), startPeriod: seconds(h.StartPeriod), retries: h.Retries || undefined };
  return out;
}

/** "name" means "name:latest", as in Docker; a tag or digest that is already there is kept. */
export function normalizeRef(ref: string): string {
  if (!/^[^\s]+$/.test(ref)) throw new Error(`invalid image ref "${ref}": expected NAME[:TAG], e.g. "app:latest"`);
  const last = ref.slice(ref.lastIndexOf("/") + 1);
  return last.includes(":") || last.includes("@") ? ref : `${ref}:latest`;
}
