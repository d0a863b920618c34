// Starts a Pulumi program the way Pulumi's Node language host does: @pulumi/pulumi's own runner (cmd/run), told
// where the monitor and engine are, its TypeScript transpiled by berth's own (program-host.ts).
import { spawn } from "node:child_process";
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
    PROGRAM_HOST,
    path.join(opts.pulumiDir, "cmd", "run"),
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
    const child = spawn(process.execPath, args, { cwd: project.dir, env, stdio: ["ignore", "pipe", "pipe"], signal: opts.signal, killSignal: "SIGKILL" });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", (e) => {
      if (e.name !== "AbortError") reject(e);
    });
    child.on("close", (code) => resolve({ exitCode: code ?? 1, output }));
  });
}
