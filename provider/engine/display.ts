// How a plan reads: Pulumi's symbols and summary for people, Pulumi's preview digest for machines.
import type { Diagnostic } from "./deployment";
import { type Step, type StepOp, SYMBOL } from "./steps";
import { parseUrn } from "./urn";
import { SIG, UNKNOWN, isSecret } from "../values";
import type { PropertyMap } from "../resources/provider";
import type { StackConfig } from "../state/stackconfig";

/** Each counted step's verb: "to create" in a plan, "created" once applied (Pulumi's wording). */
const COUNTED: Array<[StepOp, string, string]> = [
  ["create", "to create", "created"],
  ["update", "to update", "updated"],
  ["replace", "to replace", "replaced"],
  ["delete", "to delete", "deleted"],
  ["import", "to import", "imported"],
];

export type ChangeSummary = Partial<Record<StepOp, number>>;

/** The old copy of a replaced resource, deleted once its replacement exists: part of the replace, not a delete. */
const deletesOriginal = (step: Step): boolean => step.op === "delete" && Boolean(step.old?.delete);

const DEFAULT_PROVIDER = /^default(_\d+_\d+_\d+\w*)?$/;

/** Pulumi's default provider: made and deleted with the stack, never shown (a user's own provider is). */
const isDefaultProvider = (step: Step): boolean => step.type.startsWith("pulumi:providers:") && DEFAULT_PROVIDER.test(parseUrn(step.urn).name);

/** The explicit provider (`{ provider: h2 }`) a step goes through, by name: which host it acts on. */
function providerOf(step: Step): string | undefined {
  const ref = (step.op === "delete" ? step.old : (step.new ?? step.old))?.provider;
  const name = ref && parseUrn(ref.slice(0, ref.lastIndexOf("::"))).name;
  return name && !DEFAULT_PROVIDER.test(name) ? name : undefined;
}

/** The steps a person is shown: not the default provider's. */
export const shownSteps = (steps: Step[]): Step[] => steps.filter((s) => !isDefaultProvider(s));

export function summarize(steps: Step[]): ChangeSummary {
  const summary: ChangeSummary = {};
  for (const step of shownSteps(steps)) if (!deletesOriginal(step)) summary[step.op] = (summary[step.op] ?? 0) + 1;
  return summary;
}

export function hasChanges(steps: Step[]): boolean {
  return steps.some((s) => s.op !== "same");
}

/** A property value as a preview prints it: unknowns as output<string>, secrets masked. */
export function show(value: unknown): string {
  if (value === UNKNOWN) return "output<string>";
  if (isSecret(value)) return "[secret]";
  if (value === undefined) return "undefined";
  return JSON.stringify(value, (_k, v) => (v === UNKNOWN ? "output<string>" : isSecret(v) ? "[secret]" : v));
}

/** The value at a detailed-diff path such as "ports[0].hostPort" or "env.GREETING". */
function at(props: PropertyMap | undefined, path: string): unknown {
  let node: unknown = props;
  for (const key of path.replace(/\[(\d+)\]/g, ".$1").split(".")) {
    if (isSecret(node)) return node; // a path into a secret shows as the secret
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** ANSI colours of each operation, as Pulumi's (create green, update yellow, replace magenta, delete red). */
const COLOR: Record<StepOp, string> = { same: "", create: "32", update: "33", replace: "35", delete: "31", refresh: "33", import: "36" };

/** Colours a line as its step's operation, when asked. */
export const paint = (step: Step, text: string, color = false): string =>
  color && COLOR[step.op] ? `\x1b[${COLOR[step.op]}m${text}\x1b[0m` : text;

/** One line per step, in Pulumi's shape: symbol, type, name, and what changed; "doing" while it runs. */
export function stepLine(step: Step, verb: "plan" | "doing" | "done", color = false): string {
  const { name } = parseUrn(step.urn);
  const words: Record<StepOp, [string, string, string]> = {
    same: ["", "", ""],
    create: ["create", "creating", "created"],
    update: ["update", "updating", "updated"],
    replace: ["replace", "replacing", "replaced"],
    delete: ["delete", "deleting", "deleted"],
    refresh: ["refresh", "refreshing", "refreshed"],
    import: ["import", "importing", "imported"],
  };
  const form = verb === "plan" ? 0 : verb === "doing" ? 1 : 2;
  const what = deletesOriginal(step) ? ["delete original", "deleting original", "deleted original"][form] : words[step.op][form];
  const symbol = deletesOriginal(step) ? "--" : SYMBOL[step.op];
  const diff = step.diffs.length > 0 ? ` [diff: ${step.diffs.map((d) => `~${d}`).join(", ")}]` : "";
  const why = step.op === "replace" && step.replaces.length > 0 ? ` (replace because of ${step.replaces.join(", ")})` : "";
  const via = providerOf(step);
  return paint(step, ` ${symbol} ${step.type.padEnd(24)} ${name.padEnd(20)} ${what}${diff}${why}${via ? ` [provider=${via}]` : ""}`, color);
}

/**
 * A value as Pulumi's --diff shows it: scalars as JSON, objects and arrays one entry a line (`key: value`,
 * `[0]: value`), keys aligned, nested entries indented under their parent.
 */
export function nested(value: unknown, indent: string): string {
  if (value === UNKNOWN || isSecret(value) || value === null || typeof value !== "object") return show(value);
  const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((v, i) => [`[${i}]`, v]) : Object.entries(value);
  const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  if (entries.length === 0) return `${open}${close}`;
  const width = Math.max(...entries.map(([k]) => k.length));
  const inner = `${indent}    `;
  return `${open}\n${entries.map(([k, v]) => `${inner}${k.padEnd(width)}: ${nested(v, inner)}`).join("\n")}\n${indent}${close}`;
}

/** A create's or delete's properties: keys aligned, values nested. */
function propertyBlock(sign: "+" | "-", props: PropertyMap | undefined): string[] {
  const entries = Object.entries(props ?? {}).filter(([k]) => !k.startsWith("__"));
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `      ${sign} ${k.padEnd(width)}: ${nested(v, "        ")}`);
}

/** Property-level lines under a step, as `--diff` shows them. */
export function propertyLines(step: Step): string[] {
  const lines: string[] = [];
  const olds = step.old?.inputs;
  const news = step.new?.inputs;
  if (step.op === "create") {
    lines.push(...propertyBlock("+", news));
  } else if (step.op === "delete") {
    lines.push(...propertyBlock("-", olds));
  } else {
    for (const [path, { kind }] of Object.entries(step.detailedDiff)) {
      const base = kind.replace("-replace", "");
      const forces = kind.endsWith("-replace") ? " (forces replacement)" : "";
      const source = step.op === "refresh" ? [step.old?.outputs, step.new?.outputs] : [olds, news];
      const value = (v: unknown) => nested(v, "        ");
      if (base === "add") lines.push(`      + ${path}: ${value(at(source[1], path))}${forces}`);
      else if (base === "delete") lines.push(`      - ${path}: ${value(at(source[0], path))}${forces}`);
      else lines.push(`      ~ ${path}: ${value(at(source[0], path) ?? at(step.old?.outputs, path))} => ${value(at(source[1], path))}${forces}`);
    }
  }
  return lines;
}

export function renderPlan(steps: Step[], opts: { diff: boolean; color?: boolean }): string {
  const lines: string[] = [];
  for (const step of shownSteps(steps)) {
    if (step.op === "same") continue;
    lines.push(stepLine(step, "plan", opts.color));
    if (opts.diff) lines.push(...propertyLines(step).map((l) => paint(step, l, opts.color)));
  }
  return lines.join("\n");
}

export function renderSummary(steps: Step[], applied = false): string {
  const summary = summarize(steps);
  const lines = ["Resources:"];
  for (const [op, planned, done] of COUNTED) if (summary[op]) lines.push(`    ${SYMBOL[op].trim().padEnd(2)} ${summary[op]} ${applied ? done : planned}`);
  if (summary.refresh) lines.push(`    ~  ${summary.refresh} refreshed`);
  const unchanged = summary.same ?? 0;
  if (unchanged > 0 || lines.length === 1) lines.push(`    ${unchanged} unchanged`);
  return lines.join("\n");
}

/** Diagnostics as lines; the program's own colours (@pulumi/pulumi colours every stack it prints) only with colour on. */
export function renderDiagnostics(diagnostics: Diagnostic[], color = false): string {
  // Messages at info level stand alone, as in Pulumi's display.
  const text = diagnostics.map((d) => (d.severity === "info" ? d.message : `${d.severity}: ${d.message}`)).join("\n");
  return color ? text : text.replace(/\x1b\[[0-9;]*m/g, "");
}

/** A machine-readable plan in the shape of `pulumi preview --json`. */
export function planJson(steps: Step[], diagnostics: Diagnostic[], config: StackConfig): unknown {
  const state = (r: Step["old"]) => r && { urn: r.urn, type: r.type, id: r.id, inputs: mask(r.inputs), outputs: mask(r.outputs) };
  return {
    config: Object.fromEntries(Object.entries(config.values).map(([k, v]) => [k, config.secretKeys.includes(k) ? "[secret]" : v])),
    steps: steps.map((s) => ({
      op: s.op,
      urn: s.urn,
      oldState: state(s.old),
      newState: state(s.new),
      diffReasons: s.diffs.length > 0 ? s.diffs : undefined,
      replaceReasons: s.op === "replace" ? s.replaces : undefined,
      // Pulumi marks each entry as a difference of inputs (berth's diffs always are).
      detailedDiff: Object.keys(s.detailedDiff).length > 0
        ? Object.fromEntries(Object.entries(s.detailedDiff).map(([p, d]) => [p, { ...d, inputDiff: true }]))
        : undefined,
    })),
    diagnostics: diagnostics.map((d) => ({ severity: d.severity, urn: d.urn, message: d.message })),
    changeSummary: summarize(steps),
  };
}

/** Secrets as "[secret]", for anything printed. */
export function mask(props: PropertyMap): PropertyMap {
  return JSON.parse(JSON.stringify(props, (_k, v) => (isSecret(v) ? "[secret]" : v)), (k, v) => (k === SIG ? undefined : v));
}
