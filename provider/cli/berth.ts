// The berth command line: `berth preview|up|refresh|destroy [DIR]`, `berth config set|get`, `berth stack output`,
// worded and exiting as the Pulumi CLI does.
import * as fs from "node:fs";
import * as readline from "node:readline/promises";
import { createNativeRuntime } from "../../native";
import * as commands from "../engine/commands";
import { hasChanges, show, planJson, propertyLines, renderDiagnostics, renderPlan, renderSummary, stepLine } from "../engine/display";
import { makePlan, markdownSummary, readPlan } from "../engine/review";
import type { Step } from "../engine/steps";
import type { Diagnostic } from "../engine/deployment";
import type { ProviderConfig } from "../resources";
import { stackCommand } from "./stack";
import { CONTAINER_COMMANDS, CONTAINER_USAGE, containerCommand } from "./containers";
import { BUILD_COMMANDS, BUILD_USAGE, buildCommand, withBuildProgress } from "./build";
import { SYSTEM_USAGE, systemCommand } from "./system";

const USAGE = `usage: berth <preview|up|refresh|destroy> [DIR] [--stack NAME] [--yes] [--diff] [--json] [--expect-no-changes]
       berth config set KEY VALUE [--secret] | config get KEY   [-C DIR] [--stack NAME]
       berth import TYPE NAME ID [--protect=false]   [-C DIR] [--stack NAME]
       berth stack output [NAME] [--json] [--show-secrets] | stack graph [FILE]   [-C DIR] [--stack NAME]

  preview   show what up would change; changes nothing
  up        preview, then apply the program to this host
  refresh   read what is really on the host into the state (drift); the next up repairs it
  destroy   delete everything the stack made
  config    set or read the stack's config in Pulumi.<stack>.yaml (--secret: encrypted with the passphrase)
  import    adopt an object already on this host (e.g. berth:index:Volume data data) into the stack, protected
            unless --protect=false, and print the code that declares it
  stack output  the stack's outputs (secrets masked unless --show-secrets)
  stack graph   the stack's dependency graph in DOT, as pulumi stack graph writes it

  DIR, -C/--cwd DIR    the Pulumi project directory (default: .)
  --stack NAME         the stack (default: dev)
  --backend URL        the state backend (file://DIR); default as Pulumi finds it (PULUMI_BACKEND_URL,
                       Pulumi.yaml backend.url, pulumi login), else the project directory
  --secret             config set: store the value encrypted (PULUMI_CONFIG_PASSPHRASE)
  --show-secrets       stack output: print secret values
  --target URN         only change this resource (repeatable); the rest keep their last state
  --target-dependents  with --target: also change (replace, delete) what depends on a targeted resource
  --replace URN        replace this resource even if nothing changed (repeatable)
  --refresh            read the host into the state before planning
  --save-plan FILE     preview: write the plan, for review in git
  --plan FILE          up: apply exactly that plan; refuse, naming the difference, if the program or host moved
  --markdown           preview: a summary for a pull-request comment (secrets masked)
  --yes                apply without asking (required when not interactive)
  --diff               show property-level changes
  --json               print the plan as JSON (preview)
  --expect-no-changes  exit non-zero if the plan is not empty

Containers of this host (berth root $BERTH_ROOT, default /var/lib/berth):${CONTAINER_USAGE}${SYSTEM_USAGE}${BUILD_USAGE}`;

export interface Flags {
  command: string;
  /** Words after the command ("set", KEY, VALUE for `config set KEY VALUE`). */
  args: string[];
  dir: string;
  backend?: string;
  targets: string[];
  targetDependents?: boolean;
  replaceTargets: string[];
  refresh: boolean;
  savePlan?: string;
  plan?: string;
  markdown: boolean;
  secret: boolean;
  showSecrets: boolean;
  /** import: mark the imported resource protected (Pulumi's default). */
  protect: boolean;
  stack: string;
  yes: boolean;
  diff: boolean;
  json: boolean;
  expectNoChanges: boolean;
}

export function parseArgs(argv: string[]): Flags {
  const flags: Flags = { command: "", args: [], dir: ".", stack: "dev", yes: false, diff: false, json: false, expectNoChanges: false, secret: false, showSecrets: false, targets: [], replaceTargets: [], refresh: false, markdown: false, protect: true };
  let cwd: string | undefined;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--stack" || arg === "-s") flags.stack = argv[++i] ?? fail(`${arg} needs a stack name`);
    else if (arg.startsWith("--stack=")) flags.stack = arg.slice("--stack=".length);
    else if (arg === "--yes" || arg === "-y") flags.yes = true;
    else if (arg === "--diff") flags.diff = true;
    else if (arg === "--json" || arg === "-j") flags.json = true;
    else if (arg === "--expect-no-changes") flags.expectNoChanges = true;
    else if (arg === "--backend") flags.backend = argv[++i] ?? fail("--backend needs a URL such as file://~");
    else if (arg === "--cwd" || arg === "-C") cwd = argv[++i] ?? fail(`${arg} needs a directory`);
    else if (arg === "--secret") flags.secret = true;
    else if (arg === "--target" || arg === "-t") flags.targets.push(argv[++i] ?? fail(`${arg} needs a resource URN`));
    else if (arg === "--target-dependents") flags.targetDependents = true;
    else if (arg === "--replace") flags.replaceTargets.push(argv[++i] ?? fail("--replace needs a resource URN"));
    else if (arg === "--refresh" || arg === "-r") flags.refresh = true;
    else if (arg === "--save-plan") flags.savePlan = argv[++i] ?? fail("--save-plan needs a file name");
    else if (arg === "--plan") flags.plan = argv[++i] ?? fail("--plan needs a file written by berth preview --save-plan");
    else if (arg === "--markdown") flags.markdown = true;
    else if (arg === "--show-secrets") flags.showSecrets = true;
    else if (arg === "--protect" || arg === "--protect=true") flags.protect = true;
    else if (arg === "--protect=false") flags.protect = false;
    else if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else if (arg.startsWith("-")) fail(`unknown flag ${arg}`);
    else positional.push(arg);
  }
  flags.command = positional[0] ?? fail("a command is needed");
  if (flags.command === "config" || flags.command === "stack" || flags.command === "import") {
    flags.args = positional.slice(1);
    flags.dir = cwd ?? ".";
    return flags;
  }
  flags.dir = cwd ?? positional[1] ?? ".";
  if (positional.length > (cwd ? 1 : 2)) fail(`unexpected argument ${positional[cwd ? 1 : 2]}`);
  return flags;
}

/** The host runtime for a provider configuration. */
/** The runtime of a stack; image builds report progress on stderr (BuildKit's plain format, as Docker does). */
export const runtimeFor = (config: ProviderConfig) =>
  withBuildProgress(createNativeRuntime({ root: config.root, runDir: config.runDir }), (line) => process.stderr.write(`${line}\n`));

function scopeOf(flags: Flags): commands.RunScope {
  return {
    // Pulumi's --target also takes what is replaced on request.
    targets: flags.targets.length > 0 ? new Set([...flags.targets, ...flags.replaceTargets]) : undefined,
    targetDependents: flags.targetDependents,
    replaceTargets: flags.replaceTargets.length > 0 ? new Set(flags.replaceTargets) : undefined,
    refresh: flags.refresh,
    plan: flags.plan ? readPlan(fs.readFileSync(flags.plan, "utf8"), flags.plan) : undefined,
  };
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

/** Prints diagnostics, outputs and the summary; `applied` when the steps were carried out, not just planned. */
function report(outcome: commands.Outcome, flags: Flags, started: number, applied = false, shown: ReadonlySet<Diagnostic> = new Set()): number {
  const diagnostics = outcome.diagnostics.filter((d) => !shown.has(d));
  if (diagnostics.length > 0) console.log(`\nDiagnostics:\n${renderDiagnostics(diagnostics)}`);
  const outputs = Object.entries(outcome.outputs);
  if (outputs.length > 0 && (outcome.ok || flags.command === "preview")) {
    console.log("\nOutputs:");
    for (const [k, v] of outputs) console.log(`    ${k}: ${show(v)}`);
  }
  console.log(`\n${renderSummary(outcome.steps, applied)}\n\nDuration: ${((Date.now() - started) / 1000).toFixed(1)}s`);
  if (!outcome.ok) return 1;
  return flags.expectNoChanges && hasChanges(outcome.steps) ? 1 : 0;
}

const live = (flags: Flags) => (step: Step) => {
  if (step.op === "same") return;
  console.log(stepLine(step, "done"));
  if (flags.diff) for (const line of propertyLines(step)) console.log(line);
};

/** Everything that reads or changes the host needs root: say so before anything else. */
function needsRoot(): number | undefined {
  if (process.getuid?.() === 0) return undefined;
  console.error("error: berth needs root: it makes network namespaces, mounts, iptables rules and runc containers; run it as root (sudo berth …)");
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  if (CONTAINER_COMMANDS.has(argv[0])) return needsRoot() ?? containerCommand(createNativeRuntime(), argv[0], argv.slice(1));
  if (BUILD_COMMANDS.has(argv[0])) return needsRoot() ?? buildCommand(createNativeRuntime(), argv[0], argv.slice(1));
  if (argv[0] === "system") return needsRoot() ?? systemCommand(createNativeRuntime(), argv.slice(1));
  const flags = parseArgs(argv);
  const started = Date.now();
  if (flags.command === "config" || flags.command === "stack") return stackCommand(flags);
  const refused = needsRoot();
  if (refused !== undefined) return refused;
  const ctx = commands.openStack(flags.dir, flags.stack, runtimeFor, { backend: flags.backend, scope: scopeOf(flags) });
  const heading = (verb: string) => console.log(`${verb} (${ctx.project.name}/${flags.stack}):\n`);

  switch (flags.command) {
    case "preview": {
      const outcome = await commands.preview(ctx);
      if (flags.savePlan && outcome.ok) fs.writeFileSync(flags.savePlan, `${JSON.stringify(makePlan(ctx.project.name, flags.stack, outcome.steps, commands.fingerprintOf(ctx)), null, 2)}\n`);
      if (flags.markdown) {
        console.log(markdownSummary(`berth preview of ${ctx.project.name}/${flags.stack}`, outcome.steps));
        if (outcome.diagnostics.length > 0) console.log(`\n\`\`\`\n${renderDiagnostics(outcome.diagnostics)}\n\`\`\``);
        return outcome.ok ? 0 : 1;
      }
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
      if (!hasChanges(plan.steps) && !plan.stateChanged) return report(plan, flags, started);
      console.log(`\n${renderSummary(plan.steps)}\n`);
      if (!(await confirm("Do you want to perform this update?", flags.yes))) return 1;
      heading("Updating");
      // A failure is printed when it happens (the rest of the update may take a while to finish), and only then.
      const shown = new Set<Diagnostic>();
      const printNow = (d: Diagnostic) => {
        if (d.severity !== "error") return;
        console.log(renderDiagnostics([d]));
        shown.add(d);
      };
      return report(await commands.up(ctx, live(flags), printNow), flags, started, true, shown);
    }
    case "refresh": {
      heading("Refreshing");
      return report(await commands.refresh(ctx, live(flags)), flags, started, true);
    }
    case "destroy": {
      heading("Previewing destroy");
      const plan = await commands.previewDestroy(ctx);
      console.log(renderPlan(plan.steps, flags));
      if (!hasChanges(plan.steps)) return report(plan, flags, started);
      console.log(`\n${renderSummary(plan.steps)}\n`);
      if (!(await confirm("Do you want to perform this destroy?", flags.yes))) return 1;
      heading("Destroying");
      return report(await commands.destroy(ctx, live(flags)), flags, started, true);
    }
    case "import": {
      const [type, name, id] = flags.args;
      if (!type || !name || !id || flags.args.length > 3) return fail("import takes TYPE NAME ID, e.g. berth import berth:index:Volume data data");
      heading("Importing");
      const outcome = await commands.importResource(ctx, { type, name, id, protect: flags.protect }, live(flags));
      if (outcome.code) console.log(`\nAdd this to the program, or the next up deletes it:\n\n${outcome.code}`);
      return report(outcome, flags, started, true);
    }
    default:
      return fail(`unknown command "${flags.command}"`);
  }
}
