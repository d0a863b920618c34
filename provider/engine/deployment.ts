// One run of the engine over one stack: registrations from the program become steps (decided by steps.ts),
// which are previewed or carried out through the providers, with every change to the checkpoint persisted before
// the program hears that its step is done.
import { randomBytes, randomUUID } from "node:crypto";
import * as os from "node:os";
import type { DeploymentV3, OperationType, ResourceState } from "../state/checkpoint";
import { deletionWaves, sortResources } from "../state/order";
import * as T from "../state/transitions";
import { checkProviderConfig, diffProviderConfig, PROVIDER_TYPE, type ProviderConfig, redact, secretHostTexts } from "../resources";
import { machineWide } from "../resources/kind";
import { targetOf } from "../runtimes";
import type { CheckFailure, PropertyMap, Provider } from "../resources/provider";
import type { CustomTimeouts } from "../state/checkpoint";
import { isSecret, keepSecret, plaintextPasswords, UNKNOWN } from "../values";
import { Slots } from "../../native/slots";
import { ignoreChanges, replaceOnChanges } from "./options";
import { type Fingerprint, type PlanFile, planViolation } from "./review";
import { decide, type Step } from "./steps";
import { makeUrn, parseUrn } from "./urn";

/** What the program asked for when it registered a resource. */
export interface Goal {
  type: string;
  name: string;
  custom: boolean;
  parent?: string;
  inputs: PropertyMap;
  dependencies: string[];
  propertyDependencies: Record<string, string[]>;
  deleteBeforeReplace?: boolean;
  protect?: boolean;
  /** "<provider URN>::<provider id>" of an explicit provider. */
  provider?: string;
  /** The package version the SDK asked for (names the default provider as Pulumi does). */
  version?: string;
  ignoreChanges?: string[];
  replaceOnChanges?: string[];
  retainOnDelete?: boolean;
  /** URNs this resource was known by before (a rename is not a replace). */
  aliases?: string[];
  /** Adopt this existing object instead of creating one. */
  importId?: string;
  /** Seconds each operation may take. */
  customTimeouts?: CustomTimeouts;
  additionalSecretOutputs?: string[];
  /** Not deleted on the host when this resource is deleted in the same run (it goes with it). */
  deletedWith?: string;
}

export interface Registered {
  urn: string;
  id: string;
  outputs: PropertyMap;
}

export interface Diagnostic {
  severity: "error" | "warning" | "info";
  urn?: string;
  message: string;
}

export interface RunOptions {
  stack: string;
  project: string;
  /** Plan only: nothing on the host and nothing in the state file changes. */
  preview: boolean;
  /** The default provider's resource providers, by type token. */
  providers: Map<string, Provider>;
  /** Providers for an explicit provider resource's configuration (`new berth.Provider(...)`). */
  providersFor?: (config: ProviderConfig) => Map<string, Provider>;
  /** The default provider's configuration inputs (the stack's `berth:*` config). */
  defaultProviderInputs?: PropertyMap;
  /** Those inputs as the caller checked them already (checked here otherwise). */
  defaultProviderConfig?: ProviderConfig;
  /** `--target`: only these URNs change; everything else keeps its last state. */
  targets?: ReadonlySet<string>;
  /** `--target-dependents`: what depends on a targeted resource is targeted too. */
  targetDependents?: boolean;
  /** `--replace`: these URNs are replaced even without a change. */
  replaceTargets?: ReadonlySet<string>;
  /**
   * Seeds the random part of autonames (`web-1a2b3c4`), as Pulumi's random seed does: a name is picked once, when
   * its resource is first made, and kept in the state; two checkouts of one stack on one host pick different ones.
   * A preview and the update after it pass the same seed, so the names previewed are the names made. Default: random.
   */
  seed?: string;
  /** `up --plan`: every step must be the one planned, or the run stops before acting. */
  plan?: { file: PlanFile; fingerprint: Fingerprint };
  base: DeploymentV3;
  /** Makes a checkpoint durable (update runs); one call at a time. */
  persist?: (deployment: DeploymentV3) => void | Promise<void>;
  onStep?: (step: Step) => void;
  onDiagnostic?: (diagnostic: Diagnostic) => void;
  /** A step that changes the host is about to start (the display shows it in progress). */
  onStepStart?: (step: Step) => void;
}

/** A failure already reported as a diagnostic; the program only needs to know the registration failed. */
export class ReportedError extends Error {}

/** An operation the host carried out whose result the state file lacks: not "create failed" (its pending record lets the next run settle it). */
class StateNotWritten extends Error {}

/** What a failed operation says: that it failed, or that it was done and only its record was not. */
const failure = (op: string, err: Error): string => (err instanceof StateNotWritten ? err.message.replace(/^\w+/, op) : `${op} failed: ${err.message}`);


export class DeploymentRun {
  state: DeploymentV3;
  readonly steps: Step[] = [];
  readonly diagnostics: Diagnostic[] = [];
  private readonly olds = new Map<string, ResourceState>();
  private readonly registered = new Set<string>();
  /** Resources found under an alias in this run: their host objects are recorded as the new URN's even when unchanged. */
  private readonly renamed = new Map<string, string>();
  /** Exclusive things held in this run, by "<scope key>\n<claim>", in the order they were claimed (never removed). */
  private readonly claims = new Map<string, { urn: string; seq: number }>();
  /** The checked inputs of each resource holding claims: what later checks compare against (subnets, ports). */
  private readonly claimed = new Map<string, PropertyMap>();
  /** Dependents of a resource replaced delete-before-replace: replaced with it. Dependent URN → cause URN. */
  private readonly forcedBy = new Map<string, string>();
  private providerRef?: string;
  /** Each provider resource's configuration and resource providers, by "<urn>::<id>". */
  private readonly instances = new Map<string, Instance>();
  /** The default provider's (the stack's `berth:*` config). */
  private readonly defaultInstance: Instance;
  /**
   * Host operations at once: Pulumi's default (`--parallel`, 4 per CPU). A container's create or delete spends most
   * of its time waiting on the kernel and runc: at 2 per CPU a destroy's main thread sat idle two thirds of the time.
   */
  private readonly slots = new Slots(4 * os.availableParallelism());
  /** `--target` and, under `--target-dependents`, the dependents of targets registered so far. */
  private readonly targeted?: Set<string>;

  private readonly seed: string;

  constructor(private readonly opts: RunOptions) {
    this.state = opts.base;
    this.seed = opts.seed ?? randomBytes(16).toString("hex");
    this.targeted = opts.targets && new Set(opts.targets);
    const inputs = opts.defaultProviderInputs ?? {};
    const config = opts.defaultProviderConfig ?? checkProviderConfig(inputs).config;
    this.hideSecretHost(inputs, "default");
    this.defaultInstance = { config, providers: opts.providers, where: this.whereOf(inputs, "default", config) };
    this.indexOlds();
  }

  /** The live resources of the last state, by URN: what this run's registrations are compared against. */
  private indexOlds(): void {
    this.olds.clear();
    for (const r of this.state.resources) if (!r.delete) this.olds.set(r.urn, r);
  }

  get failed(): boolean {
    return this.diagnostics.some((d) => d.severity === "error");
  }

  // Group commit: one checkpoint write at a time, each of the state as it is then, so the commits made while one is
  // written share the next. A run of 100 containers wrote the whole checkpoint 200 times, on the main thread.
  private committed = 0;
  private written = 0;
  private writing?: Promise<void>;
  private writeError?: unknown;

  private commit(next: DeploymentV3): void {
    this.state = next;
    if (this.opts.preview || !this.opts.persist) return;
    this.committed++;
    // Not after a failed write: writeOut would end at once, before `writing` took it, and stay there for settled().
    if (this.writeError === undefined) this.writing ??= this.writeOut();
  }

  private async writeOut(): Promise<void> {
    try {
      while (this.written < this.committed && this.writeError === undefined) {
        const upTo = this.committed;
        await this.opts.persist!(this.state);
        this.written = upTo;
      }
    } catch (err) {
      this.writeError = err;
    } finally {
      this.writing = undefined;
    }
  }

  /** Waits for the checkpoint writes under way (their failure is the caller's final save's to report). */
  async settled(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Resolves once every commit made so far is on disk; throws if writing the checkpoint failed. */
  async durable(): Promise<void> {
    const wanted = this.committed;
    while (this.written < wanted && this.writeError === undefined) await (this.writing ?? this.writeOut());
    if (this.writeError !== undefined) throw this.writeError;
  }

  private record(step: Step): void {
    this.steps.push(step);
    this.opts.onStep?.(step);
  }

  /** A diagnostic, told to the caller as soon as it is known. */
  private report(reported: Diagnostic): void {
    const d = { ...reported, message: this.hide(reported.message) };
    this.diagnostics.push(d);
    this.opts.onDiagnostic?.(d);
  }

  private fail(urn: string | undefined, message: string): never {
    this.report({ severity: "error", urn, message });
    throw new ReportedError(this.hide(message));
  }

  private label(urn: string): string {
    const { type, name } = parseUrn(urn);
    return `${type} "${name}"`;
  }

  async register(goal: Goal): Promise<Registered> {
    const urn = makeUrn(this.opts.stack, this.opts.project, goal.type, goal.name, goal.parent);
    if (this.registered.has(urn)) this.fail(urn, `two resources are named "${goal.name}" with type ${goal.type}; names must be unique`);
    this.registered.add(urn);
    this.adoptAlias(urn, goal.aliases ?? []);
    if (goal.custom && goal.type === PROVIDER_TYPE) return this.registerProvider(urn, goal);
    try {
      return await (goal.custom ? this.registerCustom(urn, goal) : this.registerComponent(urn, goal));
    } catch (err) {
      // A host that cannot answer a check or diff (unreachable, berth missing, a changed host key) is this
      // resource's error, reported as the others are, not a crash of the program with a stack trace.
      if (err instanceof ReportedError || err instanceof TimeoutError) throw err;
      this.fail(urn, `${this.label(urn)}: ${(err as Error).message}`);
    }
  }

  /** A resource found under one of its aliases takes that state over under its new URN: a rename, not a replace. */
  private adoptAlias(urn: string, aliases: string[]): void {
    if (this.olds.has(urn)) return;
    const alias = aliases.find((a) => this.olds.has(a) && !this.registered.has(a));
    if (!alias) return;
    const old = this.olds.get(alias)!;
    this.registered.add(alias);
    this.olds.delete(alias);
    this.olds.set(urn, { ...old, urn });
    this.renamed.set(urn, alias);
    this.state = T.rename(this.state, alias, urn);
  }

  /**
   * The host's owner record follows an unchanged rename, so the day-2 commands name the new URN — only from the
   * alias adopted, never from another owner. Best effort: the rename is done in the state whatever the host says.
   */
  private async followRename(provider: Provider, urn: string, old: ResourceState): Promise<void> {
    try {
      await provider.read({ urn, id: old.id ?? "", inputs: old.inputs, outputs: old.outputs, claimFrom: this.renamed.get(urn) });
    } catch {
      // The next update or refresh records it.
    }
  }

  /** An explicit provider (`new berth.Provider(...)`): its config checked, its resource providers made. */
  private registerProvider(urn: string, goal: Goal): Registered {
    const { config, failures, unknown } = checkProviderConfig(goal.inputs);
    const name = parseUrn(urn).name;
    this.hideSecretHost(goal.inputs, name);
    // A host fed by a resource not made yet: previewed as Pulumi previews an unconfigured provider.
    const unconfigured = this.opts.preview && unknown !== undefined;
    if (!unconfigured) this.refuseFailures(urn, this.label(urn), failures);
    const res = this.settleProvider(urn, this.olds.get(urn), goal.inputs, true, {
      parent: goal.parent,
      dependencies: goal.dependencies,
      ...(goal.protect ? { protect: true } : {}),
    });
    const providers = unconfigured ? new Map<string, Provider>() : (this.opts.providersFor?.(config) ?? this.opts.providers);
    this.instances.set(`${urn}::${res.id}`, { config, providers, where: this.whereOf(goal.inputs, name, config), unconfigured });
    return { urn, id: res.id!, outputs: res.outputs };
  }

  /** Texts never to print, each with what to print instead: the hosts given as secrets. */
  private readonly hidden = new Map<string, string>();

  /** A secret host is named by its provider in every message. */
  private hideSecretHost(inputs: PropertyMap, name: string): void {
    for (const [text, instead] of secretHostTexts(inputs, `[secret host of provider ${name}]`)) this.hidden.set(text, instead);
  }

  private hide(message: string): string {
    return this.hidden.size > 0 ? redact(message, this.hidden) : message;
  }

  /** " on HOST" for the messages of a provider's resources (the provider's name when the host is secret). */
  private whereOf(inputs: PropertyMap, name: string, config: ProviderConfig): string {
    if (isSecret(inputs.host)) return ` on the host of provider ${name}`;
    return config.host ? ` on ${config.host}` : "";
  }

  /**
   * A provider resource's step, decided as Pulumi's DiffConfig does: a change of where it reaches (host, root)
   * gives it a new id, so every resource it manages is replaced (made on the new host, deleted on the old one
   * through the old copy, kept until then); any other change keeps its id.
   */
  private settleProvider(urn: string, old: ResourceState | undefined, inputs: PropertyMap, shown: boolean, extra: Partial<ResourceState>): ResourceState {
    const diff = old ? diffProviderConfig(old.inputs, inputs) : undefined;
    const replace = Boolean(diff && diff.replaces.length > 0);
    const res: ResourceState = { urn, custom: true, id: old && !replace ? old.id : randomUUID(), type: PROVIDER_TYPE, inputs, outputs: inputs, ...extra };
    const op = !old ? "create" : replace ? "replace" : diff!.diffs.length > 0 ? "update" : "same";
    if (shown) this.record({ op, urn, type: PROVIDER_TYPE, old, new: res, diffs: diff?.diffs ?? [], replaces: diff?.replaces ?? [], detailedDiff: {} });
    const base = replace ? T.markForDeletion(this.state, urn) : this.state;
    // The default provider's unchanged record is kept, unless a value became secret: then it is written again.
    const keep = op === "same" && !shown && JSON.stringify(old!.inputs) === JSON.stringify(inputs);
    const next = T.completeWrite(base, keep ? old! : res, "creating");
    if (!keep) this.commit(next);
    else this.state = next;
    return keep ? old! : res;
  }

  /** A provider reference's configuration and resource providers, made from the provider's recorded config if needed. */
  private instanceOf(ref: string | undefined): Instance {
    if (!ref || ref === this.providerRef) return this.defaultInstance;
    const known = this.instances.get(ref);
    if (known) return known;
    const at = ref.lastIndexOf("::");
    // Also an old copy (a replaced provider): what it made is deleted on the host it was made on.
    const state = this.state.resources.find((r) => r.urn === ref.slice(0, at) && r.id === ref.slice(at + 2));
    if (!state) {
      // A default provider Pulumi did not write down is the stack's; an explicit one could be any machine, and
      // acting on this one instead could delete a stranger's object of the same name.
      if (isDefaultProvider(providerUrn(ref))) return this.defaultInstance;
      throw new Error(`its provider ${ref} is not in the state, so berth cannot tell which host it is on: restore the provider's entry (the checkpoint's .bak holds the last one), or remove this resource from the state`);
    }
    const { config, failures } = checkProviderConfig(state.inputs);
    const name = parseUrn(state.urn).name;
    this.hideSecretHost(state.inputs, name);
    // A record berth cannot read would otherwise mean this machine.
    if (failures.length > 0) throw new Error(`its provider ${ref} has a recorded configuration berth cannot use (${failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}): fix that provider's entry in the state`);
    const made = { config, providers: this.opts.providersFor?.(config) ?? this.opts.providers, where: this.whereOf(state.inputs, name, config) };
    this.instances.set(ref, made);
    return made;
  }

  private providerFor(res: { type: string; provider?: string }): Provider | undefined {
    return this.instanceOf(res.provider).providers.get(res.type);
  }

  /**
   * Pulumi's providerChanged: a resource whose provider reference changed is replaced when the new provider's
   * DiffConfig against the old one's inputs says replace (another host or root); otherwise it is diffed as usual.
   */
  private providerMoved(oldRef: string | undefined, newRef: string): boolean {
    if (!oldRef || oldRef === newRef) return false;
    const inputsOf = (ref: string) => {
      const at = ref.lastIndexOf("::");
      return this.state.resources.find((r) => r.urn === ref.slice(0, at) && r.id === ref.slice(at + 2))?.inputs;
    };
    const [olds, news] = [inputsOf(oldRef), inputsOf(newRef)];
    return Boolean(olds && news && diffProviderConfig(olds, news).replaces.length > 0);
  }

  private registerComponent(urn: string, goal: Goal): Registered {
    const old = this.olds.get(urn);
    const res: ResourceState = { urn, custom: false, type: goal.type, inputs: {}, outputs: old?.outputs ?? {}, parent: goal.parent };
    this.record({ op: old ? "same" : "create", urn, type: goal.type, old, new: res, diffs: [], replaces: [], detailedDiff: {} });
    this.commit(T.completeWrite(this.state, old ? { ...old, ...res } : res, "creating"));
    return { urn, id: "", outputs: {} };
  }

  /** Stack outputs (and a component's) arrive after the program computed them. */
  registerOutputs(urn: string, outputs: PropertyMap): void {
    const res = this.state.resources.find((r) => r.urn === urn && !r.delete);
    if (res) this.commit(T.completeWrite(this.state, { ...res, outputs }, "creating"));
  }

  private async registerCustom(urn: string, goal: Goal): Promise<Registered> {
    let old = this.olds.get(urn);
    if (!this.isTargeted(urn, goal)) return this.untargeted(urn, goal, old);
    const providerRef = goal.provider ?? this.ensureProvider(goal.version);
    const instance = this.instanceOf(providerRef);
    // What goes wrong on another machine says which one.
    const label = `${this.label(urn)}${instance.where}`;
    if (instance.unconfigured) return this.previewUnconfigured(urn, label, goal, old, providerRef);
    const scope = targetOf(instance.config);
    const provider = instance.providers.get(goal.type);
    if (!provider) this.fail(urn, `${label}: unknown resource type ${goal.type}`);
    const imported = !old && goal.importId ? await this.readImport(provider, urn, label, goal) : undefined;
    old ??= imported;
    const news = ignoreChanges(goal.inputs, old?.inputs, goal.ignoreChanges ?? []);
    // Moved to another host or root (its provider's DiffConfig says replace): a new object there, checked as one
    // from the start (the old inputs describe the other host). Deleted first when it stays on this machine, whose
    // host ports and interface names it holds; made first on another machine.
    const moved = !imported && this.providerMoved(old?.provider, providerRef);
    const sameMachine = moved && targetOf(this.instanceOf(old!.provider).config).machine === scope.machine;
    // The seed is the run's with the URN for a first create, plus the old id for a replacement: the same in a
    // preview and its update, and never the old object's name again.
    const checked = moved
      ? await provider.check({ urn, name: goal.name, news, randomSeed: this.seedOf(urn, old), declared: this.declared(scope), replacing: sameMachine ? old!.inputs : undefined })
      : await provider.check({ urn, name: goal.name, olds: old?.inputs, news, randomSeed: this.seedOf(urn), declared: this.declared(scope), aliases: goal.aliases ?? [] });
    this.refuseFailures(urn, label, checked.failures);
    for (const path of plaintextPasswords(goal.inputs)) {
      const message = `${label}: ${path} is not a secret; pass it with pulumi.secret(...) or from \`berth config set --secret\`, so that it is encrypted wherever it is kept`;
      this.report({ severity: "warning", urn, message });
    }
    // What an imported object cannot report of itself (write-only fields) is taken from the program.
    if (imported) old = { ...imported, inputs: { ...checked.inputs, ...imported.inputs } };
    const providerDiff = moved
      ? { changes: true, diffs: [], replaces: ["provider"], deleteBeforeReplace: sameMachine, detailedDiff: {} }
      : old
        ? await provider.diff({ urn, id: old.id ?? "", oldInputs: old.inputs, oldOutputs: old.outputs, news: checked.inputs })
        : undefined;
    const diff = providerDiff && replaceOnChanges(providerDiff, goal.replaceOnChanges ?? []);
    if (imported && diff?.changes) {
      this.fail(urn, `${label}: inputs to import do not match the existing resource (${diff.diffs.join(", ")}); make the program say what the object is, then import again`);
    }
    const decision = imported
      ? ({ op: "import" } as const)
      : decide(old, diff, { deleteBeforeReplace: goal.deleteBeforeReplace, forced: this.forcedBy.get(urn), requested: this.opts.replaceTargets?.has(urn) });
    // As in Pulumi, dropping `protect` in the run that replaces is allowed: only a resource staying protected refuses.
    if (decision.op === "replace" && old?.protect && goal.protect) {
      this.fail(urn, `${label}: unable to replace resource "${urn}"\nas it is currently marked for protection. To unprotect the resource, remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\``);
    }
    const dependents = decision.op === "replace" && decision.deleteBeforeReplace ? await this.dependentReplacements(urn) : [];
    this.refuseDependentReplacements(urn, dependents);
    let inputs = checked.inputs;
    if (decision.op === "replace" && !moved) {
      // A replacement is a new object: check again without the old inputs, so it gets fresh defaults (autonames).
      const fresh = await provider.check({ urn, name: goal.name, news, randomSeed: this.seedOf(urn, old), declared: this.declared(scope), replacing: old!.inputs });
      this.refuseFailures(urn, label, fresh.failures);
      inputs = fresh.inputs;
    }
    this.claim(urn, label, provider.claims(inputs), inputs, scope);

    const res: ResourceState = {
      urn,
      custom: true,
      type: goal.type,
      inputs,
      outputs: {},
      parent: goal.parent,
      dependencies: goal.dependencies,
      propertyDependencies: goal.propertyDependencies,
      provider: providerRef,
      ...recordedOptions(goal),
    };
    const cause = this.forcedBy.get(urn);
    const step: Step = {
      op: decision.op,
      urn,
      type: goal.type,
      old,
      new: res,
      diffs: diff?.diffs ?? [],
      replaces: cause ? [...(diff?.replaces ?? []), `(replaced with ${parseUrn(cause).name})`] : (diff?.replaces ?? []),
      detailedDiff: diff?.detailedDiff ?? {},
      deleteBeforeReplace: decision.op === "replace" ? decision.deleteBeforeReplace : undefined,
    };

    this.holdToPlan(step);
    // As Pulumi: once a step failed, what has not started does not start; what runs finishes and is recorded.
    if (this.failed && !this.opts.preview && decision.op !== "same") throw new ReportedError(`${label}: not ${decision.op}d: the update stopped at an earlier error`);
    if (!this.opts.preview && step.op !== "same" && step.op !== "import") this.opts.onStepStart?.(step);
    let done: ResourceState = res;
    try {
      switch (decision.op) {
        case "same":
          done = { ...res, id: old!.id, outputs: old!.outputs, created: old!.created, modified: old!.modified };
          if (this.renamed.has(urn) && !this.opts.preview && !this.failed) await this.followRename(provider, urn, old!);
          if (!T.unchanged(this.state, old!, done)) this.state = T.completeWrite(this.state, done, "creating"); // made durable with the next change
          break;
        case "import":
          done = { ...res, id: old!.id, outputs: old!.outputs, importID: goal.importId, created: new Date().toISOString() };
          this.commit(T.completeWrite(this.state, done, "reading"));
          break;
        case "create":
          done = await this.create(provider, res);
          break;
        case "update":
          done = await this.update(provider, old!, res);
          break;
        case "replace":
          if (decision.deleteBeforeReplace) {
            await this.replaceDependentsFirst(urn, dependents);
            if (this.isLive(old!)) await this.delete(this.providerFor(old!), old!, { replacing: true, oldCopy: false });
            done = await this.create(provider, res);
          } else {
            done = await this.create(provider, res, old);
          }
          break;
      }
    } catch (err) {
      if (err instanceof ReportedError) throw err;
      this.fail(urn, `${label}: ${failure(decision.op, err as Error)}`);
    }
    step.new = done;
    this.record(step);
    return { urn, id: done.id ?? "", outputs: done.outputs };
  }

  /**
   * A preview of a resource whose provider's host is not known yet, as Pulumi previews one of an unconfigured
   * provider: shown as made (anew, where it existed: its provider is replaced), its outputs unknown. Only its schema
   * is checked (it needs no host; Pulumi checks nothing), so a bad literal is refused now, not halfway through the
   * update, which checks it in full once the host is known, before anything is made there.
   */
  private previewUnconfigured(urn: string, label: string, goal: Goal, old: ResourceState | undefined, providerRef: string): Registered {
    const schema = this.opts.providers.get(goal.type);
    if (!schema) this.fail(urn, `${label}: unknown resource type ${goal.type}`);
    this.refuseFailures(urn, label, schema.checkSchema({ urn, name: goal.name, olds: old?.inputs, news: goal.inputs, randomSeed: this.seedOf(urn) }));
    const res: ResourceState = { urn, custom: true, type: goal.type, inputs: goal.inputs, outputs: {}, parent: goal.parent, dependencies: goal.dependencies, propertyDependencies: goal.propertyDependencies, provider: providerRef, ...recordedOptions(goal) };
    const op = old ? "replace" : "create";
    if (old) this.report({ severity: "warning", urn, message: `${this.label(urn)}: the provider for this resource has inputs that are not known during preview.\nThis preview may not correctly represent the changes that will be applied during an update.` });
    this.record({ op, urn, type: goal.type, old, new: res, diffs: [], replaces: old ? ["provider"] : [], detailedDiff: {} });
    this.state = T.completeWrite(this.state, res, "creating");
    return { urn, id: "", outputs: {} };
  }

  private seedOf(urn: string, replaced?: ResourceState): string {
    return [this.seed, urn, ...(replaced ? [replaced.id] : [])].join("\n");
  }

  private holdToPlan(step: Step): void {
    const plan = this.opts.plan;
    const violation = plan && planViolation(plan.file, step, plan.fingerprint);
    if (violation) this.fail(step.urn, `${violation}; the program or the host changed since the plan was made: preview and save the plan again`);
  }

  /** Under `--target`: named, or (with `--target-dependents`) depending on a targeted resource, which makes it one. */
  private isTargeted(urn: string, goal: Goal): boolean {
    const targets = this.targeted;
    if (!targets || targets.has(urn)) return true;
    if (!this.opts.targetDependents || !allDependencies(goal, true).some((u) => targets.has(u))) return false;
    targets.add(urn);
    return true;
  }

  /** Outside `--target`: what exists keeps its last state; what does not is not made. */
  private untargeted(urn: string, goal: Goal, old: ResourceState | undefined): Registered {
    if (!old) return { urn, id: "", outputs: {} };
    this.state = T.completeWrite(this.state, old, "creating");
    this.record({ op: "same", urn, type: goal.type, old, new: old, diffs: [], replaces: [], detailedDiff: {} });
    return { urn, id: old.id ?? "", outputs: old.outputs };
  }

  /** `import`: the object as the host has it becomes the old state the program is compared with. */
  private async readImport(provider: Provider, urn: string, label: string, goal: Goal): Promise<ResourceState> {
    const read = await provider.read({ urn, id: goal.importId!, inputs: {}, outputs: {}, claim: !this.opts.preview });
    if (!read) this.fail(urn, `${label}: import failed: there is no ${goal.type} with id "${goal.importId}" on this host`);
    return { urn, custom: true, type: goal.type, id: read.id, inputs: read.inputs, outputs: read.outputs };
  }

  private refuseFailures(urn: string, label: string, failures: CheckFailure[]): void {
    if (failures.length === 0) return;
    for (const f of failures) this.report({ severity: "error", urn, message: `${label}: ${f.property}: ${f.reason}` });
    throw new ReportedError(`${label}: invalid inputs`);
  }

  /** What the program declared so far on this target: its machine's exclusive things, its root's named objects. */
  private declared(scope: Scope): ReadonlyMap<string, Declared> {
    return new DeclaredSoFar(this.claims, this.claimed, scope, this.claims.size);
  }

  /** Two resources on one host cannot hold one thing (a host port, a container name); on two hosts they can. */
  private claim(urn: string, label: string, claims: string[], inputs: PropertyMap, scope: Scope): void {
    const keys = claims.map((claim) => `${scopeKey(scope, claim)}${SCOPED}${claim}`);
    claims.forEach((claim, i) => {
      const holder = this.claims.get(keys[i])?.urn;
      if (holder && holder !== urn) this.fail(urn, `${label}: ${claim} is already taken by ${this.label(holder)} in this program`);
    });
    for (const key of keys) if (!this.claims.has(key)) this.claims.set(key, { urn, seq: this.claims.size });
    this.claimed.set(urn, inputs);
  }

  /**
   * The default provider resource Pulumi records for a package ("default", or "default_1_2_3" when the SDK names a
   * version), kept with the same id across runs and taken over from the other engine's state.
   */
  private ensureProvider(version?: string): string {
    if (this.providerRef) return this.providerRef;
    const name = version ? `default_${version.replace(/[.-]/g, "_")}` : "default";
    const wanted = makeUrn(this.opts.stack, this.opts.project, PROVIDER_TYPE, name);
    const old = this.olds.get(wanted) ?? [...this.olds.values()].find((r) => r.type === PROVIDER_TYPE && isDefaultProvider(r.urn));
    const urn = old?.urn ?? wanted;
    this.registered.add(urn);
    const inputs = { ...(this.opts.defaultProviderInputs ?? {}), ...(version ? { version } : {}) };
    const res = this.settleProvider(urn, old, inputs, false, {});
    this.providerRef = `${urn}::${res.id}`;
    return this.providerRef;
  }

  private isLive(res: ResourceState): boolean {
    return this.state.resources.some((r) => r.urn === res.urn && !r.delete);
  }

  /** Runs one host operation between a durable "started" record and a durable result. */
  private async operate<R>(res: ResourceState, type: OperationType, act: () => Promise<R>, done: (r: R) => DeploymentV3): Promise<R | undefined> {
    if (this.opts.preview) return undefined;
    this.commit(T.beginOperation(this.state, res, type));
    // The host is touched only once the checkpoint says so.
    await this.durable();
    let result: R;
    try {
      result = await this.slots.run(() => withTimeout(act(), timeoutOf(res, type)));
    } catch (err) {
      // A timed-out operation may still finish on the host: the pending record stays for the next run to settle.
      if (err instanceof TimeoutError) throw err;
      // The provider undoes its own partial work before it throws; nothing is left to remember.
      this.commit(T.abandonOperation(this.state, res.urn, type));
      throw err;
    }
    this.commit(done(result));
    // Shown as done only once on disk, as Pulumi writes its snapshot before it shows the step: a run killed after
    // printing "created" must not have the next one undo it as interrupted. Operations finishing meanwhile share the write.
    await this.durable().catch((e: Error) => {
      throw new StateNotWritten(`${type} done on the host, but the state could not be written (${e.message}); the next \`berth up\` or \`berth refresh\` settles it`);
    });
    return result;
  }

  /** Creates the object; returns its state (in a preview, with what is known of its outputs). */
  private async create(provider: Provider, res: ResourceState, replacing?: ResourceState): Promise<ResourceState> {
    if (this.opts.preview) {
      return { ...res, outputs: (await provider.create({ urn: res.urn, inputs: res.inputs, preview: true })).outputs };
    }
    let done = res;
    await this.operate(res, "creating", () => provider.create({ urn: res.urn, inputs: res.inputs, preview: false }), (created) => {
      const now = new Date().toISOString();
      done = { ...res, id: created.id, outputs: keepSecret(created.outputs, res.additionalSecretOutputs ?? []), created: now, modified: now };
      const base = replacing ? T.markForDeletion(this.state, res.urn) : this.state;
      return T.completeWrite(base, done, "creating");
    });
    return done;
  }

  private async update(provider: Provider, old: ResourceState, res: ResourceState): Promise<ResourceState> {
    const req = { urn: res.urn, id: old.id ?? "", oldInputs: old.inputs, oldOutputs: old.outputs, news: res.inputs };
    const base = { ...res, id: old.id, created: old.created };
    if (this.opts.preview) return { ...base, outputs: (await provider.update({ ...req, preview: true })).outputs };
    let done = base;
    await this.operate(old, "updating", () => provider.update({ ...req, preview: false }), (updated) => {
      done = { ...base, outputs: keepSecret(updated.outputs, res.additionalSecretOutputs ?? []), modified: new Date().toISOString() };
      return T.completeWrite(this.state, done, "updating");
    });
    return done;
  }

  /**
   * `replacing`: the delete is part of a replacement, which Pulumi allows once the program dropped `protect`;
   * `oldCopy`: it is the old copy a replacement left (marked `delete`); `goesWith`: the resource named by its
   * deletedWith is deleted in this run, taking this one with it.
   */
  private async delete(provider: Provider | undefined, res: ResourceState, how: { replacing: boolean; oldCopy: boolean; goesWith?: boolean }): Promise<void> {
    if (res.protect && !how.replacing) {
      this.fail(res.urn, `resource "${res.urn}" cannot be deleted\nbecause it is protected. To unprotect the resource, either remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\`, or use the command:\n\`pulumi state unprotect '${res.urn}'\``);
    }
    const act = async () => {
      if (provider && res.custom && !res.retainOnDelete && !how.goesWith) {
        await provider.delete({ urn: res.urn, id: res.id ?? "", inputs: res.inputs, outputs: res.outputs });
      }
    };
    await this.operate(res, "deleting", act, () => T.completeDelete(this.state, res.urn, how.oldCopy));
  }

  /**
   * What a delete-before-replace of `root` must delete first, decided as Pulumi's engine does: the resources of the
   * last state depending on it (not those the program registered already: they no longer can), each only if it is
   * deletedWith a replaced resource or its provider says that new values of the properties fed by replaced
   * resources would replace it. A plain `dependsOn` orders, it does not replace.
   */
  private async dependentReplacements(root: string): Promise<ResourceState[]> {
    const replacing = new Set([root]);
    const reached = new Set([root]);
    const out: ResourceState[] = [];
    for (const r of sortResources([...this.olds.values()])) {
      if (reached.has(r.urn) || this.registered.has(r.urn) || !allDependencies(r, false).some((u) => reached.has(u))) continue;
      reached.add(r.urn);
      if (await this.requiresReplacement(r, replacing)) {
        replacing.add(r.urn);
        out.push(r);
      }
    }
    return out;
  }

  private async requiresReplacement(r: ResourceState, replacing: ReadonlySet<string>): Promise<boolean> {
    if (!r.custom) return false;
    if ((r.provider && replacing.has(providerUrn(r.provider))) || (r.deletedWith && replacing.has(r.deletedWith))) return true;
    const fed = Object.keys(r.inputs).filter((k) => r.propertyDependencies?.[k]?.some((u) => replacing.has(u)));
    const provider = this.providerFor(r);
    if (fed.length === 0 || !provider) return false;
    const news = ignoreChanges({ ...r.inputs, ...Object.fromEntries(fed.map((k) => [k, UNKNOWN])) }, r.inputs, r.ignoreChanges ?? []);
    const diff = await provider.diff({ urn: r.urn, id: r.id ?? "", oldInputs: r.inputs, oldOutputs: r.outputs, news });
    return replaceOnChanges(diff, r.replaceOnChanges ?? []).replaces.length > 0;
  }

  /** Before anything changes: a dependent to replace must be neither protected nor outside `--target`. */
  private refuseDependentReplacements(urn: string, dependents: ResourceState[]): void {
    const kept = dependents.find((d) => d.protect);
    if (kept) {
      this.fail(urn, `unable to replace resource "${kept.urn}" as part of replacing "${urn}" as it is currently marked for protection. To unprotect the resource, remove the \`protect\` flag from the resource in your Pulumi program and run \`pulumi up\`, or use the command:\n\`pulumi state unprotect '${kept.urn}'\``);
    }
    const targets = this.targeted;
    if (!targets) return;
    if (!this.opts.targetDependents) return this.refuseUntargetedDeletes(dependents.filter((d) => !targets.has(d.urn)));
    // Targeted now, so that each is made again when it registers, even if it no longer depends on `urn`.
    for (const d of dependents) targets.add(d.urn);
  }

  /** Pulumi's refusal to delete what `--target` does not name, one diagnostic per resource. */
  private refuseUntargetedDeletes(untargeted: ResourceState[]): void {
    if (untargeted.length === 0) return;
    // Told as found, as every other refusal is, not only in the summary at the end.
    for (const d of untargeted) this.report({ severity: "error", urn: d.urn, message: untargetedDelete(d.urn) });
    throw new ReportedError(untargetedDelete(untargeted[0].urn));
  }

  /** Before a resource is deleted to be replaced, its dependents to replace go first; each comes back when it registers. */
  private async replaceDependentsFirst(urn: string, dependents: ResourceState[]): Promise<void> {
    for (const dep of dependents) this.forcedBy.set(dep.urn, urn);
    for (const wave of deletionWaves(dependents.filter((d) => this.isLive(d)))) {
      await Promise.all(wave.map((dep) => this.delete(this.providerFor(dep), dep, { replacing: true, oldCopy: false })));
    }
  }

  /**
   * After the program finished: delete what it no longer declares and the old copies of replaced resources,
   * dependents before what they depend on, independent ones in parallel.
   */
  async finish(): Promise<void> {
    // A dependent a delete-before-replace took down, which the program no longer declares, is gone already.
    for (const urn of this.forcedBy.keys()) {
      const old = this.olds.get(urn);
      if (old && !this.registered.has(urn) && !this.isLive(old)) this.record({ op: "delete", urn, type: old.type, old, diffs: [], replaces: [], detailedDiff: {} });
    }
    const leaving = this.state.resources.filter((r) => r.delete || !this.registered.has(r.urn));
    const targets = this.targeted;
    if (!targets) return this.deleteAll(leaving);
    // Under `--target`, what depends on a targeted resource being deleted goes with it only when targeted too
    // (or under `--target-dependents`); otherwise nothing is deleted, as with Pulumi.
    const doomed = new Set(leaving.filter((r) => targets.has(r.urn)));
    const doomedUrns = new Set([...doomed].filter((r) => !r.delete).map((r) => r.urn));
    const untargeted: ResourceState[] = [];
    for (const r of sortResources(leaving)) {
      if (doomed.has(r) || !allDependencies(r, true).some((u) => doomedUrns.has(u))) continue;
      if (!this.opts.targetDependents) untargeted.push(r);
      doomed.add(r);
      doomedUrns.add(r.urn);
    }
    try {
      this.refuseUntargetedDeletes(untargeted);
    } catch (err) {
      if (err instanceof ReportedError) return;
      throw err;
    }
    await this.deleteAll(leaving.filter((r) => doomed.has(r)));
  }

  /** Deletes every resource of the stack (destroy). */
  async destroy(): Promise<void> {
    await this.deleteAll(this.state.resources);
  }

  private async deleteAll(doomed: ResourceState[]): Promise<void> {
    const leaving = new Set(doomed.map((r) => r.urn));
    for (const wave of deletionWaves(doomed)) {
      const results = await Promise.allSettled(
        wave.map(async (res) => {
          const step: Step = { op: "delete", urn: res.urn, type: res.type, old: res, diffs: [], replaces: [], detailedDiff: {} };
          try {
            if (!res.delete) this.holdToPlan(step);
            const goesWith = Boolean(res.deletedWith && leaving.has(res.deletedWith));
            this.opts.onStepStart?.(step);
            await this.delete(this.providerFor(res), res, { replacing: Boolean(res.delete), oldCopy: Boolean(res.delete), goesWith });
          } catch (err) {
            if (!(err instanceof ReportedError)) this.fail(res.urn, `${this.label(res.urn)}: ${failure("delete", err as Error)}`);
            throw err;
          }
          this.record(step);
        }),
      );
      // What depends on a resource that could not be deleted is gone, but the resource stays: stop here.
      if (results.some((r) => r.status === "rejected")) return;
    }
  }

  /** Reads every resource back from the host: gone ones leave the state, changed ones are recorded as they are. */
  async refresh(): Promise<void> {
    await Promise.all(
      this.state.resources
        .filter((r) => r.custom && r.type !== PROVIDER_TYPE)
        .map(async (res) => {
          const provider = this.providerFor(res);
          if (!provider) return;
          // A preview's refresh (preview --refresh) reads only: not even the owner record is written.
          const read = await provider.read({ urn: res.urn, id: res.id ?? "", inputs: res.inputs, outputs: res.outputs, claim: !this.opts.preview });
          const step: Step = { op: "refresh", urn: res.urn, type: res.type, old: res, diffs: [], replaces: [], detailedDiff: {} };
          if (!read) {
            this.record({ ...step, op: "delete" });
            this.commit(T.forget(this.state, res.urn));
            return;
          }
          const changed = Object.keys({ ...res.outputs, ...read.outputs }).filter(
            (k) => JSON.stringify(res.outputs[k]) !== JSON.stringify(read.outputs[k]),
          );
          if (changed.length === 0) return this.record({ ...step, op: "same" });
          const next = { ...res, outputs: read.outputs };
          this.record({ ...step, new: next, diffs: changed, detailedDiff: Object.fromEntries(changed.map((k) => [k, { kind: "update" as const }])) });
          this.commit(T.completeWrite(this.state, next, "reading"));
        }),
    );
    this.indexOlds();
  }

  /**
   * Finishes what a crashed run left half-done: half-created objects are deleted, interrupted deletes are
   * completed, interrupted updates are read back. A preview only plans as if that had happened.
   */
  async recover(): Promise<void> {
    for (const op of this.state.pending_operations ?? []) {
      const { resource: res, type } = op;
      const provider = this.providerFor(res);
      const remove = async () => {
        if (!this.opts.preview && provider && res.custom) {
          await provider.delete({ urn: res.urn, id: res.id ?? "", inputs: res.inputs, outputs: res.outputs });
        }
      };
      this.report({ severity: "warning", urn: res.urn, message: `${this.label(res.urn)}: finishing an interrupted ${type} operation` });
      if (type === "creating") {
        await remove();
        this.commit(T.abandonOperation(this.state, res.urn, type));
      } else if (type === "deleting") {
        await remove();
        this.commit(T.completeDelete(this.state, res.urn, Boolean(res.delete)));
      } else if (!this.opts.preview && provider) {
        const read = await provider.read({ urn: res.urn, id: res.id ?? "", inputs: res.inputs, outputs: res.outputs, claim: true });
        const dropped = T.abandonOperation(this.state, res.urn, type);
        this.commit(read ? T.completeWrite(dropped, { ...res, outputs: read.outputs }, type) : T.forget(dropped, res.urn));
      } else {
        this.commit(T.abandonOperation(this.state, res.urn, type));
      }
    }
    this.indexOlds();
  }
}

class TimeoutError extends Error {}

const untargetedDelete = (urn: string) =>
  `Resource '${urn}' will be destroyed but was not specified in --target list.\nEither include resource in --target list or pass --target-dependents to proceed.`;

const providerUrn = (ref: string) => ref.slice(0, ref.lastIndexOf("::"));

/** A provider resource as the run uses it. */
interface Instance {
  config: ProviderConfig;
  providers: Map<string, Provider>;
  /** " on HOST" in its resources' messages. */
  where: string;
  /** A preview's provider whose host is not known yet: its resources are shown, not checked. */
  unconfigured?: boolean;
}

type Scope = ReturnType<typeof targetOf>;

const SCOPED = "\n";

/** Where a claim is exclusive: on the whole machine (a host port), or in one berth root (a container name). */
const scopeKey = (scope: Scope, claim: string) => (machineWide(claim) ? scope.machine : scope.root);

type Declared = { urn: string; inputs: PropertyMap };

/**
 * The claims on one target made before a check started (the first `upTo`): a view of the run's claims, as each
 * check would otherwise copy them all and a 1,000-resource preview was quadratic.
 */
class DeclaredSoFar implements ReadonlyMap<string, Declared> {
  constructor(
    private readonly claims: ReadonlyMap<string, { urn: string; seq: number }>,
    private readonly claimed: ReadonlyMap<string, PropertyMap>,
    private readonly scope: Scope,
    private readonly upTo: number,
  ) {}

  get(claim: string): Declared | undefined {
    const held = this.claims.get(`${scopeKey(this.scope, claim)}${SCOPED}${claim}`);
    return held && held.seq < this.upTo ? this.declared(held.urn) : undefined;
  }

  has(claim: string): boolean {
    return this.get(claim) !== undefined;
  }

  *entries(): MapIterator<[string, Declared]> {
    for (const [key, held] of this.claims) {
      if (held.seq >= this.upTo) return;
      const at = key.indexOf(SCOPED);
      const claim = key.slice(at + 1);
      if (key.slice(0, at) === scopeKey(this.scope, claim)) yield [claim, this.declared(held.urn)];
    }
  }

  get size(): number {
    return [...this.entries()].length;
  }

  *keys(): MapIterator<string> {
    for (const [claim] of this.entries()) yield claim;
  }

  *values(): MapIterator<Declared> {
    for (const [, d] of this.entries()) yield d;
  }

  [Symbol.iterator](): MapIterator<[string, Declared]> {
    return this.entries();
  }

  forEach(fn: (value: Declared, key: string, map: ReadonlyMap<string, Declared>) => void): void {
    for (const [claim, d] of this.entries()) fn(d, claim, this);
  }

  private declared(urn: string): Declared {
    return { urn, inputs: this.claimed.get(urn) ?? {} };
  }
}

/** What a resource depends on, by every kind of edge Pulumi's dependency graph follows (parents only if asked). */
function allDependencies(
  r: { parent?: string; dependencies?: string[]; propertyDependencies?: Record<string, string[]>; deletedWith?: string; provider?: string },
  withParent: boolean,
): string[] {
  return [
    ...(withParent && r.parent ? [r.parent] : []),
    ...(r.dependencies ?? []),
    ...Object.values(r.propertyDependencies ?? {}).flat(),
    ...(r.deletedWith ? [r.deletedWith] : []),
    ...(r.provider ? [providerUrn(r.provider)] : []),
  ];
}

/** Pulumi's default provider: "default", or "default_1_2_3" for a version (not a user's "defaultHost"). */
function isDefaultProvider(urn: string): boolean {
  return /^default(_\d+_\d+_\d+\w*)?$/.test(parseUrn(urn).name);
}

/** The options Pulumi records in a resource's state. */
function recordedOptions(goal: Goal): Partial<ResourceState> {
  return {
    ...(goal.protect ? { protect: true } : {}),
    ...(goal.retainOnDelete ? { retainOnDelete: true } : {}),
    ...(goal.ignoreChanges?.length ? { ignoreChanges: goal.ignoreChanges } : {}),
    ...(goal.replaceOnChanges?.length ? { replaceOnChanges: goal.replaceOnChanges } : {}),
    ...(goal.additionalSecretOutputs?.length ? { additionalSecretOutputs: goal.additionalSecretOutputs } : {}),
    ...(goal.customTimeouts && Object.keys(goal.customTimeouts).length ? { customTimeouts: goal.customTimeouts } : {}),
    ...(goal.deletedWith ? { deletedWith: goal.deletedWith } : {}),
    ...(goal.aliases?.length ? { aliases: goal.aliases } : {}),
  };
}

const TIMEOUT_KEY: Record<OperationType, keyof CustomTimeouts | undefined> = { creating: "create", updating: "update", deleting: "delete", reading: undefined };

function timeoutOf(res: ResourceState, type: OperationType): number | undefined {
  const key = TIMEOUT_KEY[type];
  return key ? res.customTimeouts?.[key] : undefined;
}

/** The work, or an error once `seconds` have passed (customTimeouts). */
function withTimeout<R>(work: Promise<R>, seconds: number | undefined): Promise<R> {
  if (!seconds) return work;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${seconds}s (customTimeouts)`)), seconds * 1000);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
