// Builds the SDK's resource classes from their schemas: a genuine pulumi.CustomResource whose args type is the
// schema's input type (each field a pulumi.Input) and whose outputs are typed pulumi.Outputs.
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";

/** Every level of a plain value may instead be a pulumi.Input of it. */
export type DeepInput<T> = T extends (infer U)[]
  ? pulumi.Input<DeepInput<U>[]>
  : T extends object
    ? pulumi.Input<{ [K in keyof T]: DeepInput<T[K]> }>
    : pulumi.Input<T>;

export type ArgsOf<S extends z.ZodType> = { [K in keyof z.input<S>]: DeepInput<z.input<S>[K]> };

export type OutputsOf<S extends z.ZodObject> = { readonly [K in keyof z.output<S>]: pulumi.Output<z.output<S>[K]> };

export type ResourceClass<Args, Outs> = new (
  name: string,
  args: Args,
  opts?: pulumi.CustomResourceOptions,
) => pulumi.CustomResource & Outs;

/** The provider plugin version to use (Pulumi names the default provider after it), as package.json announces. */
export const PACKAGE_VERSION: string = require("../../package.json").version;

export function resourceClass<A extends z.ZodType, O extends z.ZodObject>(
  type: string,
  outputs: O,
): ResourceClass<ArgsOf<A>, OutputsOf<O>> {
  // Pulumi fills in an Output property for every key passed as a prop, so outputs go in as undefined.
  const unsetOutputs = Object.fromEntries(Object.keys(outputs.shape).map((key) => [key, undefined]));
  const cls = class extends pulumi.CustomResource {
    constructor(name: string, args: ArgsOf<A>, opts?: pulumi.CustomResourceOptions) {
      super(type, name, { ...unsetOutputs, ...args }, { version: PACKAGE_VERSION, ...opts });
    }
  };
  return cls as unknown as ResourceClass<ArgsOf<A>, OutputsOf<O>>;
}
