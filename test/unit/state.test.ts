// The stack's checkpoint on disk: Pulumi's layout and format, dependency order, and the lock.
import * as fs from "node:fs";
import * as os from "node:os";
import { self } from "../../native/lock";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { emptyDeployment, type ResourceState } from "../../provider/state/checkpoint";
import { deletionWaves, sortResources } from "../../provider/state/order";
import { StackStore } from "../../provider/state/store";

const dirs: string[] = [];
const store = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-state-"));
  dirs.push(dir);
  return new StackStore({ backendDir: dir, project: "proj", stack: "dev" });
};
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const res = (name: string, dependencies: string[] = []): ResourceState => ({
  urn: `urn:pulumi:dev::proj::t:index:T::${name}`,
  custom: true,
  type: "t:index:T",
  inputs: {},
  outputs: {},
  dependencies: dependencies.map((d) => `urn:pulumi:dev::proj::t:index:T::${d}`),
});
const names = (rs: ResourceState[]) => rs.map((r) => r.urn.split("::").pop());

describe("checkpoint file", () => {
  it("is Pulumi's file backend layout and version 3 format, written in dependency order", () => {
    const s = store();
    s.save({ ...emptyDeployment(), resources: [res("top", ["mid"]), res("mid", ["base"]), res("base")] });
    expect(s.file).toBe(path.join(s.ref.backendDir, ".pulumi/stacks/proj/dev.json"));
    const file = JSON.parse(fs.readFileSync(s.file, "utf8"));
    expect(file.version).toBe(3);
    expect(file.checkpoint.stack).toBe("organization/proj/dev");
    expect(names(file.checkpoint.latest.resources)).toEqual(["base", "mid", "top"]);
    expect(fs.readFileSync(path.join(s.ref.backendDir, ".pulumi/meta.yaml"), "utf8")).toBe("version: 1\n");
    expect(names(s.load().resources)).toEqual(["base", "mid", "top"]);
    expect(fs.readdirSync(path.dirname(s.file))).toEqual(["dev.json"]); // no temp file left behind
  });

  it("is exactly JSON.stringify's layout, each write from the states it is given (unchanged ones' text reused)", () => {
    const s = store();
    const text = (d: ReturnType<typeof emptyDeployment>) =>
      JSON.stringify({ version: 3, checkpoint: { stack: s.qualifiedName, latest: { ...d, resources: sortResources(d.resources) } } }, null, 4);
    const a = { ...res("a"), outputs: { nested: { list: [1, "two\nlines", { "k\"ey": null }], empty: {}, none: [] }, s: "\u0000é" } };
    const first = { ...emptyDeployment(), resources: [res("b", ["a"]), a] };
    s.save(first);
    expect(fs.readFileSync(s.file, "utf8")).toBe(text(first));
    const second = { ...first, resources: [{ ...first.resources[0], outputs: { changed: true } }, a] };
    s.save(second);
    expect(fs.readFileSync(s.file, "utf8")).toBe(text(second));
    const none = emptyDeployment();
    s.save(none);
    expect(fs.readFileSync(s.file, "utf8")).toBe(text(none));
  });

  it("a missing stack loads as empty", () => {
    expect(store().load().resources).toEqual([]);
  });

  it("loads frozen deep down: an edit in place throws instead of being written from the text cached before it", () => {
    const s = store();
    s.save({ ...emptyDeployment(), resources: [{ ...res("a"), outputs: { port: 80, labels: { x: "1" } } }] });
    const loaded = s.load();
    s.save(loaded); // caches the loaded objects' texts
    expect(() => ((loaded.resources[0].outputs.labels as Record<string, string>).x = "2")).toThrow(TypeError);
    expect(() => loaded.resources.push(res("b"))).toThrow(TypeError);
    expect(Object.isFrozen(store().load())).toBe(true);
  });

  it("a state's string equal to the resources' placeholder is written as itself", () => {
    const s = store();
    const odd = { ...res("odd"), outputs: { s: "\u0000berth:resources" } };
    const d = { pending_operations: [{ resource: odd, type: "creating" as const }], ...emptyDeployment(), resources: [res("a")] };
    s.save(d);
    const file = JSON.parse(fs.readFileSync(s.file, "utf8"));
    expect(names(file.checkpoint.latest.resources)).toEqual(["a"]);
    expect(file.checkpoint.latest.pending_operations[0].resource.outputs.s).toBe("\u0000berth:resources");
  });
});

describe("order", () => {
  it("sorts dependencies first and deletes dependents first, independent ones together", () => {
    const rs = [res("c", ["a", "b"]), res("a"), res("b", ["a"]), res("x")];
    expect(names(sortResources(rs))).toEqual(["a", "b", "c", "x"]);
    expect(deletionWaves(rs).map(names)).toEqual([["c", "x"], ["b"], ["a"]]);
  });
});

describe("lock", () => {
  it("keeps a second update out, naming who holds it, until released", () => {
    const s = store();
    const release = s.lock();
    expect(() => s.lock()).toThrow(new RegExp(`the stack organization/proj/dev is locked by process ${process.pid} on `));
    release();
    s.lock()();
  });

  it("takes over a lock whose process is gone", () => {
    const s = store();
    const dir = path.join(s.ref.backendDir, ".pulumi/locks/organization/proj/dev");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "stale.json"), JSON.stringify({ pid: 2 ** 22 + 1, hostname: os.hostname(), timestamp: "then" }));
    const release = s.lock();
    expect(fs.readdirSync(dir)).toHaveLength(1);
    release();
  });

  it("takes over a lock whose pid now belongs to another process (berth records the start time too)", () => {
    const s = store();
    const dir = path.join(s.ref.backendDir, ".pulumi/locks/organization/proj/dev");
    fs.mkdirSync(dir, { recursive: true });
    // A live pid (this one) with another start time: the berth that held it is gone, its pid given out again.
    const holder = { pid: process.pid, start: self().start - 1, hostname: os.hostname(), timestamp: "then" };
    fs.writeFileSync(path.join(dir, "reused.json"), JSON.stringify(holder));
    s.lock()();
    expect(fs.readdirSync(dir)).toEqual([]);
    // The same pid with its own start time holds it.
    fs.writeFileSync(path.join(dir, "live.json"), JSON.stringify({ ...holder, start: self().start }));
    expect(() => s.lock()).toThrow(/is locked by process/);
    fs.rmSync(path.join(dir, "live.json"));
  });
});
