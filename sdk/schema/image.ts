import { z } from "zod";
import { absolutePath, replaces } from "./fields";
import { referenceProblem } from "../../native/image/reference";

const envPair = z.string().regex(/^[^=]+=/, { error: 'must be "KEY=value"' });
const exposedPort = z.string().regex(/^\d{1,5}(\/(tcp|udp))?$/, { error: 'must be "PORT" or "PORT/tcp" or "PORT/udp"' });
const sha256 = z.string().regex(/^sha256:[0-9a-f]{64}$/, { error: 'must be "sha256:" and 64 hex digits' });

/** "name[:tag]", optionally behind a registry "host[:port]/": Docker's format, the rule the store names images by. */
export const imageRef = z.string().superRefine((value, ctx) => {
  const problem = referenceProblem(value, false);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

export const ImageConfig = z.strictObject({
  /** CMD: the default command. */
  cmd: z.array(z.string()).optional(),
  /** ENTRYPOINT: what the command is passed to. */
  entrypoint: z.array(z.string()).optional(),
  /** ENV entries, "KEY=value". */
  env: z.array(envPair).optional(),
  /** WORKDIR: the command's working directory. */
  workdir: absolutePath.optional(),
  /** USER the command runs as. */
  user: z.string().optional(),
  /** EXPOSE: ports such as "80/tcp" (publishAll publishes them). */
  exposedPorts: z.array(exposedPort).optional(),
});

export const BuildArgs = z.strictObject({
  /** The build context directory (relative to the program's directory). */
  context: z.string().min(1, { error: "must name the build context directory" }),
  /** The Dockerfile, relative to the context (default "Dockerfile"). */
  dockerfile: z.string().min(1).optional(),
  /** Values for the Dockerfile's ARGs. */
  args: z.record(z.string(), z.string()).optional(),
  /** The stage to build (default the last). */
  target: z.string().min(1).optional(),
  /** Run every instruction, not using the build cache. */
  noCache: z.boolean().optional(),
  /**
   * Build secrets by id, for `RUN --mount=type=secret,id=ID`: pass Pulumi secrets. berth keeps them out of the
   * state, the image and the build cache key (a changed secret alone rebuilds nothing, as with Docker).
   */
  secrets: z
    .record(z.string(), z.string())
    .check((ctx) => {
      for (const id of Object.keys(ctx.value).filter((k) => !/^[a-zA-Z0-9_.-]+$/.test(k))) {
        ctx.issues.push({ code: "custom", input: id, path: [id], message: "a secret id uses letters, digits, '_', '.' and '-'" });
      }
    })
    .optional(),
  /** berth fills it in: the digest of the Dockerfile, args, target and every context file .dockerignore leaves in. */
  contextDigest: sha256.optional(),
});

export const RegistryAuthArgs = z.strictObject({
  /** The registry user. */
  username: z.string().min(1, { error: "must name the registry user" }),
  /** Pass it as a Pulumi secret; berth keeps it out of the state (only the username is recorded). */
  password: z.string().min(1, { error: "must not be empty" }).optional(),
});

export const ImageArgs = z
  .strictObject({
    /** Reference the image is stored under, e.g. "web:1.0" (":latest" when no tag is given). */
    name: replaces(imageRef),
    /** Source: a tarball of a root filesystem, imported as a one-layer image (relative to the program's directory). */
    rootfs: replaces(
      z.strictObject({
        /** A tar of the root filesystem (relative to the program's directory). */
        tarball: z.string().min(1, { error: "must name a tar file" }),
        /** "sha256:…" of the tarball. berth fills it in; set it to pin the content (a different file is refused). */
        digest: sha256.optional(),
      }).optional(),
    ),
    /** Source: a Dockerfile build. A changed context file, Dockerfile or arg rebuilds the image in place. */
    build: BuildArgs.optional(),
    /** Source: an image on a registry, "host[:port]/name[:tag|@digest]". berth records the digest it points at. */
    pull: z.strictObject({
      /** The image on its registry, e.g. "127.0.0.1:5000/web:1". */
      ref: z.string().min(1),
      /** "sha256:…" of the manifest. berth fills it in; set it to pin the image (other content is refused). */
      digest: sha256.optional(),
    }).optional(),
    /** Source: a `docker save` tar, or an OCI image layout (directory or tar), e.g. from skopeo or umoci. */
    archive: z.strictObject({
      /** The tar or layout directory (relative to the program's directory). */
      path: z.string().min(1),
      /** "sha256:…" of the archive. berth fills it in; set it to pin the content (a different file is refused). */
      digest: sha256.optional(),
    }).optional(),
    /** Image config of a rootfs import. */
    config: replaces(ImageConfig.optional()),
    /** Push the image to the registry its name starts with ("127.0.0.1:5000/web:1") after making it. */
    push: z.boolean().optional(),
    /** Credentials for pull and push (else ~/.docker/config.json's), and whether the registry speaks plain HTTP. */
    registry: z
      .strictObject({
        /** User and password for the registry. */
        auth: RegistryAuthArgs.optional(),
        /** Speak plain HTTP to the registry (loopback registries always may). */
        insecure: z.boolean().optional(),
        /** PEM file of a CA to trust (relative to the program's directory), e.g. a berth Registry's own certificate. */
        ca: z.string().min(1).optional(),
      })
      .optional(),
  })
  .check((ctx) => {
    const sources = (["rootfs", "build", "pull", "archive"] as const).filter((k) => ctx.value[k] !== undefined);
    if (sources.length !== 1) {
      ctx.issues.push({
        code: "custom",
        input: ctx.value,
        path: [],
        message: sources.length === 0
          ? "give the image a source: one of rootfs, build, pull or archive"
          : `give the image one source, not ${sources.join(" and ")}`,
      });
    }
    if (ctx.value.config && !ctx.value.rootfs) {
      ctx.issues.push({ code: "custom", input: ctx.value.config, path: ["config"], message: "only applies to a rootfs import (a build's config comes from its Dockerfile)" });
    }
    if (ctx.value.push && !/^[^/]*[.:][^/]*\//.test(ctx.value.name) && !ctx.value.name.startsWith("localhost/")) {
      ctx.issues.push({ code: "custom", input: ctx.value.name, path: ["push"], message: 'needs a name starting with the registry, e.g. "127.0.0.1:5000/web:1"' });
    }
  });

export const ImageOutputs = z.object({
  /** The reference the image is stored under, normalized (":latest" added when no tag was given). */
  ref: z.string(),
  /** "sha256:…" of the image config: changes whenever the content or config does. */
  imageId: z.string(),
  /** "registry/name@sha256:…" once pushed or when pulled. */
  repoDigests: z.array(z.string()),
  /** Uncompressed layer digests, bottom first. */
  layers: z.array(z.string()),
  /** Bytes of all layer blobs (compressed, as stored). */
  size: z.number(),
});
