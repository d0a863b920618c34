// What users import: `import * as berth from "berth-iac"`.
import * as pulumi from "@pulumi/pulumi";
import * as schema from "./schema";
import { ArgsOf, PACKAGE_VERSION, resourceClass } from "./resource";

export { schema };

export type ImageArgs = ArgsOf<typeof schema.ImageArgs>;
export type NetworkArgs = ArgsOf<typeof schema.NetworkArgs>;
export type VolumeArgs = ArgsOf<typeof schema.VolumeArgs>;
export type ContainerArgs = ArgsOf<typeof schema.ContainerArgs>;
export type RegistryArgs = ArgsOf<typeof schema.RegistryArgs>;

/** An image in berth's content store: built from a Dockerfile, pulled, or imported (archive, OCI layout, rootfs). */
export class Image extends resourceClass<typeof schema.ImageArgs, typeof schema.ImageOutputs>(
  "berth:index:Image",
  schema.ImageOutputs,
) {}

/** A bridge network with its own subnet, gateway and NAT. */
export class Network extends resourceClass<typeof schema.NetworkArgs, typeof schema.NetworkOutputs>(
  "berth:index:Network",
  schema.NetworkOutputs,
) {}

/** A named volume: data that outlives the containers mounting it. */
export class Volume extends resourceClass<typeof schema.VolumeArgs, typeof schema.VolumeOutputs>(
  "berth:index:Volume",
  schema.VolumeOutputs,
) {}

/** A container run detached by berth's runtime. */
export class Container extends resourceClass<typeof schema.ContainerArgs, typeof schema.ContainerOutputs>(
  "berth:index:Container",
  schema.ContainerOutputs,
) {}

/** A private registry (the distribution registry) served on this host, its data in a berth Volume. */
export class Registry extends resourceClass<typeof schema.RegistryArgs, typeof schema.RegistryOutputs>(
  "berth:index:Registry",
  schema.RegistryOutputs,
) {}

export type ProviderArgs = ArgsOf<typeof schema.ProviderArgs>;

/**
 * An explicit berth provider: pass it as `{ provider }` to resources that should use its configuration (e.g.
 * another host state root) instead of the stack's `berth:*` config.
 */
export class Provider extends pulumi.ProviderResource {
  constructor(name: string, args: ProviderArgs = {}, opts?: pulumi.ResourceOptions) {
    super("berth", name, args, { version: PACKAGE_VERSION, ...opts });
  }
}
