// Dependency order over resource states: what must come before what (parents and dependencies first).
import type { ResourceState } from "./checkpoint";

/** URNs a resource needs to exist before it. */
export function prerequisites(res: ResourceState): string[] {
  return [...(res.parent ? [res.parent] : []), ...(res.dependencies ?? []), ...(res.provider ? [res.provider.split("::").slice(0, -1).join("::")] : [])];
}

/**
 * Stable topological sort: each resource after what it depends on, otherwise in the given order. A resource
 * marked `delete` (an old copy awaiting deletion) sorts before its replacement, as in Pulumi's checkpoints.
 */
export function sortResources(resources: ResourceState[]): ResourceState[] {
  const byUrn = new Map<string, ResourceState[]>();
  for (const r of resources) byUrn.set(r.urn, [...(byUrn.get(r.urn) ?? []), r]);
  const placed = new Set<ResourceState>();
  const out: ResourceState[] = [];
  const visiting = new Set<ResourceState>();
  const visit = (r: ResourceState) => {
    if (placed.has(r) || visiting.has(r)) return; // a cycle cannot come from a program; keep input order if it does
    visiting.add(r);
    for (const urn of prerequisites(r)) for (const dep of byUrn.get(urn) ?? []) visit(dep);
    visiting.delete(r);
    placed.add(r);
    out.push(r);
  };
  for (const r of resources) visit(r);
  return out;
}

/**
 * Deletion waves: each wave holds resources that nothing left in the set depends on, so a wave can be deleted in
 * parallel once the waves before it are gone.
 */
export function deletionWaves(resources: ResourceState[]): ResourceState[][] {
  const remaining = new Set(resources);
  const waves: ResourceState[][] = [];
  while (remaining.size > 0) {
    const needed = new Set<string>();
    for (const r of remaining) for (const urn of prerequisites(r)) needed.add(urn);
    const wave = [...remaining].filter((r) => !needed.has(r.urn));
    const next = wave.length > 0 ? wave : [...remaining];
    for (const r of next) remaining.delete(r);
    waves.push(next);
  }
  return waves;
}
