// Output as Docker's CLI writes it: aligned tables, `--format` templates, `--filter key=value`, sizes and times.
//
// `--format` takes the subset of Go templates Docker users write: `{{.Field}}` and `{{.Field.Sub}}` (names
// matched case-insensitively, so Docker's `{{.State.Status}}` reads berth's `state.status`), `{{json .}}` and
// `{{json .Field}}`, `{{index .Labels "key"}}`, `{{upper X}}`, `{{lower X}}`, `{{.Label "key"}}` on ps rows, and
// the `table` prefix (a header row, columns aligned); "\t" in the template separates columns. `json` alone is
// `{{json .}}`. Anything else ({{range}}, {{if}}, pipes) is refused with an error naming the action.
import { type FlagSpec, UsageError } from "./args";

type Row = Record<string, unknown>;

function field(value: unknown, name: string): unknown {
  if (value === null || typeof value !== "object") return undefined;
  const obj = value as Row;
  if (name in obj) return obj[name];
  const key = Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : obj[key];
}

function text(v: unknown): string {
  if (v === undefined || v === null) return "<no value>";
  if (typeof v === "object") return Array.isArray(v) ? `[${v.map(text).join(" ")}]` : `map[${Object.entries(v).map(([k, x]) => `${k}:${text(x)}`).join(" ")}]`;
  return String(v);
}

/** Evaluates one `{{…}}` action against a value. */
function evaluate(action: string, dot: unknown): string {
  const words = action.trim().match(/"(?:[^"\\]|\\.)*"|\S+/g) ?? [];
  const operand = (w: string | undefined): unknown => {
    if (w === undefined) throw new UsageError(`template: missing operand in {{${action}}}`, "");
    if (w.startsWith('"')) return JSON.parse(w);
    if (w === ".") return dot;
    if (!w.startsWith(".")) throw new UsageError(`template: function "${w}" not supported in {{${action}}} (berth supports .Field, json, index, upper, lower)`, "");
    return w.slice(1).split(".").reduce<unknown>((v, n) => field(v, n), dot);
  };
  const [head, ...rest] = words;
  switch (head) {
    case "json":
      return JSON.stringify(operand(rest[0]) ?? null);
    case "index": {
      const v = operand(rest[0]);
      return text(Array.isArray(v) ? v[Number(rest[1])] : field(v, String(operand(rest[1]))));
    }
    case "upper":
      return text(operand(rest[0])).toUpperCase();
    case "lower":
      return text(operand(rest[0])).toLowerCase();
    default: {
      const v = operand(head);
      // ps rows' `.Label "key"` is a method call in Docker.
      if (typeof v === "function") return text(v(...rest.map(operand)));
      if (rest.length > 0) throw new UsageError(`template: unexpected "${rest[0]}" in {{${action}}}`, "");
      return text(v);
    }
  }
}

/** Renders a template (already without the `table` prefix) for one value. */
export function renderTemplate(template: string, dot: unknown): string {
  return template
    .replace(/\\t/g, "\t")
    .replace(/\\n/g, "\n")
    .replace(/\{\{(.*?)\}\}/g, (_, action: string) => evaluate(action, dot));
}

/** Columns padded to their widest cell, three spaces apart (Docker's tabwriter settings). */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join("   ").trimEnd()).join("\n");
}

/**
 * Prints rows as Docker does: the default columns, or a `--format` template (with `table`, a header from
 * `headers`: field → column title), or `json` (one JSON object per line).
 */
export function printRows(rows: Row[], opts: { format?: string; columns: string[]; headers: Record<string, string> }): void {
  const format = opts.format === "json" ? "{{json .}}" : opts.format;
  if (!format || format === "table") {
    const head = opts.columns.map((c) => opts.headers[c] ?? c.toUpperCase());
    console.log(table([head, ...rows.map((r) => opts.columns.map((c) => String(r[c] ?? "")))]));
    return;
  }
  if (!format.startsWith("table")) {
    for (const r of rows) console.log(renderTemplate(format, r));
    return;
  }
  const body = format.slice("table".length).trim();
  const title = body.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_, f: string) => opts.headers[f] ?? f.toUpperCase());
  const cells = (line: string) => line.split("\t");
  console.log(table([cells(renderTemplate(title, {})), ...rows.map((r) => cells(renderTemplate(body, r)))]));
}

/** `--filter key=value` flags: same key ORed, different keys ANDed, as Docker. */
export function filters(values: string[], known: string[], cmd: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of values) {
    const eq = f.indexOf("=");
    if (eq <= 0) throw new UsageError(`bad format of filter (expected name=value): ${f}`, `See 'berth ${cmd} --help'.`);
    const key = f.slice(0, eq);
    if (!known.includes(key)) throw new UsageError(`invalid filter '${key}' (berth ${cmd} knows ${known.join(", ")})`, `See 'berth ${cmd} --help'.`);
    out.set(key, [...(out.get(key) ?? []), f.slice(eq + 1)]);
  }
  return out;
}

/** Whether a label filter ("key" or "key=value") matches labels. */
export const labelMatches = (labels: Record<string, string> | undefined, want: string): boolean => {
  const eq = want.indexOf("=");
  return eq < 0 ? want in (labels ?? {}) : labels?.[want.slice(0, eq)] === want.slice(eq + 1);
};

/** Docker's sizes (go-units HumanSize): decimal units, four significant digits. */
export function humanSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let n = bytes;
  while (n >= 1000 && i < units.length - 1) (n /= 1000), i++;
  return `${Number(n.toPrecision(4))}${units[i]}`;
}

/** Binary sizes, as `docker stats` shows memory. */
export function binarySize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i === 0 ? 0 : 2)}${units[i]}`;
}

/** "5 seconds", "3 minutes", "2 hours", "4 days" (Docker's units.HumanDuration). */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 1) return "Less than a second";
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? "About a minute" : `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h < 48) return h === 1 ? "About an hour" : `${h} hours`;
  return `${Math.round(h / 24)} days`;
}

export const ago = (iso: string | undefined): string => {
  const t = Date.parse(iso ?? "");
  return Number.isFinite(t) ? `${humanDuration(Date.now() - t)} ago` : "";
};

/**
 * A `--since`/`--until` value as epoch milliseconds: an RFC 3339 time or date, Unix seconds (with fraction), or
 * a duration before now ("10m", "1h30m", "45s"), as Docker reads them.
 */
export function parseTime(value: string, flag: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length > 0 && parts.map((p) => p[0]).join("") === value) {
    return Date.now() - parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]], 0);
  }
  const t = Date.parse(value);
  if (Number.isFinite(t)) return t;
  throw new UsageError(`invalid value "${value}" for ${flag}: give an RFC 3339 time (2026-01-02T15:04:05Z), Unix seconds or a duration (10m)`, "");
}

/** A listing's `--format`; `field` is the example its help names. */
export const formatFlag = (field: string): FlagSpec => ({ name: "format", value: "STRING", help: `a Go template ({{.${field}}}, {{json .}}, table …), or json` });

export const FORMAT = formatFlag("Name");

/** An image id as Docker lists it: 12 hex digits, without "sha256:". */
export const shortId = (id: string): string => id.replace(/^sha256:/, "").slice(0, 12);
