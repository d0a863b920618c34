// pulumi-resource-berth driven over gRPC as Pulumi's engine drives it (the client stubs shipped in
// @pulumi/pulumi): CheckConfig, Configure, then Check, Diff, Create, Read, Update, Delete for every resource type,
// with secrets and preview unknowns in the inputs, against this host.
import * as grpc from "@grpc/grpc-js";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runcId } from "../../native/names";
import * as readline from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECRET_SIG, SIG, UNKNOWN } from "../../provider/values";
import { QUICKSTART, REPO, ensureQuickstartRootfs, freePort, hostObjects, httpGet } from "./helpers";

/* eslint-disable @typescript-eslint/no-explicit-any -- the generated stubs are untyped JavaScript */
const pb: any = require("@pulumi/pulumi/proto/provider_pb.js");
const grpcPb: any = require("@pulumi/pulumi/proto/provider_grpc_pb.js");
const protoDir = { paths: [require.resolve("@pulumi/pulumi/proto/provider_pb.js")] };
const { Struct }: any = require(require.resolve("google-protobuf/google/protobuf/struct_pb.js", protoDir));
const { Empty }: any = require(require.resolve("google-protobuf/google/protobuf/empty_pb.js", protoDir));

const secret = (value: unknown) => ({ [SIG]: SECRET_SIG, value });
const struct = (v: Record<string, unknown>) => Struct.fromJavaScript(v);
const urnOf = (type: string, name: string) => `urn:pulumi:dev::plugintest::${type}::${name}`;
/** The page, once the server in the container listens (it starts just after create returns). */
async function pageOf(url: string): Promise<string> {
  for (let tries = 0; ; tries++) {
    try {
      return (await httpGet(url)).body;
    } catch (err) {
      if (tries > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const KIND = Object.fromEntries(Object.entries(pb.PropertyDiff.Kind).map(([k, v]) => [v, k]));

describe("pulumi-resource-berth over gRPC", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-plugin-"));
  let plugin: ChildProcess;
  let client: any;
  const call = <T = any>(method: string, req: unknown): Promise<T> =>
    new Promise((resolve, reject) => client[method](req, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));
  const made: Array<{ type: string; id: string; urn: string; outputs: Record<string, unknown> }> = [];

  const check = async (type: string, name: string, news: Record<string, unknown>, olds?: Record<string, unknown>) => {
    const req = new pb.CheckRequest();
    req.setUrn(urnOf(type, name));
    req.setName(name);
    req.setType(type);
    req.setNews(struct(news));
    if (olds) req.setOlds(struct(olds));
    req.setRandomseed(Buffer.from(`seed-${name}`));
    const res = await call("check", req);
    return { inputs: res.getInputs()?.toJavaScript() ?? {}, failures: res.getFailuresList().map((f: any) => [f.getProperty(), f.getReason()]) };
  };
  const create = async (type: string, name: string, inputs: Record<string, unknown>, preview = false) => {
    const req = new pb.CreateRequest();
    req.setUrn(urnOf(type, name));
    req.setType(type);
    req.setProperties(struct(inputs));
    req.setPreview(preview);
    const res = await call("create", req);
    const out = { type, id: res.getId(), urn: urnOf(type, name), outputs: res.getProperties().toJavaScript(), inputs };
    if (!preview) made.push(out);
    return out;
  };
  const diff = async (r: { type: string; id: string; urn: string; outputs: Record<string, unknown>; inputs: Record<string, unknown> }, news: Record<string, unknown>) => {
    const req = new pb.DiffRequest();
    req.setUrn(r.urn);
    req.setType(r.type);
    req.setId(r.id);
    req.setOlds(struct(r.outputs));
    req.setOldInputs(struct(r.inputs));
    req.setNews(struct(news));
    const res = await call("diff", req);
    const detailed: Record<string, string> = {};
    res.getDetaileddiffMap().forEach((d: any, k: string) => (detailed[k] = KIND[d.getKind()] as string));
    return { changes: res.getChanges(), replaces: res.getReplacesList(), deleteBeforeReplace: res.getDeletebeforereplace(), detailed, hasDetailed: res.getHasdetaileddiff() };
  };
  const read = async (type: string, urn: string, id: string, props: Record<string, unknown> = {}, inputs: Record<string, unknown> = {}) => {
    const req = new pb.ReadRequest();
    req.setUrn(urn);
    req.setType(type);
    req.setId(id);
    req.setProperties(struct(props));
    req.setInputs(struct(inputs));
    const res = await call("read", req);
    return { id: res.getId(), outputs: res.getProperties()?.toJavaScript(), inputs: res.getInputs()?.toJavaScript() };
  };
  const del = async (r: { type: string; id: string; urn: string; outputs: Record<string, unknown> }) => {
    const req = new pb.DeleteRequest();
    req.setUrn(r.urn);
    req.setType(r.type);
    req.setId(r.id);
    req.setProperties(struct(r.outputs));
    await call("delete", req);
  };

  beforeAll(async () => {
    ensureQuickstartRootfs();
    // Started as Pulumi starts a plugin: the engine's address as argument, the program's directory as cwd.
    plugin = spawn(path.join(REPO, "bin/pulumi-resource-berth"), ["127.0.0.1:1"], { cwd: QUICKSTART, stdio: ["ignore", "pipe", "inherit"] });
    const port = await new Promise<string>((resolve) => readline.createInterface({ input: plugin.stdout! }).once("line", resolve));
    client = new grpcPb.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    for (const r of made.reverse()) await del(r).catch(() => undefined);
    client?.close();
    plugin?.kill();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("checks provider config naming the property, and configures with secrets accepted", async () => {
    const bad = new pb.CheckRequest();
    bad.setUrn("urn:pulumi:dev::plugintest::pulumi:providers:berth::p");
    bad.setNews(struct({ root: "relative/dir", colour: "red", version: "0.1.0" }));
    const checked = await call("checkConfig", bad);
    expect(checked.getFailuresList().map((f: any) => [f.getProperty(), f.getReason()])).toEqual([
      ["root", "must be an absolute path such as /data"],
      ["colour", "unknown property; the valid ones are: host, identityFile, sshOptions, root, runDir"],
    ]);
    const badHost = new pb.CheckRequest();
    badHost.setUrn("urn:pulumi:dev::plugintest::pulumi:providers:berth::p");
    badHost.setNews(struct({ host: "tcp://10.0.0.1:2375" }));
    expect((await call("checkConfig", badHost)).getFailuresList().map((f: any) => f.getProperty())).toEqual(["host"]);
    // DiffConfig: another host replaces (Pulumi then replaces what the provider manages); another key updates.
    const diffConfig = async (olds: Record<string, unknown>, news: Record<string, unknown>) => {
      const req = new pb.DiffRequest();
      req.setUrn("urn:pulumi:dev::plugintest::pulumi:providers:berth::p");
      req.setOldInputs(struct(olds));
      req.setOlds(struct(olds));
      req.setNews(struct(news));
      const res = await call("diffConfig", req);
      return { changes: res.getChanges(), diffs: res.getDiffsList(), replaces: res.getReplacesList() };
    };
    expect(await diffConfig({ host: "ssh://a" }, { host: "ssh://b" })).toEqual({ changes: pb.DiffResponse.DiffChanges.DIFF_SOME, diffs: ["host"], replaces: ["host"] });
    expect(await diffConfig({ host: "ssh://a" }, { host: "ssh://a", sshOptions: ["ConnectTimeout=5"] })).toEqual({ changes: pb.DiffResponse.DiffChanges.DIFF_SOME, diffs: ["sshOptions"], replaces: [] });
    expect((await diffConfig({ root }, { root, version: "9.9.9" })).changes).toBe(pb.DiffResponse.DiffChanges.DIFF_NONE);
    // Compared by meaning: another spelling of one host and root is no change.
    expect(await diffConfig({ host: "ssh://root@a:22", root: "/srv/b/" }, { host: "ssh://root@A", root: "/srv/b" })).toEqual({ changes: pb.DiffResponse.DiffChanges.DIFF_NONE, diffs: [], replaces: [] });
    // A secret host is not repeated in a failure: the provider is named instead.
    const secretHost = new pb.CheckRequest();
    secretHost.setUrn("urn:pulumi:dev::plugintest::pulumi:providers:berth::vault");
    secretHost.setNews(struct({ host: { [SIG]: SECRET_SIG, value: "ssh://root@10.9.8.7" }, identityFile: "/nonexistent/key" }));
    const hiddenHost = (await call("checkConfig", secretHost)).getFailuresList().map((f: any) => f.getReason());
    expect(hiddenHost).toEqual([expect.stringContaining("for [secret host of provider vault]")]);
    const configure = new pb.ConfigureRequest();
    configure.setArgs(struct({ root, version: "0.1.0" }));
    configure.setAcceptsecrets(true);
    const configured = await call("configure", configure);
    expect(configured.getAcceptsecrets()).toBe(true);
    expect(configured.getSupportspreview()).toBe(true);
    expect((await call("getPluginInfo", new Empty())).getVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("serves every resource type: check, preview with unknowns, create, read, import, diff, update, delete", async () => {
    const port = await freePort();
    const subnet = `10.${150 + (process.pid % 40)}.77.0/24`;

    // Image
    const image = await check("berth:index:Image", "base", { name: "plugintest:latest", rootfs: { tarball: "busybox-rootfs.tar" }, config: { cmd: ["sh"], env: ["PATH=/bin"] } });
    expect(image.failures).toEqual([]);
    const img = await create("berth:index:Image", "base", image.inputs);
    expect(img.outputs.imageId).toMatch(/^sha256:/);
    expect((await read("berth:index:Image", img.urn, img.id, img.outputs, img.inputs)).id).toBe(img.id);

    // Network: a bad subnet names the property; a nat change is in place (no replace keys).
    expect((await check("berth:index:Network", "net", { subnet: "10.1.2.3/24" })).failures[0][0]).toBe("subnet");
    const network = await check("berth:index:Network", "net", { subnet });
    const net = await create("berth:index:Network", "net", network.inputs);
    const natDiff = await diff({ ...net, inputs: network.inputs }, { ...network.inputs, nat: false });
    expect(natDiff).toMatchObject({ changes: pb.DiffResponse.DiffChanges.DIFF_SOME, replaces: [], hasDetailed: true, detailed: { nat: "ADD" } });

    // Volume with a secret label: secret in, secret out; a change replaces, shown in the detailed diff.
    const volume = await check("berth:index:Volume", "site", { labels: { token: secret("s3cret") } });
    expect(volume.inputs.labels).toEqual(secret({ token: "s3cret" }));
    const vol = await create("berth:index:Volume", "site", volume.inputs);
    expect(vol.outputs.labels).toEqual(secret({ token: "s3cret" }));
    const volDiff = await diff({ ...vol, inputs: volume.inputs }, { ...volume.inputs, labels: secret({ token: "other" }) });
    expect(volDiff).toMatchObject({ replaces: ["labels"], detailed: { "labels.token": "UPDATE_REPLACE" } });
    // Import: Read with only an id gives back inputs the program can be checked against.
    const imported = await read("berth:index:Volume", vol.urn, vol.id);
    expect(imported.id).toBe(vol.id);
    expect(imported.inputs).toMatchObject({ name: vol.id, labels: { token: "s3cret" } });

    // Container: in preview its image and network are unknown; checking and planning must not fail.
    const preview = await check("berth:index:Container", "web", { image: UNKNOWN, network: UNKNOWN, ports: [{ containerPort: 80, hostPort: port, hostIp: "127.0.0.1" }] });
    expect(preview.failures).toEqual([]);
    expect(preview.inputs.image).toBe(UNKNOWN);
    const planned = await create("berth:index:Container", "web", preview.inputs, true);
    expect(planned.id).toBe("");
    // A bad port is a check failure naming the property, not a stack trace.
    expect((await check("berth:index:Container", "web", { image: img.outputs.imageId, ports: [{ containerPort: 80, hostPort: 70000 }] })).failures).toEqual([
      ["ports[0].hostPort", "must be between 1 and 65535"],
    ]);
    const args = {
      image: img.outputs.imageId,
      network: net.outputs.name,
      volumes: [{ volume: vol.outputs.name, target: "/www" }],
      command: ["sh", "-c", "echo plugin > /www/index.html; exec httpd -f -p 80 -h /www"],
      env: { TOKEN: secret("hush") },
      ports: [{ containerPort: 80, hostPort: port, hostIp: "127.0.0.1" }],
      stopTimeout: 1,
    };
    const container = await check("berth:index:Container", "web", args);
    expect(container.failures).toEqual([]);
    expect(container.inputs.env).toEqual(secret({ TOKEN: "hush" }));
    const web = await create("berth:index:Container", "web", container.inputs);
    expect(web.outputs.status).toBe("running");
    expect(web.outputs.env).toEqual(secret({ TOKEN: "hush" }));
    expect(await pageOf(`http://127.0.0.1:${port}/`)).toBe("plugin\n");
    // Same host port on both sides of a replace: the old one must go first.
    const webDiff = await diff({ ...web, inputs: container.inputs }, { ...container.inputs, command: ["sh", "-c", "exec httpd -f -p 80 -h /www"] });
    expect(webDiff).toMatchObject({ replaces: ["command"], deleteBeforeReplace: true });
    expect(webDiff.detailed).toEqual({ "command[2]": "UPDATE_REPLACE" });
    // The Pulumi CLI then checks the replacement again, without olds: the port its first check had is its own.
    const replacement = await check("berth:index:Container", "web", { ...args, command: ["sh", "-c", "exec httpd -f -p 80 -h /www"] });
    expect(replacement.failures).toEqual([]);
    expect((await read("berth:index:Container", web.urn, web.id, web.outputs, container.inputs)).outputs?.status).toBe("running");
    // stopTimeout changes in place: Update keeps the container and the secret stays secret.
    const update = new pb.UpdateRequest();
    update.setUrn(web.urn);
    update.setType(web.type);
    update.setId(web.id);
    update.setOlds(struct(web.outputs));
    update.setOldInputs(struct(container.inputs));
    update.setNews(struct({ ...container.inputs, stopTimeout: 2 }));
    const updated = (await call("update", update)).getProperties().toJavaScript();
    expect(updated).toMatchObject({ stopTimeout: 2, status: "running", env: secret({ TOKEN: "hush" }) });

    // Delete everything, dependents first; a Read afterwards says the object is gone (empty id).
    for (const r of made.splice(0).reverse()) await del(r);
    expect((await read("berth:index:Volume", vol.urn, vol.id, vol.outputs)).id).toBe("");
    expect(hostObjects().runc).not.toContain(runcId(root, web.id));
    expect(hostObjects().links).not.toContain(net.outputs.bridge);
  });

  it("checks a container against the names the program declared: a replaced Volume's or Network's new one", async () => {
    // As `pulumi preview` replaces an autonamed Volume and Network: each is checked again without its olds (a
    // fresh name), created only in preview (nothing on the host), then the container is checked with those names.
    const subnet = `10.${150 + (process.pid % 40)}.78.0/24`;
    const volume = await check("berth:index:Volume", "data", { labels: { generation: "2" } });
    const network = await check("berth:index:Network", "net2", { subnet });
    for (const [type, name, inputs] of [["berth:index:Volume", "data", volume.inputs], ["berth:index:Network", "net2", network.inputs]] as const) {
      expect((await read(type, urnOf(type, name), inputs.name as string)).id).toBe(""); // not on the host
      expect((await create(type, name, inputs, true)).outputs.name).toBe(inputs.name);
    }
    const image = (await check("berth:index:Image", "base", { name: "plugintest:latest", rootfs: { tarball: "busybox-rootfs.tar" }, config: { cmd: ["sh"] } })).inputs;
    const app = { image: "plugintest:latest", network: network.inputs.name, volumes: [{ volume: volume.inputs.name, target: "/data" }] };
    expect(image.name).toBe("plugintest:latest");
    expect((await check("berth:index:Container", "app", app)).failures).toEqual([]);
    // A name nothing declared is still refused, naming the property.
    const stray = await check("berth:index:Container", "stray", { ...app, network: "no-such-net", volumes: [{ volume: "no-such-volume", target: "/data" }] });
    expect(stray.failures.map(([property]: [string]) => property).sort()).toEqual(["network", "volumes[0].volume"]);
  });

  it("serves a package schema with every type, for codegen and `pulumi import`", async () => {
    const res = await call("getSchema", new pb.GetSchemaRequest());
    const schema = JSON.parse(res.getSchema());
    expect(schema).toMatchObject({ name: "berth", language: { nodejs: { packageName: "berth-iac" } } });
    expect(Object.keys(schema.resources).sort()).toEqual(["Container", "Image", "Network", "Registry", "Volume"].map((t) => `berth:index:${t}`));
    expect(schema.resources["berth:index:Volume"].inputProperties.name).toMatchObject({ type: "string", replaceOnChanges: true, description: expect.stringContaining("volume name") });
    expect(schema.types["berth:index:RegistryUser"].properties.password.secret).toBe(true);
    // An imported volume without labels reads back as a program declares it: no `labels: {}`.
    const bare = await create("berth:index:Volume", "bare", (await check("berth:index:Volume", "bare", {})).inputs);
    expect((await read("berth:index:Volume", bare.urn, bare.id)).inputs).toEqual({ name: bare.id });
  });
});
