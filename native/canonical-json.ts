// Pure: one JSON text per value, for digests and comparisons (the provider digests build contexts with it).

/** JSON with object keys sorted and undefined fields dropped: equal for equal values however they were built. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
