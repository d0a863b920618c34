// Pure: no host access (the provider imports it). Image references that name a registry:
// "host[:port]/repository[:tag][@digest]". berth has no default registry, so a reference without a host is refused with
// a message saying so.
import { isDigest } from "../paths";

export interface RegistryRef {
  /** "host" or "host:port". */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const REPO = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** The registry host a reference starts with ("host.domain/…", "host:port/…", "localhost/…"), if any. */
function registryHost(ref: string): string | undefined {
  const slash = ref.indexOf("/");
  const host = slash < 0 ? "" : ref.slice(0, slash);
  return host.includes(".") || host.includes(":") || host === "localhost" ? host : undefined;
}

/** Whether a reference names a registry (else it is a name in berth's store only). */
export const namesRegistry = (ref: string): boolean => registryHost(ref) !== undefined;

export function parseRegistryRef(ref: string): RegistryRef {
  const at = ref.indexOf("@");
  const digest = at < 0 ? undefined : ref.slice(at + 1);
  const rest = at < 0 ? ref : ref.slice(0, at);
  const host = registryHost(rest);
  if (host === undefined) {
    throw new Error(
      `image reference "${ref}" names no registry: berth has no default registry, so write HOST[:PORT]/NAME[:TAG], e.g. "127.0.0.1:5000/${rest}"`,
    );
  }
  const path = rest.slice(host.length + 1);
  const colon = path.lastIndexOf(":");
  const repository = colon < 0 ? path : path.slice(0, colon);
  const tag = colon < 0 ? undefined : path.slice(colon + 1);
  if (!REPO.test(repository)) throw new Error(`image reference "${ref}": "${repository}" is not a valid repository name (lowercase letters, digits, separators)`);
  if (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag)) throw new Error(`image reference "${ref}": "${tag}" is not a valid tag`);
  if (digest !== undefined && !isDigest(digest)) throw new Error(`image reference "${ref}": "${digest}" is not a sha256 digest`);
  return { registry: host, repository, tag: tag ?? (digest ? undefined : "latest"), digest };
}

export const formatRef = (r: RegistryRef): string =>
  `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;

/** Loopback registries speak plain HTTP unless they answer TLS, as Docker allows for 127.0.0.0/8. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
