// Pulumi's wire sentinels for property values, shared by the engine and the provider: a preview's unknowns and
// secrets arrive inside ordinary JSON in these shapes.

/** A value not known until the resource producing it is created (preview only). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The key that marks a special object, and its value for a secret: `{[SIG]: SECRET_SIG, value}`. */
export const SIG = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export function isUnknown(value: unknown): boolean {
  return value === UNKNOWN;
}

export function isSecret(value: unknown): value is { value: unknown } {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[SIG] === SECRET_SIG;
}

export function containsUnknown(value: unknown): boolean {
  if (isUnknown(value)) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (typeof value === "object" && value !== null) return Object.values(value).some(containsUnknown);
  return false;
}

export function containsSecret(value: unknown): boolean {
  if (isSecret(value)) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (typeof value === "object" && value !== null) return Object.values(value).some(containsSecret);
  return false;
}

/** The value with each outermost secret replaced by `replace(secret)`; everything else copied as it is. */
export function mapSecrets(value: unknown, replace: (secret: { value: unknown }) => unknown): unknown {
  if (isSecret(value)) return replace(value);
  if (Array.isArray(value)) return value.map((v) => mapSecrets(v, replace));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapSecrets(v, replace)]));
  }
  return value;
}

/** The value with every secret wrapper removed. */
export function revealAll(value: unknown): unknown {
  return mapSecrets(value, (secret) => revealAll(secret.value));
}

function makeSecret(value: unknown): unknown {
  return isSecret(value) ? value : { [SIG]: SECRET_SIG, value: revealAll(value) };
}

/** The keys of a property map whose values hold a secret anywhere inside. */
export function secretKeys(props: Record<string, unknown>): string[] {
  return Object.keys(props).filter((k) => containsSecret(props[k]));
}

/** The property map with the named keys made secret (a secret input stays secret in the outputs). */
export function keepSecret<T extends Record<string, unknown>>(props: T, keys: Iterable<string>): T {
  const out: Record<string, unknown> = { ...props };
  for (const k of keys) if (out[k] !== undefined) out[k] = makeSecret(out[k]);
  return out as T;
}

/** The value at a zod-style path, or undefined. */
export function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/** A field that holds a password: the engine warns when it is plaintext; the package schema marks it secret. */
export const PASSWORD_FIELD = /password/i;

/** Paths of password fields (any key naming a password) whose value the program passed in plaintext. */
export function plaintextPasswords(value: unknown, path: PropertyKey[] = []): string[] {
  if (typeof value !== "object" || value === null || isSecret(value) || isUnknown(value)) return [];
  return Object.entries(value).flatMap(([key, v]) => {
    const at = [...path, Array.isArray(value) ? Number(key) : key];
    return PASSWORD_FIELD.test(key) && typeof v === "string" ? [formatPath(at)] : plaintextPasswords(v, at);
  });
}

/** "ports[0].hostPort" from ["ports", 0, "hostPort"]. */
export function formatPath(path: PropertyKey[]): string {
  return path
    .map((key, i) => (typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`))
    .join("");
}
