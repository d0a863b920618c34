// Docker's variable expansion and word splitting, as BuildKit's shell lexer does it (checked against its
// envVarTest and wordsTest data): $VAR, ${VAR}, ${VAR:-w} ${VAR-w} ${VAR:+w} ${VAR+w} ${VAR:?m} ${VAR?m},
// ${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p}, ${VAR/p/r} ${VAR//p/r}; positional ($1) and special ($@ $# $? …)
// parameters are never set. Single quotes are literal, double quotes group and still expand, the escape
// character quotes the next one (inside double quotes only before " $ and itself).

export type Vars = ReadonlyMap<string, string>;

export interface LexOptions {
  escape?: string;
  /** Keep quote characters in the result (the heredoc parser's view). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Leave unset variables as written instead of expanding them to "". */
  skipUnsetEnv?: boolean;
  /** Quotes are ordinary characters (a heredoc body). */
  skipProcessQuotes?: boolean;
}

const isSpace = (c: string): boolean => /^\s$/u.test(c);
const isDigit = (c: string): boolean => /^\p{Nd}$/u.test(c);
const isNameChar = (c: string): boolean => /^[\p{L}\p{Nd}_]$/u.test(c);
const SPECIAL_PARAMS = "@*#?-$!0";

/** The words of an expansion: unquoted spaces (from the source or a variable's value) separate them. */
class Words {
  word = "";
  words: string[] = [];
  inWord = false;

  addChar(c: string): void {
    if (isSpace(c)) {
      if (this.inWord && this.word.length > 0) {
        this.words.push(this.word);
        this.word = "";
        this.inWord = false;
      }
    } else this.addRaw(c);
  }

  addRaw(s: string): void {
    this.word += s;
    this.inWord = true;
  }

  addString(s: string): void {
    for (const c of s) this.addChar(c);
  }

  done(): string[] {
    if (this.word.length > 0) this.words.push(this.word);
    this.word = "";
    return this.words;
  }
}

class Lexer {
  private readonly chars: string[];
  private pos = 0;
  private readonly escape: string;
  private rawEscapes: boolean;

  constructor(
    source: string,
    private readonly vars: Vars,
    private readonly o: LexOptions,
  ) {
    this.chars = Array.from(source);
    this.escape = o.escape ?? "\\";
    this.rawEscapes = o.rawEscapes ?? false;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  /** Reads to the end (or to stopChar, consumed): the result as one string and as words. */
  process(stopChar?: string, rawEscapes = this.rawEscapes): { result: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = "";
      const words = new Words();
      for (let c = this.peek(); c !== undefined; c = this.peek()) {
        if (stopChar !== undefined && c === stopChar) {
          this.next();
          return { result, words: words.done() };
        }
        if (c === "$") {
          const v = this.dollar();
          result += v;
          words.addString(v);
        } else if (c === "'" && !this.o.skipProcessQuotes) {
          const v = this.singleQuote();
          result += v;
          words.addRaw(v);
        } else if (c === '"' && !this.o.skipProcessQuotes) {
          const v = this.doubleQuote();
          result += v;
          words.addRaw(v);
        } else {
          let ch = this.next()!;
          if (ch === this.escape) {
            if (this.rawEscapes) {
              words.addRaw(ch);
              result += ch;
            }
            const escaped = this.next();
            if (escaped === undefined) break;
            ch = escaped;
            words.addRaw(ch);
          } else words.addChar(ch);
          result += ch;
        }
      }
      if (stopChar !== undefined) throw new Error(`unexpected end of statement while looking for matching ${stopChar}`);
      return { result, words: words.done() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private singleQuote(): string {
    let result = this.o.rawQuotes ? this.next()! : (this.next(), "");
    for (;;) {
      const c = this.next();
      if (c === undefined) throw new Error("unexpected end of statement while looking for matching single-quote");
      if (c === "'") return this.o.rawQuotes ? result + c : result;
      result += c;
    }
  }

  private doubleQuote(): string {
    let result = this.o.rawQuotes ? this.next()! : (this.next(), "");
    for (;;) {
      const c = this.peek();
      if (c === undefined) throw new Error("unexpected end of statement while looking for matching double-quote");
      if (c === '"') {
        this.next();
        return this.o.rawQuotes ? result + c : result;
      }
      if (c === "$") {
        result += this.dollar();
        continue;
      }
      let ch = this.next()!;
      if (ch === this.escape) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === undefined) continue;
        if (after === '"' || after === "$" || after === this.escape) ch = this.next()!;
      }
      result += ch;
    }
  }

  private lookup(name: string): string | undefined {
    return this.vars.get(name);
  }

  private dollar(): string {
    this.next(); // $
    if (this.peek() !== "{") {
      const name = this.name();
      if (name === "") return "$";
      const value = this.lookup(name);
      if (value === undefined && this.o.skipUnsetEnv) return `$${name}`;
      return value ?? "";
    }
    this.next(); // {
    const first = this.peek();
    if (first === undefined) throw new Error("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") throw new Error("syntax error: bad substitution");
    const name = this.name();
    let ch = this.next();
    if (ch === undefined) throw new Error("syntax error: missing '}'");
    let mod = ch;
    if (ch === "}") {
      const value = this.lookup(name);
      if (value === undefined && this.o.skipUnsetEnv) return `\${${name}}`;
      return value ?? "";
    }
    let nullIsUnset = false;
    if (ch === ":") {
      nullIsUnset = true;
      ch = this.next();
      mod += ch ?? "";
    }
    if (ch !== undefined && "+-?#%".includes(ch)) {
      let word: string;
      try {
        word = this.process("}", ch === "#" || ch === "%").result;
      } catch (e) {
        if (this.peek() === undefined) throw new Error("syntax error: missing '}'");
        throw e;
      }
      const value = this.lookup(name);
      if (this.o.skipUnsetEnv && value === undefined) return `\${${name}${mod}${word}}`;
      const unset = value === undefined || (nullIsUnset && value === "");
      switch (ch) {
        case "-":
          return unset ? word : value!;
        case "+":
          return unset ? "" : word;
        case "?":
          if (value === undefined) throw new Error(`${name}: ${word || "is not allowed to be unset"}`);
          if (unset) throw new Error(`${name}: ${word || "is not allowed to be empty"}`);
          return value;
        default: {
          const greedy = word.startsWith(ch);
          const pattern = greedy ? word.slice(1) : word;
          return ch === "%" ? trimSuffix(pattern, value ?? "", greedy) : trimPrefix(pattern, value ?? "", greedy);
        }
      }
    }
    if (ch === "/" && !nullIsUnset) {
      const all = this.peek() === "/";
      if (all) this.next();
      const part = (stop: string, missing: string): string => {
        try {
          return this.process(stop, true).result;
        } catch (e) {
          if (this.peek() === undefined) throw new Error(`syntax error: missing '${missing}'${stop === "/" ? " in ${}" : ""}`);
          throw e;
        }
      };
      const pattern = part("/", "/");
      const replacement = part("}", "}");
      const value = this.lookup(name);
      if (this.o.skipUnsetEnv && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
      const re = shellPattern(pattern, true, false, all ? "g" : "");
      return (value ?? "").replace(re, () => replacement);
    }
    throw new Error(`unsupported modifier (${mod}) in substitution`);
  }

  /** A name, a run of digits (positional) or one special parameter character. */
  private name(): string {
    let name = "";
    for (let c = this.peek(); c !== undefined; c = this.peek()) {
      if (name === "" && isDigit(c)) {
        while (this.peek() !== undefined && isDigit(this.peek()!)) name += this.next();
        return name;
      }
      if (name === "" && SPECIAL_PARAMS.includes(c)) return this.next()!;
      if (!isNameChar(c)) break;
      name += this.next();
    }
    return name;
  }
}

/** A shell pattern (? one character, * shortest or longest run, \ escapes * ? \) as a regex. */
function shellPattern(pattern: string, greedy: boolean, anchored: boolean, flags = ""): RegExp {
  const chars = Array.from(pattern);
  let re = anchored ? "^" : "";
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === "*") re += greedy ? ".*" : ".*?";
    else if (c === "?") re += ".";
    else if (c === "\\") {
      if (chars[i + 1] === "}" || chars[i + 1] === "/") continue;
      const e = chars[++i];
      if (e !== "*" && e !== "?" && e !== "\\") throw new Error(`invalid pattern (${pattern}) in substitution: invalid escape '\\${e ?? ""}'`);
      re += `\\${e}`;
    } else re += c.replace(/[[\]{}.+()|^$]/, "\\$&");
  }
  return new RegExp(re, `su${flags}`);
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPattern(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

/** Reverses a pattern keeping each escape before the character it escapes. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = [];
  for (let i = 0; i < chars.length; ) {
    if (chars[i] === "\\" && i !== chars.length - 1) {
      out.unshift("\\" + chars[i + 1]);
      i += 2;
    } else out.unshift(chars[i++]);
  }
  return out.join("");
}

const reverse = (s: string): string => Array.from(s).reverse().join("");

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}

function lex(s: string, vars: Vars, o: LexOptions): { result: string; words: string[] } {
  try {
    return new Lexer(s, vars, o).process();
  } catch (e) {
    throw new Error(`failed to process "${s}": ${(e as Error).message}`);
  }
}

/** The argument expanded into one word (its spaces kept): BuildKit's ProcessWord. */
export function expandWord(s: string, vars: Vars, escape = "\\"): string {
  return lex(s, vars, { escape }).result;
}

/** A heredoc body expanded (quotes are plain characters there). */
export function expandHeredoc(s: string, vars: Vars, escape = "\\"): string {
  return lex(s, vars, { escape, skipProcessQuotes: true }).result;
}

/** The argument expanded then split into words at unquoted whitespace: BuildKit's ProcessWords. */
export function expandWords(s: string, vars: Vars, escape = "\\", o: Omit<LexOptions, "escape"> = {}): string[] {
  return lex(s, vars, { ...o, escape }).words;
}
