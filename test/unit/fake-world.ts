// An in-memory world for engine tests: a kind whose objects live in a Map, every host action logged in order.
import { z } from "zod";
import { DeploymentRun, type Goal, type RunOptions } from "../../provider/engine/deployment";
import { KindProvider, type Kind } from "../../provider/resources/kind";
import type { Provider } from "../../provider/resources/provider";
import type { DeploymentV3 } from "../../provider/state/checkpoint";
import { replaces } from "../../sdk/schema";

const Args = z.strictObject({
  name: replaces(z.string().optional()),
  size: replaces(z.number().int().min(1, { error: "must be at least 1" }).optional()),
  label: z.string().optional(),
  port: z.number().optional(),
  /** Claimed as a machine's host port (two berth roots on one machine share it). */
  hostPort: z.number().optional(),
  needs: z.string().optional(),
  failCreate: z.boolean().optional(),
  auth: z.object({ password: z.string() }).optional(),
});
type Args = z.infer<typeof Args>;

/** A kind whose objects live in a Map; every host action is logged in order. */
export function fakeKind(host: Map<string, Args>, log: string[]): Kind<Args, { name: string; serial: number }> {
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
      return host.has(id) ? { ...outputs, name: id } : undefined;
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
    claims: (inputs) => [...(inputs.port ? [`port ${inputs.port}`] : []), ...(inputs.hostPort ? [`host port 0.0.0.0:${inputs.hostPort}/tcp`] : [])],
  };
}

export const TYPE = "test:index:Thing";

export function world(extra: Partial<RunOptions> = {}) {
  const host = new Map<string, Args>();
  const log: string[] = [];
  const providers = new Map<string, Provider>([[TYPE, new KindProvider(TYPE, fakeKind(host, log))]]);
  const saved: DeploymentV3[] = [];
  const run = (base: DeploymentV3, preview = false) =>
    new DeploymentRun({ stack: "dev", project: "p", preview, providers, base, persist: (d) => { saved.push(d); }, ...extra });
  return { host, log, saved, run };
}

export const thing = (name: string, inputs: Record<string, unknown>, dependencies: string[] = []): Goal => ({
  type: TYPE,
  name,
  custom: true,
  inputs,
  dependencies,
  propertyDependencies: {},
});

export const urn = (name: string) => `urn:pulumi:dev::p::${TYPE}::${name}`;

export async function apply(w: ReturnType<typeof world>, base: DeploymentV3, goals: Goal[], preview = false) {
  const run = w.run(base, preview);
  for (const goal of goals) await run.register(goal).catch(() => undefined);
  if (!run.failed) await run.finish();
  await run.settled();
  return run;
}

export const ops = (run: DeploymentRun) => run.steps.filter((s) => s.type === TYPE).map((s) => `${s.op} ${s.urn.split("::").pop()}`);

