// Reads only the build context, which is on the caller's machine (the provider imports it to digest a context at check
// time): no other host access. The build context: its files minus what .dockerignore excludes (Docker's rules: Go
// filepath.Match patterns plus "**", "!" re-includes, the last matching pattern wins, a pattern matching a directory
// covers what is under it), and a digest of exactly what a build could read — so an unchanged context means an
// unchanged digest.
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { canonicalJson } from "../canonical-json";
import type { DigestCache } from "../digest-cache";
import { parseDockerfile } from "./dockerfile";
import { resolveInRoot } from "../confine";

/** Go's filepath.Clean for "/"-separated paths. */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
    } else out.push(part);
  }
  const joined = out.join("/");
  return rooted ? `/${joined}` : joined || ".";
}

/** Whether Go's filepath.Match would refuse the pattern (an unclosed or empty class, a trailing escape). */
function badGlob(p: string): boolean {
  const c = Array.from(p);
  for (let i = 0; i < c.length; i++) {
    if (c[i] === "\\") {
      if (++i >= c.length) return true;
    } else if (c[i] === "[") {
      i++;
      if (c[i] === "^") i++;
      let ranges = 0;
      for (;;) {
        if (i >= c.length) return true;
        if (c[i] === "]" && ranges > 0) break;
        // One character (maybe escaped), or a range of two.
        for (let end = 0; end < 2; end++) {
          if (c[i] === "\\") i++;
          if (i >= c.length || c[i] === "-" || c[i] === "]") return true;
          i++;
          if (end === 0 && c[i] !== "-") break;
          if (end === 0) i++;
        }
        ranges++;
      }
    }
  }
  return false;
}

/** A COPY/ADD source pattern (Go's filepath.Match: * and ? within one path element, [classes], \\ escapes). */
export function globRegex(p: string): RegExp {
  if (badGlob(p)) throw new Error(`syntax error in pattern "${p}"`);
  let re = "";
  const c = Array.from(p);
  for (let i = 0; i < c.length; i++) {
    const ch = c[i];
    if (ch === "*") re += "[^/]*";
    else if (ch === "?") re += "[^/]";
    else if (ch === "[") {
      let j = i + 1;
      let cls = "[";
      if (c[j] === "^" || c[j] === "!") (cls += "^"), j++;
      for (; c[j] !== "]"; j++) cls += c[j] === "\\" ? `\\${c[++j]}` : c[j] === "/" || c[j] === "[" ? `\\${c[j]}` : c[j];
      re += `${cls}]`;
      i = j;
    } else {
      const lit = ch === "\\" ? c[++i] : ch;
      re += lit.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    }
  }
  return new RegExp(`^${re}$`, "su");
}

/** One .dockerignore pattern compiled as moby/patternmatcher does (exact, prefix "x**", suffix "**x", or regex). */
class Pattern {
  readonly exclusion: boolean;
  readonly text: string;
  private readonly test: (path: string) => boolean;

  constructor(raw: string) {
    let p = cleanPath(raw);
    this.exclusion = p.startsWith("!");
    if (this.exclusion) {
      if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
      p = p.slice(1);
    }
    if (badGlob(p)) throw new Error(`syntax error in pattern "${p}"`);
    this.text = p;
    this.test = Pattern.compile(p);
  }

  match(path: string): boolean {
    return this.test(path);
  }

  private static compile(p: string): (path: string) => boolean {
    let re = "^";
    let type: "exact" | "prefix" | "suffix" | "regex" = "exact";
    const c = Array.from(p);
    for (let i = 0; i < c.length; i++) {
      const ch = c[i];
      if (ch === "*" && c[i + 1] === "*") {
        const first = i === 0;
        i++;
        if (c[i + 1] === "/") i++;
        if (i + 1 >= c.length) {
          if (type === "exact") type = "prefix";
          else {
            re += ".*";
            type = "regex";
          }
        } else {
          re += "(.*/)?";
          type = "regex";
        }
        if (first) type = "suffix";
      } else if (ch === "*") {
        re += "[^/]*";
        type = "regex";
      } else if (ch === "?") {
        re += "[^/]";
        type = "regex";
      } else if (".+()|{}$".includes(ch)) re += `\\${ch}`;
      else if (ch === "\\") {
        if (i + 1 < c.length) {
          const e = c[++i];
          re += /[\p{L}\p{N}]/u.test(e) ? e : `\\${e}`;
          type = "regex";
        } else re += "\\\\";
      } else if (ch === "[" || ch === "]") {
        re += ch;
        type = "regex";
      } else re += ch;
    }
    switch (type) {
      case "exact":
        return (path) => path === p;
      case "prefix":
        return (path) => path.startsWith(p.slice(0, -2));
      case "suffix": {
        const suffix = p.slice(2);
        return (path) => path.endsWith(suffix) || (suffix.startsWith("/") && path === suffix.slice(1));
      }
      default: {
        const regex = new RegExp(`${re}$`, "su");
        return (path) => regex.test(path);
      }
    }
  }
}

/** moby/patternmatcher's PatternMatcher: the last matching pattern wins, a match of a parent directory counts. */
export class PatternMatcher {
  readonly patterns: Pattern[];

  constructor(patterns: string[]) {
    this.patterns = patterns.map((p) => p.trim()).filter((p) => p !== "").map((p) => new Pattern(p));
  }

  /** Whether a "/"-separated path (or one of its parent directories) is matched and not re-included. */
  matchesOrParentMatches(file: string): boolean {
    let matched = false;
    const parent = cleanPath(file.includes("/") ? file.slice(0, file.lastIndexOf("/")) || "/" : ".");
    const dirs = parent.split("/");
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.match(file);
      if (!match && parent !== ".") {
        for (let i = 0; i < dirs.length && !match; i++) match = pattern.match(dirs.slice(0, i + 1).join("/"));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  get hasExclusions(): boolean {
    return this.patterns.some((p) => p.exclusion);
  }
}

/** .dockerignore's lines as BuildKit reads them: comments dropped, each cleaned, a leading "/" removed. */
export function readIgnoreFile(text: string): string[] {
  const out: string[] = [];
  for (const line of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    if (line.startsWith("#")) continue;
    let p = line.trim();
    if (p === "") continue;
    const invert = p.startsWith("!");
    if (invert) p = p.slice(1).trim();
    if (p !== "") {
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith("/")) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  }
  return out;
}

export class DockerIgnore {
  private readonly matcher: PatternMatcher;

  constructor(text: string) {
    this.matcher = new PatternMatcher(readIgnoreFile(text));
  }

  static async load(contextDir: string): Promise<DockerIgnore> {
    const text = await fs.promises.readFile(path.join(contextDir, ".dockerignore"), "utf8").catch(() => "");
    try {
      return new DockerIgnore(text);
    } catch (e) {
      throw new Error(`${path.join(contextDir, ".dockerignore")}: ${(e as Error).message}`);
    }
  }

  /** Whether a context-relative path ("a/b") is left out. */
  ignores(rel: string): boolean {
    return this.matcher.matchesOrParentMatches(rel);
  }

  /** Whether a directory must still be walked though it is ignored (a "!" pattern may re-include below it). */
  get hasExceptions(): boolean {
    return this.matcher.hasExclusions;
  }
}

export interface ContextFile {
  /** Context-relative, "/"-separated. */
  rel: string;
  abs: string;
  stat: fs.Stats;
}

/** Every file, directory and symlink of the context that .dockerignore leaves in, parents before children. */
export async function listContext(dir: string, ignore: DockerIgnore): Promise<ContextFile[]> {
  const out: ContextFile[] = [];
  const walk = async (relDir: string): Promise<void> => {
    const names = (await fs.promises.readdir(path.join(dir, relDir))).sort();
    for (const name of names) {
      const rel = relDir ? `${relDir}/${name}` : name;
      const abs = path.join(dir, rel);
      const stat = await fs.promises.lstat(abs);
      const ignored = ignore.ignores(rel);
      if (!ignored) out.push({ rel, abs, stat });
      if (stat.isDirectory() && (!ignored || ignore.hasExceptions)) await walk(rel);
    }
  };
  await walk("");
  return out;
}

/** sha256 of a file's content, remembered per path, size and mtime within one process. */
const fileHashes = new Map<string, string>();

export async function fileDigest(file: string, stat: fs.Stats): Promise<string> {
  const key = `${file}\0${stat.size}\0${stat.mtimeMs}\0${stat.ino}`;
  const known = fileHashes.get(key);
  if (known) return known;
  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk);
  const digest = hash.digest("hex");
  fileHashes.set(key, digest);
  return digest;
}

/**
 * One line per file describing what a copy of it yields: name, type, mode and content (not times or owners). With
 * `cache`, contents are looked up there (a check's, between runs) rather than in this process's memory.
 */
export async function describeFiles(files: ContextFile[], cache?: DigestCache): Promise<string> {
  const lines = await Promise.all(
    files.map(async (f) => {
      const mode = (f.stat.mode & 0o7777).toString(8);
      if (f.stat.isSymbolicLink()) return `${f.rel} l ${await fs.promises.readlink(f.abs)}`;
      if (f.stat.isDirectory()) return `${f.rel} d ${mode}`;
      return `${f.rel} f ${mode} ${cache ? (await cache.digest(f.abs)).slice(7) : await fileDigest(f.abs, f.stat)}`;
    }),
  );
  return lines.join("\n");
}

/**
 * The Dockerfile (default "Dockerfile" in the context) and how errors name it. One inside the context is the
 * context's, which may come from anywhere: its symlinks are followed inside the context only, so that a link to a
 * host file is not read (and its first line printed in the parse error). One outside is the user's own path.
 */
export async function readDockerfile(context: string, dockerfile = "Dockerfile"): Promise<{ file: string; label: string; text: string }> {
  const file = path.resolve(context, dockerfile);
  const rel = path.relative(context, file);
  const outside = rel === ".." || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
  const notFound = () => {
    throw new Error(`Dockerfile ${file} not found${outside ? "" : " in the build context"}: give the path of the Dockerfile (relative to the context)`);
  };
  // Unresolvable inside the context (a link loop) is not found: never fall back to the host path the link names.
  const read = outside ? file : await resolveInRoot(context, rel).catch(notFound);
  const text = await fs.promises.readFile(read, "utf8").catch(notFound);
  return { file, label: outside ? file : rel, text };
}

export const sha256Hex = (s: string): string => createHash("sha256").update(s).digest("hex");

/**
 * The digest of everything a build reads: the Dockerfile (which must parse), build args, target and each file
 * .dockerignore leaves in. Equal digests mean the build would make the same image, so it need not run.
 */
export async function buildDigest(req: {
  context: string;
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  /** Where the files' digests are remembered between runs (saved by the caller). */
  cache?: DigestCache;
}): Promise<{ digest: string; dockerfile: { text: string; label: string } }> {
  const { text, label } = await readDockerfile(req.context, req.dockerfile);
  const { instructions } = parseDockerfile(text, label);
  if (req.target !== undefined) {
    const stages = instructions.filter((i) => i.name === "FROM").map((i) => (i.args.length === 3 && /^as$/i.test(i.args[1]) ? i.args[2] : undefined));
    if (!stages.some((s) => s?.toLowerCase() === req.target!.toLowerCase())) {
      throw new Error(`target stage "${req.target}" could not be found in ${label} (stages: ${stages.filter(Boolean).join(", ") || "none named"})`);
    }
  }
  const files = await listContext(req.context, await DockerIgnore.load(req.context));
  const listing = await describeFiles(files, req.cache);
  const digest = `sha256:${sha256Hex(canonicalJson({ dockerfile: text, args: req.buildArgs ?? {}, target: req.target ?? "", listing }))}`;
  return { digest, dockerfile: { text, label } };
}
