// What users import: `import * as berth from "berth-iac"`.
import * as pulumi from "@pulumi/pulumi";
import { PACKAGE_VERSION, resourceClass } from "./resource";
import { OUTPUT_NAMES } from "./types";
import type * as types from "./types";

// Args and outputs as plain documented interfaces, generated from the schemas (provider/sdk-types.ts). The schemas
// themselves (zod) are the provider's: the program's process does not load them.
export type * from "./types";

/** An image in berth's content store: built from a Dockerfile, pulled, or imported (archive, OCI layout, rootfs). */
export class Image extends resourceClass<types.ImageArgs, types.ImageOutputs>(
  "berth:index:Image",
  OUTPUT_NAMES.Image,
) {}

/** A bridge network with its own subnet, gateway and NAT. */
export class Network extends resourceClass<types.NetworkArgs, types.NetworkOutputs>(
  "berth:index:Network",
  OUTPUT_NAMES.Network,
) {}

/** A named volume: data that outlives the containers mounting it. */
export class Volume extends resourceClass<types.VolumeArgs, types.VolumeOutputs>(
  "berth:index:Volume",
  OUTPUT_NAMES.Volume,
) {}

/** A container run detached by berth's runtime. */
export class Container extends resourceClass<types.ContainerArgs, types.ContainerOutputs>(
  "berth:index:Container",
  OUTPUT_NAMES.Container,
) {}

/** A private registry (the distribution registry) served on this host, its data in a berth Volume. */
export class Registry extends resourceClass<types.RegistryArgs, types.RegistryOutputs>(
  "berth:index:Registry",
  OUTPUT_NAMES.Registry,
) {}

/**
 * An explicit berth provider: pass it as `{ provider }` to resources that should use its configuration (e.g.
 * another host state root) instead of the stack's `berth:*` config.
 */
export class Provider extends pulumi.ProviderResource {
  constructor(name: string, args: types.ProviderArgs = {}, opts?: pulumi.ResourceOptions) {
    super("berth", name, args, { version: PACKAGE_VERSION, ...opts });
  }
}
