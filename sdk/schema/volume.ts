import { z } from "zod";
import { absolutePath, objectName, replaces } from "./fields";

export const VolumeArgs = z.strictObject({
  /** Host-wide volume name; berth picks "<resource name>-<random>" when omitted. */
  name: replaces(objectName.optional()),
  labels: replaces(z.record(z.string(), z.string()).optional()),
  /** Docker's local driver options for a host directory: { type: "none", o: "bind", device: "/srv/data" }. */
  driverOpts: replaces(
    z.strictObject({
      type: z.literal("none", { error: 'must be "none" (a bind of a host directory)' }),
      o: z.literal("bind", { error: 'must be "bind"' }),
      device: absolutePath,
    }).optional(),
  ),
});

export const VolumeOutputs = z.object({
  name: z.string(),
  /** Host directory that holds the volume's data. */
  mountpoint: z.string(),
  labels: z.record(z.string(), z.string()),
});
