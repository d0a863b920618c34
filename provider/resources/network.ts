import type { z } from "zod";
import { NetworkArgs, NetworkOutputs } from "../../sdk/schema";
import type { NetworkInfo, Runtime } from "../../native/runtime";
import { isAutonamed, type Kind } from "./kind";
import { contains, parseIPv4, parseSubnet } from "../../native/network/cidr";
import type { CheckFailure } from "./provider";

type Args = z.infer<typeof NetworkArgs>;
type Outs = z.infer<typeof NetworkOutputs>;

const outputsOf = (info: NetworkInfo): Outs => ({
  name: info.name,
  bridge: info.bridge,
  subnet: info.subnet,
  gateway: info.gateway,
  nat: info.nat,
  status: info.faults.length === 0 ? "ok" : info.faults.join("; "),
});

export const networkClaim = (name: string) => `network ${name}`;

const specOf = (inputs: Args) => ({ name: inputs.name!, subnet: inputs.subnet, gateway: inputs.gateway, nat: inputs.nat ?? true });

export function networkKind(runtime: Runtime): Kind<Args, Outs> {
  return {
    args: NetworkArgs,
    outputs: NetworkOutputs,
    autoname: true,
    async prepare(inputs) {
      const failures: CheckFailure[] = [];
      try {
        const subnet = parseSubnet(inputs.subnet);
        if (inputs.gateway !== undefined && !contains(subnet, parseIPv4(inputs.gateway)!)) {
          failures.push({ property: "gateway", reason: `no matching subnet for gateway ${inputs.gateway}: it is outside ${inputs.subnet}` });
        }
      } catch (err) {
        failures.push({ property: "subnet", reason: (err as Error).message });
      }
      return { inputs, failures };
    },
    previewOutputs: (inputs) => ({ name: inputs.name, subnet: inputs.subnet, nat: inputs.nat ?? true }),
    idOf: (inputs) => inputs.name!,
    async create(inputs) {
      const info = await runtime.networks.create(specOf(inputs));
      return { id: info.name, outputs: outputsOf(info) };
    },
    async read(id) {
      const info = await runtime.networks.inspect(id);
      return info && outputsOf(info);
    },
    // Switching NAT, or putting back a bridge or rule removed by hand, is an ensure of the same network.
    async update(_id, _olds, news) {
      return outputsOf(await runtime.networks.create(specOf(news)));
    },
    delete: (id) => runtime.networks.remove(id),
    drift: (outputs) => (outputs.status === "ok" ? [] : [{ property: "status", replace: false }]),
    exclusive: (olds, news) => (!isAutonamed(news) && olds.name === news.name) || olds.subnet === news.subnet,
    claims: (inputs) => [networkClaim(inputs.name!)],
  };
}
