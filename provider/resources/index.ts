import * as fs from "node:fs";
import type { z } from "zod";
import type { ObjectKind, Runtime } from "../../native/runtime";
import { ProviderArgs, replaceOnChangeFields } from "../../sdk/schema";
import { expandHome } from "../runtimes";
import { containsUnknown, revealAll } from "../values";
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

/** What Pulumi's engine adds to a provider's recorded inputs (`__internal` holds its plugin download URL and the like). */
const ENGINE_KEYS = new Set(["version", "__internal"]);

/**
 * A provider configuration (`berth:*` keys, or a Provider resource's inputs) checked against its schema. Pulumi
 * adds ENGINE_KEYS to a provider's inputs; config values arrive as strings (a list as JSON), and may be secret.
 * A value not known yet (a preview, fed by another resource's output) is refused: berth must know which host it
 * previews against.
 */
export function checkProviderConfig(inputs: PropertyMap): { config: ProviderConfig; failures: CheckFailure[] } {
  const rest = Object.fromEntries(Object.entries(revealAll(inputs) as PropertyMap).filter(([k]) => !ENGINE_KEYS.has(k)));
  const unknown = Object.keys(rest).filter((k) => containsUnknown(rest[k]));
  if (unknown.length > 0) {
    const reason = "is not known yet (it comes from a resource not made yet): berth must know the host to preview and deploy there; give it as a value or from config";
    return { config: {}, failures: unknown.map((property) => ({ property, reason })) };
  }
  if (typeof rest.sshOptions === "string") rest.sshOptions = rest.sshOptions.startsWith("[") ? parseList(rest.sshOptions) : [rest.sshOptions];
  const parsed = ProviderArgs.safeParse(rest);
  if (!parsed.success) return { config: {}, failures: parsed.error.issues.flatMap((issue) => checkFailures(issue, ProviderArgs)) };
  const key = parsed.data.identityFile;
  if (key !== undefined && !fs.existsSync(expandHome(key))) {
    const failure = { property: "identityFile", reason: `${key} does not exist on this machine: give the private key ssh should use for ${parsed.data.host}, or drop identityFile to let ssh choose (~/.ssh/config, the agent)` };
    return { config: {}, failures: [failure] };
  }
  return { config: parsed.data, failures: [] };
}

function parseList(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Pulumi's DiffConfig: which provider inputs changed, and which of them replace every resource it manages. */
export function diffProviderConfig(olds: PropertyMap, news: PropertyMap): { diffs: string[]; replaces: string[] } {
  const [a, b] = [revealAll(olds) as PropertyMap, revealAll(news) as PropertyMap];
  const diffs = Object.keys({ ...a, ...b }).filter((k) => !ENGINE_KEYS.has(k) && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  return { diffs, replaces: diffs.filter((k) => PROVIDER_REPLACES.has(k)) };
}

const PROVIDER_REPLACES = replaceOnChangeFields(ProviderArgs);
