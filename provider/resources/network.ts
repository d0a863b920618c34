import type { z } from "zod";
import { NetworkArgs, NetworkOutputs } from "../../sdk/schema";
import type { NetworkInfo, NetworkSpec, Runtime } from "../../native/runtime";
import { declaredOthers, isAutonamed, type Kind } from "./kind";
import { overlaps, parseSubnet } from "../../native/network/cidr";
import { containsUnknown, isUnknown } from "../values";
import { NetworkInputError, refusePredefined, resolveNetwork } from "../../native/network/options";
import type { CheckFailure } from "./provider";

type Args = z.infer<typeof NetworkArgs>;
type Outs = z.infer<typeof NetworkOutputs>;

/** Two subnets with an address in common cannot exist at once on one host (the runtime refuses the overlap). */
function sharesAddresses(a: unknown, b: unknown): boolean {
  if (typeof a !== "string" || typeof b !== "string") return false;
  if (a === b) return true;
  try {
    return overlaps(parseSubnet(a), parseSubnet(b));
  } catch {
    return false; // an invalid one is refused by check
  }
}

const outputsOf = (info: NetworkInfo): Outs => ({
  name: info.name,
  driver: info.driver,
  bridge: info.bridge,
  subnet: info.subnet,
  gateway: info.gateway,
  nat: info.nat,
  status: info.faults.length === 0 ? "ok" : info.faults.join("; "),
});

export const networkClaim = (name: string) => `network ${name}`;

/** What stands in for a required field not known yet; failures naming it are dropped. Optional ones are left out. */
const STAND_IN: Partial<Args> = { name: "berth-unknown", subnet: "10.255.255.0/24", parent: "eth0" };
/** Judged against the subnet: unjudgeable while it is unknown. */
const WITHIN_SUBNET = ["gateway", "ipRange", "auxAddresses"] as const;

/** The inputs with every field not known yet stood in for or left out, so the known ones can be checked. */
function knownArgs(inputs: Args, unknown: ReadonlySet<string>): Args {
  if (unknown.size === 0) return inputs;
  const out: Record<string, unknown> = { ...inputs };
  for (const k of unknown) {
    if (k in STAND_IN) out[k] = STAND_IN[k as keyof Args];
    else delete out[k];
  }
  if (unknown.has("subnet")) for (const k of WITHIN_SUBNET) delete out[k];
  return out as Args;
}

const specOf = ({ name, nat, ...rest }: Args): NetworkSpec => ({ ...rest, name: name!, nat: nat ?? true });

export function networkKind(runtime: Runtime): Kind<Args, Outs> {
  return {
    args: NetworkArgs,
    outputs: NetworkOutputs,
    autoname: true,
    // Docker's refusals of bad network input, and clashes with the program's other networks and the host's, at
    // preview.
    // Fields not known yet (fed by a resource not made yet) stand aside, so that every known one is checked now;
    // the engine checks again with every value known before the network is made.
    async prepare(inputs, ctx) {
      const unknown = new Set(Object.entries(inputs).filter(([, v]) => containsUnknown(v)).map(([k]) => k));
      // Which rules apply depends on the driver.
      if (unknown.has("driver")) return { inputs, failures: [] };
      const known = knownArgs(inputs, unknown);
      const failures: CheckFailure[] = [];
      const keep = (f: CheckFailure) => {
        if (!unknown.has(f.property.split(/[.[]/)[0])) failures.push(f);
      };
      try {
        refusePredefined(known.name!);
        resolveNetwork(specOf(known));
      } catch (err) {
        const property = err instanceof NetworkInputError ? err.field : "name";
        keep({ property, reason: (err as Error).message });
        if (failures.length > 0) return { inputs, failures };
      }
      const subnet = parseSubnet(known.subnet);
      for (const other of declaredOthers(ctx, "network ")) {
        const theirs = other.inputs as Partial<Args>;
        if (!unknown.has("subnet") && typeof theirs.subnet === "string" && !isUnknown(theirs.subnet) && overlaps(subnet, parseSubnet(theirs.subnet))) {
          failures.push({ property: "subnet", reason: `Pool overlaps with other one on this address space: ${inputs.subnet} overlaps ${theirs.subnet} of ${other.claim} in this program; pick a subnet no other network of the program overlaps` });
        }
        if (!unknown.has("parent") && inputs.driver === "macvlan" && theirs.driver === "macvlan" && theirs.parent === inputs.parent) {
          failures.push({ property: "parent", reason: `${other.claim} of this program already uses parent interface ${inputs.parent}: one macvlan network per parent` });
        }
      }
      // Once made, a network of the program is the host's too: one refusal is enough.
      if (failures.length > 0) return { inputs, failures };
      // The network this one replaces goes first when they clash.
      const replaced = typeof ctx.olds?.name === "string" ? [ctx.olds.name] : [];
      const conflict = await runtime.networks.conflicts(specOf(known), replaced);
      if (conflict) keep({ property: conflict.field, reason: conflict.reason });
      return { inputs, failures };
    },
    previewOutputs: (inputs) => ({ name: inputs.name, driver: inputs.driver ?? "bridge", subnet: inputs.subnet, nat: inputs.nat ?? true }),
    idOf: (inputs) => inputs.name!,
    async create(inputs) {
      const info = await runtime.networks.create(specOf(inputs));
      return { id: info.name, outputs: outputsOf(info) };
    },
    async read(id) {
      const info = await runtime.networks.inspect(id);
      return info && outputsOf(info);
    },
    // Switching NAT, internal or the host shim, or putting back a bridge or rule removed by hand, is an ensure.
    async update(_id, _olds, news) {
      return outputsOf(await runtime.networks.create(specOf(news)));
    },
    delete: (id) => runtime.networks.remove(id),
    drift: (outputs) => (outputs.status === "ok" ? [] : [{ property: "status", replace: false }]),
    exclusive: (olds, news) =>
      (!isAutonamed(news) && olds.name === news.name) ||
      sharesAddresses(olds.subnet, news.subnet) ||
      (news.driver === "macvlan" && olds.parent === news.parent) ||
      (news.bridgeName !== undefined && olds.bridgeName === news.bridgeName),
    claims: (inputs) => [
      networkClaim(inputs.name!),
      ...(inputs.driver === "macvlan" ? [`macvlan parent ${inputs.parent}`] : []),
      ...(inputs.bridgeName ? [`bridge ${inputs.bridgeName}`] : []),
    ],
  };
}
