import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import * as path from "node:path";
import type { z } from "zod";
import { ImageArgs, ImageOutputs } from "../../sdk/schema";
import type { ImageInfo, Runtime } from "../../native/runtime";
import type { Kind } from "./kind";

type Args = z.infer<typeof ImageArgs>;
type Outs = z.infer<typeof ImageOutputs>;

/** "web" → "web:latest", as Docker reads it. */
export function normalizeRef(name: string): string {
  return /:[^/]+$/.test(name) ? name : `${name}:latest`;
}

export const imageClaim = (ref: string) => `image ${normalizeRef(ref)}`;

const outputsOf = (info: ImageInfo): Outs => ({ ref: info.ref, imageId: info.id, layers: info.layers, size: info.size });

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

export function imageKind(runtime: Runtime, cwd: string): Kind<Args, Outs> {
  const tarballPath = (inputs: Args) => path.resolve(cwd, inputs.rootfs.tarball);
  return {
    args: ImageArgs,
    outputs: ImageOutputs,
    autoname: false,
    // The tarball's digest is part of the inputs, so a changed file is a diff (and an unchanged one is not).
    async prepare(inputs) {
      const file = tarballPath(inputs);
      const isFile = await stat(file).then((s) => s.isFile(), () => false);
      if (!isFile) return { inputs, failures: [{ property: "rootfs.tarball", reason: `no file at ${file}` }] };
      const digest = await sha256File(file);
      if (inputs.rootfs.digest !== undefined && inputs.rootfs.digest !== digest) {
        const reason = `${file} has digest ${digest}, not the pinned ${inputs.rootfs.digest}`;
        return { inputs, failures: [{ property: "rootfs.digest", reason }] };
      }
      return { inputs: { ...inputs, rootfs: { ...inputs.rootfs, digest } }, failures: [] };
    },
    previewOutputs: (inputs) => ({ ref: normalizeRef(inputs.name) }),
    idOf: (inputs) => normalizeRef(inputs.name),
    async create(inputs) {
      const info = await runtime.images.importRootfs({
        ref: normalizeRef(inputs.name),
        tarball: tarballPath(inputs),
        config: inputs.config ?? {},
      });
      return { id: info.ref, outputs: outputsOf(info) };
    },
    async read(id, _inputs, outputs) {
      const info = await runtime.images.inspect(id);
      // The ref now names other content (re-tagged by hand): the image this resource made is gone.
      return info && info.id === outputs.imageId ? outputsOf(info) : undefined;
    },
    delete: (id) => runtime.images.remove(id),
    // One ref names one image: the old one is dropped before the new one takes its name.
    exclusive: (olds, news) => normalizeRef(olds.name) === normalizeRef(news.name),
    claims: (inputs) => [imageClaim(inputs.name)],
  };
}
