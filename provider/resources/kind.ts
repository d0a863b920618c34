// One provider implementation for every resource type: check and diff come from the type's zod schema (which
// fields exist, their messages, which force a replacement); a Kind adds only what touches the host.
import { createHash } from "node:crypto";
import { diff as jsonDiff, type IChange } from "json-diff-ts";
import type { z } from "zod";
import { replaceOnChangeFields } from "../../sdk/schema";
import type { ObjectKind, Owners } from "../../native/runtime";
import { parseUrn } from "../engine/urn";
import { containsUnknown, formatPath, keepSecret, revealAll, secretKeys, UNKNOWN, valueAt } from "../values";
import type {
  CheckFailure,
  CheckRequest,
  CheckResponse,
  CreateRequest,
  CreateResponse,
  DeleteRequest,
  DiffKind,
  DiffRequest,
  DiffResponse,
  PropertyMap,
  Provider,
  ReadRequest,
  ReadResponse,
  UpdateRequest,
  UpdateResponse,
} from "./provider";

/** What differs between resource types. Inputs reaching these methods have passed the schema. */
export interface Kind<Args extends PropertyMap, Outs extends PropertyMap> {
  args: z.ZodObject;
  outputs: z.ZodObject;
  /** Fill a missing `name` with "<resource name>-<random>", kept across updates (Pulumi's autonaming). */
  autoname: boolean;
  /**
   * Checks that need more than the schema (the host, the file system, other resources of the program), and what
   * berth derives from valid inputs (content digests).
   */
  prepare?(inputs: Args, ctx: CheckContext): Promise<{ inputs: Args; failures: CheckFailure[] }>;
  /** Outputs known before the resource exists; the engine marks the others unknown in a preview. */
  previewOutputs(inputs: Args): Partial<Outs>;
  create(inputs: Args): Promise<{ id: string; outputs: Outs }>;
  /** The id create gives these inputs, so a create interrupted before it returned can still be deleted. */
  idOf(inputs: Args): string;
  /** undefined: gone from the host. */
  read(id: string, inputs: Args, outputs: Outs): Promise<Outs | undefined>;
  /**
   * The inputs a program would write for an object read by id alone (import), when the outputs do not say them all.
   * Default: the outputs named like inputs, empty ones left out.
   */
  importInputs?(id: string, outputs: Outs): Promise<Partial<Args>>;
  /** In-place changes; only called when no replacing field changed. */
  update?(id: string, olds: Args, news: Args, oldOutputs: Outs): Promise<Outs>;
  delete(id: string, outputs: Outs): Promise<void>;
  /** Output properties in which the live object (as refresh saw it) differs from what was made; replace or repair. */
  drift?(outputs: Outs): Array<{ property: string; replace: boolean }>;
  /** Whether old and new could not exist together during a replacement (same fixed name, same host port). */
  exclusive?(olds: Args, news: Args): boolean;
  claims?(inputs: Args): string[];
}

/**
 * A preview's unknown values cannot be judged yet: every check of a known value runs now, and those that need an
 * unknown one run when the engine checks again with it known (before the resource is made).
 */
const judged = (inputs: PropertyMap, failures: CheckFailure[]) => failures.filter((f) => !dependsOnUnknown(inputs, f.property));

export class KindProvider<Args extends PropertyMap, Outs extends PropertyMap> implements Provider {
  private readonly replaceFields: Set<string>;

  constructor(
    readonly token: string,
    private readonly kind: Kind<Args, Outs>,
    /** Where the runtime records which resource owns each object it makes (the day-2 commands respect it). */
    private readonly owned?: { owners: Owners; kind: ObjectKind },
  ) {
    this.replaceFields = replaceOnChangeFields(kind.args);
  }

  // Secrets reach the kind as plain values (it validates and acts on them); what the kind returns for a secret
  // input stays secret, so a secret never turns plain on its way to the state.
  async check(req: CheckRequest): Promise<CheckResponse> {
    const secret = secretKeys(req.news);
    const plain = { ...req, news: reveal(req.news), olds: req.olds && reveal(req.olds) };
    const checked = await this.checkPlain(plain);
    return { ...checked, inputs: keepSecret(checked.inputs, secret) };
  }

  checkSchema(req: CheckRequest): CheckFailure[] {
    return this.schemaChecked({ ...req, news: reveal(req.news), olds: req.olds && reveal(req.olds) }).failures;
  }

  /** The inputs with their autoname, and what the schema says of their known values. */
  private schemaChecked(req: CheckRequest): { inputs: PropertyMap; autonamed: boolean; failures: CheckFailure[] } {
    const inputs: PropertyMap = { ...req.news };
    const autonamed = !!this.kind.autoname && inputs.name === undefined;
    if (autonamed) {
      const oldName = isAutonamed(req.olds ?? {}) ? req.olds?.name : undefined;
      const suffix = createHash("sha256").update(req.randomSeed).digest("hex").slice(0, 7);
      inputs.name = typeof oldName === "string" ? oldName : `${req.name}-${suffix}`;
    }
    const parsed = this.kind.args.safeParse(inputs);
    const failures = parsed.success ? [] : parsed.error.issues.flatMap((issue) => checkFailures(issue, this.kind.args));
    return { inputs, autonamed, failures: judged(inputs, failures) };
  }

  private async checkPlain(req: CheckRequest): Promise<CheckResponse> {
    const { inputs, autonamed, failures } = this.schemaChecked(req);
    if (failures.length > 0) return { inputs, failures };
    const taken = await this.foreign(inputs as Args, req.urn, req.olds && { inputs: req.olds, aliases: req.aliases });
    if (taken) return { inputs, failures: [{ property: "name", reason: taken }] };
    if (autonamed) inputs[DEFAULTS] = ["name"];
    if (!this.kind.prepare) return { inputs, failures: [] };
    const declared = req.declared ?? new Map();
    // A replacement's check has no olds: what it replaces is `replacing` (the engine's, or the plugin's record of
    // this URN's first check). Not looked up among the claims: a first preview would scan them all per resource.
    const previous = req.olds ?? req.replacing;
    const prepared = await this.kind.prepare(inputs as Args, { declared, urn: req.urn, olds: previous });
    if (!containsUnknown(inputs)) return prepared;
    // What prepare derives from a field holding an unknown is not known either.
    const kept = Object.fromEntries(Object.entries(prepared.inputs).map(([k, v]) => [k, containsUnknown(inputs[k]) ? inputs[k] : v]));
    return { inputs: kept, failures: judged(inputs, prepared.failures) };
  }

  async diff(secretReq: DiffRequest): Promise<DiffResponse> {
    const req = { ...secretReq, oldInputs: reveal(secretReq.oldInputs), oldOutputs: reveal(secretReq.oldOutputs), news: reveal(secretReq.news) };
    const detailedDiff: Record<string, { kind: DiffKind }> = {};
    const diffs = new Set<string>();
    const replaces = new Set<string>();
    for (const [path, kind] of changedPaths(req.oldInputs, req.news)) {
      const top = path.split(/[.[]/)[0];
      if (top === DEFAULTS) continue;
      diffs.add(top);
      const replacing = this.replaceFields.has(top);
      if (replacing) replaces.add(top);
      detailedDiff[path] = { kind: replacing ? (`${kind}-replace` as DiffKind) : kind };
    }
    for (const { property, replace } of this.kind.drift?.(req.oldOutputs as Outs) ?? []) {
      diffs.add(property);
      if (replace) replaces.add(property);
      detailedDiff[property] = { kind: replace ? "update-replace" : "update" };
    }
    const exclusive =
      replaces.size > 0 &&
      !containsUnknown(req.news) &&
      (this.kind.exclusive?.(req.oldInputs as Args, req.news as Args) ?? false);
    return { changes: diffs.size > 0, diffs: [...diffs], replaces: [...replaces], deleteBeforeReplace: exclusive, detailedDiff };
  }

  async create(req: CreateRequest): Promise<CreateResponse> {
    const inputs = reveal(req.inputs) as Args;
    const { id, outputs } = req.preview ? { id: "", outputs: this.kind.previewOutputs(inputs) } : await this.made(inputs, req.urn);
    return { id, outputs: keepSecret({ ...(req.preview ? this.echoed(inputs) : inputs), ...outputs }, secretKeys(req.inputs)) };
  }

  /**
   * The inputs a preview shows as outputs: not one whose output has another shape (a container's `ports` given as
   * "127.0.0.1::80", whose host port is picked at create). It stays unknown, so a program computing from it is
   * checked with the real value at update, never refused at preview for a value it made up.
   */
  private echoed(inputs: PropertyMap): PropertyMap {
    const shape = this.kind.outputs.shape as Record<string, z.ZodType>;
    return Object.fromEntries(Object.entries(inputs).filter(([k, v]) => !(k in shape) || shape[k].safeParse(v).success));
  }

  /**
   * Creates the object, recorded as the resource's before it is made: a prune in another process meanwhile finds
   * it owned, never nobody's. A failed create puts back what was recorded before.
   */
  private async made(inputs: Args, urn: string): Promise<{ id: string; outputs: Outs }> {
    const id = this.kind.idOf(inputs);
    const taken = await this.foreign(inputs, urn);
    if (taken) throw new Error(taken);
    const before = this.owned && (await this.owned.owners.ownerOf(this.owned.kind, id));
    if (this.owned && before !== urn) await this.owned.owners.claim(this.owned.kind, id, urn);
    try {
      return await this.kind.create(inputs);
    } catch (e) {
      if (this.owned && before !== urn) {
        await (before === undefined ? this.owned.owners.release(this.owned.kind, id) : this.owned.owners.claim(this.owned.kind, id, before));
      }
      throw e;
    }
  }

  async read(req: ReadRequest): Promise<ReadResponse | undefined> {
    const inputs = reveal(req.inputs);
    const outputs = await this.kind.read(req.id, inputs as Args, reveal(req.outputs) as Outs);
    if (!outputs) return undefined;
    if (req.claim) await this.claim(req.id, req.urn);
    else if (req.claimFrom && this.owned && (await this.owned.owners.ownerOf(this.owned.kind, req.id)) === req.claimFrom) {
      await this.owned.owners.claim(this.owned.kind, req.id, req.urn);
    }
    const secret = [...secretKeys(req.inputs), ...secretKeys(req.outputs)];
    // An import knows no inputs yet: they are what the object says of the fields the schema takes.
    const known = Object.keys(req.inputs).length > 0 ? req.inputs : await this.importInputs(req.id, outputs);
    return { id: req.id, inputs: known, outputs: keepSecret({ ...inputs, ...outputs }, secret) };
  }

  /** What a program declaring this object would write: no `labels: {}` where it would write nothing. */
  private async importInputs(id: string, outputs: Outs): Promise<PropertyMap> {
    const fields = Object.keys(this.kind.args.shape);
    const inputs: PropertyMap = this.kind.importInputs ? await this.kind.importInputs(id, outputs) : outputs;
    return Object.fromEntries(Object.entries(inputs).filter(([k, v]) => fields.includes(k) && !isEmpty(v)));
  }

  async update(req: UpdateRequest): Promise<UpdateResponse> {
    const news = reveal(req.news) as Args;
    const secret = secretKeys(req.news);
    if (req.preview) return { outputs: keepSecret({ ...reveal(req.oldOutputs), ...this.echoed(news), ...this.kind.previewOutputs(news) }, secret) };
    if (!this.kind.update) throw new Error(`${this.token} has no in-place update; this change should have replaced it`);
    const outputs = await this.kind.update(req.id, reveal(req.oldInputs) as Args, news, reveal(req.oldOutputs) as Outs);
    await this.claim(req.id, req.urn);
    return { outputs: keepSecret({ ...news, ...outputs }, secret) };
  }

  async delete(req: DeleteRequest): Promise<void> {
    const id = req.id || this.kind.idOf(reveal(req.inputs) as Args);
    await this.kind.delete(id, reveal(req.outputs) as Outs);
    await this.owned?.owners.release(this.owned.kind, id);
  }

  /**
   * Why this resource may not make its object: one of that name exists and another resource (of another stack, say)
   * owns it — making it would adopt it, and this resource's delete would take it, and a volume's data, from under
   * its owner. Images are the exception: stacks share an image name by design, each holding one use of it.
   * An object this resource's state already records is its own while the host names one of its former URNs: a
   * rename through `aliases` moves the state, and the host's record follows at its next update or claim. Any other
   * owner means the state is stale (its object was removed outside berth and another stack made the name again).
   */
  private async foreign(inputs: Args, urn: string, olds?: { inputs: PropertyMap; aliases?: string[] }): Promise<string | undefined> {
    // (Engine unit tests' runtimes keep no owners.)
    if (!this.owned?.owners || this.owned.kind === "image" || containsUnknown(inputs.name)) return undefined;
    const id = this.kind.idOf(inputs);
    const owner = await this.owned.owners.ownerOf(this.owned.kind, id);
    if (owner === undefined || owner === urn) return undefined;
    const recorded = olds && !containsUnknown(olds.inputs.name) && this.kind.idOf(olds.inputs as Args) === id;
    if (recorded && formerUrn(owner, urn, olds.aliases)) return undefined;
    if (!(await this.kind.read(id, inputs, {} as Outs))) return undefined;
    return `${this.owned.kind} "${id}" already exists and belongs to ${owner}: give this one another name (or none, for an autoname), remove it from that stack, or adopt it with berth import`;
  }

  /** Marks the object as this resource's on the host, when it is not already. */
  private async claim(id: string, urn: string): Promise<void> {
    if (!this.owned || (await this.owned.owners.ownerOf(this.owned.kind, id)) === urn) return;
    await this.owned.owners.claim(this.owned.kind, id, urn);
  }

  /** The claims whose every part is known (a container's name is, while its image id may not be yet). */
  claims(inputs: PropertyMap): string[] {
    return (this.kind.claims?.(reveal(inputs) as Args) ?? []).filter((claim) => !claim.includes(UNKNOWN));
  }
}

const reveal = (props: PropertyMap) => revealAll(props) as PropertyMap;

/**
 * Whether `owner` may be what `urn` was called before: one of its aliases when they are known, else (the plugin,
 * told no aliases) any URN of the same project and stack.
 */
function formerUrn(owner: string, urn: string, aliases: string[] | undefined): boolean {
  if (aliases) return aliases.includes(owner);
  const [was, is] = [parseUrn(owner), parseUrn(urn)];
  return owner.startsWith("urn:pulumi:") && was.stack === is.stack && was.project === is.project;
}

const isEmpty = (v: unknown) =>
  v === undefined || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && v !== null && Object.keys(v).length === 0);

/** A schema issue as check failures naming each property; an unknown key names the keys that are valid. */
export function checkFailures(issue: z.core.$ZodIssue, schema: z.ZodObject): CheckFailure[] {
  // A bad record key or map element: the schema's own message for it, not zod's "Invalid key in record".
  if ((issue.code === "invalid_key" || issue.code === "invalid_element") && issue.issues.length > 0) {
    return issue.issues.map((inner) => ({ property: formatPath(issue.path), reason: inner.message }));
  }
  if (issue.code !== "unrecognized_keys") return [{ property: formatPath(issue.path) || "(args)", reason: issue.message }];
  const known = issue.path.length === 0 ? Object.keys(schema.shape).join(", ") : undefined;
  return issue.keys.map((key) => ({
    property: formatPath([...issue.path, key]),
    reason: known ? `unknown property; the valid ones are: ${known}` : "unknown property",
  }));
}

/** Inputs berth filled in rather than the user (recorded in state as Pulumi's bridged providers do). */
export const DEFAULTS = "__defaults";

export function isAutonamed(inputs: PropertyMap): boolean {
  return Array.isArray(inputs[DEFAULTS]) && inputs[DEFAULTS].includes("name");
}

export interface CheckContext {
  /** Claims of the resources the program declared so far in this run (they exist, or will before this one). */
  declared: ReadonlyMap<string, Declared>;
  /** The resource being checked (its own earlier claims are no conflict). */
  urn: string;
  /** The inputs the last check returned (from the state), when the resource exists or is being replaced. */
  olds?: PropertyMap;
}

/** Who in the program holds a claim, and its checked inputs (a declared network's subnet, a container's ports). */
export interface Declared {
  urn: string;
  inputs: PropertyMap;
}

/**
 * Whether a claim is the machine's (its network stack: host ports, bridges, macvlan parents), which two berth roots
 * on one machine share, rather than one root's (a container, volume or network name).
 */
export const machineWide = (claim: string): boolean => /^(host port|bridge|macvlan parent) /.test(claim);

/** What other resources of the program hold the claims starting with `prefix`, with their inputs. */
export function declaredOthers(ctx: CheckContext, prefix: string): Array<{ claim: string; inputs: PropertyMap }> {
  return [...ctx.declared].filter(([c, d]) => c.startsWith(prefix) && d.urn !== ctx.urn).map(([claim, d]) => ({ claim, inputs: d.inputs }));
}

/**
 * Whether a failure at this property path may come from a value not known yet: the property, something on its
 * path, or anything under it holds an unknown.
 */
function dependsOnUnknown(inputs: PropertyMap, property: string): boolean {
  const path = property.split(/[.[\]]+/).filter(Boolean).map((k) => (/^\d+$/.test(k) ? Number(k) : k));
  return path.some((_, i) => containsUnknown(valueAt(inputs, path.slice(0, i + 1))));
}

/** Every leaf path that differs between two property maps, with the kind of change. */
export function changedPaths(olds: PropertyMap, news: PropertyMap): Array<[string, "add" | "delete" | "update"]> {
  const out: Array<[string, "add" | "delete" | "update"]> = [];
  const walk = (changes: IChange[], prefix: string, inArray: boolean) => {
    for (const change of changes) {
      const path = inArray ? `${prefix}[${change.key}]` : prefix ? `${prefix}.${change.key}` : change.key;
      if (change.changes) walk(change.changes, path, change.embeddedKey === "$index");
      else out.push([path, change.type === "ADD" ? "add" : change.type === "REMOVE" ? "delete" : "update"]);
    }
  };
  walk(jsonDiff(olds, news), "", false);
  // json-diff-ts reports a type change as REMOVE then ADD of one key: that is one update.
  const seen = new Map<string, "add" | "delete" | "update">();
  for (const [path, kind] of out) seen.set(path, seen.has(path) ? "update" : kind);
  return [...seen];
}
