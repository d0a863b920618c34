// berth's commands over one stack: preview, up, refresh, destroy. Each loads the stack, runs the program (or the
// state alone) through a DeploymentRun, and reports steps; only up, refresh and destroy take the lock and write.
import * as path from "node:path";
import type { Runtime } from "../../native/runtime";
import { berthProviders } from "../resources";
import type { DeploymentV3 } from "../state/checkpoint";
import { chooseBackend } from "../state/backend";
import { type StackConfig, StackSettings } from "../state/stackconfig";
import { StackStore } from "../state/store";
import { DeploymentRun, type Diagnostic } from "./deployment";
import { serveMonitor } from "./monitor";
import { loadProject, pulumiPackageDir, runProgram, type Project } from "./program";
import type { Step } from "./steps";
import { STACK_TYPE } from "./urn";

export interface StackContext {
  project: Project;
  stack: string;
  store: StackStore;
  settings: StackSettings;
  /** Config as the program receives it (secrets decrypted), and which keys are secret. */
  config: StackConfig;
  runtime: Runtime;
}

export interface Outcome {
  steps: Step[];
  diagnostics: Diagnostic[];
  /** Stack outputs after the run (up), or as last recorded. */
  outputs: Record<string, unknown>;
  ok: boolean;
}

export interface StackOptions {
  /** A backend URL (`--backend`); otherwise found as the Pulumi CLI finds it. */
  backend?: string;
  /** A backend directory, for tests and tools that already know it. */
  backendDir?: string;
}

export function openStack(dir: string, stack: string, runtime: Runtime, opts: StackOptions = {}): StackContext {
  const project = loadProject(path.resolve(dir));
  const backendDir = opts.backendDir ?? chooseBackend({ flag: opts.backend, projectUrl: project.backendUrl, projectDir: project.dir }).dir;
  const settings = new StackSettings(path.join(project.dir, `Pulumi.${stack}.yaml`), project.name);
  const store = new StackStore({ backendDir, project: project.name, stack, secrets: settings });
  return { project, stack, store, settings, config: settings.config(), runtime };
}

function newRun(ctx: StackContext, base: DeploymentV3, preview: boolean, onStep?: (s: Step) => void): DeploymentRun {
  return new DeploymentRun({
    stack: ctx.stack,
    project: ctx.project.name,
    preview,
    providers: berthProviders(ctx.runtime, ctx.project.dir),
    base,
    persist: (d) => ctx.store.save(d),
    onStep,
  });
}

function stackOutputs(d: DeploymentV3): Record<string, unknown> {
  return d.resources.find((r) => r.type === STACK_TYPE && !r.delete)?.outputs ?? {};
}

/** Runs the program against a run, then (if it succeeded) deletes what it no longer declares. */
async function runProgramThrough(ctx: StackContext, run: DeploymentRun, preview: boolean): Promise<Outcome> {
  await run.recover();
  const pulumiDir = pulumiPackageDir(ctx.project.dir);
  const monitor = await serveMonitor(pulumiDir, run, { preview });
  let program;
  try {
    program = await runProgram({ project: ctx.project, stack: ctx.stack, monitor: monitor.address, preview, config: ctx.config.values, secretKeys: ctx.config.secretKeys, pulumiDir });
  } finally {
    await monitor.close();
  }
  const diagnostics = [...run.diagnostics];
  for (const log of monitor.logs) {
    if (log.severity === "error" || log.severity === "warning") diagnostics.push({ severity: log.severity, urn: log.urn, message: log.message.trim() });
  }
  const programFailed = program.exitCode !== 0;
  if (programFailed && !diagnostics.some((d) => d.severity === "error")) {
    diagnostics.push({ severity: "error", message: `the program exited with code ${program.exitCode}:\n${program.output.trim()}` });
  }
  if (!programFailed && !run.failed) {
    await run.finish();
    diagnostics.push(...run.diagnostics.filter((d) => !diagnostics.includes(d)));
  }
  const ok = !programFailed && !diagnostics.some((d) => d.severity === "error");
  return { steps: run.steps, diagnostics, outputs: stackOutputs(run.state), ok };
}

export async function preview(ctx: StackContext): Promise<Outcome> {
  return runProgramThrough(ctx, newRun(ctx, ctx.store.load(), true), true);
}

/** Applies the program. The caller has shown and confirmed a preview first, as `pulumi up` does. */
export async function up(ctx: StackContext, onStep?: (s: Step) => void): Promise<Outcome> {
  const release = ctx.store.lock();
  try {
    const run = newRun(ctx, ctx.store.load(), false, onStep);
    const outcome = await runProgramThrough(ctx, run, false);
    ctx.store.save(run.state);
    return outcome;
  } finally {
    release();
  }
}

/** Reads what is really on the host into the state: drift is recorded, and the next up repairs it. */
export async function refresh(ctx: StackContext, onStep?: (s: Step) => void): Promise<Outcome> {
  return withStateOnly(ctx, onStep, (run) => run.refresh());
}

export async function destroy(ctx: StackContext, onStep?: (s: Step) => void): Promise<Outcome> {
  return withStateOnly(ctx, onStep, (run) => run.destroy());
}

/** The plan of a destroy, without changing anything. */
export async function previewDestroy(ctx: StackContext): Promise<Outcome> {
  const run = newRun(ctx, ctx.store.load(), true);
  await run.recover();
  await run.destroy();
  return { steps: run.steps, diagnostics: run.diagnostics, outputs: {}, ok: !run.failed };
}

async function withStateOnly(ctx: StackContext, onStep: ((s: Step) => void) | undefined, act: (run: DeploymentRun) => Promise<void>): Promise<Outcome> {
  const release = ctx.store.lock();
  try {
    const run = newRun(ctx, ctx.store.load(), false, onStep);
    let failure: Diagnostic | undefined;
    try {
      await run.recover();
      await act(run);
    } catch (err) {
      if (!run.failed) failure = { severity: "error", message: (err as Error).message };
    }
    ctx.store.save(run.state);
    const diagnostics = failure ? [...run.diagnostics, failure] : run.diagnostics;
    return { steps: run.steps, diagnostics, outputs: stackOutputs(run.state), ok: !diagnostics.some((d) => d.severity === "error") };
  } finally {
    release();
  }
}
