// Reviewing changes in git: a saved plan (`preview --save-plan`, then `up --plan` does exactly that or nothing),
// a Markdown summary of a preview for a pull request, and the stack's dependency graph in Pulumi's DOT.
import type { DeploymentV3 } from "../state/checkpoint";
import { mapSecrets, revealAll } from "../values";
import type { Diagnostic } from "./deployment";
import { propertyLines, renderDiagnostics, renderSummary } from "./display";
import { type Step, SYMBOL } from "./steps";
import { parseUrn } from "./urn";

/**
 * One resource's planned step: what it will do and with which inputs. The file is reviewed in git, so a secret is
 * written as a keyed fingerprint of its value, never the value.
 */
export interface PlannedStep {
  op: Step["op"];
  inputs?: Record<string, unknown>;
}

export interface PlanFile {
  version: 1;
  project: string;
  stack: string;
  /** URN → planned step, for every resource the plan changes. */
  resources: Record<string, PlannedStep>;
  /** The preview's autoname seed, so `up --plan` picks the names planned. */
  seed?: string;
}

export type Fingerprint = (plaintext: string) => string;

const planned = (step: Step, fingerprint: Fingerprint): PlannedStep => ({
  op: step.op,
  ...(step.new && step.op !== "delete" ? { inputs: fingerprintSecrets(step.new.inputs, fingerprint) } : {}),
});

function fingerprintSecrets(props: Record<string, unknown>, fingerprint: Fingerprint): Record<string, unknown> {
  return mapSecrets(props, (secret) => `[secret ${fingerprint(JSON.stringify(revealAll(secret)))}]`) as Record<string, unknown>;
}

export function makePlan(project: string, stack: string, steps: Step[], fingerprint: Fingerprint, seed?: string): PlanFile {
  const resources: Record<string, PlannedStep> = {};
  for (const step of steps) if (step.op !== "same") resources[step.urn] = planned(step, fingerprint);
  return { version: 1, project, stack, resources, ...(seed ? { seed } : {}) };
}

export function readPlan(text: string, file: string): PlanFile {
  const plan = JSON.parse(text) as PlanFile;
  if (plan.version !== 1 || typeof plan.resources !== "object") throw new Error(`${file} is not a berth plan (berth preview --save-plan FILE writes one)`);
  return plan;
}

/**
 * Why a step may not run under the plan, or undefined when the plan allows it: the same operation with the same
 * inputs; a resource the plan leaves alone must stay unchanged.
 */
export function planViolation(plan: PlanFile, step: Step, fingerprint: Fingerprint): string | undefined {
  const expected = plan.resources[step.urn];
  const name = `${step.type} "${parseUrn(step.urn).name}"`;
  if (!expected) return step.op === "same" ? undefined : `${name}: the plan leaves it unchanged, but now it would ${step.op}`;
  if (expected.op !== step.op) return `${name}: the plan says ${expected.op}, but now it would ${step.op}`;
  const now = planned(step, fingerprint).inputs;
  if (expected.inputs && JSON.stringify(now) !== JSON.stringify(expected.inputs)) {
    const keys = Object.keys({ ...expected.inputs, ...now }).filter((k) => JSON.stringify(expected.inputs![k]) !== JSON.stringify(now?.[k]));
    return `${name}: its inputs differ from the plan (${keys.join(", ")})`;
  }
  return undefined;
}

/** Planned steps that did not happen (checked once the run is over). */
export function unmetPlan(plan: PlanFile, steps: Step[]): string[] {
  const done = new Set(steps.filter((s) => s.op !== "same").map((s) => s.urn));
  return Object.entries(plan.resources)
    .filter(([urn]) => !done.has(urn))
    .map(([urn, p]) => `${parseUrn(urn).type} "${parseUrn(urn).name}": the plan says ${p.op}, but now nothing would change`);
}

/** A pull-request comment: the steps as a table, each change's property diff (secrets masked), the summary. */
export function markdownSummary(title: string, steps: Step[]): string {
  const changes = steps.filter((s) => s.op !== "same");
  const lines = [`### ${title}`, ""];
  if (changes.length === 0) {
    lines.push("No changes.");
  } else {
    lines.push("| | Type | Name | Operation | Changed | Replace because of |", "|---|---|---|---|---|---|");
    for (const s of changes) {
      const cell = (xs: string[]) => xs.map((x) => `\`${x}\``).join(", ");
      lines.push(`| \`${SYMBOL[s.op].trim()}\` | \`${s.type}\` | ${parseUrn(s.urn).name} | ${s.op} | ${cell(s.diffs)} | ${s.op === "replace" ? cell(s.replaces) : ""} |`);
    }
    lines.push("", "<details><summary>Property changes</summary>", "", "```diff");
    for (const s of changes) {
      lines.push(`${SYMBOL[s.op]} ${s.type} ${parseUrn(s.urn).name}`);
      // `--diff`'s lines, with the change mark in the first column so GitHub colours them.
      for (const line of propertyLines(s)) lines.push(line.trimStart().replace(/^([~+-]) /, (_m, mark: string) => `${mark === "~" ? "!" : mark}   `));
    }
    lines.push("```", "", "</details>");
  }
  lines.push("", "```", renderSummary(steps), "```");
  return lines.join("\n");
}

/**
 * A pull-request comment's diagnostics, as its summary masks secrets: warnings and errors, with every secret the run
 * knows as "[secret]" (`secrets`: the stack's secret config; the secret inputs and outputs of its steps). What the
 * program printed and logged at info level is left out: it may print a secret it revealed, which nothing marks.
 */
export function markdownDiagnostics(diagnostics: Diagnostic[], steps: Step[], secrets: string[]): string {
  const texts = new Set(secrets);
  const collect = (v: unknown): void => {
    if (typeof v === "string") texts.add(v);
    else if (typeof v === "number" || typeof v === "boolean") texts.add(String(v));
    else if (Array.isArray(v)) v.forEach(collect);
    else if (typeof v === "object" && v !== null) Object.values(v).forEach(collect);
  };
  const findSecrets = (v: unknown) => mapSecrets(v, (secret) => (collect(revealAll(secret.value)), secret));
  for (const s of steps) for (const r of [s.old, s.new]) if (r) [r.inputs, r.outputs].forEach(findSecrets);
  // Each as a message may quote it too: one line of a multi-line secret (a PEM key; lines of under 4 characters are
  // too common to mask alone), and JSON-escaped (an error quoting a value).
  const forms = (t: string) =>
    [t, ...t.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length >= 4)].flatMap((f) => [f, JSON.stringify(f).slice(1, -1)]);
  const masked = new Set([...texts].flatMap(forms));
  masked.delete("");
  const longestFirst = [...masked].sort((a, b) => b.length - a.length);
  const shown = diagnostics
    .filter((d) => d.severity !== "info")
    .map((d) => ({ ...d, message: longestFirst.reduce((m, t) => m.split(t).join("[secret]"), d.message) }));
  return shown.length > 0 ? `\`\`\`\n${renderDiagnostics(shown)}\n\`\`\`` : "";
}

/** The stack's resources and their edges, as `pulumi stack graph` writes them. */
export function dotGraph(d: DeploymentV3): string {
  const live = d.resources.filter((r) => !r.delete);
  const ids = new Map(live.map((r, i) => [r.urn, `Resource${i}`]));
  const lines = ["strict digraph {"];
  for (const r of live) {
    lines.push(`    ${ids.get(r.urn)} [label="${r.urn}"];`);
    for (const dep of r.dependencies ?? []) if (ids.has(dep)) lines.push(`    ${ids.get(r.urn)} -> ${ids.get(dep)} [color = "#246C60"];`);
    if (r.parent && ids.has(r.parent)) lines.push(`    ${ids.get(r.urn)} -> ${ids.get(r.parent)} [color = "#AA6639"];`);
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}
