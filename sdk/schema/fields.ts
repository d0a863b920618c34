// Field-level facts every resource schema can state once: which fields force a replacement when they change.
// The provider's diff and the SDK's docs both read them from here, so the rule is never written twice.
import { z } from "zod";

interface FieldMeta {
  /** A change to this field cannot be made to the live object: it is replaced. */
  replaceOnChange?: boolean;
}

const fieldMeta = z.registry<FieldMeta>();

/** Marks a field whose change replaces the resource. */
export function replaces<T extends z.ZodType>(schema: T): T {
  fieldMeta.add(schema, { replaceOnChange: true });
  return schema;
}

/** Top-level fields of an object schema whose change replaces the resource. */
export function replaceOnChangeFields(schema: z.ZodObject): Set<string> {
  const keys = Object.entries(schema.shape)
    .filter(([, field]) => fieldMeta.get(field as z.ZodType)?.replaceOnChange)
    .map(([key]) => key);
  return new Set(keys);
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export const ipv4 = z.string().regex(IPV4, { error: "must be an IPv4 address such as 10.89.0.1" });

export const cidr = z.string().refine(
  (s) => {
    const [ip, bits, ...rest] = s.split("/");
    return rest.length === 0 && IPV4.test(ip) && /^\d{1,2}$/.test(bits ?? "") && Number(bits) <= 32;
  },
  { error: "must be an IPv4 CIDR such as 10.89.0.0/24" },
);

/**
 * A host object's name, by Docker's rule for container and volume names: a letter or digit, then letters, digits,
 * '_', '.' or '-' (63 characters at most).
 */
export const objectName = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, {
    error: "must start with a letter or digit and use only letters, digits, '_', '.' and '-' (at most 63 characters)",
  });

export const port = z
  .number({ error: "must be a port number" })
  .int({ error: "must be a whole number" })
  .min(1, { error: "must be between 1 and 65535" })
  .max(65535, { error: "must be between 1 and 65535" });

export const absolutePath = z.string().startsWith("/", { error: "must be an absolute path such as /data" });

/** A Linux interface name (the kernel allows 15 characters). */
export const ifname = z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, {
  error: "must be an interface name of 1-15 letters, digits, '_', '.' or '-'",
});
