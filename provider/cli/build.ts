// `berth build` and `berth builder prune`, in Docker's words and flags, on this host's berth root; and build
// progress (BuildKit's plain format, on stderr as Docker writes it) for the builds `berth up` runs.
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline/promises";
import type { Runtime } from "../../native/runtime";
import { referenceProblem, untaggedBuildName } from "../../native/image/reference";
import { list, on, type Command, type ParsedArgs } from "./args";

export const BUILD_COMMANDS = new Set(["build", "builder"]);

export const BUILD_USAGE = `
  build [-t NAME:TAG]... [-f FILE] [--build-arg K=V]... [--target STAGE] [--no-cache] [-q]
        [--secret id=ID[,src=FILE|,env=VAR]]... CONTEXT      build an image from a Dockerfile
  builder prune [-a] [--filter until=DURATION] [--keep-storage SIZE] [-f]
                                remove build cache (-a: all of it, not only what no image uses)`;

class UsageError extends Error {}
const usage = (message: string): never => {
  throw new UsageError(message);
};

/** The runtime with every image build reporting progress to `log`, lines prefixed with the image's name. */
export function withBuildProgress(rt: Runtime, log: (line: string) => void): Runtime {
  const images = Object.assign(Object.create(rt.images) as Runtime["images"], {
    build: (req: Parameters<Runtime["images"]["build"]>[0]) => rt.images.build({ log: (l: string) => log(`${req.ref} ${l}`), ...req }),
  });
  // Inheriting, not copying: a remote runtime's other members (close, host: not enumerable) stay reachable.
  return Object.defineProperty(Object.create(rt), "images", { value: images, enumerable: true }) as Runtime;
}

/** Docker's --secret: id=ID with src=FILE (the default: a file named like the id) or env=VAR. */
function secretFlag(spec: string): [string, string] {
  const kv = new Map(spec.split(",").map((f) => [f.slice(0, f.indexOf("=") < 0 ? f.length : f.indexOf("=")), f.slice(f.indexOf("=") + 1)] as const));
  const id = kv.get("id") ?? usage(`--secret ${spec}: give id=ID`);
  const env = kv.get("env");
  if (env !== undefined) return [id, process.env[env] ?? usage(`--secret ${spec}: environment variable ${env} is not set`)];
  const src = kv.get("src") ?? kv.get("source") ?? id;
  try {
    return [id, fs.readFileSync(src, "utf8")];
  } catch (e) {
    return usage(`--secret ${spec}: cannot read ${src}: ${(e as Error).message}`);
  }
}

/** "24h", "90m", "30s" (Docker's Go durations, no fractions) as ms. */
function durationMs(v: string): number {
  const units: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  const parts = [...v.matchAll(/(\d+)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== v) usage(`"${v}" is not a duration such as 24h or 90m`);
  return parts.reduce((n, p) => n + Number(p[1]) * units[p[2]], 0);
}

/** "512MB", "2GB", "100" (bytes) as bytes. */
function bytes(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|k|m|g|t)?$/i.exec(v) ?? usage(`"${v}" is not a size such as 512MB or 2GB`);
  const mult: Record<string, number> = { b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12 };
  return Math.round(Number(m[1]) * mult[(m[2] ?? "b").toLowerCase()]);
}

const human = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}kB` : `${n}B`);

async function build(rt: Runtime, argv: string[]): Promise<number> {
  const tags: string[] = [];
  const buildArgs: Record<string, string> = {};
  const secrets: Record<string, string> = {};
  let dockerfile: string | undefined;
  let target: string | undefined;
  let noCache = false;
  let quiet = false;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith("--") && argv[i].includes("=") ? [argv[i].slice(0, argv[i].indexOf("=")), argv[i].slice(argv[i].indexOf("=") + 1)] : [argv[i], undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === "-t" || flag === "--tag") tags.push(value());
    else if (flag === "-f" || flag === "--file") dockerfile = value();
    else if (flag === "--build-arg") {
      const kv = value();
      // Docker: --build-arg NAME alone takes the value from the environment.
      if (kv.includes("=")) buildArgs[kv.slice(0, kv.indexOf("="))] = kv.slice(kv.indexOf("=") + 1);
      else if (process.env[kv] !== undefined) buildArgs[kv] = process.env[kv]!;
    } else if (flag === "--target") target = value();
    else if (flag === "--secret") {
      const [id, v] = secretFlag(value());
      secrets[id] = v;
    } else if (flag === "--no-cache") noCache = true;
    else if (flag === "-q" || flag === "--quiet") quiet = true;
    else if (flag === "--progress") value();
    else if (flag.startsWith("-")) usage(`unknown flag: ${flag}`);
    else positional.push(flag);
  }
  if (positional.length !== 1) usage('"berth build" requires exactly 1 argument: the build context directory');
  const context = path.resolve(positional[0]);
  if (!fs.statSync(context, { throwIfNoEntry: false })?.isDirectory()) usage(`unable to prepare context: path "${positional[0]}" not found`);
  // Dockerfile paths on the command line are relative to where berth runs, as with Docker.
  const file = dockerfile === undefined ? undefined : path.resolve(dockerfile);
  // Checked before anything is built: the store would refuse a bad name only after the whole build.
  for (const t of tags) {
    const problem = referenceProblem(t, false);
    if (problem) usage(`invalid argument "${t}" for "-t, --tag" flag: ${problem}`);
  }
  const [ref, ...more] = tags.length > 0 ? tags : [untaggedBuildName(path.basename(context))];
  const log = quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
  const { info } = await rt.images.build({ ref, context, dockerfile: file, buildArgs, target, noCache, secrets, log });
  for (const t of more) await rt.images.tag(ref, t);
  if (quiet) console.log(info.id);
  return 0;
}

async function prune(rt: Runtime, argv: string[]): Promise<number> {
  let all = false;
  let force = false;
  let unusedForMs: number | undefined;
  let keepBytes: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith("--") && argv[i].includes("=") ? [argv[i].slice(0, argv[i].indexOf("=")), argv[i].slice(argv[i].indexOf("=") + 1)] : [argv[i], undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === "-a" || flag === "--all") all = true;
    else if (flag === "-f" || flag === "--force") force = true;
    else if (flag === "--filter") {
      const f = value();
      const m = /^(until|unused-for)=(.+)$/.exec(f) ?? usage(`--filter ${f}: berth takes until=DURATION (e.g. until=24h)`);
      unusedForMs = durationMs(m[2]);
    } else if (flag === "--keep-storage" || flag === "--max-used-space") keepBytes = bytes(value());
    else usage(`unknown flag: ${flag}`);
  }
  if (!force) {
    const what = all ? "all build cache" : "all dangling build cache";
    if (!process.stdin.isTTY) usage(`this would remove ${what}: add --force (-f) to confirm`);
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(`WARNING! This will remove ${what}.\nAre you sure you want to continue? [y/N] `);
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) return 1;
  }
  const r = await rt.images.pruneBuildCache({ all, unusedForMs, keepBytes });
  if (r.deleted.length > 0) console.log(`Deleted build cache objects:\n${r.deleted.join("\n")}\n`);
  console.log(`Total reclaimed space: ${human(r.reclaimedBytes)}`);
  return 0;
}

export async function buildCommand(rt: Runtime, command: string, argv: string[]): Promise<number> {
  try {
    if (command === "build") return await build(rt, argv);
    if (argv[0] === "prune") return await prune(rt, argv.slice(1));
    return usage(`unknown command "builder ${argv[0] ?? ""}": berth has "builder prune"`);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`berth ${command}: ${e.message}`);
    return 1;
  }
}

/** The group as the CLI's dispatch table takes it: flags declared (help, unknown-flag errors), then read as above. */
export function buildCommands(runtime: () => Runtime): Command[] {
  const again = (p: ParsedArgs, valued: Record<string, string>, bools: Record<string, string>): string[] => [
    ...Object.entries(valued).flatMap(([name, flag]) => list(p, name).flatMap((v) => [flag, v])),
    ...Object.entries(bools).flatMap(([name, flag]) => (on(p, name) ? [flag] : [])),
  ];
  return [
    {
      name: "build",
      aliases: ["image build"],
      usage: "CONTEXT",
      summary: "Build an image from a Dockerfile.",
      flags: [
        { name: "tag", short: "t", value: "NAME:TAG", repeat: true, help: "name the image (repeatable)" },
        { name: "file", short: "f", value: "FILE", help: "the Dockerfile (default CONTEXT/Dockerfile)" },
        { name: "build-arg", value: "K=V", repeat: true, help: "a build argument (K alone: its value here)" },
        { name: "target", value: "STAGE", help: "build up to this stage" },
        { name: "no-cache", help: "run every step again" },
        { name: "quiet", short: "q", help: "no progress; print the image id" },
        { name: "secret", value: "id=ID[,src=FILE|,env=VAR]", repeat: true, help: "a secret for RUN --mount=type=secret" },
        { name: "progress", value: "TYPE", help: "accepted for Docker's sake: progress is BuildKit's plain format" },
      ],
      run: (p) =>
        buildCommand(runtime(), "build", [
          ...again(p, { tag: "-t", file: "-f", "build-arg": "--build-arg", target: "--target", secret: "--secret", progress: "--progress" }, { "no-cache": "--no-cache", quiet: "-q" }),
          ...p.args,
        ]),
    },
    {
      name: "builder prune",
      summary: "Remove build cache (-a: all of it, not only what no image uses).",
      flags: [
        { name: "all", short: "a", help: "all build cache" },
        { name: "force", short: "f", help: "do not ask for confirmation" },
        { name: "filter", value: "until=DURATION", repeat: true, help: "only cache unused for this long" },
        { name: "keep-storage", value: "SIZE", help: "keep this much" },
      ],
      run: (p) => buildCommand(runtime(), "builder", ["prune", ...again(p, { filter: "--filter", "keep-storage": "--keep-storage" }, { all: "-a", force: "-f" }), ...p.args]),
    },
  ];
}
