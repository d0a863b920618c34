import * as path from "node:path";
import bcrypt from "bcryptjs";
import type { z } from "zod";
import { RegistryArgs, RegistryOutputs } from "../../sdk/schema";
import type { RegistryInfo, RegistrySpec, Runtime } from "../../native/runtime";
import { isAutonamed, type Kind } from "./kind";
import { volumeFailures } from "./volume";
import type { CheckFailure } from "./provider";
import { isUnknown } from "../values";

type Args = z.infer<typeof RegistryArgs>;
type Outs = z.infer<typeof RegistryOutputs>;

const BCRYPT_COST = 10;

const outputsOf = (info: RegistryInfo): Outs => ({ name: info.name, url: info.url, endpoint: info.endpoint, status: info.status });

const listenClaim = (inputs: Args) => `host port ${inputs.address ?? "127.0.0.1"}:${inputs.port}/tcp`;

export function registryKind(runtime: Runtime, cwd: string): Kind<Args, Outs> {
  async function spec(inputs: Args): Promise<RegistrySpec> {
    const volume = await runtime.volumes.inspect(inputs.volume);
    if (!volume) throw new Error(`registry "${inputs.name}": volume "${inputs.volume}" does not exist; declare a berth.Volume and pass its name`);
    return {
      name: inputs.name!,
      address: inputs.address ?? "127.0.0.1",
      port: inputs.port,
      storage: volume.mountpoint,
      users: (inputs.users ?? []).map((u) => ({ username: u.username, passwordHash: u.passwordHash! })),
      tls: inputs.tls && { certificate: path.resolve(cwd, inputs.tls.certificate), key: path.resolve(cwd, inputs.tls.key) },
    };
  }
  const ensure = async (inputs: Args) => outputsOf(await runtime.registries.ensure(await spec(inputs)));

  return {
    args: RegistryArgs,
    outputs: RegistryOutputs,
    autoname: true,
    // Passwords become bcrypt hashes here, so only hashes reach the state; an unchanged password keeps its old
    // hash (a fresh salt every run would be a perpetual diff).
    async prepare(inputs, ctx) {
      const failures: CheckFailure[] = await volumeFailures(runtime, ctx.declared, inputs.volume, "volume");
      // A running registry (this one, before an update) holds its own port.
      const old = ctx.olds as Args | undefined;
      const address = inputs.address ?? "127.0.0.1";
      if (!isUnknown(inputs.port) && !isUnknown(address) && !(old && listenClaim(old) === listenClaim(inputs))) {
        const taken = await runtime.containers.portTaken({ hostIp: address, hostPort: inputs.port, containerPort: inputs.port, protocol: "tcp" }, []);
        if (taken) failures.push({ property: "port", reason: `${taken}; pick another port` });
      }
      // Users a preview does not know yet (a list fed by another resource's output) stay so, hashed once known.
      const users = isUnknown(inputs.users) ? inputs.users : (inputs.users ?? []).map((u) => {
        if (u.password === undefined) return u;
        const oldUsers = (ctx.olds as Partial<Args> | undefined)?.users ?? [];
        const old = oldUsers.find((o) => o.username === u.username)?.passwordHash;
        const passwordHash = old && bcrypt.compareSync(u.password, old) ? old : bcrypt.hashSync(u.password, BCRYPT_COST);
        return { username: u.username, passwordHash };
      });
      return { inputs: { ...inputs, ...(inputs.users ? { users } : {}) }, failures };
    },
    previewOutputs: (inputs) => ({ name: inputs.name, endpoint: `${inputs.address ?? "127.0.0.1"}:${inputs.port}` }),
    idOf: (inputs) => inputs.name!,
    async create(inputs) {
      const outputs = await ensure(inputs);
      return { id: outputs.name, outputs };
    },
    update: (_id, _olds, news) => ensure(news),
    async read(id) {
      const info = await runtime.registries.inspect(id);
      return info && outputsOf(info);
    },
    async importInputs(id, outputs) {
      const spec = (await runtime.registries.inspect(id))?.spec;
      if (!spec) return { name: outputs.name };
      // The storage is a volume's mountpoint, <root>/volumes/<name>/_data (one on a host directory is not found).
      const volume = /\/volumes\/([^/]+)\/_data$/.exec(spec.storage)?.[1] ?? spec.storage;
      return { name: spec.name, address: spec.address, port: spec.port, volume, users: spec.users, tls: spec.tls };
    },
    delete: (id) => runtime.registries.remove(id),
    drift: (outputs) => (outputs.status === "running" ? [] : [{ property: "status", replace: false }]),
    exclusive: (olds, news) => (!isAutonamed(news) && olds.name === news.name) || listenClaim(olds) === listenClaim(news),
    claims: (inputs) => [`registry ${inputs.name}`, listenClaim(inputs)],
  };
}
