import { z } from "zod";
import { cidr, ipv4, objectName, replaces } from "./fields";

export const NetworkArgs = z.strictObject({
  /** Host-wide network name; berth picks "<resource name>-<random>" when omitted. */
  name: replaces(objectName.optional()),
  driver: replaces(z.literal("bridge", { error: 'must be "bridge"' }).optional()),
  /** IPv4 subnet in network form, e.g. "10.89.0.0/24". */
  subnet: replaces(cidr),
  /** Defaults to the subnet's first address. */
  gateway: replaces(ipv4.optional()),
  /** Masquerade traffic leaving the network (default true). Changed in place. */
  nat: z.boolean().optional(),
});

export const NetworkOutputs = z.object({
  name: z.string(),
  /** The Linux bridge device ("bt…"). */
  bridge: z.string(),
  subnet: z.string(),
  gateway: z.string(),
  nat: z.boolean(),
  /** "ok", or what refresh found missing on the host (the next up puts it back). */
  status: z.string(),
});
