// The berth command line: `berth preview|up|refresh|destroy [DIR] [--stack NAME] [--yes] [--diff] [--json]
// [--expect-no-changes]`, worded and exiting as the Pulumi CLI does.
import * as readline from "node:readline/promises";
import { createNativeRuntime } from "../../native";
import * as commands from "../engine/commands";
import { hasChanges, show, planJson, propertyLines, renderDiagnostics, renderPlan, renderSummary, stepLine } from "../engine/display";
import type { Step } from "../engine/steps";

const USAGE = `usage: berth <preview|up|refresh|destroy> [DIR] [--stack NAME] [--yes] [--diff] [--json] [--expect-no-changes]

  preview   show what up would change; changes nothing
  up        preview, then apply the program to this host
  refresh   read what is really on the host into the state (drift); the next up repairs it
  destroy   delete everything the stack made

  DIR                  the Pulumi project directory (default: .)
  --stack NAME         the stack (default: dev)
  --yes                apply without asking (required when not interactive)
  --diff               show property-level changes
  --json               print the plan as JSON (preview)
  --expect-no-changes  exit non-zero if the plan is not empty`;

interface Flags {
  command: string;
  dir: string;
  stack: string;
  yes: boolean;
  diff: boolean;
  json: boolean;
  expectNoChanges: boolean;
}

export function parseArgs(argv: string[]): Flags {
  const flags: Flags = { command: "", dir: ".", stack: "dev", yes: false, diff: false, json: false, expectNoChanges: false };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--stack" || arg === "-s") flags.stack = argv[++i] ?? fail(`${arg} needs a stack name`);
    else if (arg.startsWith("--stack=")) flags.stack = arg.slice("--stack=".length);
    else if (arg === "--yes" || arg === "-y") flags.yes = true;
    else if (arg === "--diff") flags.diff = true;
    else if (arg === "--json" || arg === "-j") flags.json = true;
    else if (arg === "--expect-no-changes") flags.expectNoChanges = true;
    else if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else if (arg.startsWith("-")) fail(`unknown flag ${arg}`);
    else positional.push(arg);
  }
  flags.command = positional[0] ?? fail("a command is needed");
  flags.dir = positional[1] ?? ".";
  if (positional.length > 2) fail(`unexpected argument ${positional[2]}`);
  return flags;
}

function fail(message: string): never {
  console.error(`error: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function confirm(question: string, yes: boolean): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) {
    console.error("error: --yes must be passed in to proceed when running in non-interactive mode");
    return false;
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question(`${question} [yes/no] `);
  rl.close();
  return answer.trim().toLowerCase() === "yes";
}

function report(outcome: commands.Outcome, flags: Flags, started: number): number {
  if (outcome.diagnostics.length > 0) console.log(`\nDiagnostics:\n${renderDiagnostics(outcome.diagnostics)}`);
  const outputs = Object.entries(outcome.outputs);
  if (outputs.length > 0 && (outcome.ok || flags.command === "preview")) {
    console.log("\nOutputs:");
    for (const [k, v] of outputs) console.log(`    ${k}: ${show(v)}`);
  }
  console.log(`\n${renderSummary(outcome.steps)}\n\nDuration: ${((Date.now() - started) / 1000).toFixed(1)}s`);
  if (!outcome.ok) return 1;
  return flags.expectNoChanges && hasChanges(outcome.steps) ? 1 : 0;
}

const live = (flags: Flags) => (step: Step) => {
  if (step.op === "same") return;
  console.log(stepLine(step, "done"));
  if (flags.diff) for (const line of propertyLines(step)) console.log(line);
};

export async function main(argv: string[]): Promise<number> {
  const flags = parseArgs(argv);
  const started = Date.now();
  const ctx = commands.openStack(flags.dir, flags.stack, createNativeRuntime());
  const heading = (verb: string) => console.log(`${verb} (${ctx.project.name}/${flags.stack}):\n`);

  switch (flags.command) {
    case "preview": {
      const outcome = await commands.preview(ctx);
      if (flags.json) {
        console.log(JSON.stringify(planJson(outcome.steps, outcome.diagnostics, ctx.config), null, 2));
        return outcome.ok && !(flags.expectNoChanges && hasChanges(outcome.steps)) ? 0 : 1;
      }
      heading("Previewing update");
      console.log(renderPlan(outcome.steps, flags));
      return report(outcome, flags, started);
    }
    case "up": {
      heading("Previewing update");
      const plan = await commands.preview(ctx);
      console.log(renderPlan(plan.steps, flags));
      if (!plan.ok) return report(plan, flags, started);
      // Nothing to do: the state already says exactly this, so the program need not run a second time.
      if (!hasChanges(plan.steps)) return report(plan, flags, started);
      console.log(`\n${renderSummary(plan.steps)}\n`);
      if (!(await confirm("Do you want to perform this update?", flags.yes))) return 1;
      heading("Updating");
      return report(await commands.up(ctx, live(flags)), flags, started);
    }
    case "refresh": {
      heading("Refreshing");
      return report(await commands.refresh(ctx, live(flags)), flags, started);
    }
    case "destroy": {
      heading("Previewing destroy");
      const plan = await commands.previewDestroy(ctx);
      console.log(renderPlan(plan.steps, flags));
      if (!hasChanges(plan.steps)) return report(plan, flags, started);
      console.log(`\n${renderSummary(plan.steps)}\n`);
      if (!(await confirm("Do you want to perform this destroy?", flags.yes))) return 1;
      heading("Destroying");
      return report(await commands.destroy(ctx, live(flags)), flags, started);
    }
    default:
      return fail(`unknown command "${flags.command}"`);
  }
}
