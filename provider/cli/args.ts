// One argument parser for every berth command: each command declares its flags, and parsing, `--help`,
// `berth help CMD` and the errors for unknown commands and flags all come from those declarations. Flags are
// read as Docker's CLI (pflag) reads them: `--flag value`, `--flag=value`, `-f value`, `-fvalue`, grouped short
// booleans (`-it`), `--bool=false`, `--` ending the flags, and flags anywhere among the arguments unless the
// command stops at its first argument (`exec NAME CMD -x`).

export interface FlagSpec {
  /** Long name without dashes ("tail"). */
  name: string;
  short?: string;
  /** Placeholder of the value it takes ("N", "FILE"); absent for a boolean. */
  value?: string;
  /** Collects every occurrence (`-e A -e B`). */
  repeat?: boolean;
  help: string;
}

export interface ParsedArgs {
  /** Long name → value (true for booleans; an array for repeatable flags). */
  flags: Record<string, string | boolean | string[] | undefined>;
  args: string[];
}

export interface Command {
  /** "ps", "network ls". */
  name: string;
  /** Other names: "image ls" for "images". */
  aliases?: string[];
  /** The arguments after the flags, for the usage line ("NAME [CMD...]"). */
  usage?: string;
  summary: string;
  flags?: FlagSpec[];
  /** Flags end at the first argument (what follows is a command line of its own). */
  stopAtFirstArg?: boolean;
  run(p: ParsedArgs): Promise<number>;
}

/** An error in how berth was called: printed with a hint, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

const HELP: FlagSpec = { name: "help", short: "h", help: "print this help" };

/** Where a flag was given: words [from, to) of the parsed argv; kept, the flags grouped before it in its word. */
interface Given {
  name: string;
  from: number;
  to: number;
  kept?: string;
}

/** How each parse was called: the command line can be told again without a flag (wordsWithout). */
const parses = new WeakMap<ParsedArgs, { cmd: Command; argv: string[]; given: Given[] }>();

/**
 * The command's words (its name, then the arguments parsed) without every occurrence of the flag `name` where the
 * parser read it as one — not after `--`, nor in the command line an exec or run ends with.
 */
export function wordsWithout(p: ParsedArgs, name: string): string[] {
  const parse = parses.get(p);
  if (!parse) return [];
  const dropped = parse.given.filter((g) => g.name === name);
  const words = parse.argv.flatMap((w, i) => {
    const g = dropped.find((d) => i >= d.from && i < d.to);
    return !g ? [w] : i === g.from && g.kept ? [g.kept] : [];
  });
  return [...parse.cmd.name.split(" "), ...words];
}

/** Parses argv (the words after the command's name) against a command's declared flags. */
export function parseCommand(cmd: Command, argv: string[]): ParsedArgs {
  const specs = [...(cmd.flags ?? []), HELP];
  const hint = `See 'berth ${cmd.name} --help'.`;
  const flags: ParsedArgs["flags"] = {};
  const args: string[] = [];
  const given: Given[] = [];
  let from = 0;
  let kept: string | undefined;
  // Called once the flag's words are read: argv[from..i].
  const set = (spec: FlagSpec, value: string | boolean) => {
    if (spec.repeat) flags[spec.name] = [...((flags[spec.name] as string[] | undefined) ?? []), String(value)];
    else flags[spec.name] = value;
    given.push({ name: spec.name, from, to: i + 1, kept });
  };
  const bool = (spec: FlagSpec, text: string | undefined, shown: string) => {
    if (text === undefined || text === "true") return true;
    if (text === "false") return false;
    throw new UsageError(`invalid argument "${text}" for "${shown}" flag: expected true or false`, hint);
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    from = i;
    kept = undefined;
    if (a === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      if (cmd.stopAtFirstArg) {
        args.push(...argv.slice(i));
        break;
      }
      args.push(a);
      continue;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const spec = specs.find((s) => s.name === name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`, hint);
      const inline = eq < 0 ? undefined : a.slice(eq + 1);
      if (!spec.value) set(spec, bool(spec, inline, `--${name}`));
      else if (inline !== undefined) set(spec, inline);
      else if (i + 1 < argv.length) set(spec, argv[++i]);
      else throw new UsageError(`flag needs an argument: --${name}`, hint);
      continue;
    }
    // Short flags, grouped: -it, -n5, -n 5, -p=false.
    for (let j = 1; j < a.length; j++) {
      const spec = specs.find((s) => s.short === a[j]);
      kept = j > 1 ? a.slice(0, j) : undefined;
      if (!spec) throw new UsageError(`unknown shorthand flag: '${a[j]}' in ${a}`, hint);
      const rest = a.slice(j + 1);
      if (!spec.value) {
        if (rest.startsWith("=")) {
          set(spec, bool(spec, rest.slice(1), `-${a[j]}`));
          break;
        }
        set(spec, true);
        continue;
      }
      if (rest) set(spec, rest.replace(/^=/, ""));
      else if (i + 1 < argv.length) set(spec, argv[++i]);
      else throw new UsageError(`flag needs an argument: '${a[j]}' in -${a[j]}`, hint);
      break;
    }
  }
  const parsed = { flags, args };
  parses.set(parsed, { cmd, argv, given });
  return parsed;
}

/** A command's help, generated from its declaration. */
export function helpOf(cmd: Command): string {
  const flags = cmd.flags ?? [];
  const lines = [`Usage:  berth ${cmd.name}${flags.length > 0 ? " [OPTIONS]" : ""}${cmd.usage ? ` ${cmd.usage}` : ""}`, "", cmd.summary];
  if (cmd.aliases?.length) lines.push("", "Aliases:", `  berth ${[cmd.name, ...cmd.aliases].join(", berth ")}`);
  const rows = [...flags, HELP].map((f) => [`${f.short ? `-${f.short}, ` : "    "}--${f.name}${f.value ? ` ${f.value}` : ""}`, f.help]);
  const width = Math.max(...rows.map((r) => r[0].length));
  lines.push("", "Options:", ...rows.map(([l, h]) => `  ${l.padEnd(width)}   ${h}`));
  return lines.join("\n");
}

/** The closest name to a mistyped one, for "did you mean". */
export function closest(word: string, names: string[]): string | undefined {
  const distance = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    return d[a.length][b.length];
  };
  const best = names.map((n) => [n, distance(word, n)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= Math.max(1, Math.floor(word.length / 3)) ? best[0] : undefined;
}

/**
 * A flag taking a value, found at words[i] as the parser reads it — `--name V`, `--name=V`, `-s V`, `-sV`, `-s=V` —
 * with its value (undefined when missing) and the words it took; undefined when words[i] is not that flag.
 */
export function valueFlagAt(spec: FlagSpec, words: string[], i: number): { value: string | undefined; taken: number } | undefined {
  const w = words[i] ?? "";
  if (w === `--${spec.name}` || (spec.short && w === `-${spec.short}`)) return { value: words[i + 1], taken: 2 };
  if (w.startsWith(`--${spec.name}=`)) return { value: w.slice(spec.name.length + 3), taken: 1 };
  if (spec.short && w.startsWith(`-${spec.short}`) && !w.startsWith("--")) return { value: w.slice(2).replace(/^=/, ""), taken: 1 };
  return undefined;
}

/** A flag's value as a string (the last one given), or undefined. */
export const str = (p: ParsedArgs, name: string): string | undefined => {
  const v = p.flags[name];
  return Array.isArray(v) ? v.at(-1) : typeof v === "string" ? v : undefined;
};

export const list = (p: ParsedArgs, name: string): string[] => {
  const v = p.flags[name];
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
};

export const on = (p: ParsedArgs, name: string): boolean => p.flags[name] === true;

/** A non-negative integer flag, or undefined when absent. */
export function int(p: ParsedArgs, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`invalid argument "${v}" for "--${name}" flag: expected a whole number`, "");
  return Number(v);
}

/**
 * Runs fn for each of several names as Docker's CLI does: one that fails is reported and the others still go; the
 * exit code is 1 when any failed. A usage error stops them all.
 */
export async function eachName(names: string[], fn: (name: string) => Promise<void>): Promise<number> {
  let failed = false;
  for (const name of names) {
    try {
      await fn(name);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      console.error(`error: ${(e as Error).message}`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

/** Exactly n arguments, or at least n with `atLeast`. */
export function needArgs(p: ParsedArgs, cmd: string, n: number, atLeast = false): string[] {
  if (atLeast ? p.args.length < n : p.args.length !== n) {
    throw new UsageError(`"berth ${cmd}" requires ${atLeast ? "at least" : "exactly"} ${n} argument${n === 1 ? "" : "s"}`, `See 'berth ${cmd} --help'.`);
  }
  return p.args;
}
