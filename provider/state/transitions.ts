// Every change to a stack's deployment, as a pure function from one checkpoint to the next (immer keeps the
// unchanged parts shared). The engine persists each result before it tells the program a step is done.
import { freeze, produce } from "immer";
import { isDeepStrictEqual } from "node:util";
import type { DeploymentV3, OperationType, ResourceState } from "./checkpoint";
import { manifest } from "./checkpoint";

const isLive = (r: ResourceState, urn: string) => r.urn === urn && !r.delete;

/** Records that an operation on the host is starting: a crash now leaves a trace the next run cleans up. */
export const beginOperation = (d: DeploymentV3, resource: ResourceState, type: OperationType) =>
  produce(d, (draft) => {
    draft.pending_operations = [...(draft.pending_operations ?? []), { resource, type }];
  });

const dropOperation = (draft: DeploymentV3, urn: string, type: OperationType) => {
  draft.pending_operations = (draft.pending_operations ?? []).filter((op) => !(op.resource.urn === urn && op.type === type));
};

// Resources are looked up in the base state, not the draft: every element the draft is searched through becomes a
// draft of its own, which made each step O(resources) proxies and a 1,000-resource preview quadratic.

/**
 * An operation finished: the resource (created, updated or read) replaces the live one with its URN. The list is
 * copied outside the draft and handed in frozen: immer finalizing a changed draft list visits every element, and
 * this runs once per resource (a 1,000-resource preview spent half a second there).
 */
export const completeWrite = (d: DeploymentV3, resource: ResourceState, type: OperationType) => {
  const at = d.resources.findIndex((r) => isLive(r, resource.urn));
  const resources = d.resources.slice();
  resources[at >= 0 ? at : resources.length] = freeze(resource, true);
  return produce(d, (draft) => {
    dropOperation(draft, resource.urn, type);
    draft.resources = Object.freeze(resources) as ResourceState[];
    draft.manifest = manifest();
  });
};

/**
 * Whether recording `resource` would leave `live`, a record of the deployment, as it is: a no-op step then
 * changes nothing (and copies nothing). Fields left undefined are absent from the record.
 */
export const unchanged = (d: DeploymentV3, live: ResourceState, resource: ResourceState) =>
  d.resources.includes(live) && isDeepStrictEqual(live, Object.fromEntries(Object.entries(resource).filter(([, v]) => v !== undefined)));

/** A delete finished; `replaced` says it was the old copy kept for a replacement. */
export const completeDelete = (d: DeploymentV3, urn: string, replaced: boolean) => {
  const at = d.resources.findIndex((r) => r.urn === urn && Boolean(r.delete) === replaced);
  return produce(d, (draft) => {
    dropOperation(draft, urn, "deleting");
    if (at >= 0) draft.resources.splice(at, 1);
    draft.manifest = manifest();
  });
};

/** An operation failed before changing anything it could not undo: forget that it started. */
export const abandonOperation = (d: DeploymentV3, urn: string, type: OperationType) =>
  produce(d, (draft) => dropOperation(draft, urn, type));

/** The live resource with this URN becomes the old copy of a replacement (deleted once its successor exists). */
export const markForDeletion = (d: DeploymentV3, urn: string) => {
  const at = d.resources.findIndex((r) => isLive(r, urn));
  return produce(d, (draft) => {
    if (at >= 0) draft.resources[at].delete = true;
  });
};

/** A live resource takes a new URN (an alias matched), and what referred to the old one follows it. */
export const rename = (d: DeploymentV3, from: string, to: string) =>
  produce(d, (draft) => {
    for (const r of draft.resources) {
      if (r.urn === from && !r.delete) r.urn = to;
      if (r.parent === from) r.parent = to;
      if (r.dependencies?.includes(from)) r.dependencies = r.dependencies.map((u) => (u === from ? to : u));
      if (r.deletedWith === from) r.deletedWith = to;
      for (const [key, deps] of Object.entries(r.propertyDependencies ?? {})) {
        if (deps.includes(from)) r.propertyDependencies![key] = deps.map((u) => (u === from ? to : u));
      }
    }
  });

/** Removes a resource from state without touching the host (refresh found it gone). */
export const forget = (d: DeploymentV3, urn: string) =>
  produce(d, (draft) => {
    draft.resources = d.resources.filter((r) => !isLive(r, urn));
  });

