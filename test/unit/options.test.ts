// Resource options and run scopes under the embedded engine, as Pulumi documents them, over an in-memory kind.
import { describe, expect, it } from "vitest";
import type { Goal } from "../../provider/engine/deployment";
import { ignoreChanges, parseDuration, parsePath, replaceOnChanges } from "../../provider/engine/options";
import { KindProvider } from "../../provider/resources/kind";
import type { Provider } from "../../provider/resources/provider";
import { emptyDeployment } from "../../provider/state/checkpoint";
import { SECRET_SIG, SIG, isSecret } from "../../provider/values";
import { TYPE, apply, fakeKind, ops, thing, urn, world } from "./fake-world";

const nameOf = (run: { state: { resources: Array<{ urn: string; inputs: Record<string, unknown> }> } }, n: string) =>
  run.state.resources.find((r) => r.urn === urn(n))?.inputs.name as string;

describe("option helpers", () => {
  it("parses property paths, resets ignored ones, and turns covered changes into replaces", () => {
    expect(parsePath('ports[0].hostPort')).toEqual(["ports", 0, "hostPort"]);
    expect(parsePath('labels["a.b"]')).toEqual(["labels", "a.b"]);
    expect(ignoreChanges({ env: { A: "2", B: "1" }, x: 1 }, { env: { A: "1" }, x: 0 }, ["env.A", "env.B", "x"])).toEqual({ env: { A: "1" }, x: 0 });
    const diff = { changes: true, diffs: ["label"], replaces: [], deleteBeforeReplace: false, detailedDiff: { label: { kind: "update" as const } } };
    expect(replaceOnChanges(diff, ["label"])).toMatchObject({ replaces: ["label"], detailedDiff: { label: { kind: "update-replace" } } });
    expect(replaceOnChanges(diff, ["*"]).replaces).toEqual(["label"]);
    expect(replaceOnChanges(diff, ["other"]).replaces).toEqual([]);
    expect(parseDuration("1h2m3s")).toBe(3723);
    expect(parseDuration("500ms")).toBe(0.5);
    expect(() => parseDuration("soon")).toThrow(/not a duration/);
  });
});

describe("resource options", () => {
  it("protect: a protected resource is neither deleted nor replaced, in Pulumi's words", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [{ ...thing("a", { size: 1 }), protect: true }]);
    const gone = await apply(w, first.state, [], true);
    expect(gone.diagnostics.map((d) => d.message).join("\n")).toContain(`resource "${urn("a")}" cannot be deleted\nbecause it is protected.`);
    const replaced = await apply(w, first.state, [{ ...thing("a", { size: 2 }), protect: true }], true);
    expect(replaced.diagnostics[0].message).toContain("as it is currently marked for protection");
    // Dropping the flag is recorded, and then the delete goes through.
    const unprotected = await apply(w, first.state, [thing("a", { size: 1 })]);
    expect(unprotected.state.resources.find((r) => r.urn === urn("a"))!.protect).toBeUndefined();
    const deleted = await apply(w, unprotected.state, []);
    expect(ops(deleted)).toEqual(["delete a"]);
  });

  it("ignoreChanges keeps the old value; replaceOnChanges replaces on an in-place field", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [thing("a", { label: "x" }), thing("b", { label: "x" })]);
    const second = await apply(w, first.state, [
      { ...thing("a", { label: "y" }), ignoreChanges: ["label"] },
      { ...thing("b", { label: "y" }), replaceOnChanges: ["label"] },
    ]);
    expect(ops(second)).toEqual(["same a", "replace b", "delete b"]);
    expect(second.steps.find((s) => s.urn === urn("b"))!.replaces).toEqual(["label"]);
    expect(second.state.resources.find((r) => r.urn === urn("a"))!.inputs.label).toBe("x");
    expect(second.state.resources.find((r) => r.urn === urn("a"))!.ignoreChanges).toEqual(["label"]);
  });

  it("deleteBeforeReplace deletes the old object before making the new one", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [thing("a", { size: 1 })]);
    w.log.length = 0;
    await apply(w, first.state, [{ ...thing("a", { size: 2 }), deleteBeforeReplace: true }]);
    expect(w.log[0]).toBe(`delete ${nameOf(first, "a")}`);
  });

  it("retainOnDelete leaves the object on the host; deletedWith skips what goes with its owner", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [
      { ...thing("kept", {}), retainOnDelete: true },
      thing("owner", {}),
      { ...thing("inside", {}), deletedWith: urn("owner") },
    ]);
    w.log.length = 0;
    const second = await apply(w, first.state, []);
    expect(ops(second).sort()).toEqual(["delete inside", "delete kept", "delete owner"]);
    expect(w.log).toEqual([`delete ${nameOf(first, "owner")}`]);
    expect(w.host.has(nameOf(first, "kept"))).toBe(true);
    expect(second.state.resources.filter((r) => r.type === TYPE)).toEqual([]);
  });

  it("aliases: a renamed resource keeps its object (no replace, no delete)", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [thing("old", { label: "x" })]);
    w.log.length = 0;
    const renamed = await apply(w, first.state, [{ ...thing("new", { label: "x" }), aliases: [urn("old")] }]);
    expect(ops(renamed)).toEqual(["same new"]);
    expect(w.log).toEqual([]);
    expect(renamed.state.resources.map((r) => r.urn)).toContain(urn("new"));
    expect(renamed.state.resources.map((r) => r.urn)).not.toContain(urn("old"));
  });

  it("aliases: a rename whose host read fails is still a rename (recording the new owner is best effort)", async () => {
    const host = new Map();
    const w = world({ providers: new Map([[TYPE, new KindProvider(TYPE, fakeKind(host, []))]]) });
    const first = await apply(w, emptyDeployment(), [thing("old", { label: "x" })]);
    const failing = world({ providers: new Map([[TYPE, new KindProvider(TYPE, { ...fakeKind(host, []), read: () => Promise.reject(new Error("host unreachable")) })]]) });
    const renamed = await apply(failing, first.state, [{ ...thing("new", { label: "x" }), aliases: [urn("old")] }]);
    expect(renamed.diagnostics).toEqual([]);
    expect(ops(renamed)).toEqual(["same new"]);
    expect(renamed.state.resources.map((r) => r.urn)).toContain(urn("new"));
  });

  it("import adopts an existing object when the program matches it, and refuses when it does not", async () => {
    const w = world();
    w.host.set("outside", { name: "outside" });
    const imported = await apply(w, emptyDeployment(), [{ ...thing("a", { name: "outside", label: "x" }), importId: "outside" }]);
    expect(ops(imported)).toEqual(["import a"]);
    expect(w.log).toEqual([]);
    expect(imported.state.resources.find((r) => r.urn === urn("a"))).toMatchObject({ id: "outside", importID: "outside" });
    const again = await apply(w, imported.state, [{ ...thing("a", { name: "outside", label: "x" }), importId: "outside" }]);
    expect(ops(again)).toEqual(["same a"]);

    const mismatch = await apply(w, emptyDeployment(), [{ ...thing("b", { name: "other-name" }), importId: "outside" }], true);
    expect(mismatch.diagnostics[0].message).toContain("inputs to import do not match the existing resource (name)");
    const missing = await apply(w, emptyDeployment(), [{ ...thing("c", {}), importId: "nowhere" }], true);
    expect(missing.diagnostics[0].message).toContain('there is no test:index:Thing with id "nowhere" on this host');
  });

  it("customTimeouts fails a slow create and leaves it pending for the next run to clean up", async () => {
    const host = new Map();
    const slow: Provider = new KindProvider(TYPE, {
      ...fakeKind(host, []),
      create: () => new Promise(() => undefined),
    });
    const w = world({ providers: new Map([[TYPE, slow]]) });
    const run = await apply(w, emptyDeployment(), [{ ...thing("a", {}), customTimeouts: { create: 0.05 } }]);
    expect(run.diagnostics[0].message).toContain("timed out after 0.05s (customTimeouts)");
    expect(run.state.pending_operations?.map((op) => op.type)).toEqual(["creating"]);
  });

  it("additionalSecretOutputs makes an output secret", async () => {
    const w = world();
    const run = await apply(w, emptyDeployment(), [{ ...thing("a", {}), additionalSecretOutputs: ["serial"] }]);
    expect(isSecret(run.state.resources.find((r) => r.urn === urn("a"))!.outputs.serial)).toBe(true);
  });

  it("secret inputs reach the kind in plain and stay secret in the state", async () => {
    const w = world();
    const run = await apply(w, emptyDeployment(), [thing("a", { label: { [SIG]: SECRET_SIG, value: "hush" } })]);
    expect(w.host.get(nameOf(run, "a"))!.label).toBe("hush");
    expect(isSecret(run.state.resources.find((r) => r.urn === urn("a"))!.inputs.label)).toBe(true);
  });

  it("a password passed in plaintext is warned about, naming the field; a secret one is not", async () => {
    const w = world();
    const plain = await apply(w, emptyDeployment(), [thing("a", { auth: { password: "hunter2" } })], true);
    expect(plain.diagnostics).toEqual([expect.objectContaining({ severity: "warning", urn: urn("a"), message: expect.stringContaining("auth.password is not a secret; pass it with pulumi.secret(") })]);
    const secret = await apply(w, emptyDeployment(), [thing("b", { auth: { password: { [SIG]: SECRET_SIG, value: "hunter2" } } })], true);
    expect(secret.diagnostics).toEqual([]);
  });

  it("explicit providers: each provider resource's config builds its own providers, also when deleting", async () => {
    const hosts = new Map<string, Map<string, unknown>>();
    const providersFor = (config: { root?: string }) => {
      const host = new Map();
      hosts.set(config.root ?? "", host);
      return new Map<string, Provider>([[TYPE, new KindProvider(TYPE, fakeKind(host, []))]]);
    };
    const w = world({ providersFor });
    const provider: Goal = { type: "pulumi:providers:berth", name: "alt", custom: true, inputs: { root: "/alt" }, dependencies: [], propertyDependencies: {} };
    const run = w.run(emptyDeployment());
    const p = await run.register(provider);
    await run.register({ ...thing("a", {}), provider: `${p.urn}::${p.id}` });
    await run.finish();
    expect(hosts.get("/alt")!.size).toBe(1);
    expect(w.host.size).toBe(0);
    const bad = await w.run(emptyDeployment(), true).register({ ...provider, inputs: { root: "relative" } }).catch((e) => e);
    expect(String(bad)).toContain("invalid inputs");

    const destroy = w.run(run.state);
    await destroy.destroy();
    expect([...hosts.values()].reduce((n, h) => n + h.size, 0)).toBe(0);
  });
});

describe("run scopes", () => {
  it("--target changes only the targeted resources; --replace replaces without a change", async () => {
    const w = world();
    const first = await apply(w, emptyDeployment(), [thing("a", { label: "x" }), thing("b", { label: "x" })]);
    const targeted = world({ targets: new Set([urn("a")]) });
    targeted.host.set(nameOf(first, "a"), {});
    targeted.host.set(nameOf(first, "b"), {});
    const run = await apply(targeted, first.state, [thing("a", { label: "y" }), thing("b", { label: "y" }), thing("c", {})]);
    expect(ops(run)).toEqual(["update a", "same b"]);
    expect(run.state.resources.find((r) => r.urn === urn("b"))!.inputs.label).toBe("x");
    expect(run.state.resources.some((r) => r.urn === urn("c"))).toBe(false);

    const replacing = world({ replaceTargets: new Set([urn("a")]) });
    const replaced = await apply(replacing, first.state, [thing("a", { label: "x" }), thing("b", { label: "x" })], true);
    expect(ops(replaced)).toEqual(["replace a", "same b"]);
  });
});
