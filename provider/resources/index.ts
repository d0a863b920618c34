import type { z } from "zod";
import type { ObjectKind, Runtime } from "../../native/runtime";
import { ProviderArgs } from "../../sdk/schema";
import { revealAll } from "../values";
import type { CheckFailure, PropertyMap } from "./provider";
import { containerKind } from "./container";
import { imageKind } from "./image";
import { checkFailures, KindProvider } from "./kind";
import { networkKind } from "./network";
import type { Provider } from "./provider";
import { volumeKind } from "./volume";
import { registryKind } from "./registry";

/** berth's provider for each resource type token, over one runtime. `cwd` anchors relative paths in inputs. */
export function berthProviders(runtime: Runtime, cwd: string): Map<string, Provider> {
  const owned = (kind: ObjectKind) => ({ owners: runtime.owners, kind });
  return new Map<string, Provider>([
    ["berth:index:Image", new KindProvider("berth:index:Image", imageKind(runtime, cwd), owned("image"))],
    ["berth:index:Network", new KindProvider("berth:index:Network", networkKind(runtime), owned("network"))],
    ["berth:index:Volume", new KindProvider("berth:index:Volume", volumeKind(runtime), owned("volume"))],
    ["berth:index:Container", new KindProvider("berth:index:Container", containerKind(runtime), owned("container"))],
    ["berth:index:Registry", new KindProvider("berth:index:Registry", registryKind(runtime, cwd), owned("registry"))],
  ]);
}

export type ProviderConfig = z.infer<typeof ProviderArgs>;

/** The package token of berth's provider resources, and its config namespace. */
export const PACKAGE = "berth";
export const PROVIDER_TYPE = `pulumi:providers:${PACKAGE}`;

/**
 * A provider configuration (`berth:*` keys, or a Provider resource's inputs) checked against its schema. Pulumi
 * adds `version` to a provider's inputs; config values may arrive as strings, and secret.
 */
export function checkProviderConfig(inputs: PropertyMap): { config: ProviderConfig; failures: CheckFailure[] } {
  const { version: _version, ...rest } = revealAll(inputs) as PropertyMap;
  const parsed = ProviderArgs.safeParse(rest);
  if (parsed.success) return { config: parsed.data, failures: [] };
  return { config: {}, failures: parsed.error.issues.flatMap((issue) => checkFailures(issue, ProviderArgs)) };
}
