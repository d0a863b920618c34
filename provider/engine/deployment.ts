// One run of the engine over one stack: registrations from the program become steps (decided by steps.ts),
// which are previewed or carried out through the providers, with every change to the checkpoint persisted before
// the program hears that its step is done.
import { randomUUID } from "node:crypto";
import * as os from "node:os";
import type { DeploymentV3, OperationType, ResourceState } from "../state/checkpoint";
import { deletionWaves, prerequisites } from "../state/order";
import * as T from "../state/transitions";
import type { CheckFailure, PropertyMap, Provider } from "../resources/provider";
import { Slots } from "./slots";
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
  providers: Map<string, Provider>;
  base: DeploymentV3;
  /** Makes a checkpoint durable (update runs). */
  persist?: (deployment: DeploymentV3) => void;
  onStep?: (step: Step) => void;
}

/** A failure already reported as a diagnostic; the program only needs to know the registration failed. */
export class ReportedError extends Error {}

const PROVIDER_TYPE = "pulumi:providers:berth";

export class DeploymentRun {
  state: DeploymentV3;
  readonly steps: Step[] = [];
  readonly diagnostics: Diagnostic[] = [];
  private readonly olds = new Map<string, ResourceState>();
  private readonly registered = new Set<string>();
  private readonly claims = new Map<string, string>();
  /** Dependents of a resource replaced delete-before-replace: replaced with it. Dependent URN → cause URN. */
  private readonly forcedBy = new Map<string, string>();
  private providerRef?: string;
  private readonly slots = new Slots(Math.max(2, 2 * os.availableParallelism()));

  constructor(private readonly opts: RunOptions) {
    this.state = opts.base;
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

  private commit(next: DeploymentV3): void {
    this.state = next;
    if (!this.opts.preview) this.opts.persist?.(next);
  }

  private record(step: Step): void {
    this.steps.push(step);
    this.opts.onStep?.(step);
  }

  private fail(urn: string | undefined, message: string): never {
    this.diagnostics.push({ severity: "error", urn, message });
    throw new ReportedError(message);
  }

  private label(urn: string): string {
    const { type, name } = parseUrn(urn);
    return `${type} "${name}"`;
  }

  async register(goal: Goal): Promise<Registered> {
    const urn = makeUrn(this.opts.stack, this.opts.project, goal.type, goal.name, goal.parent);
    if (this.registered.has(urn)) this.fail(urn, `two resources are named "${goal.name}" with type ${goal.type}; names must be unique`);
    this.registered.add(urn);
    return goal.custom ? this.registerCustom(urn, goal) : this.registerComponent(urn, goal);
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
    const label = this.label(urn);
    const provider = this.opts.providers.get(goal.type);
    if (!provider) this.fail(urn, `${label}: unknown resource type ${goal.type}`);
    const old = this.olds.get(urn);
    // The seed is the URN for a first create and the URN plus the old id for a replacement: stable between a
    // preview and its update, and never the old object's name again.
    const checked = await provider.check({ urn, name: goal.name, olds: old?.inputs, news: goal.inputs, randomSeed: urn, declared: this.declared() });
    this.refuseFailures(urn, label, checked.failures);
    const diff = old
      ? await provider.diff({ urn, id: old.id ?? "", oldInputs: old.inputs, oldOutputs: old.outputs, news: checked.inputs })
      : undefined;
    const decision = decide(old, diff, { deleteBeforeReplace: goal.deleteBeforeReplace, forced: this.forcedBy.get(urn) });
    let inputs = checked.inputs;
    if (decision.op === "replace") {
      // A replacement is a new object: check again without the old inputs, so it gets fresh defaults (autonames).
      const randomSeed = `${urn}\n${old!.id}`;
      const fresh = await provider.check({ urn, name: goal.name, news: goal.inputs, randomSeed, declared: this.declared() });
      this.refuseFailures(urn, label, fresh.failures);
      inputs = fresh.inputs;
    }
    this.claim(urn, label, provider.claims(inputs));

    const res: ResourceState = {
      urn,
      custom: true,
      type: goal.type,
      inputs,
      outputs: {},
      parent: goal.parent,
      dependencies: goal.dependencies,
      propertyDependencies: goal.propertyDependencies,
      provider: this.ensureProvider(),
      ...(goal.protect ? { protect: true } : {}),
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

    let done: ResourceState = res;
    try {
      switch (decision.op) {
        case "same":
          done = { ...res, id: old!.id, outputs: old!.outputs, created: old!.created, modified: old!.modified };
          this.state = T.completeWrite(this.state, done, "creating"); // made durable with the next change
          break;
        case "create":
          done = await this.create(provider, res);
          break;
        case "update":
          done = await this.update(provider, old!, res);
          break;
        case "replace":
          if (decision.deleteBeforeReplace) {
            await this.replaceDependentsFirst(urn);
            if (this.isLive(old!)) await this.delete(provider, old!, false);
            done = await this.create(provider, res);
          } else {
            done = await this.create(provider, res, old);
          }
          break;
      }
    } catch (err) {
      if (err instanceof ReportedError) throw err;
      this.fail(urn, `${label}: ${decision.op} failed: ${(err as Error).message}`);
    }
    step.new = done;
    this.record(step);
    return { urn, id: done.id ?? "", outputs: done.outputs };
  }

  private refuseFailures(urn: string, label: string, failures: CheckFailure[]): void {
    if (failures.length === 0) return;
    for (const f of failures) this.diagnostics.push({ severity: "error", urn, message: `${label}: ${f.property}: ${f.reason}` });
    throw new ReportedError(`${label}: invalid inputs`);
  }

  private declared(): ReadonlySet<string> {
    return new Set(this.claims.keys());
  }

  private claim(urn: string, label: string, claims: string[]): void {
    for (const claim of claims) {
      const holder = this.claims.get(claim);
      if (holder && holder !== urn) this.fail(urn, `${label}: ${claim} is already taken by ${this.label(holder)} in this program`);
    }
    for (const claim of claims) this.claims.set(claim, urn);
  }

  /** The default provider resource Pulumi records for a package, kept with the same id across runs. */
  private ensureProvider(): string {
    if (this.providerRef) return this.providerRef;
    const urn = makeUrn(this.opts.stack, this.opts.project, PROVIDER_TYPE, "default");
    this.registered.add(urn);
    const old = this.olds.get(urn);
    const res: ResourceState = old ?? { urn, custom: true, id: randomUUID(), type: PROVIDER_TYPE, inputs: {}, outputs: {} };
    this.state = T.completeWrite(this.state, res, "creating");
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
    let result: R;
    try {
      result = await this.slots.run(act);
    } catch (err) {
      // The provider undoes its own partial work before it throws; nothing is left to remember.
      this.commit(T.abandonOperation(this.state, res.urn, type));
      throw err;
    }
    this.commit(done(result));
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
      done = { ...res, id: created.id, outputs: created.outputs, created: now, modified: now };
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
      done = { ...base, outputs: updated.outputs, modified: new Date().toISOString() };
      return T.completeWrite(this.state, done, "updating");
    });
    return done;
  }

  private async delete(provider: Provider | undefined, res: ResourceState, replaced: boolean): Promise<void> {
    if (res.protect) this.fail(res.urn, `${this.label(res.urn)} is protected: unprotect it before it can be deleted`);
    const act = async () => {
      if (provider && res.custom) await provider.delete({ urn: res.urn, id: res.id ?? "", inputs: res.inputs, outputs: res.outputs });
    };
    await this.operate(res, "deleting", act, () => T.completeDelete(this.state, res.urn, replaced));
  }

  /** Everything in the last state that depends on `urn`, nearest first in deletion order. */
  private dependentsOf(urn: string): ResourceState[] {
    const found = new Set<string>();
    let grew = true;
    while (grew) {
      grew = false;
      for (const r of this.olds.values()) {
        if (found.has(r.urn) || r.urn === urn) continue;
        if (prerequisites(r).some((p) => p === urn || found.has(p))) {
          found.add(r.urn);
          grew = true;
        }
      }
    }
    return [...found].map((u) => this.olds.get(u)!);
  }

  /** Before a resource is deleted to be replaced, what depends on it goes first; each comes back when it registers. */
  private async replaceDependentsFirst(urn: string): Promise<void> {
    const dependents = this.dependentsOf(urn);
    for (const dep of dependents) this.forcedBy.set(dep.urn, urn);
    for (const wave of deletionWaves(dependents.filter((d) => this.isLive(d)))) {
      await Promise.all(wave.map((dep) => this.delete(this.opts.providers.get(dep.type), dep, false)));
    }
  }

  /**
   * After the program finished: delete what it no longer declares and the old copies of replaced resources,
   * dependents before what they depend on, independent ones in parallel.
   */
  async finish(): Promise<void> {
    const doomed = this.state.resources.filter((r) => r.delete || !this.registered.has(r.urn));
    await this.deleteAll(doomed);
  }

  /** Deletes every resource of the stack (destroy). */
  async destroy(): Promise<void> {
    await this.deleteAll(this.state.resources);
  }

  private async deleteAll(doomed: ResourceState[]): Promise<void> {
    for (const wave of deletionWaves(doomed)) {
      const results = await Promise.allSettled(
        wave.map(async (res) => {
          const step: Step = { op: "delete", urn: res.urn, type: res.type, old: res, diffs: [], replaces: [], detailedDiff: {} };
          try {
            await this.delete(this.opts.providers.get(res.type), res, Boolean(res.delete));
          } catch (err) {
            if (!(err instanceof ReportedError)) this.fail(res.urn, `${this.label(res.urn)}: delete failed: ${(err as Error).message}`);
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
          const provider = this.opts.providers.get(res.type);
          if (!provider) return;
          const read = await provider.read({ urn: res.urn, id: res.id ?? "", inputs: res.inputs, outputs: res.outputs });
          const step: Step = { op: "refresh", urn: res.urn, type: res.type, old: res, diffs: [], replaces: [], detailedDiff: {} };
          if (!read) {
            this.record({ ...step, op: "delete" });
            this.commit(T.forget(this.state, res.urn));
            return;
          }
          const changed = Object.keys({ ...res.outputs, ...read.outputs }).filter(
            (k) => JSON.stringify(res.outputs[k]) !== JSON.stringify(read.outputs[k]),
          );
          if (changed.length === 0) return;
          const next = { ...res, outputs: read.outputs };
          this.record({ ...step, new: next, diffs: changed, detailedDiff: Object.fromEntries(changed.map((k) => [k, { kind: "update" as const }])) });
          this.commit(T.completeWrite(this.state, next, "reading"));
        }),
    );
  }

  /**
   * Finishes what a crashed run left half-done: half-created objects are deleted, interrupted deletes are
   * completed, interrupted updates are read back. A preview only plans as if that had happened.
   */
  async recover(): Promise<void> {
    for (const op of this.state.pending_operations ?? []) {
      const { resource: res, type } = op;
      const provider = this.opts.providers.get(res.type);
      const remove = async () => {
        if (!this.opts.preview && provider && res.custom) {
          await provider.delete({ urn: res.urn, id: res.id ?? "", inputs: res.inputs, outputs: res.outputs });
        }
      };
      this.diagnostics.push({ severity: "warning", urn: res.urn, message: `${this.label(res.urn)}: finishing an interrupted ${type} operation` });
      if (type === "creating") {
        await remove();
        this.commit(T.abandonOperation(this.state, res.urn, type));
      } else if (type === "deleting") {
        await remove();
        this.commit(T.completeDelete(this.state, res.urn, Boolean(res.delete)));
      } else if (!this.opts.preview && provider) {
        const read = await provider.read({ urn: res.urn, id: res.id ?? "", inputs: res.inputs, outputs: res.outputs });
        const dropped = T.abandonOperation(this.state, res.urn, type);
        this.commit(read ? T.completeWrite(dropped, { ...res, outputs: read.outputs }, type) : T.forget(dropped, res.urn));
      } else {
        this.commit(T.abandonOperation(this.state, res.urn, type));
      }
    }
    this.indexOlds();
  }
}
