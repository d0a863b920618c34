// Step decisions and their execution, over an in-memory kind: what the engine decides, in which order it acts,
// and what the checkpoint holds when something fails midway.
import { describe, expect, it } from "vitest";
import { type DeploymentV3, emptyDeployment } from "../../provider/state/checkpoint";
import { UNKNOWN } from "../../provider/values";
import { TYPE, apply, ops, thing, urn, world } from "./fake-world";

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

describe("autonames", () => {
  const nameOf = (run: { state: DeploymentV3 }) => run.state.resources.find((r) => r.urn === urn("a"))!.inputs.name as string;

  it("are picked once, at random as Pulumi's, and kept in the state: two checkouts of one stack on one host do not collide", async () => {
    const one = await apply(world(), emptyDeployment(), [thing("a", {})]);
    const two = await apply(world(), emptyDeployment(), [thing("a", {})]);
    expect(nameOf(one)).toMatch(/^a-[0-9a-f]{7}$/);
    expect(nameOf(two)).not.toBe(nameOf(one));
    const w = world();
    const again = await apply(w, one.state, [thing("a", { label: "x" })]);
    expect(nameOf(again)).toBe(nameOf(one));
  });

  it("a preview and the update given its seed pick the same names", async () => {
    const w = world({ seed: "s1" });
    const preview = await apply(w, emptyDeployment(), [thing("a", {})], true);
    const up = await apply(w, emptyDeployment(), [thing("a", {})]);
    expect(preview.steps.find((s) => s.urn === urn("a"))!.new!.inputs.name).toBe(nameOf(up));
  });
});

describe("bad input", () => {
  it("names the resource and the property, and collects every failure", async () => {
    const w = world();
    const run = await apply(w, emptyDeployment(), [thing("a", { size: 0 }), thing("b", { colour: "red" })], true);
    const messages = run.diagnostics.map((d) => d.message);
    expect(messages).toContain('test:index:Thing "a": size: must be at least 1');
    expect(messages).toContain('test:index:Thing "b": colour: unknown property; the valid ones are: name, size, label, port, hostPort, needs, failCreate, auth');
  });

  it("a value unknown at preview is checked in full once known, before its resource is made: nothing of it on the host or in the state", async () => {
    const w = world();
    const goals = (bPort: unknown, bSize: unknown) => [thing("a", { port: 8080 }), thing("b", { port: bPort, size: bSize }, [urn("a")])];
    const preview = await apply(w, emptyDeployment(), goals(UNKNOWN, UNKNOWN), true);
    expect(preview.diagnostics).toEqual([]);
    for (const [port, size, message] of [
      [8080, 1, 'test:index:Thing "b": port 8080 is already taken by test:index:Thing "a" in this program'],
      [9090, 0, 'test:index:Thing "b": size: must be at least 1'],
    ] as const) {
      const host = world();
      const up = await apply(host, emptyDeployment(), goals(port, size));
      expect(up.diagnostics.map((d) => d.message)).toEqual([message]);
      expect(host.log.filter((l) => l.startsWith("create b"))).toEqual([]);
      const saved = up.state;
      expect(saved.resources.map((r) => r.urn)).not.toContain(urn("b"));
      expect(saved.pending_operations ?? []).toEqual([]);
    }
  });

  it("refuses two resources claiming one host port before acting", async () => {
    const w = world();
    const run = await apply(w, emptyDeployment(), [thing("a", { port: 8080 }), thing("b", { port: 8080 })], true);
    expect(run.diagnostics.map((d) => d.message)).toEqual([
      'test:index:Thing "b": port 8080 is already taken by test:index:Thing "a" in this program',
    ]);
  });
});

describe("checkpoint writes", () => {
  it("record each operation as pending before it touches the host, and share one write between commits made meanwhile", async () => {
    const disk: DeploymentV3[] = [];
    // A slow disk: each write takes a while, so the commits of parallel creates pile up behind it.
    const w: ReturnType<typeof world> = world({
      persist: async (d) => {
        await new Promise((r) => setTimeout(r, 5));
        disk.push(d);
        w.log.push("written");
      },
    });
    const names = ["a", "b", "c", "d", "e", "f"];
    const run = w.run(emptyDeployment());
    await Promise.all(names.map((n) => run.register(thing(n, { name: n }))));
    await run.finish();
    await run.settled();
    for (const [i, entry] of w.log.entries()) {
      if (!entry.startsWith("create ")) continue;
      const name = entry.split(" ")[1];
      const onDisk = disk.slice(0, w.log.slice(0, i).filter((e) => e === "written").length);
      expect(onDisk.some((d) => d.pending_operations?.some((op) => op.resource.urn === urn(name))), name).toBe(true);
    }
    // Twelve commits (a start and an end per create); fewer writes.
    expect(disk.length).toBeLessThan(2 * names.length);
    const last = disk[disk.length - 1];
    expect(last.pending_operations ?? []).toEqual([]);
    expect(last.resources.filter((r) => r.type === TYPE).map((r) => r.urn).sort()).toEqual(names.map(urn));
  });
});

describe("a step reported", () => {
  it("is on disk by then, as Pulumi writes its snapshot before it shows the step: a kill after the print undoes nothing", async () => {
    const disk: DeploymentV3[] = [];
    const late: string[] = [];
    const w: ReturnType<typeof world> = world({
      persist: async (d) => {
        await new Promise((r) => setTimeout(r, 5));
        disk.push(d);
      },
      onStep: (step) => {
        const last = disk[disk.length - 1];
        const done = last?.resources.some((r) => r.urn === step.urn) && !last.pending_operations?.some((op) => op.resource.urn === step.urn);
        if (step.op === "create" && !done) late.push(step.urn);
      },
    });
    const run = w.run(emptyDeployment());
    await Promise.all(["a", "b", "c", "d"].map((n) => run.register(thing(n, { name: n }))));
    await run.finish();
    await run.settled();
    expect(late).toEqual([]);
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
