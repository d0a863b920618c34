// Builds the SDK's resource classes: a genuine pulumi.CustomResource typed by the interfaces generated from its
// schema (sdk/types.ts), so that the declarations users compile against never name zod.
import * as pulumi from "@pulumi/pulumi";

export type ResourceClass<Args, Outs> = new (
  name: string,
  args: Args,
  opts?: pulumi.CustomResourceOptions,
) => pulumi.CustomResource & Outs;

/** The provider plugin version to use (Pulumi names the default provider after it), as package.json announces. */
export const PACKAGE_VERSION: string = require("../../package.json").version;

export function resourceClass<Args, Outs>(type: string, outputs: readonly string[]): ResourceClass<Args, Outs> {
  // Pulumi fills in an Output property for every key passed as a prop, so outputs go in as undefined.
  const unsetOutputs = Object.fromEntries(outputs.map((key) => [key, undefined]));
  const cls = class extends pulumi.CustomResource {
    constructor(name: string, args: Args, opts?: pulumi.CustomResourceOptions) {
      super(type, name, { ...unsetOutputs, ...args }, { version: PACKAGE_VERSION, ...opts });
    }
  };
  return cls as unknown as ResourceClass<Args, Outs>;
}
