// Step decisions and their execution, over an in-memory kind: what the engine decides, in which order it acts,
// and what the checkpoint holds when something fails midway.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { DeploymentRun, type Goal } from "../../provider/engine/deployment";
import { KindProvider, type Kind } from "../../provider/resources/kind";
import type { Provider } from "../../provider/resources/provider";
import type { DeploymentV3 } from "../../provider/state/checkpoint";
import { emptyDeployment } from "../../provider/state/checkpoint";
import { replaces } from "../../sdk/schema";

const Args = z.strictObject({
  name: replaces(z.string().optional()),
  size: replaces(z.number().int().min(1, { error: "must be at least 1" }).optional()),
  label: z.string().optional(),
  port: z.number().optional(),
  needs: z.string().optional(),
  failCreate: z.boolean().optional(),
});
type Args = z.infer<typeof Args>;

/** A kind whose objects live in a Map; every host action is logged in order. */
function fakeKind(host: Map<string, Args>, log: string[]): Kind<Args, { name: string; serial: number }> {
  let serial = 0;
  return {
    args: Args,
    outputs: z.object({ name: z.string(), serial: z.number() }),
    autoname: true,
    previewOutputs: (inputs) => ({ name: inputs.name }),
    idOf: (inputs) => inputs.name!,
    async create(inputs) {
      log.push(`create ${inputs.name}`);
      await new Promise((r) => setTimeout(r, 1));
      if (inputs.failCreate) throw new Error("the host said no");
      host.set(inputs.name!, inputs);
      return { id: inputs.name!, outputs: { name: inputs.name!, serial: ++serial } };
    },
    async read(id, _inputs, outputs) {
      return host.has(id) ? outputs : undefined;
    },
    async update(id, _olds, news) {
      log.push(`update ${id}`);
      host.set(id, news);
      return { name: id, serial: ++serial };
    },
    async delete(id) {
      log.push(`delete ${id}`);
      host.delete(id);
    },
    exclusive: (olds, news) => olds.port !== undefined && olds.port === news.port,
    claims: (inputs) => (inputs.port ? [`port ${inputs.port}`] : []),
  };
}

const TYPE = "test:index:Thing";

function world() {
  const host = new Map<string, Args>();
  const log: string[] = [];
  const providers = new Map<string, Provider>([[TYPE, new KindProvider(TYPE, fakeKind(host, log))]]);
  const saved: DeploymentV3[] = [];
  const run = (base: DeploymentV3, preview = false) =>
    new DeploymentRun({ stack: "dev", project: "p", preview, providers, base, persist: (d) => saved.push(d) });
  return { host, log, saved, run };
}

const thing = (name: string, inputs: Record<string, unknown>, dependencies: string[] = []): Goal => ({
  type: TYPE,
  name,
  custom: true,
  inputs,
  dependencies,
  propertyDependencies: {},
});

const urn = (name: string) => `urn:pulumi:dev::p::${TYPE}::${name}`;

async function apply(w: ReturnType<typeof world>, base: DeploymentV3, goals: Goal[], preview = false) {
  const run = w.run(base, preview);
  for (const goal of goals) await run.register(goal).catch(() => undefined);
  if (!run.failed) await run.finish();
  return run;
}

const ops = (run: DeploymentRun) => run.steps.filter((s) => s.type === TYPE).map((s) => `${s.op} ${s.urn.split("::").pop()}`);

describe("step decisions", () => {
  it("creates what is new, leaves what is equal, updates in place, and replaces on a replacing field", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [thing("a", { label: "x" }), thing("b", { size: 1 }), thing("c", {})]);
    expect(ops(first)).toEqual(["create a", "create b", "create c"]);

    const second = await apply(w, first.state, [thing("a", { label: "y" }), thing("b", { size: 2 }), thing("c", {})]);
    expect(ops(second)).toEqual(["update a", "replace b", "same c", "delete b"]);
    const replace = second.steps.find((s) => s.op === "replace")!;
    expect(replace.replaces).toEqual(["size"]);
    expect(replace.detailedDiff).toEqual({ size: { kind: "update-replace" } });
    // The replacement got a fresh autoname; the old copy was deleted after the new one existed.
    const oldB = first.state.resources.find((r) => r.urn === urn("b"))!.inputs.name;
    const newB = second.state.resources.find((r) => r.urn === urn("b"))!.inputs.name;
    expect(newB).not.toEqual(oldB);
    expect(w.log.indexOf(`create ${newB}`)).toBeLessThan(w.log.indexOf(`delete ${oldB}`));
    expect(w.host.size).toBe(3);
    expect(w.host.has(newB as string)).toBe(true);
    expect(w.host.has(oldB as string)).toBe(false);

    const third = await apply(w, second.state, [thing("a", { label: "y" }), thing("b", { size: 2 }), thing("c", {})]);
    expect(ops(third)).toEqual(["same a", "same b", "same c"]);
  });

  it("deletes the old object first when old and new cannot coexist", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [thing("a", { port: 80, size: 1 })]);
    const name = first.state.resources.find((r) => r.urn === urn("a"))!.inputs.name as string;
    w.log.length = 0;
    const second = await apply(w, first.state, [thing("a", { port: 80, size: 2 })]);
    expect(second.steps.find((s) => s.urn === urn("a"))!.deleteBeforeReplace).toBe(true);
    expect(w.log[0]).toBe(`delete ${name}`);
    expect(w.log[1]).toMatch(/^create a-/);
  });

  it("deletes what the program no longer declares, dependents first", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [
      thing("base", {}),
      thing("mid", {}, [urn("base")]),
      thing("top", {}, [urn("mid")]),
      thing("other", {}),
    ]);
    w.log.length = 0;
    const second = await apply(w, first.state, [thing("other", {})]);
    expect(ops(second).sort()).toEqual(["delete base", "delete mid", "delete top", "same other"]);
    expect(w.log.map((l) => l.split(" ")[1].replace(/-\w+$/, ""))).toEqual(["top", "mid", "base"]);
    expect(second.state.resources.filter((r) => r.type === TYPE).map((r) => r.urn)).toEqual([urn("other")]);
  });

  it("a preview decides the same steps and changes nothing", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [thing("a", { size: 1 })]);
    w.log.length = 0;
    const savedBefore = w.saved.length;
    const preview = await apply(w, first.state, [thing("a", { size: 3 }), thing("n", {})], true);
    expect(ops(preview)).toEqual(["replace a", "create n"]);
    expect(w.log).toEqual([]);
    expect(w.saved.length).toBe(savedBefore);
  });
});

describe("bad input", () => {
  it("names the resource and the property, and collects every failure", async () => {
    const w = world();
    const run = await apply(w, emptyDeployment(), [thing("a", { size: 0 }), thing("b", { colour: "red" })], true);
    const messages = run.diagnostics.map((d) => d.message);
    expect(messages).toContain('test:index:Thing "a": size: must be at least 1');
    expect(messages).toContain('test:index:Thing "b": colour: unknown property; the valid ones are: name, size, label, port, needs, failCreate');
  });

  it("refuses two resources claiming one host port before acting", async () => {
    const w = world();
    const run = await apply(w, emptyDeployment(), [thing("a", { port: 8080 }), thing("b", { port: 8080 })], true);
    expect(run.diagnostics.map((d) => d.message)).toEqual([
      'test:index:Thing "b": port 8080 is already taken by test:index:Thing "a" in this program',
    ]);
  });
});

describe("failures midway", () => {
  it("a failed create leaves the checkpoint consistent: done steps kept, nothing pending", async () => {
    const w = world();
    const run = await apply(w, emptyDeployment(), [thing("a", {}), thing("b", { failCreate: true })]);
    expect(run.failed).toBe(true);
    const last = w.saved[w.saved.length - 1];
    expect(last.pending_operations ?? []).toEqual([]);
    expect(last.resources.filter((r) => r.type === TYPE).map((r) => r.urn)).toEqual([urn("a")]);
    expect(run.diagnostics[0].message).toBe('test:index:Thing "b": create failed: the host said no');
  });

  it("a crash during a create is cleaned up by the next run", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [thing("a", {})]);
    // What the checkpoint holds if the engine dies after starting b's create: b is pending, and half made.
    const crashed: DeploymentV3 = {
      ...first.state,
      pending_operations: [{ type: "creating", resource: { urn: urn("b"), custom: true, type: TYPE, inputs: { name: "b-half" }, outputs: {} } }],
    };
    w.host.set("b-half", {});
    const next = w.run(crashed);
    await next.recover();
    expect(w.host.has("b-half")).toBe(false);
    expect(next.state.pending_operations).toEqual([]);
    expect(next.diagnostics[0].message).toContain("finishing an interrupted creating operation");
  });
});
