// berth's commands over one stack: preview, up, refresh, destroy. Each loads the stack, runs the program (or the
// state alone) through a DeploymentRun, and reports steps; only up, refresh and destroy take the lock and write.
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import type { Runtime } from "../../native/runtime";
import { berthProviders, checkProviderConfig, PACKAGE, type ProviderConfig } from "../resources";
import type { DeploymentV3 } from "../state/checkpoint";
import { chooseBackend } from "../state/backend";
import { type StackConfig, StackSettings } from "../state/stackconfig";
import { StackStore } from "../state/store";
import type { PropertyMap } from "../resources/provider";
import { RuntimePool } from "../runtimes";
import { keepSecret } from "../values";
import { DeploymentRun, type Diagnostic } from "./deployment";
import { serveMonitor } from "./monitor";
import { loadProject, pulumiPackageDir, runProgram, type Project } from "./program";
import { type PlanFile, unmetPlan } from "./review";
import type { Step } from "./steps";
import { makeUrn, STACK_TYPE } from "./urn";

export interface StackContext {
  project: Project;
  stack: string;
  store: StackStore;
  settings: StackSettings;
  /** Config as the program receives it (secrets decrypted), and which keys are secret. */
  config: StackConfig;
  /**
   * The host runtime for a provider configuration (the default provider's is the stack's `berth:*` config): one
   * per configuration while the context lives, so one connection per host.
   */
  runtimeFor: (config: ProviderConfig) => Runtime;
  /** Closes the runtimes opened (remote ones hold an SSH connection). */
  close(): Promise<void>;
  /** `--target`, `--target-dependents`, `--replace`, `--refresh`. */
  scope: RunScope;
  /** Called as each step that changes the host starts (a display shows it in progress). */
  onStepStart?: (step: Step) => void;
  /** Autonames' seed for every run of this context: `up`'s preview and update pick the same names. */
  seed: string;
}

export interface RunScope {
  targets?: ReadonlySet<string>;
  /** `--target-dependents`. */
  targetDependents?: boolean;
  replaceTargets?: ReadonlySet<string>;
  refresh?: boolean;
  /** `up --plan`: apply exactly this plan. */
  plan?: PlanFile;
}

export interface Outcome {
  steps: Step[];
  diagnostics: Diagnostic[];
  /** Stack outputs after the run (up), or as last recorded. */
  outputs: Record<string, unknown>;
  ok: boolean;
  /** The run would record something new without a step changing the host (protect, aliases, options). */
  stateChanged?: boolean;
}

export interface StackOptions {
  /** A backend URL (`--backend`); otherwise found as the Pulumi CLI finds it. */
  backend?: string;
  /** A backend directory, for tests and tools that already know it. */
  backendDir?: string;
  scope?: RunScope;
  onStepStart?: (step: Step) => void;
  /** Only reads the stack: Pulumi.<stack>.yaml is never written (not even the checkpoint's salt copied to it). */
  readOnly?: boolean;
}

export function openStack(dir: string, stack: string, runtimeFor: (config: ProviderConfig) => Runtime, opts: StackOptions = {}): StackContext {
  const project = loadProject(path.resolve(dir));
  const backendDir = opts.backendDir ?? chooseBackend({ flag: opts.backend, projectUrl: project.backendUrl, projectDir: project.dir }).dir;
  const settings = new StackSettings(path.join(project.dir, `Pulumi.${stack}.yaml`), project.name, opts.readOnly);
  const store = new StackStore({ backendDir, project: project.name, stack, secrets: settings });
  // Read on first use: decrypting `secure:` values needs the passphrase, which `config set` of a plain value,
  // `stack graph` and the like do not.
  let config: StackConfig | undefined;
  const runtimes = new RuntimePool(runtimeFor);
  return {
    project,
    stack,
    store,
    settings,
    get config() {
      return (config ??= settings.config());
    },
    runtimeFor: (c) => runtimes.get(c),
    close: () => runtimes.close(),
    scope: opts.scope ?? {},
    onStepStart: opts.onStepStart,
    seed: randomBytes(16).toString("hex"),
  };
}

/** The stack's `berth:*` config: the default provider's inputs, as Pulumi records them (secret config stays secret). */
function defaultProviderInputs(config: StackConfig): PropertyMap {
  const prefix = `${PACKAGE}:`;
  const inputs = Object.fromEntries(Object.entries(config.values).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return keepSecret(inputs, config.secretKeys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)));
}

/** Secrets in a plan file are compared by a digest keyed with the stack's passphrase. */
export const fingerprintOf = (ctx: StackContext) => (plaintext: string) => ctx.settings.crypter().fingerprint(plaintext);

/** The stack's `berth:*` config checked once per context (`up` runs a preview and an update with it). */
const checkedDefaults = new WeakMap<StackContext, ProviderConfig>();

function defaultConfig(ctx: StackContext): ProviderConfig {
  const known = checkedDefaults.get(ctx);
  if (known) return known;
  const { config, failures } = checkProviderConfig(defaultProviderInputs(ctx.config));
  if (failures.length > 0) throw new Error(failures.map((f) => `config ${PACKAGE}:${f.property}: ${f.reason}`).join("\n"));
  checkedDefaults.set(ctx, config);
  return config;
}

function newRun(ctx: StackContext, base: DeploymentV3, preview: boolean, onStep?: (s: Step) => void, onDiagnostic?: (d: Diagnostic) => void): DeploymentRun {
  const providersFor = (config: ProviderConfig) => berthProviders(ctx.runtimeFor(config), ctx.project.dir);
  const config = defaultConfig(ctx);
  return new DeploymentRun({
    stack: ctx.stack,
    project: ctx.project.name,
    preview,
    providers: providersFor(config),
    providersFor,
    defaultProviderInputs: defaultProviderInputs(ctx.config),
    defaultProviderConfig: config,
    targets: ctx.scope.targets,
    targetDependents: ctx.scope.targetDependents,
    replaceTargets: ctx.scope.replaceTargets,
    plan: ctx.scope.plan && { file: ctx.scope.plan, fingerprint: fingerprintOf(ctx) },
    seed: ctx.scope.plan?.seed ?? ctx.seed,
    base,
    persist: (d) => ctx.store.write(d),
    onStep,
    onDiagnostic,
    onStepStart: ctx.onStepStart,
  });
}

function stackOutputs(d: DeploymentV3): Record<string, unknown> {
  return d.resources.find((r) => r.type === STACK_TYPE && !r.delete)?.outputs ?? {};
}

/** Runs the program against a run, then (if it succeeded) deletes what it no longer declares. */
async function runProgramThrough(ctx: StackContext, run: DeploymentRun, preview: boolean): Promise<Outcome> {
  const base = run.state;
  await run.recover();
  if (ctx.scope.refresh) await run.refresh();
  const pulumiDir = pulumiPackageDir(ctx.project.dir);
  // A refused step ends the update: the program is stopped at once (@pulumi/pulumi would otherwise spend seconds
  // to minutes printing its own copy of the error with a stack trace), and what is under way is waited for.
  const stop = new AbortController();
  const monitor = await serveMonitor(pulumiDir, run, { preview, onRefused: () => stop.abort() });
  let program;
  try {
    program = await runProgram({ project: ctx.project, stack: ctx.stack, monitor: monitor.address, preview, config: ctx.config.values, secretKeys: ctx.config.secretKeys, pulumiDir, signal: stop.signal });
    await monitor.settled();
  } finally {
    await monitor.close();
  }
  const diagnostics = [...run.diagnostics];
  for (const log of monitor.logs) {
    // The program's report of a registration the engine refused repeats the engine's diagnostic.
    if (run.failed && log.severity === "error" && log.message.includes("failed to register new resource")) continue;
    // Shown as Pulumi shows them: info too (`pulumi.log.info`), not debug.
    if (log.severity !== "debug") diagnostics.push({ severity: log.severity, urn: log.urn, message: log.message.trim() });
  }
  const programFailed = program.exitCode !== 0;
  // What it printed (console.log), as Pulumi shows it: after its messages. A failed program's is in its error below.
  if (!programFailed && program.output.trim()) diagnostics.push({ severity: "info", message: program.output.trimEnd() });
  if (programFailed && !diagnostics.some((d) => d.severity === "error")) {
    diagnostics.push({ severity: "error", message: `the program exited with code ${program.exitCode}:\n${program.output.trim()}` });
  }
  if (!programFailed && !run.failed) {
    await run.finish();
    diagnostics.push(...run.diagnostics.filter((d) => !diagnostics.includes(d)));
  }
  if (succeeded(programFailed, diagnostics) && ctx.scope.plan) {
    for (const message of unmetPlan(ctx.scope.plan, run.steps)) diagnostics.push({ severity: "error", message });
  }
  const ok = succeeded(programFailed, diagnostics);
  return { steps: run.steps, diagnostics, outputs: stackOutputs(run.state), ok, stateChanged: resourcesDiffer(base, run.state) };
}

const succeeded = (programFailed: boolean, diagnostics: Diagnostic[]) => !programFailed && !diagnostics.some((d) => d.severity === "error");

/** Whether two deployments record different resources (ignoring order and timestamps). */
function resourcesDiffer(a: DeploymentV3, b: DeploymentV3): boolean {
  const key = (d: DeploymentV3) =>
    JSON.stringify(d.resources.map(({ created: _c, modified: _m, ...r }) => r).sort((x, y) => (x.urn < y.urn ? -1 : x.urn > y.urn ? 1 : 0)));
  return key(a) !== key(b);
}

export async function preview(ctx: StackContext, onStep?: (s: Step) => void): Promise<Outcome> {
  return runProgramThrough(ctx, newRun(ctx, ctx.store.load(), true, onStep), true);
}

/** Applies the program. The caller has shown and confirmed a preview first, as `pulumi up` does. */
export async function up(ctx: StackContext, onStep?: (s: Step) => void, onDiagnostic?: (d: Diagnostic) => void): Promise<Outcome> {
  const release = ctx.store.lock();
  try {
    const run = newRun(ctx, ctx.store.load(), false, onStep, onDiagnostic);
    let outcome: Outcome;
    try {
      outcome = await runProgramThrough(ctx, run, false);
    } finally {
      await run.settled();
    }
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

export interface Imported extends Outcome {
  /** Program code declaring the imported resource, as `pulumi import` prints it. */
  code?: string;
}

/**
 * `berth import TYPE NAME ID`, as `pulumi import`: an object already on the host becomes a resource of the stack,
 * its inputs read back from the object; nothing else in the stack changes. The program must then declare it (the
 * code returned does), or the next up deletes it.
 */
export async function importResource(ctx: StackContext, req: { type: string; name: string; id: string; protect: boolean }, onStep?: (s: Step) => void): Promise<Imported> {
  const stackName = `${ctx.project.name}-${ctx.stack}`;
  const stackUrn = makeUrn(ctx.stack, ctx.project.name, STACK_TYPE, stackName);
  const urn = makeUrn(ctx.stack, ctx.project.name, req.type, req.name, stackUrn);
  const providers = berthProviders(ctx.runtimeFor(defaultConfig(ctx)), ctx.project.dir);
  let inputs: Record<string, unknown> = {};
  const scoped = { ...ctx, scope: { targets: new Set([stackUrn, urn]) } };
  const outcome = await withStateOnly(scoped, onStep, async (run) => {
    const provider = providers.get(req.type);
    if (!provider) throw new Error(`unknown resource type ${req.type}: berth's types are ${[...providers.keys()].join(", ")}`);
    if (run.state.resources.some((r) => r.urn === urn && !r.delete)) {
      throw new Error(`the stack already has ${urn}; import it under another name`);
    }
    const read = await provider.read({ urn, id: req.id, inputs: {}, outputs: {}, claim: true });
    if (!read) throw new Error(`there is no ${req.type} with id "${req.id}" on this host`);
    inputs = read.inputs;
    const goal = { dependencies: [], propertyDependencies: {} };
    await run.register({ ...goal, type: STACK_TYPE, name: stackName, custom: false, inputs: {} });
    await run.register({ ...goal, type: req.type, name: req.name, custom: true, parent: stackUrn, inputs, importId: req.id, protect: req.protect });
    await run.finish();
  });
  return { ...outcome, code: outcome.ok ? declaration(req, inputs) : undefined };
}

/** `new berth.Volume("data", { ... }, { protect: true });` — the inputs as the program should state them. */
function declaration(req: { type: string; name: string; protect: boolean }, inputs: Record<string, unknown>): string {
  const args = Object.fromEntries(Object.entries(inputs).filter(([k]) => !k.startsWith("__")));
  const cls = req.type.split(":").pop();
  const opts = req.protect ? ", { protect: true }" : "";
  return `new berth.${cls}(${JSON.stringify(req.name)}, ${JSON.stringify(args, null, 2)}${opts});`;
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
    await run.settled();
    ctx.store.save(run.state);
    const diagnostics = failure ? [...run.diagnostics, failure] : run.diagnostics;
    return { steps: run.steps, diagnostics, outputs: stackOutputs(run.state), ok: !diagnostics.some((d) => d.severity === "error") };
  } finally {
    release();
  }
}
