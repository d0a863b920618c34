// Resource options that reshape a step, as pure functions over property paths: ignoreChanges resets paths to their
// old values before the provider sees them; replaceOnChanges turns a change under a path into a replace.
import type { DiffKind, DiffResponse, PropertyMap } from "../resources/provider";

/** `env.GREETING`, `ports[0].hostPort`, `labels["a.b"]`, `*` → keys. */
export function parsePath(path: string): Array<string | number> {
  const keys: Array<string | number> = [];
  const re = /\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\.?([^.[\]]+)/g;
  for (let m = re.exec(path); m; m = re.exec(path)) keys.push(m[1] !== undefined ? Number(m[1]) : (m[2] ?? m[3]));
  return keys;
}

/** Whether `prefix` covers `path` (a `*` key matches any key). */
function pathContains(prefix: Array<string | number>, path: Array<string | number>): boolean {
  return prefix.length <= path.length && prefix.every((k, i) => k === "*" || String(k) === String(path[i]));
}

/** The news with each ignored path holding its old value again (absent when it was absent). */
export function ignoreChanges(news: PropertyMap, olds: PropertyMap | undefined, paths: string[]): PropertyMap {
  if (!olds || paths.length === 0) return news;
  const out = structuredClone(news);
  for (const path of paths) {
    const keys = parsePath(path);
    if (keys.length === 0) continue;
    let from: unknown = olds;
    let to: unknown = out;
    for (const key of keys.slice(0, -1)) {
      from = (from as Record<PropertyKey, unknown> | undefined)?.[key];
      to = (to as Record<PropertyKey, unknown> | undefined)?.[key];
    }
    if (typeof to !== "object" || to === null) continue; // the path's parent was added or removed: nothing to keep
    const last = keys[keys.length - 1];
    const old = (from as Record<PropertyKey, unknown> | undefined)?.[last];
    if (old === undefined) delete (to as Record<PropertyKey, unknown>)[last];
    else (to as Record<PropertyKey, unknown>)[last] = structuredClone(old);
  }
  return out;
}

/** The diff with every change under a replaceOnChanges path made a replace. */
export function replaceOnChanges(diff: DiffResponse, paths: string[]): DiffResponse {
  if (!diff.changes || paths.length === 0) return diff;
  const prefixes = paths.map(parsePath);
  const covered = (p: string) => prefixes.some((prefix) => pathContains(prefix, parsePath(p)));
  const detailedDiff: DiffResponse["detailedDiff"] = {};
  for (const [p, { kind }] of Object.entries(diff.detailedDiff)) {
    detailedDiff[p] = { kind: covered(p) && !kind.endsWith("-replace") ? (`${kind}-replace` as DiffKind) : kind };
  }
  const replaces = new Set(diff.replaces);
  for (const key of diff.diffs) if (covered(key) || Object.keys(detailedDiff).some((p) => covered(p) && parsePath(p)[0] === key)) replaces.add(key);
  return { ...diff, replaces: [...replaces], detailedDiff };
}

/** A Go duration as Pulumi's customTimeouts take it ("5m", "1h30m", "90s", "500ms") in seconds. */
export function parseDuration(text: string): number | undefined {
  if (!text) return undefined;
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  let total = 0;
  let rest = text.trim();
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/.exec(rest);
    if (!m) throw new Error(`"${text}" is not a duration such as "5m", "1h30m" or "90s"`);
    total += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}
