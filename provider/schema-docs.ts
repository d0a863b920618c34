// What the SDK's zod schemas say about themselves: each schema under its optional/default wrappers, and the JSDoc
// written on their fields and on the SDK's classes (read from the source, compiled or not, whichever runs). The
// plugin's package schema and the SDK's generated interfaces both read them here.
import * as fs from "node:fs";
import * as path from "node:path";
import type { z } from "zod";

const SDK_DIR = path.resolve(__dirname, "../sdk");

/** A JSDoc comment as plain text (`/** a\n * b *\/` → "a\nb"). */
function commentText(raw: string): string {
  return raw
    .replace(/^\/\*\*|\*\/$/g, "")
    .split("\n")
    .map((l) => l.replace(/^\s*\* ?/, "").trim())
    .join("\n")
    .trim();
}

interface Literal {
  keys: Set<string>;
  docs: Map<string, string>;
}

/** Each object literal of the SDK's source (compiled or not, whichever runs) with its properties' JSDoc, and each class's and const's. */
function readDocs(): { literals: Literal[]; classes: Map<string, string>; consts: Map<string, string> } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when a schema is asked for
  const ts: typeof import("typescript") = require("typescript");
  const ext = path.extname(__filename);
  const files = [path.join(SDK_DIR, `index${ext}`), ...fs.readdirSync(path.join(SDK_DIR, "schema")).map((f) => path.join(SDK_DIR, "schema", f))];
  const literals: Literal[] = [];
  const classes = new Map<string, string>();
  const consts = new Map<string, string>();
  for (const file of files.filter((f) => f.endsWith(ext) && !f.endsWith(`.d${ext}`))) {
    const text = fs.readFileSync(file, "utf8");
    const doc = (node: import("typescript").Node) => {
      const ranges = ts.getLeadingCommentRanges(text, node.pos) ?? [];
      const last = ranges.filter((r) => text.startsWith("/**", r.pos)).pop();
      return last && commentText(text.slice(last.pos, last.end));
    };
    const visit = (node: import("typescript").Node): void => {
      if (ts.isObjectLiteralExpression(node)) {
        const literal: Literal = { keys: new Set(), docs: new Map() };
        for (const p of node.properties) {
          if (!ts.isPropertyAssignment(p) && !ts.isShorthandPropertyAssignment(p)) continue;
          const key = p.name.getText();
          literal.keys.add(key);
          const text = doc(p);
          if (text) literal.docs.set(key, text);
        }
        if (literal.keys.size > 0) literals.push(literal);
      }
      if (ts.isClassDeclaration(node) && node.name) {
        const text = doc(node);
        if (text) classes.set(node.name.text, text);
      }
      // `export const x = …` in the source, `exports.x = …` once compiled.
      const text = ts.isVariableStatement(node) || ts.isExpressionStatement(node) ? doc(node) : undefined;
      if (text && ts.isVariableStatement(node)) {
        for (const d of node.declarationList.declarations) if (ts.isIdentifier(d.name)) consts.set(d.name.text, text);
      }
      if (text && ts.isExpressionStatement(node) && ts.isBinaryExpression(node.expression)) {
        const left = node.expression.left;
        if (ts.isPropertyAccessExpression(left) && left.expression.getText() === "exports") consts.set(left.name.text, text);
      }
      ts.forEachChild(node, visit);
    };
    visit(ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true));
  }
  return { literals, classes, consts };
}

export type Zod = z.ZodType & { _zod: { def: Record<string, any> } }; // eslint-disable-line @typescript-eslint/no-explicit-any -- zod's defs

export const defOf = (s: z.ZodType) => (s as Zod)._zod.def;
const WRAPPERS = new Set(["optional", "nullable", "default", "prefault", "readonly", "catch", "nonoptional"]);

/** The schema under optional/default/… wrappers and transforms (what a program writes is the input side). */
export function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const def = defOf(s);
    if (WRAPPERS.has(def.type)) s = def.innerType;
    else if (def.type === "pipe") s = def.in;
    else if (def.type === "lazy") s = def.getter();
    else return s;
  }
}

export const isOptional = (s: z.ZodType) => ["optional", "default", "prefault"].includes(defOf(s).type) || (s as z.ZodType).safeParse(undefined).success;

/** A type name from a field's place: "Container" + "ports" → "ContainerPorts". */
export const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
/** "ContainerPorts" → "ContainerPort" ("ContainerDeviceReadBps" stays: a short last word is an abbreviation). */
export const singular = (s: string) => (/[A-Z][a-z]{3,}s$/.test(s) ? s.slice(0, -1) : s);

/** The JSDoc of the SDK's schema fields and classes. */
export class SchemaDocs {
  private readonly docs = readDocs();

  classDoc(name: string): string | undefined {
    return this.docs.classes.get(name);
  }

  /** The JSDoc of an exported schema value such as `byteSize` (what its numbers count). */
  constDoc(name: string): string | undefined {
    return this.docs.consts.get(name);
  }

  /** The JSDoc of `key` in the most specific source literal that belongs to this object's shape. */
  fieldDoc(shape: Record<string, z.ZodType>, key: string): string | undefined {
    const keys = new Set(Object.keys(shape));
    const candidates = this.docs.literals.filter((l) => l.keys.has(key) && [...l.keys].every((k) => keys.has(k)));
    candidates.sort((a, b) => b.keys.size - a.keys.size);
    return candidates.find((l) => l.docs.has(key))?.docs.get(key);
  }
}
