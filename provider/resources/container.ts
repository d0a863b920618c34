import type { z } from "zod";
import { ContainerArgs, ContainerOutputs } from "../../sdk/schema";
import type { ContainerInfo, ContainerSpec, Runtime } from "../../native/runtime";
import { DEFAULT_NETWORK } from "../../native/network/options";
import { imageClaim } from "./image";
import { isAutonamed, type Kind } from "./kind";
import { volumeFailures } from "./volume";
import { containerClaim, networkClaims, networkFailures, networkingOf, networkOutputsOf } from "./container-network";
import type { CheckFailure } from "./provider";
import { containsUnknown, isUnknown } from "../values";
import { hostProblems, limitsOf, runtimeSpecOf } from "./container-runtime";

type Args = z.infer<typeof ContainerArgs>;
type Outs = z.infer<typeof ContainerOutputs>;

/** "running", or "stopped (exit 137)" with the code the supervisor recorded. */
const statusOf = (info: ContainerInfo): string =>
  info.status === "stopped" && info.state?.exitCode !== undefined ? `stopped (exit ${info.state.exitCode})` : info.status;

const outputsOf = (info: ContainerInfo): Outs => ({
  name: info.name,
  imageId: info.imageId,
  ip: info.ip ?? "",
  status: [statusOf(info), ...info.faults].join("; "),
  health: info.state?.health?.status ?? "",
  ...networkOutputsOf(info),
});

const specOf = (inputs: Args): ContainerSpec => ({
  name: inputs.name!,
  image: inputs.image,
  entrypoint: inputs.entrypoint,
  command: inputs.command,
  env: inputs.env,
  workdir: inputs.workdir,
  hostname: inputs.hostname,
  ...networkingOf(inputs),
  mounts: (inputs.volumes ?? []).map((v) => ({ volume: v.volume, target: v.target, readOnly: v.readOnly })),
  ...runtimeSpecOf(inputs),
});

/**
 * The inputs that would make this spec, for an import: what the process, its mounts and its networking say (the
 * run options and limits are not read back; a program adds them).
 */
function inputsOfSpec(spec: ContainerSpec): Partial<Args> {
  const [only, ...more] = spec.networks ?? [];
  const plain = only && more.length === 0 && !only.ip && !only.aliases?.length && !only.mac;
  return {
    name: spec.name,
    image: spec.image,
    entrypoint: spec.entrypoint,
    command: spec.command,
    env: spec.env,
    workdir: spec.workdir,
    hostname: spec.hostname,
    ...(spec.networkMode !== DEFAULT_NETWORK && { networkMode: spec.networkMode }),
    ...(plain ? { network: only.network } : { networks: spec.networks }),
    ports: spec.ports?.map((p) => ({ containerPort: p.containerPort, ...(p.hostPort ? { hostPort: p.hostPort } : {}), hostIp: p.hostIp, protocol: p.protocol })),
    publishAll: spec.publishAll,
    domainname: spec.domainname,
    dns: spec.dns,
    dnsSearch: spec.dnsSearch,
    dnsOptions: spec.dnsOptions,
    extraHosts: spec.extraHosts,
    links: spec.links,
    interfaces: spec.interfaces,
    volumes: spec.mounts?.map((m) => ({ volume: m.volume, target: m.target, ...(m.readOnly ? { readOnly: true } : {}) })),
  };
}

export function containerKind(runtime: Runtime): Kind<Args, Outs> {
  return {
    args: ContainerArgs,
    outputs: ContainerOutputs,
    autoname: true,
    // What the container refers to must exist, or be declared earlier in the same program.
    async prepare(inputs, ctx) {
      const failures: CheckFailure[] = [];
      const imageKnown = !isUnknown(inputs.image);
      if (imageKnown && !ctx.declared.has(imageClaim(inputs.image)) && !(await runtime.images.inspect(inputs.image))) {
        const reason = `no image "${inputs.image}" in berth's store: declare a berth.Image and pass its imageId`;
        failures.push({ property: "image", reason });
      }
      for (const [i, mount] of (isUnknown(inputs.volumes) ? [] : inputs.volumes ?? []).entries()) {
        failures.push(...(await volumeFailures(runtime, ctx.declared, mount.volume, `volumes[${i}].volume`)));
      }
      failures.push(...(await hostProblems(runtime, inputs)));
      failures.push(...(await networkFailures(inputs, ctx, runtime)));
      // The command is looked up in the image's files: once the image is made, before the container is.
      if (imageKnown && failures.length === 0 && !containsUnknown(inputs)) {
        failures.push(...(await runtime.containers.problems(specOf(inputs))).map((p) => ({ property: p.field, reason: p.reason })));
      }
      return { inputs, failures };
    },
    previewOutputs: (inputs) => ({ name: inputs.name }),
    idOf: (inputs) => inputs.name!,
    async create(inputs) {
      const info = await runtime.containers.run(specOf(inputs));
      return { id: info.name, outputs: outputsOf(info) };
    },
    async read(id) {
      const info = await runtime.containers.inspect(id);
      return info && outputsOf(info);
    },
    async importInputs(id, outputs) {
      const spec = (await runtime.containers.inspect(id))?.spec;
      return spec ? inputsOfSpec(spec) : { name: outputs.name, image: outputs.imageId };
    },
    // Limits, restart policy and stop timeout change under the running container (as `docker update` does);
    // declared interfaces are changed under the running process by the runtime's ensure.
    async update(id, _olds, news) {
      await runtime.containers.update(id, { limits: limitsOf(news), restart: news.restart, stopTimeout: news.stopTimeout });
      return outputsOf(await runtime.containers.run(specOf(news)));
    },
    delete: (id, outputs) => runtime.containers.remove(id, { graceSeconds: (outputs as Outs & Args).stopTimeout }),
    // A container that died, or lost a piece by hand, is made anew.
    drift: (outputs) => (outputs.status === "running" ? [] : [{ property: "status", replace: true }]),
    exclusive(olds, news) {
      const oldClaims = new Set(networkClaims(olds));
      return (!isAutonamed(news) && olds.name === news.name) || networkClaims(news).some((c) => oldClaims.has(c));
    },
    claims: (inputs) => [containerClaim(inputs.name!), ...networkClaims(inputs)],
  };
}
