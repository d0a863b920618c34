// pulumirpc.ResourceProvider served over gRPC with the stubs that ship in @pulumi/pulumi, in front of the same
// Provider objects the embedded engine calls. Unlike @pulumi/pulumi's bundled server it honours CheckConfig and
// Configure, accepts secrets, and answers Diff with replace keys, delete-before-replace and a detailed diff.
import * as grpc from "@grpc/grpc-js";
import { checkProviderConfig, diffProviderConfig, PACKAGE, type ProviderConfig, redact, secretHostTexts } from "../resources";
import type { CheckFailure, DiffKind, PropertyMap, Provider } from "../resources/provider";
import { BERTH_VERSION } from "../state/checkpoint";
import { containsUnknown } from "../values";
import { packageSchema } from "./schema";

/* eslint-disable @typescript-eslint/no-explicit-any -- the generated stubs are untyped JavaScript */
type Stub = any;

const pb: Stub = require("@pulumi/pulumi/proto/provider_pb.js");
const pluginPb: Stub = require("@pulumi/pulumi/proto/plugin_pb.js");
const grpcPb: Stub = require("@pulumi/pulumi/proto/provider_grpc_pb.js");
const emptyPb: Stub = require(require.resolve("google-protobuf/google/protobuf/empty_pb.js", { paths: [require.resolve("@pulumi/pulumi/proto/provider_pb.js")] }));
const structPb: Stub = require(require.resolve("google-protobuf/google/protobuf/struct_pb.js", { paths: [require.resolve("@pulumi/pulumi/proto/provider_pb.js")] }));

/** Builds the providers for one configuration (one plugin process serves one provider instance, as in Pulumi). */
export type ProvidersFor = (config: ProviderConfig, programDir: string) => Map<string, Provider>;

const KIND: Record<DiffKind, number> = {
  add: pb.PropertyDiff.Kind.ADD,
  "add-replace": pb.PropertyDiff.Kind.ADD_REPLACE,
  delete: pb.PropertyDiff.Kind.DELETE,
  "delete-replace": pb.PropertyDiff.Kind.DELETE_REPLACE,
  update: pb.PropertyDiff.Kind.UPDATE,
  "update-replace": pb.PropertyDiff.Kind.UPDATE_REPLACE,
};

const toJs = (s: Stub): PropertyMap => (s ? s.toJavaScript() : {});
const toStruct = (props: PropertyMap): Stub => structPb.Struct.fromJavaScript(JSON.parse(JSON.stringify(props)));

/** What a DiffRequest and an UpdateRequest share; without old inputs in the request, the old outputs stand in. */
function changeOf(req: Stub): { urn: string; id: string; oldInputs: PropertyMap; oldOutputs: PropertyMap; news: PropertyMap } {
  const oldOutputs = toJs(req.getOlds());
  return { urn: req.getUrn(), id: req.getId(), oldInputs: req.getOldInputs() ? toJs(req.getOldInputs()) : oldOutputs, oldOutputs, news: toJs(req.getNews()) };
}

function checkFailuresOf(failures: CheckFailure[]): Stub[] {
  return failures.map((f) => {
    const out = new pb.CheckFailure();
    out.setProperty(f.property);
    out.setReason(f.reason);
    return out;
  });
}

export interface ProviderServer {
  port: number;
  close(): Promise<void>;
}

export async function serveProvider(providersFor: ProvidersFor, programDir = process.cwd()): Promise<ProviderServer> {
  let providers: Map<string, Provider> | undefined;
  const providerOf = (urn: string, type?: string): Provider => {
    const token = type || urn.split("::")[2]?.split("$").pop() || "";
    providers ??= providersFor({}, programDir); // Pulumi may skip Configure for a provider without config
    const provider = providers.get(token);
    if (!provider) throw new Error(`${PACKAGE} has no resource type ${token}; the known ones are ${[...providers.keys()].join(", ")}`);
    return provider;
  };
  const nameOf = (req: Stub) => req.getName?.() || req.getUrn().split("::").pop();
  // What the program declared so far, as the embedded engine knows it: Pulumi checks each resource (and each
  // replacement, again without its olds) before anything that takes its outputs, and one plugin process serves
  // one deployment. So a container referring to the new name of a Volume or Network being replaced finds it here,
  // though the host has no such object yet during a preview.
  const declared = new Map<string, { urn: string; inputs: PropertyMap }>();
  // Each URN's checked inputs: the Pulumi CLI checks a replacement again without its olds, and what it replaces is
  // what that first check returned (the engine passes it as `replacing`).
  const checkedInputs = new Map<string, PropertyMap>();

  // A host configured as a secret never reaches Pulumi's output: errors and check failures name the provider.
  const hidden = new Map<string, string>();
  const unary = (work: (req: Stub) => Promise<Stub> | Stub) => (call: Stub, cb: grpc.sendUnaryData<Stub>) => {
    Promise.resolve()
      .then(() => work(call.request))
      .then(
        (res) => cb(null, res),
        (err: Error) => cb({ code: grpc.status.UNKNOWN, details: redact(err.message, hidden) }),
      );
  };
  const failuresOf = (failures: CheckFailure[]) => checkFailuresOf(failures.map((f) => ({ ...f, reason: redact(f.reason, hidden) })));

  const service = {
    // Pulumi starts a plugin in the program's directory; the handshake's program_directory names the plugin's own.
    handshake: unary(() => {
      const res = new pb.ProviderHandshakeResponse();
      res.setAcceptSecrets(true);
      return res;
    }),
    getPluginInfo: unary(() => {
      const info = new pluginPb.PluginInfo();
      info.setVersion(BERTH_VERSION);
      return info;
    }),
    getSchema: unary(() => {
      const res = new pb.GetSchemaResponse();
      res.setSchema(JSON.stringify(packageSchema()));
      return res;
    }),
    checkConfig: unary((req) => {
      const news = toJs(req.getNews());
      const res = new pb.CheckResponse();
      res.setInputs(toStruct(news));
      for (const [text, instead] of secretHostTexts(news, `[secret host of provider ${nameOf(req)}]`)) hidden.set(text, instead);
      if (!containsUnknown(news)) res.setFailuresList(failuresOf(checkProviderConfig(news).failures));
      return res;
    }),
    // Another host or root replaces every resource this provider manages (Pulumi's engine does that when the
    // new provider's DiffConfig says replace); a new key or ssh option only changes how the host is reached.
    diffConfig: unary((req) => {
      const { diffs, replaces } = diffProviderConfig(toJs(req.getOldInputs() ?? req.getOlds()), toJs(req.getNews()));
      const res = new pb.DiffResponse();
      res.setChanges(diffs.length === 0 ? pb.DiffResponse.DiffChanges.DIFF_NONE : pb.DiffResponse.DiffChanges.DIFF_SOME);
      res.setDiffsList(diffs);
      res.setReplacesList(replaces);
      return res;
    }),
    configure: unary((req) => {
      const args = req.getArgs() ? toJs(req.getArgs()) : Object.fromEntries(configVariables(req));
      // A value not known yet is refused by name: a preview against the wrong host (this one) would be worse.
      for (const [text, instead] of secretHostTexts(args, `[secret host of provider ${req.getName?.() || "default"}]`)) hidden.set(text, instead);
      const { config, failures } = checkProviderConfig(args);
      if (failures.length > 0) throw new Error(failures.map((f) => `${PACKAGE}:${f.property}: ${f.reason}`).join("; "));
      providers = providersFor(config, programDir);
      const res = new pb.ConfigureResponse();
      res.setAcceptsecrets(true);
      res.setSupportspreview(true);
      return res;
    }),
    check: unary(async (req) => {
      const urn = req.getUrn();
      const given = req.getOlds() ? toJs(req.getOlds()) : undefined;
      const olds = given && Object.keys(given).length > 0 ? given : undefined;
      const seed = Buffer.from(req.getRandomseed_asU8?.() ?? []).toString("hex") || urn;
      const provider = providerOf(urn, req.getType?.());
      const checked = await provider.check({
        urn,
        name: nameOf(req),
        olds,
        news: toJs(req.getNews()),
        randomSeed: seed,
        declared,
        replacing: olds ? undefined : checkedInputs.get(urn),
      });
      if (checked.failures.length === 0) {
        for (const claim of provider.claims(checked.inputs)) declared.set(claim, { urn, inputs: checked.inputs });
        checkedInputs.set(urn, checked.inputs);
      }
      const res = new pb.CheckResponse();
      res.setInputs(toStruct(checked.inputs));
      res.setFailuresList(failuresOf(checked.failures));
      return res;
    }),
    diff: unary(async (req) => {
      const diff = await providerOf(req.getUrn(), req.getType?.()).diff(changeOf(req));
      const res = new pb.DiffResponse();
      res.setChanges(diff.changes ? pb.DiffResponse.DiffChanges.DIFF_SOME : pb.DiffResponse.DiffChanges.DIFF_NONE);
      res.setDiffsList(diff.diffs);
      res.setReplacesList(diff.replaces);
      res.setDeletebeforereplace(diff.deleteBeforeReplace);
      res.setHasdetaileddiff(true);
      const detailed = res.getDetaileddiffMap();
      for (const [path, { kind }] of Object.entries(diff.detailedDiff)) {
        const d = new pb.PropertyDiff();
        d.setKind(KIND[kind]);
        d.setInputdiff(true);
        detailed.set(path, d);
      }
      return res;
    }),
    create: unary(async (req) => {
      const urn = req.getUrn();
      const created = await providerOf(urn, req.getType?.()).create({ urn, inputs: toJs(req.getProperties()), preview: req.getPreview() });
      const res = new pb.CreateResponse();
      res.setId(created.id);
      // In a preview, outputs left out are unknown to the program.
      res.setProperties(toStruct(created.outputs));
      return res;
    }),
    read: unary(async (req) => {
      const urn = req.getUrn();
      const inputs = toJs(req.getInputs());
      const read = await providerOf(urn, req.getType?.()).read({ urn, id: req.getId(), inputs, outputs: toJs(req.getProperties()) });
      const res = new pb.ReadResponse();
      // An empty id tells the engine the object is gone (refresh drops it from the state).
      if (!read) return res;
      res.setId(read.id);
      res.setProperties(toStruct(read.outputs));
      res.setInputs(toStruct(read.inputs));
      return res;
    }),
    update: unary(async (req) => {
      const updated = await providerOf(req.getUrn(), req.getType?.()).update({ ...changeOf(req), preview: req.getPreview() });
      const res = new pb.UpdateResponse();
      res.setProperties(toStruct(updated.outputs));
      return res;
    }),
    delete: unary(async (req) => {
      const urn = req.getUrn();
      await providerOf(urn, req.getType?.()).delete({ urn, id: req.getId(), inputs: toJs(req.getOldInputs()), outputs: toJs(req.getProperties()) });
      return new emptyPb.Empty();
    }),
    cancel: unary(() => new emptyPb.Empty()),
    attach: unary(() => new emptyPb.Empty()),
  };

  const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
  server.addService(grpcPb.ResourceProviderService, service);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
}

/** Legacy Configure sends `berth:config:root` style variables instead of args. */
function configVariables(req: Stub): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  req.getVariablesMap().forEach((value: string, key: string) => out.push([key.split(":").pop()!, value]));
  return out;
}
