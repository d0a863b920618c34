// The Image resource through berth's provider: diffs follow the build context's content (honouring
// .dockerignore), preview builds nothing and leaves the image id unknown (so containers using it show a replace),
// and bad input is refused at check with the field and the line.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { berthProviders } from "../../provider/resources";
import type { PropertyMap, Provider } from "../../provider/resources/provider";
import { UNKNOWN } from "../../provider/values";
import { REPO, freePort } from "./helpers";

let root: string;
let rt: Runtime;
let image: Provider;
let container: Provider;

beforeAll(async () => {
  root = fs.mkdtempSync("/tmp/berth-test-");
  rt = createNativeRuntime({ root: path.join(root, "state"), runDir: path.join(root, "run") });
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [path.join(root, "busybox.tar")]);
  await rt.images.importRootfs({ ref: "busybox:latest", tarball: path.join(root, "busybox.tar"), config: {} });
  fs.mkdirSync(path.join(root, "app"));
  fs.writeFileSync(path.join(root, "app/Dockerfile"), "FROM busybox\nCOPY . /app/\nCMD [\"cat\", \"/app/page.txt\"]\n");
  fs.writeFileSync(path.join(root, "app/page.txt"), "v1");
  fs.writeFileSync(path.join(root, "app/.dockerignore"), "*.log\n");
  const providers = berthProviders(rt, root);
  image = providers.get("berth:index:Image")!;
  container = providers.get("berth:index:Container")!;
}, 30_000);

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

const check = (news: PropertyMap, olds?: PropertyMap) => image.check({ urn: "u", name: "web", news, olds, randomSeed: "s" });
const diff = (oldInputs: PropertyMap, news: PropertyMap, oldOutputs: PropertyMap = {}) => image.diff({ urn: "u", id: "web:1", oldInputs, oldOutputs, news });
const args = { name: "web:1", build: { context: "app" } };

describe("Image resource", () => {
  it("diffs by content, builds nothing in preview, and rebuilds in place when a file changes", async () => {
    const first = await check(args);
    expect(first.failures).toEqual([]);
    const digest = (first.inputs.build as { contextDigest: string }).contextDigest;
    expect(digest).toMatch(/^sha256:/);

    const preview = await image.create({ urn: "u", inputs: first.inputs, preview: true });
    expect(preview.outputs.imageId).toBe(UNKNOWN);
    expect(await rt.images.inspect("web:1")).toBeUndefined();

    const made = await image.create({ urn: "u", inputs: first.inputs, preview: false });
    expect(made.outputs.imageId).toMatch(/^sha256:/);

    // A file .dockerignore leaves out changes nothing.
    fs.writeFileSync(path.join(root, "app/debug.log"), "noise");
    const same = await check(args, first.inputs);
    expect((await diff(first.inputs, same.inputs, made.outputs)).changes).toBe(false);

    fs.writeFileSync(path.join(root, "app/page.txt"), "v2");
    const changed = await check(args, first.inputs);
    const d = await diff(first.inputs, changed.inputs, made.outputs);
    expect(d).toMatchObject({ changes: true, diffs: ["build"], replaces: [] });
    expect(d.detailedDiff).toEqual({ "build.contextDigest": { kind: "update" } });

    const updPreview = await image.update({ urn: "u", id: "web:1", oldInputs: first.inputs, oldOutputs: made.outputs, news: changed.inputs, preview: true });
    expect(updPreview.outputs.imageId).toBe(UNKNOWN);
    // A container using the image is replaced, its reason the image.
    const cInputs = { name: "berth-test-web", image: made.outputs.imageId };
    const cd = await container.diff({ urn: "c", id: "berth-test-web", oldInputs: cInputs, oldOutputs: { status: "running" }, news: { ...cInputs, image: UNKNOWN } });
    expect(cd.replaces).toEqual(["image"]);

    const updated = await image.update({ urn: "u", id: "web:1", oldInputs: first.inputs, oldOutputs: made.outputs, news: changed.inputs, preview: false });
    expect(updated.outputs.imageId).not.toBe(made.outputs.imageId);
    expect((await rt.images.inspect("web:1"))!.id).toBe(updated.outputs.imageId);
  }, 60_000);

  it("refuses bad input at check, naming the field (and the Dockerfile line)", async () => {
    fs.mkdirSync(path.join(root, "bad"));
    fs.writeFileSync(path.join(root, "bad/Dockerfile"), "FROM busybox\nRUN true\nCOPPY x y\n");
    const failures = async (news: PropertyMap) => (await check(news)).failures;
    expect(await failures({ name: "x", build: { context: "bad" } })).toEqual([{ property: "build.dockerfile", reason: "Dockerfile:3: unknown instruction: COPPY" }]);
    expect(await failures({ name: "x", build: { context: "nowhere" } })).toEqual([{ property: "build.context", reason: `no directory at ${root}/nowhere` }]);
    expect(await failures({ name: "x", build: { context: "app", target: "nope" } })).toEqual([
      { property: "build.dockerfile", reason: 'target stage "nope" could not be found in Dockerfile (stages: none named)' },
    ]);
    expect(await failures({ name: "x" })).toEqual([{ property: "(args)", reason: "give the image a source: one of rootfs, build, pull or archive" }]);
    expect(await failures({ name: "x", build: { context: "app" }, archive: { path: "a.tar" } })).toEqual([
      { property: "(args)", reason: "give the image one source, not build and archive" },
    ]);
    expect(await failures({ name: "x", build: { context: "app" }, push: true })).toEqual([
      { property: "push", reason: 'needs a name starting with the registry, e.g. "127.0.0.1:5000/web:1"' },
    ]);
    const port = await freePort();
    const [unreachable] = await failures({ name: "x", pull: { ref: `127.0.0.1:${port}/app:1` } });
    expect(unreachable.property).toBe("pull.ref");
    expect(unreachable.reason).toMatch(new RegExp(`^registry 127.0.0.1:${port} unreachable`));
    const [noRegistry] = await failures({ name: "x", pull: { ref: "app:1" } });
    expect(noRegistry.reason).toContain("names no registry: berth has no default registry");
  });

  it("keeps a registry password out of the inputs it returns", async () => {
    const checked = await check({ name: "x", archive: { path: "busybox.tar" }, registry: { auth: { username: "u", password: "hunter2" } } });
    expect(JSON.stringify(checked.inputs)).not.toContain("hunter2");
    expect(checked.inputs.registry).toEqual({ auth: { username: "u" } });
  });

  it("passes build secrets to RUN --mount=type=secret but keeps them out of the inputs it returns", async () => {
    fs.mkdirSync(path.join(root, "sec"), { recursive: true });
    fs.writeFileSync(path.join(root, "sec/Dockerfile"), "FROM busybox\nRUN --mount=type=secret,id=npm,required wc -c < /run/secrets/npm > /len\n");
    const sec = { name: "sec:1", build: { context: "sec", secrets: { npm: "tok-123456" } } };
    const checked = await check(sec);
    expect(checked.failures).toEqual([]);
    expect(JSON.stringify(checked.inputs)).not.toContain("tok-123456");
    const made = await image.create({ urn: "u", inputs: checked.inputs, preview: false });
    expect(made.outputs.imageId).toMatch(/^sha256:/);
    expect(JSON.stringify(made)).not.toContain("tok-123456");
    expect((await check({ name: "x", build: { context: "sec", secrets: { "bad id": "v" } } })).failures).toEqual([
      { property: "build.secrets.bad id", reason: expect.stringContaining("a secret id uses letters") },
    ]);
  });
});
