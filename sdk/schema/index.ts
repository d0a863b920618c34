// The contract of each resource type: one zod schema for its args, and the shape of its outputs.
// Pure data: no Pulumi and no host access, so the SDK, the provider and the tests can all import it.
export * from "./fields";
export * from "./container";
export * from "./container-runtime";
export * from "./container-network";
export * from "./image";
export * from "./network";
export * from "./volume";
export * from "./provider";
export * from "./registry";
