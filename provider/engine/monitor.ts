// The two gRPC services a Pulumi program talks to (ResourceMonitor and Engine), served by berth itself with the
// stubs that ship inside @pulumi/pulumi, so an unmodified program runs without the Pulumi CLI.
import * as grpc from "@grpc/grpc-js";
import * as path from "node:path";
import type { CustomTimeouts } from "../state/checkpoint";
import { type DeploymentRun, type Goal, ReportedError } from "./deployment";
import { parseDuration } from "./options";

/* eslint-disable @typescript-eslint/no-explicit-any -- the generated stubs are untyped JavaScript */
type Stub = any;

export interface ProgramLog {
  severity: "debug" | "info" | "warning" | "error";
  message: string;
  urn?: string;
}

interface Stubs {
  resourceGrpc: Stub;
  resourcePb: Stub;
  engineGrpc: Stub;
  enginePb: Stub;
  emptyPb: Stub;
  structPb: Stub;
}

/** The stubs of the @pulumi/pulumi the program itself uses (its proto package and protobuf runtime). */
function loadStubs(pulumiDir: string): Stubs {
  const from = (mod: string) => require(require.resolve(mod, { paths: [pulumiDir] }));
  return {
    resourceGrpc: require(path.join(pulumiDir, "proto", "resource_grpc_pb.js")),
    resourcePb: require(path.join(pulumiDir, "proto", "resource_pb.js")),
    engineGrpc: require(path.join(pulumiDir, "proto", "engine_grpc_pb.js")),
    enginePb: require(path.join(pulumiDir, "proto", "engine_pb.js")),
    emptyPb: from("google-protobuf/google/protobuf/empty_pb.js"),
    structPb: from("google-protobuf/google/protobuf/struct_pb.js"),
  };
}

/** Features berth's engine implements; the SDK falls back to older behaviour for the rest. */
const FEATURES = new Set(["secrets"]);

const SEVERITY = ["debug", "info", "warning", "error"] as const;

export interface MonitorServer {
  address: string;
  logs: ProgramLog[];
  /** Resolves once every registration under way has finished (and so is recorded). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export async function serveMonitor(
  pulumiDir: string,
  run: DeploymentRun,
  opts: { preview: boolean; onRefused?: () => void },
): Promise<MonitorServer> {
  const s = loadStubs(pulumiDir);
  const logs: ProgramLog[] = [];
  const inflight = new Set<Promise<unknown>>();
  let root = "";
  const server = new grpc.Server();
  const empty = () => new s.emptyPb.Empty();
  const reply = <T>(cb: grpc.sendUnaryData<T>, work: () => Promise<T> | T) => {
    Promise.resolve()
      .then(work)
      .then(
        (res) => cb(null, res),
        (err: Error) => cb({ code: grpc.status.UNKNOWN, details: err.message }),
      );
  };

  server.addService(s.resourceGrpc.ResourceMonitorService, {
    supportsFeature: (call: Stub, cb: grpc.sendUnaryData<Stub>) =>
      reply(cb, () => {
        const res = new s.resourcePb.SupportsFeatureResponse();
        res.setHassupport(FEATURES.has(call.request.getId()));
        return res;
      }),
    registerResource: (call: Stub, cb: grpc.sendUnaryData<Stub>) =>
      reply(cb, async () => {
        const req = call.request;
        const propertyDependencies: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((deps: Stub, key: string) => (propertyDependencies[key] = deps.getUrnsList()));
        const goal: Goal = {
          type: req.getType(),
          name: req.getName(),
          custom: req.getCustom(),
          parent: req.getParent() || undefined,
          inputs: req.getObject()?.toJavaScript() ?? {},
          dependencies: req.getDependenciesList(),
          propertyDependencies,
          deleteBeforeReplace: req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : undefined,
          protect: req.getProtect() || undefined,
          provider: req.getProvider() || undefined,
          version: req.getVersion() || undefined,
          ignoreChanges: req.getIgnorechangesList(),
          replaceOnChanges: req.getReplaceonchangesList(),
          retainOnDelete: req.getRetainondelete() || undefined,
          aliases: [...req.getAliasurnsList(), ...req.getAliasesList().map((a: Stub) => a.getUrn()).filter(Boolean)],
          importId: req.getImportid() || undefined,
          customTimeouts: timeoutsOf(req.getCustomtimeouts()),
          additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
          deletedWith: req.getDeletedwith() || undefined,
        };
        let registered;
        const work = run.register(goal);
        inflight.add(work);
        try {
          registered = await work;
        } catch (err) {
          // In a preview, keep the program going (its outputs stay unknown) so every bad input is reported at once;
          // in an update the engine stops here, as Pulumi's does.
          if (!(opts.preview && err instanceof ReportedError)) {
            if (err instanceof ReportedError) opts.onRefused?.();
            throw err;
          }
          registered = { urn: "", id: "", outputs: {} };
        } finally {
          inflight.delete(work);
        }
        const res = new s.resourcePb.RegisterResourceResponse();
        res.setUrn(registered.urn);
        res.setId(registered.id);
        res.setObject(s.structPb.Struct.fromJavaScript(JSON.parse(JSON.stringify(registered.outputs))));
        return res;
      }),
    registerResourceOutputs: (call: Stub, cb: grpc.sendUnaryData<Stub>) =>
      reply(cb, () => {
        run.registerOutputs(call.request.getUrn(), call.request.getOutputs()?.toJavaScript() ?? {});
        return empty();
      }),
    signalAndWaitForShutdown: (_call: Stub, cb: grpc.sendUnaryData<Stub>) => reply(cb, empty),
  });

  server.addService(s.engineGrpc.EngineService, {
    log: (call: Stub, cb: grpc.sendUnaryData<Stub>) =>
      reply(cb, () => {
        const req = call.request;
        if (!req.getEphemeral()) logs.push({ severity: SEVERITY[req.getSeverity()] ?? "info", message: req.getMessage(), urn: req.getUrn() || undefined });
        return empty();
      }),
    getRootResource: (_call: Stub, cb: grpc.sendUnaryData<Stub>) =>
      reply(cb, () => {
        const res = new s.enginePb.GetRootResourceResponse();
        res.setUrn(root);
        return res;
      }),
    setRootResource: (call: Stub, cb: grpc.sendUnaryData<Stub>) =>
      reply(cb, () => {
        root = call.request.getUrn();
        return new s.enginePb.SetRootResourceResponse();
      }),
  });

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    logs,
    async settled() {
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
    },
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** customTimeouts arrive as Go durations ("5m"); the state keeps seconds. */
function timeoutsOf(timeouts: Stub): CustomTimeouts | undefined {
  if (!timeouts) return undefined;
  const out: CustomTimeouts = {};
  for (const [key, text] of [["create", timeouts.getCreate()], ["update", timeouts.getUpdate()], ["delete", timeouts.getDelete()]] as const) {
    const seconds = parseDuration(text);
    if (seconds) out[key] = seconds;
  }
  return out;
}
