// The build context: its files minus what .dockerignore excludes (Docker's rules: Go filepath.Match patterns
// plus "**", "!" re-includes, the last matching pattern wins, a pattern matching a directory covers what is under
// it), and a digest of exactly what a build could read — so an unchanged context means an unchanged digest.
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { canonicalJson } from "../json-file";
import { parseDockerfile } from "./dockerfile";

interface Pattern {
  re: RegExp;
  exclude: boolean;
}

/** A Go filepath.Match pattern (plus "**") as a regex over "/"-separated relative paths. */
export function matchPattern(p: string): RegExp {
  let re = "";
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === "*" && p[i + 1] === "*") {
      i++;
      if (p[i + 1] === "/") {
        i++;
        re += "(?:.*/)?";
      } else re += ".*";
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = p.indexOf("]", i);
      re += end < 0 ? "\\[" : p.slice(i, end + 1).replace(/^\[!/, "[^");
      if (end >= 0) i = end;
    } else if (c === "\\" && i + 1 < p.length) re += `\\${p[++i]}`;
    else re += c.replace(/[.+^${}()|]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

export class DockerIgnore {
  private readonly patterns: Pattern[];

  constructor(text: string) {
    this.patterns = text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => {
        const exclude = !l.startsWith("!");
        const body = path.posix.normalize((exclude ? l : l.slice(1).trim()).replace(/^\/+/, ""));
        return { re: matchPattern(body), exclude };
      });
  }

  static async load(contextDir: string): Promise<DockerIgnore> {
    return new DockerIgnore(await fs.promises.readFile(path.join(contextDir, ".dockerignore"), "utf8").catch(() => ""));
  }

  /** Whether a context-relative path ("a/b") is left out. */
  ignores(rel: string): boolean {
    const parts = rel.split("/");
    let ignored = false;
    for (const p of this.patterns) {
      for (let n = 1; n <= parts.length; n++) {
        if (p.re.test(parts.slice(0, n).join("/"))) {
          ignored = p.exclude;
          break;
        }
      }
    }
    return ignored;
  }

  /** Whether a directory must still be walked though it is ignored (a "!" pattern may re-include below it). */
  get hasExceptions(): boolean {
    return this.patterns.some((p) => !p.exclude);
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

/** One line per file describing what a copy of it yields: name, type, mode and content (not times or owners). */
export async function describeFiles(files: ContextFile[]): Promise<string> {
  const lines = await Promise.all(
    files.map(async (f) => {
      const mode = (f.stat.mode & 0o7777).toString(8);
      if (f.stat.isSymbolicLink()) return `${f.rel} l ${await fs.promises.readlink(f.abs)}`;
      if (f.stat.isDirectory()) return `${f.rel} d ${mode}`;
      return `${f.rel} f ${mode} ${await fileDigest(f.abs, f.stat)}`;
    }),
  );
  return lines.join("\n");
}

export const sha256Hex = (s: string): string => createHash("sha256").update(s).digest("hex");

/**
 * The digest of everything a build reads: the Dockerfile (which must parse), build args, target and each file
 * .dockerignore leaves in. Equal digests mean the build would make the same image, so it need not run.
 */
export async function buildDigest(req: { context: string; dockerfile?: string; buildArgs?: Record<string, string>; target?: string }): Promise<string> {
  const file = path.resolve(req.context, req.dockerfile ?? "Dockerfile");
  const label = path.relative(req.context, file).startsWith("..") ? file : path.relative(req.context, file);
  const text = await fs.promises.readFile(file, "utf8").catch(() => {
    throw new Error(`Dockerfile ${file} not found: give the path of the Dockerfile (relative to the context)`);
  });
  const { instructions } = parseDockerfile(text, label);
  if (req.target !== undefined) {
    const stages = instructions.filter((i) => i.name === "FROM").map((i) => /\s+as\s+(\S+)\s*$/i.exec(i.args[0])?.[1]);
    if (!stages.some((s) => s?.toLowerCase() === req.target!.toLowerCase())) {
      throw new Error(`target stage "${req.target}" could not be found in ${label} (stages: ${stages.filter(Boolean).join(", ") || "none named"})`);
    }
  }
  const files = await listContext(req.context, await DockerIgnore.load(req.context));
  const listing = await describeFiles(files);
  return `sha256:${sha256Hex(canonicalJson({ dockerfile: text, args: req.buildArgs ?? {}, target: req.target ?? "", listing }))}`;
}
