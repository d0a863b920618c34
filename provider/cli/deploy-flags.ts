// The flags of the deploy commands (preview, up, refresh, destroy, import), declared once and light to load: the
// CLI parses them (berth.ts), and so does the program's early start (engine/program.ts prestart), which must
// start nothing of a project before the command line is known to be valid and to name that project.
import { parseCommand, str, type FlagSpec, type ParsedArgs } from "./args";

export const STACK_FLAGS: FlagSpec[] = [
  { name: "cwd", short: "C", value: "DIR", help: "the Pulumi project directory (default: .)" },
  { name: "stack", short: "s", value: "NAME", help: "the stack (default: the one berth/pulumi stack select chose, else dev)" },
  { name: "backend", value: "URL", help: "the state backend (file://DIR); default as Pulumi finds it, else the project directory" },
];

const COLOR: FlagSpec = { name: "color", value: "WHEN", help: "colour the steps: always, never, raw, auto (a terminal; the default)" };

const f = {
  yes: { name: "yes", short: "y", help: "apply without asking (required when not interactive)" },
  diff: { name: "diff", help: "show property-level changes" },
  json: { name: "json", short: "j", help: "print the plan as JSON, in the shape of pulumi preview --json" },
  expect: { name: "expect-no-changes", help: "exit non-zero if the plan is not empty" },
  target: { name: "target", short: "t", value: "URN", repeat: true, help: "only change this resource (repeatable); the rest keep their last state" },
  dependents: { name: "target-dependents", help: "with --target: also change (replace, delete) what depends on a targeted resource" },
  replace: { name: "replace", value: "URN", repeat: true, help: "replace this resource even if nothing changed (repeatable)" },
  refresh: { name: "refresh", short: "r", help: "read the host into the state before planning" },
} satisfies Record<string, FlagSpec>;

const OWN: Record<string, FlagSpec[]> = {
  preview: [
    f.diff, f.json, f.expect, f.target, f.dependents, f.replace, f.refresh,
    { name: "save-plan", value: "FILE", help: "write the plan, for review in git" },
    { name: "markdown", help: "a summary for a pull-request comment (secrets masked)" },
  ],
  up: [
    f.yes, f.diff, f.expect, f.target, f.dependents, f.replace, f.refresh,
    { name: "plan", value: "FILE", help: "apply exactly this plan (preview --save-plan); refuse, naming the difference, if the program or host moved" },
  ],
  refresh: [f.yes, f.diff, f.expect],
  destroy: [f.yes, f.diff, f.target, f.dependents],
  import: [{ name: "protect", help: "mark the imported resource protected (default true; --protect=false not to)" }],
};

/** A deploy command's flags, in the order its help lists them. */
export const deployFlagsOf = (command: string): FlagSpec[] => [...STACK_FLAGS, ...OWN[command], COLOR];

/**
 * The project directory `berth preview|up ARGV` runs, when ARGV is a valid command line of it and asks for no help;
 * else undefined (the CLI then prints the usage error or the help, and no project is run).
 */
export function deployDirOf(command: "preview" | "up", argv: string[]): string | undefined {
  let p: ParsedArgs;
  try {
    p = parseCommand({ name: command, summary: "", flags: deployFlagsOf(command), run: async () => 0 }, argv);
  } catch {
    return undefined;
  }
  const cwd = str(p, "cwd");
  if (p.flags.help || p.args.length > (cwd ? 0 : 1)) return undefined;
  return cwd ?? p.args[0] ?? ".";
}
