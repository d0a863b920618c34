// Reading and editing stacks without running their program, as the Pulumi CLI does: `config` (list, get, set,
// rm), `stack` (ls, init, select, rm, output, graph). The stack is -s/--stack, else the one `stack select` chose
// (in Pulumi's workspace file, so both CLIs agree), else "dev".
import * as fs from "node:fs";
import * as path from "node:path";
import { openStack, type StackContext } from "../engine/commands";
import { dotGraph } from "../engine/review";
import { mask, show } from "../engine/display";
import { loadProject } from "../engine/program";
import { STACK_TYPE } from "../engine/urn";
import { chooseBackend } from "../state/backend";
import { emptyDeployment } from "../state/checkpoint";
import { StackStore } from "../state/store";
import { selectedStack, selectStack } from "../state/workspace";
import { revealAll } from "../values";
import { needArgs, on, str, UsageError, type Command, type FlagSpec, type ParsedArgs } from "./args";
import { STACK_FLAGS } from "./deploy-flags";
import { humanDuration, table } from "./format";
import { openRuntime } from "../runtimes";
import type { ProviderConfig } from "../resources";
import { withBuildProgress } from "./build";

const DEFAULT_STACK = "dev";

/** Where a project keeps its stacks: the backend directory, as Pulumi finds it. */
function backendOf(dir: string, backend: string | undefined): { project: ReturnType<typeof loadProject>; backendDir: string } {
  const project = loadProject(path.resolve(dir));
  return { project, backendDir: chooseBackend({ flag: backend, projectUrl: project.backendUrl, projectDir: project.dir }).dir };
}

/** The stack a command acts on: --stack, else the selected one, else "dev". */
/** A stack name as Pulumi allows it; it becomes a file name (Pulumi.NAME.yaml, NAME.json), so no "/". */
function checkStackName(name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name)) throw new UsageError(`invalid stack name "${name}": use letters, digits, "-", "_" and "."`, "");
  return name;
}

export function stackOf(p: ParsedArgs, dir = str(p, "cwd") ?? "."): string {
  const named = str(p, "stack");
  if (named) return checkStackName(named);
  if (!fs.existsSync(path.join(dir, "Pulumi.yaml"))) return DEFAULT_STACK;
  const { project, backendDir } = backendOf(dir, str(p, "backend"));
  return selectedStack(project.dir, project.name, backendDir) ?? DEFAULT_STACK;
}

/** The runtime of a stack; image builds report progress on stderr (BuildKit's plain format, as Docker does). */
export const runtimeFor = (config: ProviderConfig) => withBuildProgress(openRuntime(config), (line) => process.stderr.write(`${line}\n`));

function open(p: ParsedArgs): StackContext {
  return openStack(str(p, "cwd") ?? ".", stackOf(p), runtimeFor, { backend: str(p, "backend") });
}

/** The stacks of the project: those with a checkpoint in the backend, and those with only a Pulumi.<stack>.yaml. */
function stacksOf(dir: string, backend: string | undefined): { names: string[]; store: (stack: string) => StackStore } {
  const { project, backendDir } = backendOf(dir, backend);
  const store = (stack: string) => new StackStore({ backendDir, project: project.name, stack });
  const inBackend = fs.existsSync(path.join(backendDir, ".pulumi/stacks", project.name))
    ? fs.readdirSync(path.join(backendDir, ".pulumi/stacks", project.name)).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5))
    : [];
  const configured = fs.readdirSync(project.dir).flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ?? []);
  return { names: [...new Set([...inBackend, ...configured])].sort(), store };
}

const withStack: FlagSpec[] = STACK_FLAGS;

export function stackCommands(): Command[] {
  return [
    {
      name: "config",
      summary: "List the stack's config (secrets shown as [secret] unless --show-secrets).",
      flags: [...withStack, { name: "show-secrets", help: "show secret values" }, { name: "json", short: "j", help: "print as JSON, as pulumi config --json" }],
      async run(p) {
        needArgs(p, "config", 0);
        const { settings, project } = open(p);
        const entries = settings.entries(on(p, "show-secrets")).sort((a, b) => (a.key < b.key ? -1 : 1));
        if (on(p, "json")) {
          const json = Object.fromEntries(entries.map((e) => [e.key, { ...(e.value !== undefined && { value: e.value }), secret: e.secret }]));
          console.log(JSON.stringify(json, null, 2));
          return 0;
        }
        // Pulumi shows the project's own keys without their namespace.
        const shortKey = (k: string) => (k.startsWith(`${project.name}:`) ? k.slice(project.name.length + 1) : k);
        console.log(table([["KEY", "VALUE"], ...entries.map((e) => [shortKey(e.key), e.value ?? "[secret]"])]));
        return 0;
      },
    },
    {
      name: "config get",
      usage: "KEY",
      summary: "Print one config value (a secret decrypted).",
      flags: [...withStack, { name: "json", short: "j", help: "print as JSON" }],
      async run(p) {
        const [key] = needArgs(p, "config get", 1);
        const { settings, config, stack } = open(p);
        const value = config.values[settings.qualify(key)];
        if (value === undefined) throw new Error(`configuration key '${key}' not found for stack '${stack}'`);
        console.log(on(p, "json") ? JSON.stringify({ value, secret: config.secretKeys.includes(settings.qualify(key)) }, null, 2) : value);
        return 0;
      },
    },
    {
      name: "config set",
      usage: "KEY VALUE",
      summary: "Set a config value in Pulumi.<stack>.yaml (--secret: encrypted with PULUMI_CONFIG_PASSPHRASE).",
      flags: [...withStack, { name: "secret", help: "store the value encrypted" }, { name: "plaintext", help: "store the value as plain text (the default)" }],
      async run(p) {
        const [key, value] = needArgs(p, "config set", 2);
        open(p).settings.set(key, value, on(p, "secret"));
        return 0;
      },
    },
    {
      name: "config rm",
      usage: "KEY",
      summary: "Remove a config value.",
      flags: withStack,
      async run(p) {
        const [key] = needArgs(p, "config rm", 1);
        const { settings, stack } = open(p);
        if (!settings.remove(key)) throw new Error(`configuration key '${key}' not found for stack '${stack}'`);
        return 0;
      },
    },
    {
      name: "stack ls",
      summary: "List the project's stacks; * marks the selected one.",
      flags: withStack,
      async run(p) {
        needArgs(p, "stack ls", 0);
        const dir = str(p, "cwd") ?? ".";
        const { names, store } = stacksOf(dir, str(p, "backend"));
        const current = stackOf(p, dir);
        const rows = names.map((n) => {
          const s = store(n);
          const stat = fs.statSync(s.file, { throwIfNoEntry: false });
          const count = stat ? String(s.load().resources.length) : "n/a";
          const when = stat ? (Date.now() - stat.mtimeMs < 60_000 ? "now" : `${humanDuration(Date.now() - stat.mtimeMs)} ago`) : "n/a";
          return [`${n}${n === current ? "*" : ""}`, when, count];
        });
        console.log(table([["NAME", "LAST UPDATE", "RESOURCE COUNT"], ...rows]));
        return 0;
      },
    },
    {
      name: "stack init",
      usage: "NAME",
      summary: "Create an empty stack and select it.",
      flags: STACK_FLAGS.filter((f) => f.name !== "stack"),
      async run(p) {
        const name = checkStackName(needArgs(p, "stack init", 1)[0]);
        const dir = str(p, "cwd") ?? ".";
        const { project, backendDir } = backendOf(dir, str(p, "backend"));
        const store = new StackStore({ backendDir, project: project.name, stack: name });
        if (fs.existsSync(store.file)) throw new Error(`stack '${name}' already exists`);
        store.save(emptyDeployment());
        selectStack(project.dir, project.name, backendDir, name);
        console.log(`Created stack '${name}'`);
        return 0;
      },
    },
    {
      name: "stack select",
      usage: "NAME",
      summary: "Make a stack the one commands act on when --stack is not given.",
      flags: [...STACK_FLAGS.filter((f) => f.name !== "stack"), { name: "create", short: "c", help: "create the stack when it does not exist" }],
      async run(p) {
        const [name] = needArgs(p, "stack select", 1);
        const dir = str(p, "cwd") ?? ".";
        const { names } = stacksOf(dir, str(p, "backend"));
        const { project, backendDir } = backendOf(dir, str(p, "backend"));
        if (!names.includes(name)) {
          if (!on(p, "create")) throw new Error(`no stack named '${name}' found (berth stack ls lists them; --create makes it)`);
          new StackStore({ backendDir, project: project.name, stack: checkStackName(name) }).save(emptyDeployment());
        }
        selectStack(project.dir, project.name, backendDir, name);
        return 0;
      },
    },
    {
      name: "stack rm",
      usage: "[NAME]",
      summary: "Remove a stack and its config file; refused while it has resources unless --force.",
      flags: [
        ...withStack,
        { name: "yes", short: "y", help: "skip the confirmation" },
        { name: "force", short: "f", help: "remove it even though it still has resources (they stay on the host)" },
        { name: "preserve-config", help: "keep Pulumi.<stack>.yaml" },
      ],
      async run(p) {
        if (p.args.length > 1) needArgs(p, "stack rm", 1);
        const dir = str(p, "cwd") ?? ".";
        const name = p.args[0] ?? stackOf(p, dir);
        const { names, store } = stacksOf(dir, str(p, "backend"));
        if (!names.includes(name)) throw new Error(`no stack named '${name}' found`);
        if (!on(p, "yes")) throw new UsageError(`--yes must be passed in to remove stack '${name}' when not interactive`, "");
        const s = store(name);
        const resources = fs.existsSync(s.file) ? s.load().resources.filter((r) => r.type !== STACK_TYPE) : [];
        if (resources.length > 0 && !on(p, "force")) {
          throw new Error(`'${name}' still has resources; removal rejected. Run berth destroy to delete them, then berth stack rm; or berth stack rm --force to forget them (they stay on the host)`);
        }
        for (const f of [s.file, `${s.file}.bak`]) fs.rmSync(f, { force: true });
        const { project, backendDir } = backendOf(dir, str(p, "backend"));
        if (!on(p, "preserve-config")) fs.rmSync(path.join(project.dir, `Pulumi.${name}.yaml`), { force: true });
        if (selectedStack(project.dir, project.name, backendDir) === name) selectStack(project.dir, project.name, backendDir, undefined);
        console.log(`Stack '${name}' has been removed!`);
        return 0;
      },
    },
    {
      name: "stack output",
      usage: "[NAME]",
      summary: "The stack's outputs (secrets masked unless --show-secrets).",
      flags: [...withStack, { name: "json", short: "j", help: "print as JSON" }, { name: "show-secrets", help: "print secret values" }],
      async run(p) {
        if (p.args.length > 1) throw new UsageError("berth stack output takes at most one output name", "See 'berth stack output --help'.");
        const outputs = open(p).store.load().resources.find((r) => r.type === STACK_TYPE && !r.delete)?.outputs ?? {};
        const shown = on(p, "show-secrets") ? (revealAll(outputs) as Record<string, unknown>) : mask(outputs);
        const [name] = p.args;
        if (name !== undefined) {
          if (!(name in shown)) throw new Error(`current stack does not have output property '${name}'`);
          const value = shown[name];
          console.log(on(p, "json") ? JSON.stringify(value, null, 2) : typeof value === "string" ? value : show(value));
          return 0;
        }
        if (on(p, "json")) console.log(JSON.stringify(shown, null, 2));
        else for (const [k, v] of Object.entries(shown)) console.log(`    ${k.padEnd(20)} ${typeof v === "string" ? v : show(v)}`);
        return 0;
      },
    },
    {
      name: "stack graph",
      usage: "[FILE]",
      summary: "The stack's dependency graph in DOT, as pulumi stack graph writes it.",
      flags: withStack,
      async run(p) {
        if (p.args.length > 1) throw new UsageError("berth stack graph takes at most one file name", "See 'berth stack graph --help'.");
        const dot = dotGraph(open(p).store.load());
        if (p.args[0]) fs.writeFileSync(p.args[0], dot);
        else process.stdout.write(dot);
        return 0;
      },
    },
  ];
}
