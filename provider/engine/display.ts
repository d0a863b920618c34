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

export function summarize(steps: Step[]): ChangeSummary {
  const summary: ChangeSummary = {};
  for (const step of steps) summary[step.op] = (summary[step.op] ?? 0) + 1;
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

/** One line per step, in Pulumi's shape: symbol, type, name, and what changed. */
export function stepLine(step: Step, verb: "plan" | "done"): string {
  const { name } = parseUrn(step.urn);
  const words: Record<StepOp, [string, string]> = {
    same: ["", ""],
    create: ["create", "created"],
    update: ["update", "updated"],
    replace: ["replace", "replaced"],
    delete: ["delete", "deleted"],
    refresh: ["refresh", "refreshed"],
    import: ["import", "imported"],
  };
  const what = words[step.op][verb === "plan" ? 0 : 1];
  const diff = step.diffs.length > 0 ? ` [diff: ${step.diffs.map((d) => `~${d}`).join(", ")}]` : "";
  const why = step.op === "replace" && step.replaces.length > 0 ? ` (replace because of ${step.replaces.join(", ")})` : "";
  return ` ${SYMBOL[step.op]} ${step.type.padEnd(24)} ${name.padEnd(20)} ${what}${diff}${why}`;
}

/** Property-level lines under a step, as `--diff` shows them. */
export function propertyLines(step: Step): string[] {
  const lines: string[] = [];
  const olds = step.old?.inputs;
  const news = step.new?.inputs;
  if (step.op === "create") {
    for (const [k, v] of Object.entries(news ?? {})) if (!k.startsWith("__")) lines.push(`      + ${k}: ${show(v)}`);
  } else if (step.op === "delete") {
    for (const [k, v] of Object.entries(olds ?? {})) if (!k.startsWith("__")) lines.push(`      - ${k}: ${show(v)}`);
  } else {
    for (const [path, { kind }] of Object.entries(step.detailedDiff)) {
      const base = kind.replace("-replace", "");
      const forces = kind.endsWith("-replace") ? " (forces replacement)" : "";
      const source = step.op === "refresh" ? [step.old?.outputs, step.new?.outputs] : [olds, news];
      if (base === "add") lines.push(`      + ${path}: ${show(at(source[1], path))}${forces}`);
      else if (base === "delete") lines.push(`      - ${path}: ${show(at(source[0], path))}${forces}`);
      else lines.push(`      ~ ${path}: ${show(at(source[0], path) ?? at(step.old?.outputs, path))} => ${show(at(source[1], path))}${forces}`);
    }
  }
  return lines;
}

export function renderPlan(steps: Step[], opts: { diff: boolean }): string {
  const lines: string[] = [];
  for (const step of steps) {
    if (step.op === "same") continue;
    lines.push(stepLine(step, "plan"));
    if (opts.diff) lines.push(...propertyLines(step));
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

export function renderDiagnostics(diagnostics: Diagnostic[]): string {
  return diagnostics.map((d) => `${d.severity}: ${d.message}`).join("\n");
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
