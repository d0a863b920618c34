// What a delete-before-replace takes down with it, and what `--target` may touch, decided as Pulumi's engine
// decides it (pkg/resource/deploy/step_generator.go: calculateDependentReplacements, the --target checks): every
// object the host loses is in the plan, and an untargeted resource is never deleted.
import { describe, expect, it } from "vitest";
import type { Goal } from "../../provider/engine/deployment";
import { type DeploymentV3, emptyDeployment } from "../../provider/state/checkpoint";
import { apply, ops, thing, urn, world } from "./fake-world";

/** `a` on a fixed port: any replace of it deletes first (old and new cannot coexist). */
const target = (size: number, extra: Partial<Goal> = {}): Goal => ({ ...thing("a", { port: 80, size }), ...extra });
/** `b` fed by `a` through `property` (size replaces, label updates in place), or only ordered after it. */
const dependent = (property: "size" | "label" | undefined, extra: Partial<Goal> = {}): Goal => ({
  ...thing("b", property === "label" ? { label: "x" } : { size: 1 }, [urn("a")]),
  propertyDependencies: property ? { [property]: [urn("a")] } : {},
  ...extra,
});
const nameOf = (d: DeploymentV3, n: string) => d.resources.find((r) => r.urn === urn(n) && !r.delete)?.inputs.name as string;
const messages = (run: { diagnostics: Array<{ message: string }> }) => run.diagnostics.map((d) => d.message).join("\n");

async function deployed(goals: Goal[]) {
  const w = world();
  const first = await apply(w, emptyDeployment(), goals);
  expect(first.failed).toBe(false);
  w.log.length = 0;
  return { w, base: first.state };
}

describe("dependents of a delete-before-replace", () => {
  it("a resource tied only by dependsOn is not replaced (Pulumi replaces only on a property that would replace it)", async () => {
    const { w, base } = await deployed([target(1), dependent(undefined)]);
    const run = await apply(w, base, [target(2), dependent(undefined)]);
    expect(ops(run)).toEqual(["replace a", "same b"]);
    expect(w.log).toEqual([`delete ${nameOf(base, "a")}`, `create ${nameOf(run.state, "a")}`]);
    expect(w.host.has(nameOf(base, "b"))).toBe(true);
  });

  it("a property feeding an in-place field does not replace it either; one feeding a replacing field does, first", async () => {
    const inPlace = await deployed([target(1), dependent("label")]);
    const kept = await apply(inPlace.w, inPlace.base, [target(2), dependent("label")]);
    expect(ops(kept)).toEqual(["replace a", "same b"]);

    const { w, base } = await deployed([target(1), dependent("size")]);
    const preview = await apply(w, base, [target(2), dependent("size")], true);
    expect(ops(preview)).toEqual(["replace a", "replace b"]);
    expect(preview.steps.find((s) => s.urn === urn("b"))!.replaces).toContain("(replaced with a)");
    const run = await apply(w, base, [target(2), dependent("size")]);
    expect(ops(run)).toEqual(["replace a", "replace b"]);
    const [oldA, oldB] = [nameOf(base, "a"), nameOf(base, "b")];
    expect(w.log.slice(0, 3)).toEqual([`delete ${oldB}`, `delete ${oldA}`, `create ${nameOf(run.state, "a")}`]);
    expect(w.host.has(nameOf(run.state, "b"))).toBe(true);
  });

  it("a dependent taken down first that the program dropped is shown deleted, in the preview and the up", async () => {
    const { w, base } = await deployed([target(1), dependent("size")]);
    expect(ops(await apply(w, base, [target(2)], true))).toEqual(["replace a", "delete b"]);
    const run = await apply(w, base, [target(2)]);
    expect(ops(run)).toEqual(["replace a", "delete b"]);
    expect(w.host.has(nameOf(base, "b"))).toBe(false);
    expect(run.state.resources.some((r) => r.urn === urn("b"))).toBe(false);
  });

  it("deletedWith a replaced resource means replaced with it", async () => {
    const { w, base } = await deployed([target(1), { ...thing("c", {}), deletedWith: urn("a") }]);
    const run = await apply(w, base, [target(2), { ...thing("c", {}), deletedWith: urn("a") }]);
    expect(ops(run)).toEqual(["replace a", "replace c"]);
  });

  it("a protected dependent stops the replace before anything changes, in Pulumi's words", async () => {
    const { w, base } = await deployed([target(1), dependent("size", { protect: true })]);
    const run = await apply(w, base, [target(2), dependent("size", { protect: true })]);
    expect(messages(run)).toContain(`unable to replace resource "${urn("b")}" as part of replacing "${urn("a")}" as it is currently marked for protection`);
    expect(w.log).toEqual([]);
  });

  it("a link dropped in the run that replaces its target: the linker (registered first) stays, on the host and in the state", async () => {
    // b used to take a value from a; now it states it literally, registers before a, and is unchanged.
    const { w, base } = await deployed([target(1), dependent("size")]);
    const literal = thing("b", { size: 1 });
    const run = await apply(w, base, [literal, target(2)]);
    expect(ops(run)).toEqual(["same b", "replace a"]);
    expect(w.host.has(nameOf(base, "b"))).toBe(true);
    expect(w.log).toEqual([`delete ${nameOf(base, "a")}`, `create ${nameOf(run.state, "a")}`]);
    const next = await apply(w, run.state, [literal, target(2)], true);
    expect(ops(next)).toEqual(["same b", "same a"]);
  });

  it("a link dropped but registered after the target: replaced (its last state says it depends), shown in the plan", async () => {
    const { w, base } = await deployed([target(1), dependent("size")]);
    const literal = thing("b", { size: 1 });
    const preview = await apply(w, base, [target(2), literal], true);
    expect(ops(preview)).toEqual(["replace a", "replace b"]);
    const run = await apply(w, base, [target(2), literal]);
    expect(ops(run)).toEqual(["replace a", "replace b"]);
    expect(w.host.has(nameOf(run.state, "b"))).toBe(true);
    expect(run.state.resources.filter((r) => r.urn === urn("b"))).toHaveLength(1);
  });
});

describe("--target", () => {
  it("refuses a targeted replace that would delete an untargeted dependent, naming it, before anything changes", async () => {
    const { base } = await deployed([target(1), dependent("size")]);
    const w = world({ targets: new Set([urn("a")]) });
    for (const r of base.resources) if (r.inputs.name) w.host.set(r.inputs.name as string, {});
    for (const preview of [true, false]) {
      const run = await apply(w, base, [target(2), dependent("size")], preview);
      expect(messages(run)).toContain(
        `Resource '${urn("b")}' will be destroyed but was not specified in --target list.\nEither include resource in --target list or pass --target-dependents to proceed.`,
      );
      expect(w.log).toEqual([]);
    }
  });

  it("tells each refusal as it is found (a live display prints it then), not only in the summary at the end", async () => {
    const { base } = await deployed([target(1), dependent("size"), thing("c", {})]);
    const told: string[] = [];
    const w = world({ targets: new Set([urn("a")]), onDiagnostic: (d) => told.push(d.message) });
    const run = w.run(base);
    await run.register(thing("c", {}));
    expect(told).toEqual([]);
    await run.finish();
    expect(told).toEqual([expect.stringContaining(`Resource '${urn("b")}' will be destroyed but was not specified in --target list.`)]);
    // Found while registering (a delete-first replace taking an untargeted dependent): told before the program goes on.
    const { base: replaced } = await deployed([target(1), dependent("size")]);
    told.length = 0;
    await w.run(replaced).register(target(2)).catch(() => undefined);
    expect(told).toEqual([expect.stringContaining(`Resource '${urn("b")}' will be destroyed but was not specified in --target list.`)]);
  });

  it("takes the dependents with --target-dependents, or when they are targeted too", async () => {
    for (const extra of [{ targetDependents: true }, { targets: new Set([urn("a"), urn("b")]) }]) {
      const { base } = await deployed([target(1), dependent("size")]);
      const w = world({ targets: new Set([urn("a")]), ...extra });
      for (const r of base.resources) if (r.inputs.name) w.host.set(r.inputs.name as string, {});
      const run = await apply(w, base, [target(2), dependent("size")]);
      expect(run.failed).toBe(false);
      expect(ops(run)).toEqual(["replace a", "replace b"]);
      expect(w.host.has(nameOf(run.state, "b"))).toBe(true);
    }
  });

  it("with --target-dependents, a dependent that dropped its link is still made again", async () => {
    const { base } = await deployed([target(1), dependent("size")]);
    const w = world({ targets: new Set([urn("a")]), targetDependents: true });
    for (const r of base.resources) if (r.inputs.name) w.host.set(r.inputs.name as string, {});
    const run = await apply(w, base, [target(2), thing("b", { size: 1 })]);
    expect(ops(run)).toEqual(["replace a", "replace b"]);
    expect(w.host.has(nameOf(run.state, "b"))).toBe(true);
  });

  it("deletes a targeted resource the program dropped only with its untargeted dependents named or --target-dependents", async () => {
    const { base } = await deployed([target(1), dependent("size"), thing("c", {})]);
    const w = world({ targets: new Set([urn("a")]) });
    const refused = await apply(w, base, [thing("c", {})]);
    expect(messages(refused)).toContain(`Resource '${urn("b")}' will be destroyed but was not specified in --target list.`);
    expect(w.log).toEqual([]);
    const all = world({ targets: new Set([urn("a")]), targetDependents: true });
    const run = await apply(all, base, [thing("c", {})]);
    expect(ops(run).sort()).toEqual(["delete a", "delete b", "same c"]);
  });
});

describe("protect", () => {
  it("dropped in the run that replaces: the replace is planned and done, create-first or delete-first", async () => {
    for (const goal of [(size: number, p: Partial<Goal>) => ({ ...thing("a", { size }), ...p }), (size: number, p: Partial<Goal>) => target(size, p)]) {
      const { w, base } = await deployed([goal(1, { protect: true })]);
      const preview = await apply(w, base, [goal(2, {})], true);
      expect(preview.failed, messages(preview)).toBe(false);
      expect(ops(preview)).toEqual(["replace a"]);
      const run = await apply(w, base, [goal(2, {})]);
      expect(run.failed, messages(run)).toBe(false);
      expect(w.host.has(nameOf(base, "a"))).toBe(false);
      expect(w.host.has(nameOf(run.state, "a"))).toBe(true);
      expect(run.state.resources.filter((r) => r.urn === urn("a"))).toEqual([expect.not.objectContaining({ protect: true })]);
    }
  });
});
