import { z } from "zod";
import { absolutePath, objectName, replaces } from "./fields";
import { ContainerNetworkArgs, ContainerNetworkOutputs } from "./container-network";
import { ContainerRuntimeArgs, checkRuntimeArgs } from "./container-runtime";

export const VolumeMountArgs = z.strictObject({
  /** Name of a berth Volume. */
  volume: objectName,
  /** Absolute path inside the container. */
  target: absolutePath,
  /** Mount read-only (Docker's :ro). */
  readOnly: z.boolean().optional(),
});

export const ContainerArgs = z.strictObject({
  /** Host-wide container name; berth picks "<resource name>-<random>" when omitted. */
  name: replaces(objectName.optional()),
  /** Image reference or id ("sha256:…"), e.g. an Image resource's imageId. */
  image: replaces(z.string().min(1, { error: "must name an image" })),
  /** Replaces the image's ENTRYPOINT (Docker's --entrypoint). */
  entrypoint: replaces(z.array(z.string()).optional()),
  /** Replaces the image's CMD: the arguments after the image in `docker run`. */
  command: replaces(z.array(z.string()).optional()),
  /** Environment variables, added to (and overriding) the image's ENV. */
  env: replaces(z.record(z.string().regex(/^[^=]+$/, { error: "must not contain '='" }).regex(/^[^\0]*$/, { error: "must not contain a NUL character" }), z.string().regex(/^[^\0]*$/, { error: "must not contain a NUL character: no process environment can hold one" })).optional()),
  /** Working directory of the command (default the image's WORKDIR, else /). */
  workdir: replaces(absolutePath.optional()),
  /** The container's host name (default its name, cut to 63 characters). */
  hostname: replaces(z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/, {
    error: "must be a host name of at most 63 letters, digits, '.' and '-'",
  }).optional()),
  /** Name of a berth Network (the one-network form of `networks`). */
  network: replaces(objectName.optional()),
  ...ContainerNetworkArgs,
  /** Seconds between SIGTERM and SIGKILL when the container is stopped (Docker's --stop-timeout, default 10). */
  stopTimeout: z.number().int().min(0, { error: "must be 0 or more seconds" }).optional(),
  /** Named berth Volumes mounted into the container (Docker's -v NAME:/path). */
  volumes: replaces(z.array(VolumeMountArgs).optional()),
  ...ContainerRuntimeArgs,
}).superRefine(checkRuntimeArgs);

export const ContainerOutputs = z.object({
  /** The container's host-wide name. */
  name: z.string(),
  /** "sha256:…" of the image the container runs. */
  imageId: z.string(),
  /** Address on its network ("" without one). */
  ip: z.string(),
  /** "running" when healthy; anything else (seen by refresh) makes the next up replace it. */
  status: z.string(),
  /** "starting", "healthy" or "unhealthy" ("" without a health check). */
  health: z.string().optional(),
  ...ContainerNetworkOutputs,
});
