import type { z } from "zod";
import { VolumeArgs, VolumeOutputs } from "../../sdk/schema";
import type { Runtime, VolumeInfo } from "../../native/runtime";
import { isAutonamed, type Kind } from "./kind";
import type { CheckFailure } from "./provider";
import { isUnknown } from "../values";

type Args = z.infer<typeof VolumeArgs>;
type Outs = z.infer<typeof VolumeOutputs>;

const outputsOf = (info: VolumeInfo): Outs => ({ name: info.name, mountpoint: info.mountpoint, labels: info.labels });

export const volumeClaim = (name: string) => `volume ${name}`;

/** Refers to a volume: it must be declared earlier in the program or exist on the host. */
export async function volumeFailures(runtime: Runtime, declared: ReadonlyMap<string, unknown>, name: string, property: string): Promise<CheckFailure[]> {
  if (isUnknown(name) || declared.has(volumeClaim(name)) || (await runtime.volumes.inspect(name))) return [];
  return [{ property, reason: `no volume "${name}": declare a berth.Volume and pass its name` }];
}

export function volumeKind(runtime: Runtime): Kind<Args, Outs> {
  return {
    args: VolumeArgs,
    outputs: VolumeOutputs,
    autoname: true,
    previewOutputs: (inputs) => ({ name: inputs.name, labels: inputs.labels ?? {} }),
    idOf: (inputs) => inputs.name!,
    async create(inputs) {
      const info = await runtime.volumes.create({ name: inputs.name!, labels: inputs.labels, device: inputs.driverOpts?.device });
      return { id: info.name, outputs: outputsOf(info) };
    },
    async read(id) {
      const info = await runtime.volumes.inspect(id);
      return info && outputsOf(info);
    },
    delete: (id) => runtime.volumes.remove(id),
    exclusive: (olds, news) => !isAutonamed(news) && olds.name === news.name,
    claims: (inputs) => [volumeClaim(inputs.name!)],
  };
}
