// `docker commit`: a container's root filesystem changes (its overlay upper directory) become one new layer on
// top of its image's, under a new name. The container is paused while its changes are copied, as Docker does,
// so the layer is one consistent moment; berth's own mount points (/.berth) are left out.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Host } from "../host/exec";
import type { Paths } from "../paths";
import type { ImageInfo } from "../runtime";
import type { ContentStore } from "../image/store";
import type { OciImageConfig } from "../image/oci";
import { commitLayer } from "../image/pack";
import type { ContainerRecord } from "./record";
import type { Runc } from "./runc";
import { runcRefOf } from "./runc-root";
import { stagingPath } from "../staging";

export interface CommitOptions {
  /** Recorded as the image's author (`docker commit -a`). */
  author?: string;
  /** Recorded in the layer's history (`docker commit -m`). */
  message?: string;
  /** Freeze the container while copying (default true, as `docker commit --pause`). */
  pause?: boolean;
}

export async function commitContainer(
  d: { host: Host; paths: Paths; store: ContentStore; runc: Runc },
  rec: ContainerRecord,
  ref: string,
  opts: CommitOptions = {},
): Promise<ImageInfo> {
  const name = rec.spec.name;
  const base = await d.store.image(rec.imageId);
  if (!base || !(await d.store.keepImage(base))) throw new Error(`cannot commit container ${name}: its image ${rec.imageId} is no longer in berth's store`);
  const copy = stagingPath(d.paths.ingest, "commit");
  await fs.promises.mkdir(d.paths.ingest, { recursive: true });
  const c = runcRefOf(rec);
  const freeze = opts.pause !== false && (await d.runc.state(c))?.status === "running";
  // cp -a keeps what makes the upper directory a layer: whiteout devices, opaque xattrs, owners and modes.
  const cp: [string, string[]] = ["cp", ["-a", `${d.paths.container(name).upper}/.`, `${copy}/`]];
  if (freeze) await d.runc.pausedWhile(c, ...cp);
  else await d.host.run(...cp);
  try {
    await fs.promises.rm(path.join(copy, ".berth"), { recursive: true, force: true });
    const { desc, diffId } = await commitLayer(d.host, d.store, copy, `container ${name}`);
    return await d.store.commit(ref, configFor(base.config, rec, diffId, opts), [...base.manifest.layers, desc]);
  } finally {
    await fs.promises.rm(copy, { recursive: true, force: true });
  }
}

/** The image's config as the container ran it: what the container set (command, env, …) overrides the image's. */
function configFor(image: OciImageConfig, rec: ContainerRecord, diffId: string, opts: CommitOptions): OciImageConfig {
  const s = rec.spec;
  const env = new Map((image.config.Env ?? []).map((kv) => [kv.split("=", 1)[0], kv]));
  for (const [k, v] of Object.entries(s.env ?? {})) env.set(k, `${k}=${v}`);
  return {
    ...image,
    ...(opts.author ? { author: opts.author } : {}),
    config: {
      ...image.config,
      Env: [...env.values()],
      ...(s.entrypoint ? { Entrypoint: s.entrypoint, Cmd: s.command ?? null } : {}),
      ...(s.command ? { Cmd: s.command } : {}),
      ...(s.workdir ? { WorkingDir: s.workdir } : {}),
      ...(s.user ? { User: s.user } : {}),
      ...(s.stopSignal ? { StopSignal: s.stopSignal } : {}),
    },
    rootfs: { type: "layers", diff_ids: [...image.rootfs.diff_ids, diffId] },
    history: [...(image.history ?? []), { created_by: `berth commit ${s.name}`, ...(opts.message ? { comment: opts.message } : {}) }],
  };
}
