// The Dockerfile parser, as BuildKit's: parser directives (one each of escape, syntax, check), comments, line
// continuations (the escape character last on a line, unless itself escaped), heredocs (RUN, COPY, ADD),
// BuildKit's per-instruction argument forms, and its parse tree with `dump()` in BuildKit's own format (checked
// against BuildKit's testfiles). It knows syntax only; meaning is the builder's.
import { expandWords } from "./words";

export const INSTRUCTIONS = [
  "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
  "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
] as const;
export type InstructionName = (typeof INSTRUCTIONS)[number];

/** The --flags each instruction accepts; those in BOOL_FLAGS may stand alone. */
const FLAGS: Partial<Record<InstructionName, string[]>> = {
  FROM: ["platform"],
  COPY: ["from", "chown", "chmod", "link", "parents", "exclude"],
  ADD: ["chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"],
  RUN: ["mount", "network", "security"],
  HEALTHCHECK: ["interval", "timeout", "start-period", "start-interval", "retries"],
};
const BOOL_FLAGS = new Set(["link", "parents", "keep-git-dir"]);
/** Flags that may be given more than once (each value kept, in order). */
export const LIST_FLAGS = new Set(["mount", "exclude"]);

/** BuildKit's bufio.Scanner limit: a line (with its newline) must fit in 64 KiB. */
export const MAX_LINE_BYTES = 64 * 1024 - 1;

export interface Heredoc {
  name: string;
  fileDescriptor: number;
  /** Whether the body is expanded (the delimiter was not quoted). */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body lines and the delimiter line. */
  chomp: boolean;
  content: string;
}

/** BuildKit's parse tree: a value, the next value of the same expression, sub-expressions (ONBUILD). */
export interface Node {
  value: string;
  next?: Node;
  children: Node[];
  heredocs: Heredoc[];
  json: boolean;
  original: string;
  flags: string[];
  startLine: number;
  endLine: number;
}

const node = (value: string, next?: Node): Node => ({ value, next, children: [], heredocs: [], json: false, original: "", flags: [], startLine: 0, endLine: 0 });

/** Go's strconv.Quote. */
function goQuote(s: string): string {
  const named: Record<string, string> = { "\x07": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\" };
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (named[ch]) out += named[ch];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else if (ch === " " || /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch)) out += ch;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += `\\U${cp.toString(16).padStart(8, "0")}`;
  }
  return `${out}"`;
}

/** BuildKit's Node.Dump: `(cmd ["--flag"] "arg" …)` lines. */
export function dump(n: Node): string {
  let s = n.value.toLowerCase();
  if (n.flags.length > 0) s += ` [${n.flags.map(goQuote).join(" ")}]`;
  for (const c of n.children) s += `(${dump(c)})\n`;
  for (let x = n.next; x; x = x.next) s += " " + (x.children.length > 0 ? dump(x) : goQuote(x.value));
  return s.trim();
}

export class DockerfileSyntaxError extends Error {
  constructor(file: string, line: number, message: string) {
    super(`${file}:${line}: ${message}`);
    this.name = "DockerfileSyntaxError";
  }
}

// ---- splitting a line into command, flags and the rest (BuildKit's splitCommand) ----

const isSpace = (c: string | undefined): boolean => c !== undefined && /^\s$/u.test(c);
const WHITESPACE = /[\t\v\f\r ]+/;

/**
 * BuildKit's word scanner. Raw (the argument forms): words at unquoted whitespace with quotes and escapes kept,
 * removed later at expansion. Flags (splitCommand): the leading `--flag[=value]` words with quotes and
 * backslashes removed, up to the first other word or a `--`, and the rest of the line.
 */
function scanWords(line: string, o: { escape: string; raw: boolean; flags: boolean }): { words: string[]; rest: string } {
  const chars = Array.from(line);
  const words: string[] = [];
  const rest = (pos: number) => ({ words, rest: chars.slice(pos).join("") });
  let word = "";
  let phase: "spaces" | "word" | "quote" = "spaces";
  let quote = "";
  let blankOk = false;
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = chars[pos];
    if (phase === "spaces") {
      if (pos === chars.length) break;
      if (isSpace(ch)) continue;
      if (o.flags && (ch !== "-" || chars[pos + 1] !== "-")) return rest(pos);
      phase = "word";
    }
    if (pos === chars.length) {
      if (!(o.flags && word === "--") && (blankOk || word)) words.push(word);
      break;
    }
    if (phase === "word") {
      if (isSpace(ch)) {
        phase = "spaces";
        if (o.flags && word === "--") return rest(pos);
        if (blankOk || word) words.push(word);
        word = "";
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = "quote";
        if (!o.raw) continue;
      }
      if (ch === o.escape) {
        if (pos + 1 === chars.length) continue;
        if (o.raw) word += ch;
        ch = chars[++pos];
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = "word";
      if (!o.raw) continue;
    }
    // Raw, nothing escapes inside single quotes; the flag scanner takes a backslash in either.
    if (ch === o.escape && (!o.raw || quote !== "'")) {
      if (pos + 1 === chars.length) {
        phase = "word";
        continue;
      }
      if (o.raw) word += ch;
      ch = chars[++pos];
    }
    word += ch;
  }
  return { words, rest: "" };
}

const extractFlags = (line: string): { rest: string; flags: string[] } => {
  const { words, rest } = scanWords(line, { escape: "\\", raw: false, flags: true });
  return { rest, flags: words };
};

// ---- the argument forms (BuildKit's line parsers) ----

const parseWords = (rest: string, escape: string): string[] => scanWords(rest, { escape, raw: true, flags: false }).words;

function chain(values: string[]): Node | undefined {
  let head: Node | undefined;
  for (let i = values.length - 1; i >= 0; i--) head = node(values[i], head);
  return head;
}

/** ENV and LABEL: `key=value …` (each a key, value, "=" triple) or the legacy `key value with spaces`. */
function parseNameVal(rest: string, cmd: string, escape: string): Node | undefined {
  const words = parseWords(rest, escape);
  if (words.length === 0) return undefined;
  if (!words[0].includes("=")) {
    const m = WHITESPACE.exec(rest);
    if (!m) throw new Error(`${cmd.toUpperCase()} must have two arguments`);
    return chain([rest.slice(0, m.index), rest.slice(m.index + m[0].length), ""]);
  }
  return chain(
    words.flatMap((w) => {
      const eq = w.indexOf("=");
      if (eq < 0) throw new Error(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
      return [w.slice(0, eq), w.slice(eq + 1), "="];
    }),
  );
}

class NotStringArray extends Error {}

/** A JSON array of strings; undefined when the text is not a JSON array at all. */
function parseJson(rest: string): Node | undefined | "empty" {
  rest = rest.trimStart();
  if (!rest.startsWith("[")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(rest);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  if (!parsed.every((a) => typeof a === "string")) throw new NotStringArray("when using JSON array syntax, arrays must be comprised of strings only");
  return chain(parsed) ?? "empty";
}

interface Parsed {
  next?: Node;
  json: boolean;
}

function maybeJson(rest: string): Parsed {
  if (rest === "") return { json: false };
  const j = parseJson(rest);
  if (j !== undefined) return { next: j === "empty" ? undefined : j, json: true };
  return { next: node(rest), json: false };
}

function maybeJsonToList(rest: string): Parsed {
  const j = parseJson(rest);
  if (j !== undefined) return { next: j === "empty" ? undefined : j, json: true };
  return { next: rest === "" ? undefined : chain(rest.split(WHITESPACE)), json: false };
}

type LineParser = (rest: string, d: Directives) => Parsed;

const DISPATCH: Record<string, LineParser> = {
  add: maybeJsonToList,
  copy: maybeJsonToList,
  volume: maybeJsonToList,
  cmd: maybeJson,
  entrypoint: maybeJson,
  run: maybeJson,
  shell: maybeJson,
  env: (rest, d) => ({ next: parseNameVal(rest, "ENV", d.escape), json: false }),
  label: (rest, d) => ({ next: parseNameVal(rest, "LABEL", d.escape), json: false }),
  arg: (rest, d) => ({ next: chain(parseWords(rest, d.escape)), json: false }),
  expose: (rest) => ({ next: rest === "" ? undefined : chain(rest.split(WHITESPACE)), json: false }),
  from: (rest) => ({ next: rest === "" ? undefined : chain(rest.split(WHITESPACE)), json: false }),
  maintainer: (rest) => ({ next: rest === "" ? undefined : node(rest), json: false }),
  stopsignal: (rest) => ({ next: rest === "" ? undefined : node(rest), json: false }),
  user: (rest) => ({ next: rest === "" ? undefined : node(rest), json: false }),
  workdir: (rest) => ({ next: rest === "" ? undefined : node(rest), json: false }),
  healthcheck: (rest) => {
    const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
    if (!m) return { json: false };
    const cmd = maybeJson(m[2]);
    return { next: node(m[1], cmd.next), json: cmd.json };
  },
  onbuild: (rest, d) => {
    if (rest === "") return { json: false };
    const sub = nodeFromLine(rest, d);
    return { next: { ...node(""), children: [sub] }, json: false };
  },
};

function nodeFromLine(line: string, d: Directives): Node {
  const trimmed = line.trim();
  const m = WHITESPACE.exec(trimmed);
  const cmd = m ? trimmed.slice(0, m.index) : trimmed;
  const { rest, flags } = m ? extractFlags(trimmed.slice(m.index + m[0].length)) : { rest: "", flags: [] };
  const parse = DISPATCH[cmd.toLowerCase()] ?? (() => ({ next: node(""), json: false }));
  const { next, json } = parse(rest.trim(), d);
  return { ...node(cmd, next), original: line, flags, json };
}

// ---- heredocs ----

const HEREDOC_COMMANDS = new Set(["add", "copy", "run"]);

function canContainHeredoc(n: Node): boolean {
  if (n.value.toLowerCase() === "onbuild" && n.next?.children.length) n = n.next.children[0];
  return HEREDOC_COMMANDS.has(n.value.toLowerCase()) && !n.json;
}

/** A heredoc start `[n]<<[-]WORD` (WORD possibly quoted, then not expanded); undefined for any other word. */
export function parseHeredoc(word: string): Heredoc | undefined {
  const m = /^(\d*)<<(-?)([^<]*)$/.exec(word);
  if (!m || m[3] === "") return undefined;
  const plain = expandWords(m[3], new Map(), "\\", { skipUnsetEnv: true });
  if (plain.length !== 1) return undefined;
  const raw = expandWords(m[3], new Map(), "\\", { skipUnsetEnv: true, rawQuotes: true });
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  return { name: plain[0], fileDescriptor: Number(m[1] || 0), expand: quotes(plain[0]) === quotes(raw[0]), chomp: m[2] === "-", content: "" };
}

function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = expandWords(line, new Map(), "\\", { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  } catch {
    words = [];
  }
  return words.map(parseHeredoc).filter((h): h is Heredoc => h !== undefined);
}

/** A heredoc body with `<<-` applied (leading tabs of each line removed). */
export const chompHeredoc = (s: string): string => s.replace(/^\t+/gm, "");

// ---- the file ----

interface Directives {
  escape: string;
  continuation: RegExp;
  done: boolean;
  seen: Record<string, string>;
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const VALID_DIRECTIVES = new Set(["escape", "syntax", "check"]);

function setEscape(d: Directives, s: string): void {
  if (s !== "`" && s !== "\\") throw new Error(`invalid escape token '${s}' does not match \` or \\`);
  d.escape = s;
  const e = `\\${s}`;
  // The escape character last on a line continues it, unless it is itself escaped.
  d.continuation = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

function directive(d: Directives, line: string): void {
  if (d.done) return;
  const m = DIRECTIVE.exec(line);
  const k = m?.[1].toLowerCase();
  if (!m || !VALID_DIRECTIVES.has(k!)) {
    d.done = true;
    return;
  }
  if (k! in d.seen) throw new Error(`only one ${k} parser directive can be used`);
  d.seen[k!] = m[2];
  if (k === "escape") setEscape(d, m[2]);
}

const trimNewline = (s: string): string => s.replace(/[\r\n]+$/, "");
const isComment = (s: string): boolean => trimNewline(s).trimStart().startsWith("#");

export interface ParseResult {
  /** The root: one child per instruction, with its lines. */
  root: Node;
  directives: Record<string, string>;
  escape: string;
  warnings: string[];
}

/** Parses a Dockerfile into BuildKit's tree; errors carry the 1-based line as `line`. */
export function parseTree(text: string): ParseResult {
  const d: Directives = { escape: "\\", continuation: /$^/, done: false, seen: {} };
  setEscape(d, "\\");
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  if (lines.length > 0) lines[0] = lines[0]!.replace(/^\uFEFF/, "");
  const root: Node = { ...node(""), startLine: -1 };
  const warnings: string[] = [];
  let i = 0;
  let current = 0;
  const fail = (e: unknown, line: number): never => {
    throw Object.assign(new Error((e as Error).message), { line });
  };
  const scan = (): string | undefined => {
    const l = lines[i++];
    if (l !== undefined && Buffer.byteLength(trimNewline(l)) > MAX_LINE_BYTES) fail(new Error(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`), i);
    return l;
  };
  const processLine = (raw: string, stripLeft: boolean): string => {
    let token = trimNewline(raw);
    if (stripLeft) token = token.trimStart();
    try {
      directive(d, token);
    } catch (e) {
      fail(e, current + 1);
    }
    return token.startsWith("#") ? "" : token;
  };
  const trimContinuation = (line: string): [string, boolean] =>
    d.continuation.test(line) ? [line.replace(d.continuation, "$1"), false] : [line, true];

  for (let raw = scan(); raw !== undefined; raw = scan()) {
    const first = processLine(raw, true);
    current++;
    const start = current;
    let [line, end] = trimContinuation(first);
    if (end && line === "") continue;
    let emptyContinuation = false;
    while (!end) {
      const next = scan();
      if (next === undefined) break;
      const token = processLine(next, false);
      current++;
      if (isComment(next)) continue;
      if (token.trim() === "") {
        emptyContinuation = true;
        continue;
      }
      let part: string;
      [part, end] = trimContinuation(token);
      line += part;
    }
    if (emptyContinuation) warnings.push(`Empty continuation line found in: ${line}`);
    let child: Node;
    try {
      child = nodeFromLine(line, d);
    } catch (e) {
      return fail(e, start);
    }
    if (canContainHeredoc(child)) {
      for (const heredoc of heredocsFromLine(line)) {
        let terminated = false;
        for (let body = scan(); body !== undefined; body = scan()) {
          current++;
          let candidate = trimNewline(body);
          if (heredoc.chomp) candidate = candidate.replace(/^\t+/, "");
          if (candidate === heredoc.name) {
            terminated = true;
            break;
          }
          heredoc.content += body;
        }
        if (!terminated) fail(new Error(`unterminated heredoc ${heredoc.name}`), start);
        child.heredocs.push(heredoc);
      }
    }
    child.startLine = start;
    child.endLine = current;
    if (root.startLine < 0) root.startLine = start;
    root.endLine = current;
    root.children.push(child);
  }
  if (root.startLine < 0) fail(new Error("file with no instructions"), current);
  return { root, directives: d.seen, escape: d.escape, warnings };
}

// ---- instructions: the tree as the builder reads it ----

export interface Instruction {
  name: InstructionName;
  /** 1-based lines of the instruction's first and last line (heredoc bodies included). */
  line: number;
  endLine: number;
  /** Each flag's value (the last, for a repeated flag); a lone boolean flag is "true". */
  flags: Record<string, string>;
  /** Every value of the flags that may repeat (--mount, --exclude), in order. */
  flagLists: Record<string, string[]>;
  /**
   * Exec form: the JSON array's strings. Otherwise as BuildKit splits it: RUN/CMD/ENTRYPOINT/SHELL, USER,
   * WORKDIR, STOPSIGNAL, MAINTAINER and ONBUILD one string; COPY/ADD/VOLUME/EXPOSE/FROM/ARG the words;
   * HEALTHCHECK the type ("CMD", "NONE") then the command; ENV/LABEL see `pairs`.
   */
  args: string[];
  /** ENV and LABEL: [key, value] as written (quotes kept, expanded by the builder). */
  pairs: Array<[string, string]>;
  json: boolean;
  heredocs: Heredoc[];
  /** The instruction as written, continuations joined (what history and the cache key show). */
  text: string;
}

function values(n: Node | undefined): string[] {
  const out: string[] = [];
  for (let x = n; x; x = x.next) out.push(x.value);
  return out;
}

function toInstruction(n: Node, file: string): Instruction {
  const name = n.value.toUpperCase() as InstructionName;
  const line = n.startLine;
  if (!(INSTRUCTIONS as readonly string[]).includes(name)) throw new DockerfileSyntaxError(file, line, `unknown instruction: ${n.value}`);
  const flags: Record<string, string> = {};
  const flagLists: Record<string, string[]> = {};
  const allowed = FLAGS[name] ?? [];
  for (const f of n.flags) {
    const m = /^--([^=]+)(?:=([\s\S]*))?$/.exec(f);
    const key = m?.[1] ?? f;
    if (!m || !allowed.includes(key)) {
      const known = allowed.length ? ` (${name} takes ${allowed.map((a) => `--${a}`).join(", ")})` : "";
      throw new DockerfileSyntaxError(file, line, `unknown flag: ${m ? `--${key}` : f} for ${name}${known}`);
    }
    if (m[2] === undefined && !BOOL_FLAGS.has(key)) throw new DockerfileSyntaxError(file, line, `missing a value on flag: --${key} (write --${key}=VALUE)`);
    flags[key] = m[2] ?? "true";
    if (LIST_FLAGS.has(key)) (flagLists[key] ??= []).push(m[2]!);
  }
  const text = n.original.trim();
  let args = values(n.next);
  let pairs: Array<[string, string]> = [];
  if (name === "ENV" || name === "LABEL") {
    for (let i = 0; i + 1 < args.length; i += 3) pairs.push([args[i], args[i + 1]]);
    args = [];
  } else if (name === "ONBUILD") args = args.length ? [text.replace(/^\S+\s*/, "")] : [];
  const needsArgs = !(n.json || (name === "HEALTHCHECK" && args[0]?.toUpperCase() === "NONE"));
  if (needsArgs && args.length === 0 && pairs.length === 0) throw new DockerfileSyntaxError(file, line, `${name} requires at least one argument`);
  if (name === "SHELL" && !n.json) throw new DockerfileSyntaxError(file, line, 'SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]');
  return { name, line, endLine: n.endLine, flags, flagLists, args, pairs, json: n.json, heredocs: n.heredocs, text };
}

export interface ParsedDockerfile {
  directives: Record<string, string>;
  escape: string;
  instructions: Instruction[];
}

export function parseDockerfile(text: string, file = "Dockerfile"): ParsedDockerfile {
  let tree: ParseResult;
  try {
    tree = parseTree(text);
  } catch (e) {
    throw new DockerfileSyntaxError(file, (e as { line?: number }).line ?? 1, (e as Error).message);
  }
  return { directives: tree.directives, escape: tree.escape, instructions: tree.root.children.map((c) => toInstruction(c, file)) };
}

/** One instruction from its text (an ONBUILD trigger), as it would parse on line `line` of `file`. */
export function parseInstruction(text: string, line: number, file: string, escape = "\\"): Instruction {
  const d: Directives = { escape: "\\", continuation: /$^/, done: true, seen: {} };
  setEscape(d, escape);
  let n: Node;
  try {
    n = nodeFromLine(text, d);
  } catch (e) {
    throw new DockerfileSyntaxError(file, line, (e as Error).message);
  }
  return toInstruction({ ...n, startLine: line, endLine: line }, file);
}
