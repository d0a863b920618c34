// berth's Pulumi package schema (what GetSchema serves, and what `pulumi import` binds and prints code with), made
// from the SDK's zod schemas: types, required fields and replace-on-change from the schema objects, descriptions
// from the JSDoc comments in their source, secrets by the rule the engine warns with (a field naming a password).
import * as fs from "node:fs";
import * as path from "node:path";
import type { z } from "zod";
import * as sdk from "../../sdk/schema";
import { PACKAGE } from "../resources";
import { BERTH_VERSION } from "../state/checkpoint";

/** A Pulumi schema type or property spec (pkg/codegen/schema/pulumi.json: typeSpec, propertySpec). */
type Spec = Record<string, unknown>;

/** berth's resource types, by the names its SDK classes and schema exports share. */
const RESOURCES = ["Image", "Network", "Volume", "Container", "Registry"] as const;

const SDK_DIR = path.resolve(__dirname, "../../sdk");
const SECRET = /password/i;

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

/** Each object literal of the SDK's source (compiled or not, whichever runs) with its properties' JSDoc, and each class's. */
function readDocs(): { literals: Literal[]; classes: Map<string, string> } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when a schema is asked for
  const ts: typeof import("typescript") = require("typescript");
  const ext = path.extname(__filename);
  const files = [path.join(SDK_DIR, `index${ext}`), ...fs.readdirSync(path.join(SDK_DIR, "schema")).map((f) => path.join(SDK_DIR, "schema", f))];
  const literals: Literal[] = [];
  const classes = new Map<string, string>();
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
      ts.forEachChild(node, visit);
    };
    visit(ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true));
  }
  return { literals, classes };
}

type Zod = z.ZodType & { _zod: { def: Record<string, any> } }; // eslint-disable-line @typescript-eslint/no-explicit-any -- zod's defs

const defOf = (s: z.ZodType) => (s as Zod)._zod.def;
const WRAPPERS = new Set(["optional", "nullable", "default", "prefault", "readonly", "catch", "nonoptional"]);

/** The schema under optional/default/… wrappers and transforms (what a program writes is the input side). */
function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const def = defOf(s);
    if (WRAPPERS.has(def.type)) s = def.innerType;
    else if (def.type === "pipe") s = def.in;
    else if (def.type === "lazy") s = def.getter();
    else return s;
  }
}

const isOptional = (s: z.ZodType) => ["optional", "default", "prefault"].includes(defOf(s).type) || (s as z.ZodType).safeParse(undefined).success;

const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
/** "ContainerPorts" → "ContainerPort" ("ContainerDeviceReadBps" stays: a short last word is an abbreviation). */
const singular = (s: string) => (/[A-Z][a-z]{3,}s$/.test(s) ? s.slice(0, -1) : s);

class SchemaBuilder {
  readonly types: Record<string, Spec> = {};
  private readonly named = new Map<z.ZodType, string>();
  private readonly tokens = new Map<z.ZodType, string>();
  private readonly docs = readDocs();

  constructor() {
    // Exported object schemas keep their export's name ("NetworkAttachmentArgs" → berth:index:NetworkAttachment).
    for (const [name, value] of Object.entries(sdk)) {
      if (value && typeof value === "object" && "_zod" in value) this.named.set(value as z.ZodType, name.replace(/Args$/, ""));
    }
  }

  classDoc(name: string): string | undefined {
    return this.docs.classes.get(name);
  }

  /** The JSDoc of `key` in the most specific source literal that belongs to this object's shape. */
  private docOf(shape: Record<string, z.ZodType>, key: string): string | undefined {
    const keys = new Set(Object.keys(shape));
    const candidates = this.docs.literals.filter((l) => l.keys.has(key) && [...l.keys].every((k) => keys.has(k)));
    candidates.sort((a, b) => b.keys.size - a.keys.size);
    return candidates.find((l) => l.docs.has(key))?.docs.get(key);
  }

  /** Property specs of an object schema, and which are required. */
  properties(object: z.ZodType, owner: string, replacing: ReadonlySet<string> = new Set()): { properties: Record<string, Spec>; required: string[] } {
    const shape = defOf(unwrap(object)).shape as Record<string, z.ZodType>;
    const properties: Record<string, Spec> = {};
    const required: string[] = [];
    for (const [key, field] of Object.entries(shape)) {
      const description = this.docOf(shape, key);
      properties[key] = {
        ...this.typeOf(field, `${owner}${pascal(key)}`),
        ...(description ? { description } : {}),
        ...(replacing.has(key) ? { replaceOnChanges: true } : {}),
        ...(SECRET.test(key) ? { secret: true } : {}),
      };
      if (!isOptional(field)) required.push(key);
    }
    return { properties, required };
  }

  /** A Pulumi type spec for a zod schema; object types are named and added to `types`. */
  typeOf(schema: z.ZodType, name: string): Spec {
    const s = unwrap(schema);
    const def = defOf(s);
    switch (def.type) {
      case "string":
      case "enum":
        return { type: "string" };
      case "literal":
        return { type: typeof def.values[0] === "number" ? "number" : typeof def.values[0] === "boolean" ? "boolean" : "string" };
      case "boolean":
        return { type: "boolean" };
      case "number":
        return { type: (s as z.ZodNumber).isInt ? "integer" : "number" };
      case "array":
        return { type: "array", items: this.typeOf(def.element, singular(name)) };
      case "record":
        return { type: "object", additionalProperties: this.typeOf(def.valueType, name) };
      case "object":
        return { $ref: `#/types/${this.objectType(s, name)}` };
      case "union": {
        const options: Spec[] = def.options.map((o: z.ZodType) => this.typeOf(o, name));
        const distinct = [...new Map(options.map((o) => [JSON.stringify(o), o])).values()];
        return distinct.length === 1 ? distinct[0] : { oneOf: distinct };
      }
      default:
        return { $ref: "pulumi.json#/Any" };
    }
  }

  /**
   * Registers an object type once per schema object, under its export's name, or else under its first place
   * ("ContainerPort"; "ContainerPortOutput" when an output's object takes a name an input's already has).
   */
  private objectType(object: z.ZodType, fallback: string): string {
    const known = this.tokens.get(object);
    if (known) return known;
    let name = this.named.get(object) ?? fallback;
    while (this.types[`${PACKAGE}:index:${name}`]) name += "Output";
    const token = `${PACKAGE}:index:${name}`;
    this.tokens.set(object, token);
    this.types[token] = { type: "object" }; // placed first: a recursive type refers to itself
    const { properties, required } = this.properties(object, name);
    this.types[token] = { type: "object", properties, ...(required.length ? { required } : {}) };
    return token;
  }
}

/** Output properties, described as the input of the same name where they say nothing of their own. */
function withDocs(outputs: Record<string, Spec>, inputs: Record<string, Spec>): Record<string, Spec> {
  const described = (key: string, spec: Spec) => (spec.description || !inputs[key]?.description ? spec : { ...spec, description: inputs[key].description });
  return Object.fromEntries(Object.entries(outputs).map(([key, spec]) => [key, described(key, spec)]));
}

let cached: Spec | undefined;

/** The package schema, valid against Pulumi's metaschema (pkg/codegen/schema/pulumi.json). */
export function packageSchema(): Spec {
  if (cached) return cached;
  const b = new SchemaBuilder();
  const resources: Record<string, Spec> = {};
  for (const name of RESOURCES) {
    const args = sdk[`${name}Args`] as z.ZodType;
    const outputs = sdk[`${name}Outputs`] as z.ZodType;
    const inputs = b.properties(args, name, sdk.replaceOnChangeFields(unwrap(args) as z.ZodObject));
    const outs = b.properties(outputs, name);
    const description = b.classDoc(name);
    resources[`${PACKAGE}:index:${name}`] = {
      ...(description ? { description } : {}),
      // The state's outputs are the inputs with what the host reported laid over them.
      properties: { ...inputs.properties, ...withDocs(outs.properties, inputs.properties) },
      required: outs.required,
      inputProperties: inputs.properties,
      ...(inputs.required.length ? { requiredInputs: inputs.required } : {}),
    };
  }
  const config = b.properties(sdk.ProviderArgs, "Provider");
  const providerDoc = b.classDoc("Provider");
  cached = {
    name: PACKAGE,
    displayName: "berth",
    version: BERTH_VERSION,
    description: "Containers, images, networks, volumes and registries on this host, run by berth's daemonless runtime",
    license: "Apache-2.0",
    config: { variables: config.properties },
    provider: { ...(providerDoc ? { description: providerDoc } : {}), properties: config.properties, inputProperties: config.properties },
    resources,
    types: b.types,
    // Code printed by `pulumi import` imports the package by its npm name.
    language: { nodejs: { packageName: "berth-iac" } },
  };
  return cached;
}
