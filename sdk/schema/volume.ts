import { z } from "zod";
import { objectName, replaces } from "./fields";

export const VolumeArgs = z.strictObject({
  /** Host-wide volume name; berth picks "<resource name>-<random>" when omitted. */
  name: replaces(objectName.optional()),
  labels: replaces(z.record(z.string(), z.string()).optional()),
});

export const VolumeOutputs = z.object({
  name: z.string(),
  /** Host directory that holds the volume's data. */
  mountpoint: z.string(),
  labels: z.record(z.string(), z.string()),
});
