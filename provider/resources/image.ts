import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { z } from "zod";
import { ImageArgs, ImageOutputs } from "../../sdk/schema";
import type { ImageInfo, RegistryAccess, Runtime } from "../../native/runtime";
import { buildDigest } from "../../native/build/context";
import { DigestCache } from "../../native/digest-cache";
import { namesRegistry, parseRegistryRef } from "../../native/registry/reference";
import { UNKNOWN } from "../values";
import type { CheckContext, Kind } from "./kind";
import { dockerfileProblems } from "../../native/build/preflight";
import type { CheckFailure } from "./provider";

type Args = z.infer<typeof ImageArgs>;
type Outs = z.infer<typeof ImageOutputs>;

/** "web" → "web:latest", as Docker reads it. */
export function normalizeRef(name: string): string {
  return /:[^/]+$/.test(name) ? name : `${name}:latest`;
}

export const imageClaim = (ref: string) => `image ${normalizeRef(ref)}`;

const outputsOf = (info: ImageInfo, repoDigests: string[]): Outs => ({
  ref: info.ref,
  imageId: info.id,
  repoDigests,
  layers: info.layers,
  size: info.size,
});

const isFile = (p: string) => fs.stat(p).then((s) => s.isFile(), () => false);
const isDir = (p: string) => fs.stat(p).then((s) => s.isDirectory(), () => false);

export function imageKind(runtime: Runtime, cwd: string): Kind<Args, Outs> {
  const resolvePath = (p: string) => path.resolve(cwd, p);
  // Each check digests its source's files; unchanged ones are not read again, by the next run either.
  const digests = new DigestCache(path.join(cwd, ".pulumi", "digests.json"));
  // Registry passwords are kept out of the inputs (and so out of the state): check leaves them here, keyed by the
  // image's name, for the create or update that follows it in this process.
  const passwords = new Map<string, string>();
  // Build secrets likewise, by image name.
  const buildSecrets = new Map<string, Record<string, string>>();
  const access = (inputs: Args): RegistryAccess => {
    const auth = inputs.registry?.auth;
    const password = passwords.get(normalizeRef(inputs.name));
    const ca = inputs.registry?.ca;
    return { insecure: inputs.registry?.insecure, ca: ca && resolvePath(ca), auth: auth && password !== undefined ? { username: auth.username, password } : undefined };
  };

  /** Fills in the digest of what the source would produce, so an unchanged source is no diff. */
  /** Whether a build can get this base image: declared earlier in the program, stored, or on its registry. */
  async function obtainable(ref: string, inputs: Args, ctx: CheckContext): Promise<boolean> {
    if (ctx.declared.has(imageClaim(ref)) || (await runtime.images.inspect(ref))) return true;
    if (!namesRegistry(ref)) return false; // berth has no default registry
    return runtime.images.resolve(ref, access(inputs)).then(() => true, () => false);
  }

  async function prepareSource(inputs: Args, ctx: CheckContext): Promise<{ inputs: Args; failures: CheckFailure[] }> {
    const fail = (property: string, reason: string) => ({ inputs, failures: [{ property, reason }] });
    if (inputs.rootfs) {
      const file = resolvePath(inputs.rootfs.tarball);
      if (!(await isFile(file))) return fail("rootfs.tarball", `no file at ${file}`);
      const digest = await digests.digest(file);
      if (inputs.rootfs.digest !== undefined && inputs.rootfs.digest !== digest) {
        return fail("rootfs.digest", `${file} has digest ${digest}, not the pinned ${inputs.rootfs.digest}`);
      }
      return { inputs: { ...inputs, rootfs: { ...inputs.rootfs, digest } }, failures: [] };
    }
    if (inputs.build) {
      const b = inputs.build;
      const context = resolvePath(b.context);
      if (!(await isDir(context))) return fail("build.context", `no directory at ${context}`);
      let digested: Awaited<ReturnType<typeof buildDigest>>;
      try {
        digested = await buildDigest({ context, dockerfile: b.dockerfile, buildArgs: b.args, target: b.target, cache: digests });
      } catch (e) {
        return fail(/Dockerfile|target/.test((e as Error).message) ? "build.dockerfile" : "build", (e as Error).message);
      }
      const { digest: contextDigest, dockerfile } = digested;
      const problems = await dockerfileProblems(dockerfile.text, dockerfile.label, (ref) => obtainable(ref, inputs, ctx));
      if (problems.length > 0) return { inputs, failures: problems.map((reason) => ({ property: "build.dockerfile", reason })) };
      return { inputs: { ...inputs, build: { ...b, contextDigest } }, failures: [] };
    }
    if (inputs.pull) {
      try {
        const digest = await runtime.images.resolve(inputs.pull.ref, access(inputs));
        if (inputs.pull.digest !== undefined && inputs.pull.digest !== digest) {
          return fail("pull.digest", `${inputs.pull.ref} now points at ${digest}, not the pinned ${inputs.pull.digest}`);
        }
        return { inputs: { ...inputs, pull: { ...inputs.pull, digest } }, failures: [] };
      } catch (e) {
        return fail("pull.ref", (e as Error).message);
      }
    }
    const archive = inputs.archive!;
    const p = resolvePath(archive.path);
    // A layout directory's blobs are named by their digests, so its index (or docker save manifest) stands for it.
    const dirDigest = () => digests.digest(path.join(p, "index.json")).catch(() => digests.digest(path.join(p, "manifest.json"))).catch(() => undefined);
    const digest = (await isDir(p)) ? await dirDigest() : (await isFile(p)) ? await digests.digest(p) : undefined;
    if (!digest) return fail("archive.path", `no docker save tar or OCI layout at ${p}`);
    return { inputs: { ...inputs, archive: { ...archive, digest } }, failures: [] };
  }

  /** Makes the image from its source under its name, and pushes it when asked. */
  async function make(inputs: Args): Promise<Outs> {
    const ref = normalizeRef(inputs.name);
    const images = runtime.images;
    let info: ImageInfo;
    let repoDigests: string[] = [];
    if (inputs.rootfs) {
      info = await images.importRootfs({ ref, tarball: resolvePath(inputs.rootfs.tarball), config: inputs.config ?? {} });
    } else if (inputs.build) {
      const b = inputs.build;
      ({ info } = await images.build({ ref, context: resolvePath(b.context), dockerfile: b.dockerfile, buildArgs: b.args, target: b.target, noCache: b.noCache, secrets: buildSecrets.get(ref) }));
    } else if (inputs.pull) {
      const source = `${inputs.pull.ref.split("@")[0]}@${inputs.pull.digest}`;
      info = await images.pull(source, access(inputs), ref);
      const r = parseRegistryRef(inputs.pull.ref);
      repoDigests = [`${r.registry}/${r.repository}@${info.manifestDigest}`];
    } else {
      info = await images.importArchive({ ref, path: resolvePath(inputs.archive!.path) });
    }
    // A create whose push fails leaves nothing behind: create() drops the use it held.
    if (inputs.push) repoDigests = [await images.push(ref, ref, access(inputs))];
    return outputsOf(info, repoDigests);
  }

  return {
    args: ImageArgs,
    outputs: ImageOutputs,
    autoname: false,
    async prepare(inputs, ctx) {
      const auth = inputs.registry?.auth;
      let kept = inputs;
      if (auth?.password !== undefined) {
        passwords.set(normalizeRef(inputs.name), auth.password);
        kept = { ...inputs, registry: { ...inputs.registry, auth: { username: auth.username } } };
      }
      if (kept.build?.secrets !== undefined) {
        buildSecrets.set(normalizeRef(inputs.name), kept.build.secrets);
        kept = { ...kept, build: { ...kept.build, secrets: undefined } };
      }
      try {
        return await prepareSource(kept, ctx);
      } finally {
        digests.saveSoon();
      }
    },
    // What a build or pull will produce is known only once it ran: containers using the image see it as unknown.
    previewOutputs: (inputs) => ({ ref: normalizeRef(inputs.name), imageId: UNKNOWN }),
    idOf: (inputs) => normalizeRef(inputs.name),
    async create(inputs) {
      // The name may be shared (with the image this replaces, with another stack's): each user is counted, so
      // the other's delete drops only its own use and the name stays on this image.
      const ref = normalizeRef(inputs.name);
      await runtime.images.hold(ref);
      try {
        const outputs = await make(inputs);
        return { id: outputs.ref, outputs };
      } catch (e) {
        await runtime.images.remove(ref).catch(() => undefined);
        throw e;
      }
    },
    update: (_id, _olds, news) => make(news),
    async read(id, _inputs, outputs) {
      const info = await runtime.images.inspect(id);
      // The ref now names other content (re-tagged by hand): the image this resource made is gone. An import
      // knows no content yet.
      return info && (outputs.imageId === undefined || info.id === outputs.imageId) ? outputsOf(info, outputs.repoDigests ?? []) : undefined;
    },
    // The store does not record where an image came from: the program states the source (an `import` option).
    importInputs: async (_id, outputs) => ({ name: outputs.ref }),
    delete: (id) => runtime.images.remove(id),
    // One ref names one image: the old one is dropped before the new one takes its name.
    exclusive: (olds, news) => normalizeRef(olds.name) === normalizeRef(news.name),
    claims: (inputs) => [imageClaim(inputs.name)],
  };
}
