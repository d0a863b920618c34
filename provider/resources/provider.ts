// Pulumi's provider shape: one request object in, one response object out, per verb. The embedded engine calls
// it directly; the pulumi-resource-berth plugin serves the same objects over gRPC.

export type PropertyMap = Record<string, unknown>;

export interface CheckFailure {
  /** Property path, e.g. "ports[0].hostPort". */
  property: string;
  reason: string;
}

export interface CheckRequest {
  urn: string;
  /** The resource's name in the program (the last URN component). */
  name: string;
  olds?: PropertyMap;
  news: PropertyMap;
  /** Seeds generated defaults (autonames), so a preview and the update after it pick the same ones. */
  randomSeed: string;
  /** Claims of the resources declared so far in this run, with who holds each, when the engine knows them. */
  declared?: ReadonlyMap<string, { urn: string; inputs: PropertyMap }>;
  /** A replacement's check (no olds): the inputs of the object it replaces, whose host ports it may take over. */
  replacing?: PropertyMap;
  /** The URNs the resource was known by (its `aliases`), when the engine knows them; Pulumi's Check says not. */
  aliases?: string[];
}

export interface CheckResponse {
  /** The inputs to diff and create with: the news plus what berth fills in (autonames, content digests). */
  inputs: PropertyMap;
  failures: CheckFailure[];
}

export type DiffKind = "add" | "delete" | "update" | "add-replace" | "delete-replace" | "update-replace";

export interface DiffRequest {
  urn: string;
  id: string;
  oldInputs: PropertyMap;
  oldOutputs: PropertyMap;
  news: PropertyMap;
}

export interface DiffResponse {
  changes: boolean;
  /** Top-level properties that changed. */
  diffs: string[];
  /** The subset of diffs that force a replacement (or state seen by refresh that does). */
  replaces: string[];
  /** Old and new cannot exist together (same name, same host port): delete the old one first. */
  deleteBeforeReplace: boolean;
  /** Property path → kind of change. */
  detailedDiff: Record<string, { kind: DiffKind }>;
}

export interface CreateRequest {
  urn: string;
  inputs: PropertyMap;
  /** True in preview: change nothing, return what is known (the engine marks the rest unknown). */
  preview: boolean;
}

export interface CreateResponse {
  id: string;
  outputs: PropertyMap;
}

export interface ReadRequest {
  urn: string;
  id: string;
  inputs: PropertyMap;
  outputs: PropertyMap;
  /**
   * An import or refresh that is carried out, not previewed: the object is recorded as the resource's (a refresh
   * restates what the state holds). Pulumi's Read says not whether it previews, so the plugin's reads never claim.
   */
  claim?: boolean;
  /** A rename's read: the object is recorded as the resource's only while the host records it as this former URN. */
  claimFrom?: string;
}

/** undefined from read: the object no longer exists on the host. */
export interface ReadResponse {
  id: string;
  inputs: PropertyMap;
  outputs: PropertyMap;
}

export interface UpdateRequest {
  urn: string;
  id: string;
  oldInputs: PropertyMap;
  oldOutputs: PropertyMap;
  news: PropertyMap;
  preview: boolean;
}

export interface UpdateResponse {
  outputs: PropertyMap;
}

export interface DeleteRequest {
  urn: string;
  id: string;
  inputs: PropertyMap;
  outputs: PropertyMap;
}

export interface Provider {
  check(req: CheckRequest): Promise<CheckResponse>;
  diff(req: DiffRequest): Promise<DiffResponse>;
  create(req: CreateRequest): Promise<CreateResponse>;
  read(req: ReadRequest): Promise<ReadResponse | undefined>;
  update(req: UpdateRequest): Promise<UpdateResponse>;
  delete(req: DeleteRequest): Promise<void>;
  /**
   * Things this resource would hold exclusively on its host ("host port 127.0.0.1:8080/tcp", "container web").
   * The engine refuses a program in which two resources of one machine (kind.ts's machineWide: ports, bridges,
   * macvlan parents) or of one berth root (names) claim the same thing, before anything changes.
   */
  claims(inputs: PropertyMap): string[];
  /**
   * The schema's judgement of the inputs alone, which needs no host: what a preview can say of a resource whose
   * provider's host is not known yet. Unknown values are not judged.
   */
  checkSchema(req: CheckRequest): CheckFailure[];
}
