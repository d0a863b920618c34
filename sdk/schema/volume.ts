import { z } from "zod";
import { absolutePath, objectName, replaces } from "./fields";

export const VolumeArgs = z.strictObject({
  /** Host-wide volume name; berth picks "<resource name>-<random>" when omitted. */
  name: replaces(objectName.optional()),
  /** Metadata recorded with the volume (Docker's --label). */
  labels: replaces(z.record(z.string(), z.string()).optional()),
  /** Docker's local driver options for a host directory: { type: "none", o: "bind", device: "/srv/data" }. */
  driverOpts: replaces(
    z.strictObject({
      /** "none": no file system is made. */
      type: z.literal("none", { error: 'must be "none" (a bind of a host directory)' }),
      /** "bind": the volume is a bind of `device`. */
      o: z.literal("bind", { error: 'must be "bind"' }),
      /** The host directory holding the volume's data. */
      device: absolutePath,
    }).optional(),
  ),
});

export const VolumeOutputs = z.object({
  /** The volume's host-wide name. */
  name: z.string(),
  /** Host directory that holds the volume's data. */
  mountpoint: z.string(),
  /** The labels the volume has. */
  labels: z.record(z.string(), z.string()),
});
