import type { z } from "zod";
import { ContainerArgs, ContainerOutputs } from "../../sdk/schema";
import type { ContainerInfo, PortMapping, Runtime } from "../../native/runtime";
import { imageClaim } from "./image";
import { isAutonamed, type Kind } from "./kind";
import { networkClaim } from "./network";
import { volumeClaim } from "./volume";
import type { CheckFailure } from "./provider";
import { hostProblems, limitsOf, runtimeSpecOf } from "./container-runtime";

type Args = z.infer<typeof ContainerArgs>;
type Outs = z.infer<typeof ContainerOutputs>;

const portsOf = (inputs: Args): PortMapping[] =>
  (inputs.ports ?? []).map((p) => ({
    hostIp: p.hostIp ?? "0.0.0.0",
    hostPort: p.hostPort,
    containerPort: p.containerPort,
    protocol: p.protocol ?? "tcp",
  }));

const portClaim = (p: PortMapping) => `host port ${p.hostIp}:${p.hostPort}/${p.protocol}`;

const outputsOf = (info: ContainerInfo): Outs => ({
  name: info.name,
  imageId: info.imageId,
  ip: info.ip ?? "",
  status: info.faults.length === 0 ? info.status : `${info.status}; ${info.faults.join("; ")}`,
  exitCode: info.state?.exitCode ?? 0,
  restartCount: info.state?.restartCount ?? 0,
  health: info.state?.health?.status ?? "",
});

export function containerKind(runtime: Runtime): Kind<Args, Outs> {
  return {
    args: ContainerArgs,
    outputs: ContainerOutputs,
    autoname: true,
    // What the container refers to must exist, or be declared earlier in the same program.
    async prepare(inputs, ctx) {
      const failures: CheckFailure[] = [];
      const declared = (claim: string) => ctx.declared?.has(claim) ?? false;
      if (!declared(imageClaim(inputs.image)) && !(await runtime.images.inspect(inputs.image))) {
        const reason = `no image "${inputs.image}" in berth's store: declare a berth.Image and pass its imageId`;
        failures.push({ property: "image", reason });
      }
      if (inputs.network !== undefined && !declared(networkClaim(inputs.network)) && !(await runtime.networks.inspect(inputs.network))) {
        const reason = `no network "${inputs.network}": declare a berth.Network and pass its name`;
        failures.push({ property: "network", reason });
      }
      for (const [i, mount] of (inputs.volumes ?? []).entries()) {
        if (!declared(volumeClaim(mount.volume)) && !(await runtime.volumes.inspect(mount.volume))) {
          const reason = `no volume "${mount.volume}": declare a berth.Volume and pass its name`;
          failures.push({ property: `volumes[${i}].volume`, reason });
        }
      }
      failures.push(...hostProblems(inputs));
      const seen = new Set<string>();
      for (const [i, p] of portsOf(inputs).entries()) {
        const claim = portClaim(p);
        if (seen.has(claim)) failures.push({ property: `ports[${i}].hostPort`, reason: `${claim} is published twice` });
        seen.add(claim);
      }
      return { inputs, failures };
    },
    previewOutputs: (inputs) => ({ name: inputs.name }),
    idOf: (inputs) => inputs.name!,
    async create(inputs) {
      const info = await runtime.containers.run({
        name: inputs.name!,
        image: inputs.image,
        entrypoint: inputs.entrypoint,
        command: inputs.command,
        env: inputs.env,
        workdir: inputs.workdir,
        hostname: inputs.hostname,
        network: inputs.network,
        ports: portsOf(inputs),
        mounts: (inputs.volumes ?? []).map((v) => ({ volume: v.volume, target: v.target, readOnly: v.readOnly })),
        ...runtimeSpecOf(inputs),
      });
      return { id: info.name, outputs: outputsOf(info) };
    },
    async read(id) {
      const info = await runtime.containers.inspect(id);
      return info && outputsOf(info);
    },
    // Limits, restart policy and stop timeout change under the running container (as `docker update` does).
    async update(id, _olds, news, oldOutputs) {
      await runtime.containers.update(id, { limits: limitsOf(news), restart: news.restart, stopTimeout: news.stopTimeout });
      const info = await runtime.containers.inspect(id);
      return info ? outputsOf(info) : oldOutputs;
    },
    delete: (id, outputs) => runtime.containers.remove(id, { graceSeconds: (outputs as Outs & Args).stopTimeout }),
    // A container that died, or lost a piece by hand, is made anew.
    drift: (outputs) => (outputs.status === "running" ? [] : [{ property: "status", replace: true }]),
    exclusive(olds, news) {
      const oldPorts = new Set(portsOf(olds).map(portClaim));
      return (!isAutonamed(news) && olds.name === news.name) || portsOf(news).some((p) => oldPorts.has(portClaim(p)));
    },
    claims: (inputs) => [`container ${inputs.name}`, ...portsOf(inputs).map(portClaim)],
  };
}
