import * as fs from "node:fs";
import type { z } from "zod";
import type { ObjectKind, Runtime } from "../../native/runtime";
import { parseSshUrl, ProviderArgs, replaceOnChangeFields } from "../../sdk/schema";
import { expandHome, normalRoot, rootIn } from "../runtimes";
import { containsUnknown, isSecret, revealAll } from "../values";
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
 * A value not known yet (a preview, fed by another resource's output) is a failure, listed in `unknown` too: a
 * preview shows such a provider's resources without checking them against a host (Pulumi's unconfigured provider).
 */
export function checkProviderConfig(inputs: PropertyMap): { config: ProviderConfig; failures: CheckFailure[]; unknown?: string[] } {
  const rest = Object.fromEntries(Object.entries(revealAll(inputs) as PropertyMap).filter(([k]) => !ENGINE_KEYS.has(k)));
  const unknown = Object.keys(rest).filter((k) => containsUnknown(rest[k]));
  if (unknown.length > 0) {
    // A preview goes on without it (the engine says so with `unknown`), as Pulumi's does; an update cannot.
    const reason = "is not known yet (it comes from a resource not made yet): berth must know the host to deploy there; give it as a value or from config";
    return { config: {}, failures: unknown.map((property) => ({ property, reason })), unknown };
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

/**
 * What a secret `host` would show of itself in a message — the URL, `user@host` and the address or name, as ssh's
 * own errors repeat it — each with `instead` (see redact for a bare name such as "db"). Nothing for a host that is
 * not secret.
 */
export function secretHostTexts(inputs: PropertyMap, instead: string): Array<[string, string]> {
  const host = inputs.host;
  if (!isSecret(host) || typeof host.value !== "string") return [];
  const ssh = parseSshUrl(host.value);
  const texts = [host.value, ...(ssh?.user ? [`${ssh.user}@${ssh.host}`] : []), ...(ssh ? [ssh.host] : [])];
  return texts.map((t) => [t, instead]);
}

/**
 * The message with every hidden text replaced, longest first (the URL before the address inside it). A bare name
 * (no dot, colon or digit: "db") could be a word of the message's own — a container "db" — so it is replaced only
 * where ssh's errors and berth's ssh hints put a host (HOST_PLACES), whole (not "db2", "db.local"). Any case: ssh
 * lower-cases the host it prints ("Db.Example.com" → "db.example.com").
 */
export function redact(message: string, hidden: ReadonlyMap<string, string>): string {
  let out = message;
  for (const [text, instead] of [...hidden].sort((a, b) => b[0].length - a[0].length)) {
    out = /^[A-Za-z_-]+$/.test(text)
      ? out.replace(new RegExp(`(?<=${HOST_PLACES})${text}(?![\\w.-])`, "gi"), () => instead)
      : out.replace(new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi"), () => instead);
  }
  return out;
}

/**
 * What stands before a host name in ssh's messages ("Could not resolve hostname H", "connect to host H port",
 * "host key is known for H", "Host key for H has changed", "Connection to H closed", "closed by H") and in the
 * commands berth's hints quote (`ssh [-p N] H`, `ssh-keyscan [-p N] H`, `ssh-keygen -R 'H'`, "[H]:PORT").
 */
const HOST_PLACES = String.raw`(?:\bhostname |\bhost |\b(?:known|key) for \[?|\bConnection to |\bclosed by |\bssh (?:-p \d+ )?|\bssh-keyscan (?:-p \d+ )?|-R '\[?)`;

function parseList(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Pulumi's DiffConfig: which provider inputs changed, and which of them replace every resource it manages. Values
 * are compared as what they mean, so a change of spelling is none: `ssh://root@h:22` is `ssh://root@H`, a root
 * `/srv/berth/` is `/srv/berth` (and no root the default one), `~/.ssh/k` is the home directory's.
 */
export function diffProviderConfig(olds: PropertyMap, news: PropertyMap): { diffs: string[]; replaces: string[] } {
  const [a, b] = [meaning(olds), meaning(news)];
  const diffs = Object.keys({ ...a, ...b }).filter((k) => !ENGINE_KEYS.has(k) && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  return { diffs, replaces: diffs.filter((k) => PROVIDER_REPLACES.has(k)) };
}

/** A configuration's inputs in one spelling each; a value not known yet or not valid is kept as written. */
function meaning(inputs: PropertyMap): PropertyMap {
  const out = { ...(revealAll(inputs) as PropertyMap) };
  const ssh = typeof out.host === "string" ? parseSshUrl(out.host) : undefined;
  if (ssh) {
    const host = ssh.host.includes(":") ? `[${ssh.host.toLowerCase()}]` : ssh.host.toLowerCase();
    out.host = `ssh://${ssh.user ? `${ssh.user}@` : ""}${host}${ssh.port && ssh.port !== 22 ? `:${ssh.port}` : ""}`;
  }
  // No root is the default root of the machine the host names.
  if (out.root === undefined || (typeof out.root === "string" && out.root.startsWith("/"))) {
    out.root = rootIn({ host: ssh ? "ssh" : undefined, root: out.root as string | undefined });
  }
  if (typeof out.runDir === "string" && out.runDir.startsWith("/")) out.runDir = normalRoot(out.runDir);
  if (typeof out.identityFile === "string") out.identityFile = expandHome(out.identityFile);
  if (typeof out.sshOptions === "string" && out.sshOptions.startsWith("[")) out.sshOptions = parseList(out.sshOptions);
  else if (typeof out.sshOptions === "string") out.sshOptions = [out.sshOptions];
  return out;
}

const PROVIDER_REPLACES = replaceOnChangeFields(ProviderArgs);
