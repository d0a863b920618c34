// The Dockerfile parser: parser directives, comments, line continuations (with the escape directive), and each
// instruction's flags and shell or exec (JSON) form. It knows syntax only; meaning is the builder's.

export const INSTRUCTIONS = [
  "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
  "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
] as const;
export type InstructionName = (typeof INSTRUCTIONS)[number];

/** Instructions whose argument may be a JSON array (exec form). */
const JSON_FORM = new Set<InstructionName>(["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"]);
/** The --flags each instruction accepts. */
const FLAGS: Partial<Record<InstructionName, string[]>> = {
  FROM: ["platform"],
  COPY: ["from", "chown", "chmod", "link"],
  ADD: ["chown", "chmod", "link", "checksum"],
  HEALTHCHECK: ["interval", "timeout", "start-period", "start-interval", "retries"],
};

export interface Instruction {
  name: InstructionName;
  /** 1-based line of the instruction's first line. */
  line: number;
  flags: Record<string, string>;
  /** Exec form: the JSON array's strings. Shell form: one string, the rest of the line. */
  args: string[];
  json: boolean;
  /** The instruction as written, continuations joined (what history and the cache key show). */
  text: string;
}

export class DockerfileSyntaxError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = "DockerfileSyntaxError";
  }
}

export interface ParsedDockerfile {
  directives: Record<string, string>;
  instructions: Instruction[];
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

export function parseDockerfile(text: string, file = "Dockerfile"): ParsedDockerfile {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const directives: Record<string, string> = {};
  let i = 0;
  // Directives only count before the first instruction, comment or blank line.
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]);
    if (!m || m[1].toLowerCase() in directives) break;
    directives[m[1].toLowerCase()] = m[2];
  }
  const escape = directives.escape ?? "\\";
  if (escape !== "\\" && escape !== "`") {
    throw new DockerfileSyntaxError(file, i, `invalid escape directive "${escape}": it must be \\ or \``);
  }
  const instructions: Instruction[] = [];
  for (; i < lines.length; i++) {
    const first = lines[i];
    if (/^\s*(#|$)/.test(first)) continue;
    const start = i + 1;
    let joined = "";
    let line = first;
    // A line ending in the escape character continues on the next; comment lines inside are dropped.
    for (;;) {
      const trimmed = line.replace(/\s+$/, "");
      if (!trimmed.endsWith(escape)) {
        joined += line.trim();
        break;
      }
      joined += trimmed.slice(0, -1).trimStart();
      do i++;
      while (i < lines.length && /^\s*(#|$)/.test(lines[i]));
      if (i >= lines.length) break;
      line = lines[i];
    }
    instructions.push(parseInstruction(joined, start, file));
  }
  return { directives, instructions };
}

export function parseInstruction(text: string, line: number, file: string): Instruction {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(text)!;
  const name = m[1].toUpperCase() as InstructionName;
  if (!(INSTRUCTIONS as readonly string[]).includes(name)) {
    throw new DockerfileSyntaxError(file, line, `unknown instruction: ${m[1]}`);
  }
  let rest = m[2];
  const flags: Record<string, string> = {};
  const allowed = FLAGS[name] ?? [];
  for (let f = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest); f && name !== "RUN" && name !== "ONBUILD"; f = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest)) {
    if (!allowed.includes(f[1])) {
      const known = allowed.length ? ` (${name} takes ${allowed.map((a) => `--${a}`).join(", ")})` : "";
      throw new DockerfileSyntaxError(file, line, `unknown flag: --${f[1]} for ${name}${known}`);
    }
    flags[f[1]] = f[2] ?? "true";
    rest = rest.slice(f[0].length);
  }
  if (name === "RUN" && /^--(mount|network|security)\b/.test(rest)) {
    throw new DockerfileSyntaxError(file, line, `RUN ${rest.split(/\s/)[0]} is not supported by berth's builder`);
  }
  let args: string[] = [rest];
  let json = false;
  if (JSON_FORM.has(name) && rest.startsWith("[")) {
    try {
      const parsed: unknown = JSON.parse(rest);
      if (Array.isArray(parsed) && parsed.every((a) => typeof a === "string")) {
        args = parsed;
        json = true;
      }
    } catch {
      // Not valid JSON: Docker reads it as shell form, and so does berth.
    }
  }
  if (name === "SHELL" && !json) {
    throw new DockerfileSyntaxError(file, line, 'SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]');
  }
  if (!json && rest.trim() === "") throw new DockerfileSyntaxError(file, line, `${name} requires at least one argument`);
  return { name, line, flags, args, json, text };
}
