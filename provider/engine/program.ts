// Starts a Pulumi program the way Pulumi's Node language host does: @pulumi/pulumi's own runner (cmd/run), told
// where the monitor and engine are, its TypeScript transpiled by berth's own (program-host.ts). The program's
// process is started as soon as `berth preview|up` starts (bin/berth calls prestart first), so that it loads
// @pulumi/pulumi while the CLI loads the engine; it is told what to run once the monitor listens. `up` starts its
// update's as soon as the preview finds a change, so that it loads while the preview runs.
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";

export interface Project {
  /** Directory holding Pulumi.yaml. */
  dir: string;
  name: string;
  /** Entry point relative to dir ("." when Pulumi.yaml names none). */
  main: string;
  /** `backend.url`, when the project names its backend. */
  backendUrl?: string;
}

/** Reads the fields of Pulumi.yaml berth needs. */
export function loadProject(dir: string): Project {
  const file = path.join(dir, "Pulumi.yaml");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new Error(`no Pulumi.yaml in ${dir}: run berth in a Pulumi project directory, or name one (berth up DIR)`);
  }
  const doc = (yaml.load(text) ?? {}) as { name?: unknown; main?: unknown; backend?: { url?: unknown } };
  if (typeof doc.name !== "string" || !doc.name) throw new Error(`${file} has no "name:"`);
  const backendUrl = typeof doc.backend?.url === "string" ? doc.backend.url : undefined;
  return { dir, name: doc.name, main: typeof doc.main === "string" ? doc.main : ".", backendUrl };
}

/** The @pulumi/pulumi package the program resolves (its runner and gRPC stubs must be the program's own). */
export function pulumiPackageDir(projectDir: string): string {
  try {
    return path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [projectDir] }));
  } catch {
    throw new Error(`@pulumi/pulumi is not installed for ${projectDir}: run npm install there`);
  }
}

/** Compiled even when the engine runs from source (tests): the program's process is plain node. */
const PROGRAM_HOST = path.join(path.dirname(require.resolve("berth-iac/package.json")), "dist/provider/engine/program-host.js");

/** A program's process started ahead, for the project in `dir`, waiting on its stdin for what to run. */
let waiting: { dir: string; pulumiDir: string; host: ChildProcess } | undefined;

/**
 * Starts the program's process of a `berth preview|up` before the CLI has loaded anything else, for the project in
 * `dir` — the one a valid command line names (cli/deploy-flags.ts deployDirOf: a usage error or --help starts
 * nothing, so no code of a project loads before the CLI has read its flags); nothing when dir holds no project.
 * `berth up` starts its update's the same way once the preview finds a change. Unused (a run refused before the
 * program, an update declined), it exits with this process, whose end closes its stdin.
 */
export function prestart(dir: string): void {
  dir = path.resolve(dir);
  if (waiting?.dir === dir) return;
  if (!fs.existsSync(path.join(dir, "Pulumi.yaml"))) return;
  let pulumiDir: string;
  try {
    pulumiDir = pulumiPackageDir(dir);
  } catch {
    return; // runProgram says what is missing.
  }
  const host = startHost(dir, pulumiDir);
  for (const handle of handles(host)) handle.unref();
  waiting = { dir, pulumiDir, host };
}

function startHost(dir: string, pulumiDir: string): ChildProcess {
  return spawn(process.execPath, [PROGRAM_HOST, path.join(pulumiDir, "cmd", "run")], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
}

/** The process and its pipes (sockets): a process waiting unused must not keep this one alive. */
const handles = (host: ChildProcess) => [host, host.stdin, host.stdout, host.stderr] as unknown as Array<{ ref(): void; unref(): void }>;

/** The process started ahead for this project, if it is still waiting, else a new one. */
function programHost(dir: string, pulumiDir: string): ChildProcess {
  const ahead = waiting;
  waiting = undefined;
  if (ahead && ahead.dir === dir && ahead.pulumiDir === pulumiDir && ahead.host.exitCode === null && ahead.host.signalCode === null) {
    for (const handle of handles(ahead.host)) handle.ref();
    return ahead.host;
  }
  ahead?.host.kill("SIGKILL");
  return startHost(dir, pulumiDir);
}

export interface ProgramRun {
  exitCode: number;
  /** What the program wrote to stdout/stderr (console.log output and crashes). */
  output: string;
}

export function runProgram(opts: {
  project: Project;
  stack: string;
  monitor: string;
  preview: boolean;
  config: Record<string, string>;
  secretKeys: string[];
  pulumiDir: string;
  /** Ends the program (the engine stopped: its failure is already reported, and the program's echo of it is noise). */
  signal?: AbortSignal;
}): Promise<ProgramRun> {
  const { project } = opts;
  const args = [
    "--monitor", opts.monitor,
    "--engine", opts.monitor,
    "--organization", "organization",
    "--project", project.name,
    "--root-directory", project.dir,
    "--stack", opts.stack,
    "--pwd", project.dir,
    "--parallel", "32",
    ...(opts.preview ? ["--dry-run"] : []),
    project.main,
  ];
  const env = {
    ...process.env,
    // The program host loads TypeScript itself (an ES-module project excepted: it turns this back on).
    PULUMI_NODEJS_TYPESCRIPT: "false",
    PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    PULUMI_CONFIG: JSON.stringify(opts.config),
    PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(opts.secretKeys),
  };
  return new Promise((resolve, reject) => {
    const child = programHost(project.dir, opts.pulumiDir);
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ exitCode: code ?? 1, output }));
    const stop = () => child.kill("SIGKILL");
    if (opts.signal?.aborted) stop();
    opts.signal?.addEventListener("abort", stop, { once: true });
    // What to run; the host starts it when its stdin ends (program-host.ts). A host that died already is reported
    // by its exit, not by this write.
    child.stdin!.on("error", () => {});
    child.stdin!.end(JSON.stringify({ args, env }));
  });
}
