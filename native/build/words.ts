// Docker's variable expansion and word splitting for the instructions that expand (FROM, ENV, ARG, LABEL, COPY,
// ADD, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL): $VAR, ${VAR}, ${VAR:-word}, ${VAR:+word}, ${VAR-word},
// ${VAR+word}, ${VAR:?msg}; single quotes are literal, double quotes group and still expand, the escape
// character quotes the next one.

export type Vars = ReadonlyMap<string, string>;

class Lexer {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly vars: Vars,
    private readonly escape: string,
  ) {}

  /** Words of the input, quotes removed; `split` false keeps it as one word (spaces included). */
  words(split: boolean): string[] {
    const out: string[] = [];
    let word = "";
    let inWord = false;
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i];
      if (split && /\s/.test(c)) {
        if (inWord) out.push(word);
        word = "";
        inWord = false;
        this.i++;
        continue;
      }
      inWord = true;
      if (c === this.escape) {
        this.i++;
        if (this.i < s.length) word += s[this.i++];
      } else if (c === "'") {
        const end = s.indexOf("'", this.i + 1);
        if (end < 0) throw new Error("unexpected end of statement while looking for matching single-quote");
        word += s.slice(this.i + 1, end);
        this.i = end + 1;
      } else if (c === '"') {
        this.i++;
        for (;;) {
          if (this.i >= s.length) throw new Error("unexpected end of statement while looking for matching double-quote");
          const d = s[this.i];
          if (d === '"') break;
          if (d === this.escape && this.i + 1 < s.length && `"$${this.escape}`.includes(s[this.i + 1])) {
            word += s[this.i + 1];
            this.i += 2;
          } else if (d === "$") word += this.variable();
          else {
            word += d;
            this.i++;
          }
        }
        this.i++;
      } else if (c === "$") {
        const value = this.variable();
        // Unquoted, an expansion's own spaces separate words.
        const parts = split ? value.split(/\s+/) : [value];
        word += parts[0];
        for (const part of parts.slice(1)) {
          if (word) out.push(word);
          word = part;
        }
        inWord = word !== "" || parts.length === 1;
      } else {
        word += c;
        this.i++;
      }
    }
    if (inWord) out.push(word);
    return out;
  }

  private variable(): string {
    const s = this.s;
    this.i++; // $
    if (s[this.i] !== "{") {
      const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(s.slice(this.i));
      if (!m) return "$";
      this.i += m[0].length;
      return this.vars.get(m[0]) ?? "";
    }
    const m = /^\{([a-zA-Z_][a-zA-Z0-9_]*)(:?[-+?])?/.exec(s.slice(this.i));
    if (!m) throw new Error(`bad substitution in "${s}"`);
    this.i += m[0].length;
    let depth = 1;
    let word = "";
    while (this.i < s.length) {
      const c = s[this.i];
      if (c === "{") depth++;
      if (c === "}" && --depth === 0) break;
      word += c;
      this.i++;
    }
    if (s[this.i] !== "}") throw new Error(`missing '}' in "${s}"`);
    this.i++;
    const [name, op] = [m[1], m[2]];
    const value = this.vars.get(name);
    if (!op) {
      if (word !== "") throw new Error(`bad substitution in "${s}"`);
      return value ?? "";
    }
    const expand = () => new Lexer(word, this.vars, this.escape).words(false).join("");
    const unset = op.startsWith(":") ? !value : value === undefined;
    switch (op.slice(-1)) {
      case "-":
        return unset ? expand() : value!;
      case "+":
        return unset ? "" : expand();
      default:
        if (unset) throw new Error(`${name}: ${expand() || "is not allowed to be unset"}`);
        return value!;
    }
  }
}

/** The instruction's argument expanded into one word (its spaces kept). */
export function expandWord(s: string, vars: Vars, escape = "\\"): string {
  return new Lexer(s, vars, escape).words(false).join("");
}

/** The argument split into words at unquoted whitespace, each expanded. */
export function expandWords(s: string, vars: Vars, escape = "\\"): string[] {
  return new Lexer(s, vars, escape).words(true);
}

/**
 * ENV, LABEL and ARG arguments: `k=v k2="v 2"`, or the legacy `ENV key value with spaces`. Values are expanded
 * against vars as they were before the instruction.
 */
export function keyValues(s: string, vars: Vars, escape: string, legacy: boolean): Array<[string, string | undefined]> {
  const raw = splitRaw(s, escape);
  if (legacy && raw.length > 0 && !raw[0].includes("=")) {
    const value = s.trim().slice(raw[0].length).trim();
    if (value === "") throw new Error(`${raw[0]} needs a value: write ${raw[0]}=VALUE`);
    return [[raw[0], expandWord(value, vars, escape)]];
  }
  return raw.map((w) => {
    const eq = w.indexOf("=");
    if (eq === 0) throw new Error(`"${w}" has no name before "="`);
    if (eq < 0) return [expandWord(w, vars, escape), undefined];
    return [expandWord(w.slice(0, eq), vars, escape), expandWord(w.slice(eq + 1), vars, escape)];
  });
}

/** Splits at unquoted whitespace keeping quotes and escapes, for the key=value forms. */
function splitRaw(s: string, escape: string): string[] {
  const out: string[] = [];
  let word = "";
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === escape && i + 1 < s.length && quote !== "'") {
      word += c + s[++i];
      continue;
    }
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if (/\s/.test(c)) {
      if (word) out.push(word);
      word = "";
      continue;
    }
    word += c;
  }
  if (quote) throw new Error(`unterminated ${quote} quote in "${s}"`);
  if (word) out.push(word);
  return out;
}
