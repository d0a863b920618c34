import { z } from "zod";
import { absolutePath, replaces } from "./fields";

const envPair = z.string().regex(/^[^=]+=/, { error: 'must be "KEY=value"' });
const exposedPort = z.string().regex(/^\d{1,5}(\/(tcp|udp))?$/, { error: 'must be "PORT" or "PORT/tcp" or "PORT/udp"' });

export const ImageConfig = z.strictObject({
  cmd: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  env: z.array(envPair).optional(),
  workdir: absolutePath.optional(),
  user: z.string().optional(),
  exposedPorts: z.array(exposedPort).optional(),
});

export const ImageArgs = z.strictObject({
  /** Reference the image is stored under, e.g. "web:1.0" (":latest" when no tag is given). */
  name: replaces(z.string().regex(/^[a-z0-9][a-z0-9._\/-]*(:[\w][\w.-]{0,127})?$/, {
    error: 'must be a lowercase image reference such as "web" or "web:1.0"',
  })),
  /** A tarball of a root filesystem, imported as a one-layer image (relative to the program's directory). */
  rootfs: replaces(
    z.strictObject({
      tarball: z.string().min(1, { error: "must name a tar file" }),
      /** "sha256:…" of the tarball. berth fills it in; set it to pin the content (a different file is refused). */
      digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, { error: 'must be "sha256:" and 64 hex digits' }).optional(),
    }),
  ),
  config: replaces(ImageConfig.optional()),
});

export const ImageOutputs = z.object({
  ref: z.string(),
  /** "sha256:…" of the image config: changes whenever the content or config does. */
  imageId: z.string(),
  /** Uncompressed layer digests, bottom first. */
  layers: z.array(z.string()),
  size: z.number(),
});
