// Steps are values: what the engine decided for one resource, and why. Deciding is pure; acting is elsewhere.
import type { ResourceState } from "../state/checkpoint";
import type { DiffResponse } from "../resources/provider";

export type StepOp = "same" | "create" | "update" | "replace" | "delete" | "refresh" | "import";

export interface Step {
  op: StepOp;
  urn: string;
  type: string;
  old?: ResourceState;
  new?: ResourceState;
  /** Top-level properties that changed (update and replace). */
  diffs: string[];
  /** Why a replace is a replace: the replacing properties, or the dependency that is replaced first. */
  replaces: string[];
  detailedDiff: DiffResponse["detailedDiff"];
  deleteBeforeReplace?: boolean;
}

/** Pulumi's symbols for each step, as users read them in a preview. */
export const SYMBOL: Record<StepOp, string> = {
  same: "  ",
  create: "+ ",
  update: "~ ",
  replace: "+-",
  delete: "- ",
  refresh: "~ ",
  import: "= ",
};

export type Decision =
  | { op: "create" }
  | { op: "same" }
  | { op: "update" }
  | { op: "import" }
  | { op: "replace"; deleteBeforeReplace: boolean };

/**
 * The step for a registered resource, from its last state and the provider's diff. `forced` names a dependency
 * replaced delete-before-replace, which takes this resource down with it; `requested` is `--replace`.
 */
export function decide(
  old: ResourceState | undefined,
  diff: DiffResponse | undefined,
  opts: { deleteBeforeReplace?: boolean; forced?: string; requested?: boolean },
): Decision {
  if (!old) return { op: "create" };
  if (opts.forced) return { op: "replace", deleteBeforeReplace: true };
  if (opts.requested) return { op: "replace", deleteBeforeReplace: opts.deleteBeforeReplace ?? diff?.deleteBeforeReplace ?? false };
  if (!diff || !diff.changes) return { op: "same" };
  if (diff.replaces.length === 0) return { op: "update" };
  return { op: "replace", deleteBeforeReplace: opts.deleteBeforeReplace ?? diff.deleteBeforeReplace };
}
