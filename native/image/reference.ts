// Pure: Docker's image reference format, the one rule every image name meets — the SDK's schema checks it at
// preview, the store whenever it names an image (a program, an archive or a registry may say anything), the CLI
// before a build.

/** A path component: lowercase letters and digits, parts joined by one ".", one "_", "__" or a run of "-". */
const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const DOMAIN = "(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\\[[0-9a-fA-F:]+\\])(?::\\d+)?";
/** [HOST[:PORT]/]NAME[:TAG][@DIGEST]; the first group is the name Docker's length limit applies to. */
const REFERENCE = new RegExp(`^((?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*)(?::[\\w][\\w.-]{0,127})?(@(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}))?$`);
/** Docker's limit on the name (host and path, without tag or digest), counted as it normalizes it. */
const NAME_MAX = 255;
/** An image id's hex: Docker refuses it as a name, which `inspect` would read as an id and `remove` as the name. */
const ID_HEX = /^[a-f0-9]{64}$/;

const USE = 'use [HOST[:PORT]/]NAME[:TAG]: NAME lowercase letters and digits, its parts joined by single ".", "_" or "-", e.g. "app:1.0"';

/** Why `ref` is not an image reference Docker takes (without a digest when `digest` is false), or undefined. */
export function referenceProblem(ref: string, digest = true): string | undefined {
  if (ID_HEX.test(ref)) return `invalid repository name (${ref}), cannot specify 64-byte hexadecimal strings: that is an image id; ${USE}`;
  const m = REFERENCE.exec(ref);
  if (!m) return `invalid reference format: "${ref}" is not an image name: ${USE}`;
  const length = normalizedLength(m[1]);
  if (length > NAME_MAX) return `invalid reference format: the name in "${ref.slice(0, 40)}…" is ${length} characters as Docker counts it (with "docker.io/library/" or "docker.io/" before a name without a host): Docker's limit is ${NAME_MAX}`;
  if (m[2] && !digest) return `"${ref}" names a digest: an image is stored under a name and tag, e.g. "app:1.0"`;
  return undefined;
}

/**
 * The name's length once Docker has normalized it (distribution's splitDockerDomain): a name whose first part is
 * no host (no "." or ":", not "localhost", lowercase) is on docker.io, and a one-part name there under "library/".
 */
function normalizedLength(name: string): number {
  const slash = name.indexOf("/");
  const first = name.slice(0, Math.max(slash, 0));
  const hosted = slash >= 0 && (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first);
  const domain = !hosted || first === "index.docker.io" ? "docker.io" : first;
  const path = hosted ? name.slice(slash + 1) : name;
  return `${domain}/${domain === "docker.io" && !path.includes("/") ? "library/" : ""}${path}`.length;
}

/**
 * The name an untagged `berth build` of directory `base` is stored under (Docker keeps it by id only; berth's store
 * keeps images by name): "berth-build-" and the base name made a valid component, or "berth-build-image".
 */
export function untaggedBuildName(base: string): string {
  const prefix = "berth-build-";
  const component = base
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, (run) => (/^([._]|__|-+)$/.test(run) ? run : "-"))
    .slice(0, NAME_MAX - "docker.io/library/".length - prefix.length)
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "");
  return `${prefix}${component || "image"}:latest`;
}
