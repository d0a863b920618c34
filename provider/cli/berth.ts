// The berth command line: `berth preview|up|refresh|destroy [DIR]` and `import` here; config and stack commands,
// the day-2 container commands and the image, network and volume commands each in their own file — worded and
// exiting as the Pulumi and Docker CLIs do. Every command declares its flags (args.ts): parsing, help and the
// errors for unknown commands and flags come from those declarations.
import * as fs from "node:fs";
import * as readline from "node:readline/promises";
import type { Runtime } from "../../native/runtime";
import type { ProviderConfig } from "../resources";
import { openRuntime, RuntimePool, type HostRuntime } from "../runtimes";
import { invoke, runtimeOf } from "../../native/remote/methods";
import * as commands from "../engine/commands";
import { prestart } from "../engine/program";
import { hasChanges, paint, show, planJson, propertyLines, renderDiagnostics, renderPlan, renderSummary, shownSteps, stepLine } from "../engine/display";
import { makePlan, markdownDiagnostics, markdownSummary, readPlan } from "../engine/review";
import type { Step } from "../engine/steps";
import type { Diagnostic } from "../engine/deployment";
import { BERTH_VERSION } from "../state/checkpoint";
import { closest, helpOf, list, on, parseCommand, str, UsageError, valueFlagAt, type Command, type ParsedArgs } from "./args";
import { runtimeFor, stackOf, stackCommands } from "./stack";
import { deployFlagsOf } from "./deploy-flags";
import { containerCommands } from "./containers";
import { newCommand } from "./new";
import { imageCommands } from "./images";
import { networkCommands, volumeCommands, type DayTwoRuntime } from "./objects";
import { systemCommands } from "./system";
import { buildCommands } from "./build";
import { HOST_FLAG, hostCommand, sshConfig } from "./host";
import { serveAgent } from "../../native/remote/agent";

export interface Flags {
  command: string;
  dir: string;
  backend?: string;
  targets: string[];
  targetDependents?: boolean;
  replaceTargets: string[];
  refresh: boolean;
  savePlan?: string;
  plan?: string;
  markdown: boolean;
  /** import: mark the imported resource protected (Pulumi's default). */
  protect: boolean;
  stack: string;
  yes: boolean;
  diff: boolean;
  json: boolean;
  expectNoChanges: boolean;
  /** Colour step lines (--color: always, never, auto — a terminal without NO_COLOR). */
  color: boolean;
}

/** The deploy commands' flags, in the shape the engine calls take. DIR may be given as an argument or as -C. */
function deployFlags(command: string, p: ParsedArgs): Flags {
  const cwd = str(p, "cwd");
  const dirArgs = command === "import" ? 0 : cwd ? 0 : 1;
  if (command !== "import" && p.args.length > dirArgs) throw new UsageError(`unexpected argument ${p.args[dirArgs]}`, `See 'berth ${command} --help'.`);
  const dir = cwd ?? (dirArgs === 1 ? (p.args[0] ?? ".") : ".");
  return {
    command,
    dir,
    backend: str(p, "backend"),
    stack: stackOf(p, dir),
    targets: list(p, "target"),
    targetDependents: on(p, "target-dependents"),
    replaceTargets: list(p, "replace"),
    refresh: on(p, "refresh"),
    savePlan: str(p, "save-plan"),
    plan: str(p, "plan"),
    markdown: on(p, "markdown"),
    protect: p.flags.protect !== false,
    yes: on(p, "yes"),
    diff: on(p, "diff"),
    json: on(p, "json"),
    expectNoChanges: on(p, "expect-no-changes"),
    color: colorOf(str(p, "color")),
  };
}

function colorOf(choice = "auto"): boolean {
  if (choice === "always") return true;
  if (choice === "never" || choice === "raw") return false;
  if (choice !== "auto") throw new UsageError(`unsupported color option "${choice}": always, never, raw or auto`, "");
  return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
}

const deploy = (name: string, summary: string, usage = "[DIR]"): Command => ({
  name,
  usage,
  summary,
  flags: deployFlagsOf(name),
  run: (p) => deployCommand(deployFlags(name, p), p.args),
});

const DEPLOY_COMMANDS: Command[] = [
  deploy("preview", "Show what up would change; changes nothing."),
  deploy("up", "Preview, then apply the program to this host."),
  deploy("refresh", "Read what is really on the host into the state (drift); the next up repairs it."),
  deploy("destroy", "Delete everything the stack made, dependents first."),
  deploy("import", "Adopt an object already on this host into the stack (protected), and print the code that declares it.", "TYPE NAME ID"),
];

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

/**
 * Pulumi's question before changing anything: yes, no, or details (the property-level diff, then the question
 * again). Without a terminal, --yes is required.
 */
async function confirm(kind: "update" | "destroy" | "refresh", yes: boolean, details: () => string): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) {
    console.error("error: --yes must be passed in to proceed when running in non-interactive mode");
    return false;
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  // Lines typed ahead (or piped) wait in the iterator rather than being lost between questions.
  const lines = rl[Symbol.asyncIterator]();
  try {
    for (;;) {
      process.stdout.write(`Do you want to perform this ${kind}? [yes/no/details] `);
      const next = await lines.next();
      const answer = next.done ? "no" : String(next.value).trim().toLowerCase();
      if (answer === "yes" || answer === "y") return true;
      if (answer === "details" || answer === "d") {
        console.log(`${details()}\n`);
        continue;
      }
      console.log(`confirmation declined, not proceeding with the ${kind}`);
      return false;
    }
  } finally {
    rl.close();
  }
}

/** Prints diagnostics, outputs and the summary; `applied` when the steps were carried out, not just planned. */
function report(outcome: commands.Outcome, flags: Flags, started: number, applied = false, shown: ReadonlySet<Diagnostic> = new Set()): number {
  const diagnostics = outcome.diagnostics.filter((d) => !shown.has(d));
  if (diagnostics.length > 0) console.log(`\nDiagnostics:\n${renderDiagnostics(diagnostics, flags.color)}`);
  const outputs = Object.entries(outcome.outputs);
  if (outputs.length > 0 && (outcome.ok || flags.command === "preview")) {
    console.log("\nOutputs:");
    for (const [k, v] of outputs) console.log(`    ${k}: ${show(v)}`);
  }
  console.log(`\n${renderSummary(outcome.steps, applied)}\n\nDuration: ${((Date.now() - started) / 1000).toFixed(1)}s`);
  if (!outcome.ok) return 1;
  return flags.expectNoChanges && hasChanges(outcome.steps) ? 1 : 0;
}

/**
 * Steps as they run, as Pulumi prints them when not redrawing a terminal: "creating (0s)" when one starts,
 * "created (1.23s)" when it is done (with its property lines under --diff).
 */
function progress(flags: Flags): { start: (step: Step) => void; done: (step: Step) => void } {
  const began = new Map<Step, number>();
  const shown = (step: Step) => step.op !== "same" && shownSteps([step]).length > 0;
  return {
    start(step) {
      if (!shown(step)) return;
      began.set(step, Date.now());
      console.log(`${stepLine(step, "doing", flags.color)} (0s)`);
    },
    done(step) {
      if (!shown(step)) return;
      const t = began.get(step);
      console.log(`${stepLine(step, "done", flags.color)}${t === undefined ? "" : ` (${((Date.now() - t) / 1000).toFixed(2)}s)`}`);
      if (flags.diff) for (const line of propertyLines(step)) console.log(paint(step, line, flags.color));
    },
  };
}

async function deployCommand(flags: Flags, args: string[]): Promise<number> {
  const started = Date.now();
  // Where a stack deploys is its config, never the shell's environment (@pulumi/docker's DOCKER_HOST trouble).
  if (process.env.BERTH_HOST) {
    console.error(`warning: BERTH_HOST is for day-2 commands; ${flags.command} acts where the stack's config says (berth config set berth:host ${process.env.BERTH_HOST})`);
  }
  const steps = progress(flags);
  const ctx = commands.openStack(flags.dir, flags.stack, runtimeFor, { backend: flags.backend, scope: scopeOf(flags), onStepStart: steps.start });
  try {
    return await deployOn(ctx, flags, args, steps, started);
  } finally {
    await ctx.close();
  }
}

async function deployOn(ctx: commands.StackContext, flags: Flags, args: string[], steps: ReturnType<typeof progress>, started: number): Promise<number> {
  const heading = (verb: string) => console.log(`${verb} (${ctx.project.name}/${flags.stack}):\n`);
  switch (flags.command) {
    case "preview": {
      const outcome = await commands.preview(ctx);
      if (flags.savePlan && outcome.ok) fs.writeFileSync(flags.savePlan, `${JSON.stringify(makePlan(ctx.project.name, flags.stack, outcome.steps, commands.fingerprintOf(ctx), ctx.seed), null, 2)}\n`);
      if (flags.markdown) {
        console.log(markdownSummary(`berth preview of ${ctx.project.name}/${flags.stack}`, outcome.steps));
        const diagnostics = markdownDiagnostics(outcome.diagnostics, outcome.steps, ctx.config.secretKeys.map((k) => ctx.config.values[k]));
        if (diagnostics) console.log(`\n${diagnostics}`);
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
      // Once the preview finds a change an update follows (unless the preview fails or is declined): its program's
      // process is started then, to load while the preview runs.
      let updateAhead = false;
      const plan = await commands.preview(ctx, (step) => {
        if (updateAhead || step.op === "same") return;
        updateAhead = true;
        prestart(ctx.project.dir);
      });
      console.log(renderPlan(plan.steps, flags));
      if (!plan.ok) return report(plan, flags, started);
      // Nothing to do: the state already says exactly this, so the program need not run a second time.
      if (!hasChanges(plan.steps) && !plan.stateChanged) return report(plan, flags, started);
      console.log(`\n${renderSummary(plan.steps)}\n`);
      if (!(await confirm("update", flags.yes, () => renderPlan(plan.steps, { diff: true, color: flags.color })))) return 1;
      heading("Updating");
      // A failure is printed when it happens (the rest of the update may take a while to finish), and only then.
      const shown = new Set<Diagnostic>();
      const printNow = (d: Diagnostic) => {
        if (d.severity !== "error") return;
        console.log(renderDiagnostics([d], flags.color));
        shown.add(d);
      };
      return report(await commands.up(ctx, steps.done, printNow), flags, started, true, shown);
    }
    case "refresh": {
      // Pulumi asks before a refresh too; what it would change is only known by reading, so there are no details.
      if (!flags.yes) console.log("No resources will be modified as part of this refresh; just your stack's state will be.\n");
      if (!(await confirm("refresh", flags.yes, () => "(a refresh reads every resource; what changed is shown as it is read)"))) return 1;
      heading("Refreshing");
      return report(await commands.refresh(ctx, steps.done), flags, started, true);
    }
    case "destroy": {
      heading("Previewing destroy");
      const plan = await commands.previewDestroy(ctx);
      console.log(renderPlan(plan.steps, flags));
      if (!hasChanges(plan.steps)) return report(plan, flags, started);
      console.log(`\n${renderSummary(plan.steps)}\n`);
      if (!(await confirm("destroy", flags.yes, () => renderPlan(plan.steps, { diff: true, color: flags.color })))) return 1;
      heading("Destroying");
      return report(await commands.destroy(ctx, steps.done), flags, started, true);
    }
    case "import": {
      const [type, name, id] = args;
      if (!type || !name || !id || args.length > 3) throw new UsageError("import takes TYPE NAME ID, e.g. berth import berth:index:Volume data data", "See 'berth import --help'.");
      heading("Importing");
      const outcome = await commands.importResource(ctx, { type, name, id, protect: flags.protect }, steps.done);
      if (outcome.code) console.log(`\nAdd this to the program, or the next up deletes it:\n\n${outcome.code}`);
      return report(outcome, flags, started, true);
    }
    default:
      throw new Error(`no deploy command "${flags.command}"`);
  }
}

/**
 * The day-2 commands' host, as Docker's -H/DOCKER_HOST: `-H ssh://…` before the command or `--host` after it, else
 * $BERTH_HOST, else this machine ($BERTH_ROOT). Its runtime is made on first use (help and usage errors need
 * none) and closed when the command ends.
 */
let dayTwoHost: string | undefined;
/** The runtimes the command opened (one per configuration), closed at its end. */
const opened = new RuntimePool(openRuntime);
/** Where a resource name on the command line took it (objects.ts Names), when no host was given. */
let resourceHost: ProviderConfig | undefined;
/** The host the command was given, read on its first call (after `--host` has been parsed). */
let givenHost: ProviderConfig | undefined;
const current = () => opened.get(resourceHost ?? (givenHost ??= dayTwoConfig())) as HostRuntime;
const dayTwoRuntime = Object.defineProperties(runtimeOf((m, args) => invoke(current(), m.name, args)), {
  host: { get: () => current().host },
  close: { value: () => opened.close() },
  retarget: {
    value: (config: ProviderConfig) => {
      if (dayTwoHost !== undefined || process.env.BERTH_HOST) return false;
      resourceHost = config;
      return true;
    },
  },
}) as DayTwoRuntime;
const hostRuntime = (): Runtime => dayTwoRuntime;

function dayTwoConfig(): ProviderConfig {
  const host = dayTwoHost ?? (process.env.BERTH_HOST || undefined);
  if (host === undefined) return {};
  return sshConfig(host, dayTwoHost === undefined ? "BERTH_HOST" : "--host");
}

/** A day-2 command taking --host, as after `berth -H`. */
const onHost = (cmds: Command[]): Command[] =>
  cmds.map((cmd) => ({
    ...cmd,
    flags: [...(cmd.flags ?? []), HOST_FLAG],
    run: (p) => {
      dayTwoHost = str(p, "host") ?? dayTwoHost;
      return cmd.run(p);
    },
  }));

/** `berth agent`: what a berth client runs over ssh on this host (native/remote/agent.ts). */
const agent: Command = {
  name: "agent",
  summary: "Serve this host's runtime on stdin/stdout to a berth client over ssh (see README \"Many hosts\")",
  flags: [{ name: "root", value: "DIR", help: "the berth root to serve (default $BERTH_ROOT or /var/lib/berth)" }],
  run: (p) => serveAgent({ root: str(p, "root") }),
};

const version: Command = { name: "version", summary: "Print berth's version.", run: async () => (console.log(`berth v${BERTH_VERSION}`), 0) };

/** Commands that read only the project and its stack files: every other one needs root. */
const STACK_COMMANDS = stackCommands();

/** The day-2 commands: on this machine, or on the one -H/--host/$BERTH_HOST names. */
const HOST_COMMANDS = new Set(
  onHost([
    ...containerCommands(hostRuntime),
    ...imageCommands(hostRuntime),
    ...buildCommands(hostRuntime),
    ...networkCommands(hostRuntime),
    ...volumeCommands(hostRuntime),
    ...systemCommands(hostRuntime),
  ]),
);

const HOST_CHECK = hostCommand(() => dayTwoHost);

/** Every command, one line per group, in the order of `berth --help`. */
const COMMANDS: Command[] = [
  newCommand,
  ...DEPLOY_COMMANDS,
  ...STACK_COMMANDS,
  ...HOST_COMMANDS,
  HOST_CHECK,
  agent,
  version,
];

/** Commands of two words ("network ls") form a group; `berth network` alone lists them. */
const GROUPS = [...new Set(COMMANDS.filter((c) => c.name.includes(" ")).map((c) => c.name.split(" ")[0]))];

function rowsOf(cmds: Command[]): string[] {
  const width = Math.max(...cmds.map((c) => c.name.length));
  return cmds.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`);
}

function overview(): string {
  return [
    "Usage:  berth COMMAND [OPTIONS] [ARGS]",
    "",
    "Infrastructure as code for containers: a Pulumi program applied by berth's own runtime.",
    "Day-2 commands act on the berth root $BERTH_ROOT (default /var/lib/berth), or on another machine's berth",
    "over SSH with -H ssh://[user@]host[:port] (or $BERTH_HOST), as Docker's -H.",
    "",
    "Commands:",
    ...rowsOf(COMMANDS),
    "",
    "Options:",
    "  -h, --help      print help; berth help COMMAND (or COMMAND --help) prints a command's options",
    "  -H, --host URL  run a day-2 command on that machine (ssh://[user@]host[:port]; default $BERTH_HOST)",
    "  -v, --version   print berth's version",
  ].join("\n");
}

function groupHelp(group: string): string {
  const cmds = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  return [`Usage:  berth ${group} COMMAND`, "", "Commands:", ...rowsOf(cmds), "", `Run 'berth ${group} COMMAND --help' for a command's options.`].join("\n");
}

/** The command the first words of argv name (two words for a group's: "network ls"), and the words after it. */
function findCommand(argv: string[]): { cmd?: Command; rest: string[] } {
  const named = (name: string) => COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
  const two = argv.length > 1 ? named(`${argv[0]} ${argv[1]}`) : undefined;
  if (two) return { cmd: two, rest: argv.slice(2) };
  return { cmd: named(argv[0]), rest: argv.slice(1) };
}

function unknownCommand(words: string[]): UsageError {
  const tried = GROUPS.includes(words[0]) && words[1] ? `${words[0]} ${words[1]}` : words[0];
  const guess = closest(tried, [...COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])]), ...GROUPS]);
  return new UsageError(`unknown command "${tried}" for "berth"`, `${guess ? `Did you mean "berth ${guess}"?\n` : ""}Run 'berth --help' for usage.`);
}

const print = (text: string, code = 0) => (console.log(text), code);

function help(words: string[]): number {
  if (words.length === 0) return print(overview());
  const { cmd, rest } = findCommand(words);
  if (cmd && rest.length === 0) return print(helpOf(cmd));
  if (words.length === 1 && GROUPS.includes(words[0])) return print(groupHelp(words[0]));
  throw unknownCommand(words);
}

async function dispatch(words: string[]): Promise<number> {
  const argv = globalHost(words);
  const [first, second] = argv;
  if (first === undefined) return print(overview());
  if (first === "--help" || first === "-h") return help([]);
  if (first === "--version" || first === "-v") return version.run({ flags: {}, args: [] });
  if (first === "help") return help(argv.slice(1));
  if (first.startsWith("-")) throw new UsageError(`unknown flag: ${first}`, "Run 'berth --help' for usage.");
  const { cmd, rest } = findCommand(argv);
  if (!cmd) {
    // `berth network` lists the group's commands, as `docker network` does.
    if (GROUPS.includes(first) && (second === undefined || second === "--help" || second === "-h")) return print(groupHelp(first));
    throw unknownCommand(argv);
  }
  const parsed = parseCommand(cmd, rest);
  if (on(parsed, "help")) return print(helpOf(cmd));
  // Ignored, `berth -H ssh://h2 up` would deploy where the stack's config says, likely this machine.
  if (dayTwoHost !== undefined && !HOST_COMMANDS.has(cmd) && cmd !== HOST_CHECK) {
    const where = DEPLOY_COMMANDS.includes(cmd) ? `; a stack acts where its config says: berth config set berth:host ${dayTwoHost}` : "";
    throw new UsageError(`-H/--host is for day-2 commands, not "${cmd.name}"${where}`, `See 'berth ${cmd.name} --help'.`);
  }
  // Another machine's agent runs as its ssh user there; this machine is not touched.
  if (!STACK_COMMANDS.includes(cmd) && cmd !== version && cmd !== HOST_CHECK && !(HOST_COMMANDS.has(cmd) && dayTwoConfig().host)) {
    const refused = needsRoot();
    if (refused !== undefined) return refused;
  }
  return cmd.run(parsed);
}

/** `berth -H URL CMD …` (`-HURL`, `--host URL`, `--host=URL`) before the command, as Docker's global flag. */
function globalHost(argv: string[]): string[] {
  const given = valueFlagAt(HOST_FLAG, argv, 0);
  if (!given) return argv;
  if (given.value === undefined) throw new UsageError(`flag needs an argument: ${argv[0]}`, "Run 'berth --help' for usage.");
  dayTwoHost = given.value;
  return argv.slice(given.taken);
}

/** Everything that reads or changes the host needs root: say so before anything else. */
function needsRoot(): number | undefined {
  if (process.getuid?.() === 0) return undefined;
  console.error("error: berth needs root: it makes network namespaces, mounts, iptables rules and runc containers; run it as root (sudo berth …)");
  return 1;
}

/** Runs berth with these arguments; resolves to the exit code (2 for a usage error, with a hint on stderr). */
export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}${e.hint ? `\n${e.hint}` : ""}`);
    return 2;
  } finally {
    await opened.close();
  }
}

