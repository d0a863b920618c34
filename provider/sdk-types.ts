// Writes sdk/types.ts: the SDK's args and outputs as plain TypeScript interfaces, made from the zod schemas (types,
// optional fields, replace rules) with their JSDoc, so a user's program sees documented fields and its type check
// never reaches zod's declaration files. Run `npm run sdk-types` after changing a schema;
// test/unit/sdk-types.test.ts fails while the committed file is stale.
import * as fs from "node:fs";
import * as path from "node:path";
import type { z } from "zod";
import * as sdk from "../sdk/schema";
import { SchemaDocs, defOf, isOptional, pascal, singular, unwrap } from "./schema-docs";

/** The SDK's resources and the provider, by the names their classes and schema exports share. */
export const SDK_TYPES = ["Image", "Network", "Volume", "Container", "Registry", "Provider"] as const;

/** The source file, also when this runs compiled from dist/provider. */
export const SDK_TYPES_FILE = path.resolve(__dirname, path.extname(__filename) === ".js" ? "../.." : "..", "sdk/types.ts");

const REPLACES = "Changing this replaces the resource.";

function jsdoc(text: string | undefined, indent: string): string {
  if (!text) return "";
  const lines = text.replace(/\*\//g, "*\\/").split("\n");
  return lines.length === 1 ? `${indent}/** ${lines[0]} */\n` : `${indent}/**\n${lines.map((l) => `${indent} *${l ? ` ${l}` : ""}`).join("\n")}\n${indent} */\n`;
}

/** Inputs take a pulumi.Input at every level, as the classes accept; outputs are the plain values of pulumi.Outputs. */
type Mode = "input" | "output";

class Generator {
  private readonly docs = new SchemaDocs();
  private readonly exported = new Map<z.ZodType, string>();
  private readonly named = new Map<z.ZodType, Map<Mode, string>>();
  private readonly taken = new Set<string>();
  private readonly interfaces: string[] = [];

  constructor() {
    for (const [name, value] of Object.entries(sdk)) {
      if (value && typeof value === "object" && "_zod" in value) this.exported.set(value as z.ZodType, name);
    }
  }

  /** A field's type: `pulumi.Input<…>` at every level of an input, the plain value of an output. */
  private type(schema: z.ZodType, mode: Mode, hint: string): string {
    const s = unwrap(schema);
    const def = defOf(s);
    const wrap = (t: string) => (mode === "input" ? `pulumi.Input<${t}>` : t);
    switch (def.type) {
      case "string":
      case "boolean":
      case "number":
        return wrap(def.type);
      case "enum":
        return wrap(Object.values(def.entries as Record<string, string>).map((v) => JSON.stringify(v)).join(" | "));
      case "literal":
        return wrap((def.values as unknown[]).map((v) => JSON.stringify(v)).join(" | "));
      case "array":
        {
        const element = this.type(def.element, mode, singular(hint));
        return wrap(/[ |]/.test(element) ? `(${element})[]` : `${element}[]`);
      }
      case "record":
        return wrap(`Record<string, ${this.type(def.valueType, mode, hint)}>`);
      case "object":
        return wrap(this.objectInterface(s, mode, hint));
      case "union":
        return [...new Set(def.options.map((o: z.ZodType) => this.type(o, mode, hint)))].join(" | ");
      default:
        throw new Error(`sdk-types: no TypeScript type for a zod ${def.type} (${hint})`);
    }
  }

  /** Names and writes an interface once per schema object and mode: its export's name, or its first place. */
  private objectInterface(object: z.ZodType, mode: Mode, hint: string): string {
    const known = this.named.get(object)?.get(mode);
    if (known) return known;
    let name = this.exported.get(object) ?? (mode === "input" ? `${hint}Args` : hint);
    while (this.taken.has(name)) name += mode === "input" ? "Input" : "Output";
    this.claim(object, mode, name);
    const about = this.exported.has(object) ? this.docs.constDoc(this.exported.get(object)!) : undefined;
    this.interfaces.push(`${jsdoc(about, "")}${this.interfaceOf(name, object, mode, hint).text}`);
    return name;
  }

  /** One interface's text and its fields' docs; `fallbackDocs` describe output fields that say nothing themselves. */
  private interfaceOf(name: string, object: z.ZodType, mode: Mode, owner: string, top = false, replacing = new Set<string>(), fallbackDocs = new Map<string, string>()) {
    const shape = defOf(unwrap(object)).shape as Record<string, z.ZodType>;
    const fields: string[] = [];
    const docs = new Map<string, string>();
    for (const [key, field] of Object.entries(shape)) {
      const description = this.docs.fieldDoc(shape, key) ?? fallbackDocs.get(key);
      if (description) docs.set(key, description);
      const text = [description, ...this.valueDocs(field), replacing.has(key) ? REPLACES : undefined].filter(Boolean).join("\n\n");
      const type = this.type(field, mode, `${owner}${pascal(key)}`);
      // A resource's outputs are pulumi.Outputs; the objects inside them are plain values.
      const line =
        mode === "output" && top
          ? `readonly ${key}: pulumi.Output<${type}${isOptional(field) ? " | undefined" : ""}>;`
          : `${key}${isOptional(field) ? "?" : ""}: ${type};`;
      fields.push(`${jsdoc(text, "  ")}  ${line}`);
    }
    return { text: `export interface ${name} {\n${fields.join("\n")}\n}\n`, docs };
  }

  /** What the named value types a field takes say of themselves ("Bytes as a number, or …"): its units. */
  private valueDocs(field: z.ZodType): string[] {
    const s = unwrap(field);
    const name = this.exported.get(s);
    const own = name && defOf(s).type !== "object" ? this.docs.constDoc(name) : undefined;
    if (own) return [own];
    return defOf(s).type === "union" ? defOf(s).options.flatMap((o: z.ZodType) => this.valueDocs(o)) : [];
  }

  /** Names an object schema for a mode before writing it, so a recursive one refers to itself. */
  private claim(object: z.ZodType, mode: Mode, name: string): void {
    this.taken.add(name);
    this.named.set(object, new Map([...(this.named.get(object) ?? []), [mode, name]]));
  }

  /** Each type's args and outputs, then the nested interfaces in the order they were met. */
  render(): string {
    const top: string[] = [];
    for (const type of SDK_TYPES) {
      const args = sdk[`${type}Args`] as z.ZodType;
      const outputs = sdk[`${type}Outputs` as keyof typeof sdk] as z.ZodType | undefined;
      this.claim(args, "input", `${type}Args`);
      if (outputs) this.claim(outputs, "output", `${type}Outputs`);
    }
    for (const type of SDK_TYPES) {
      const args = sdk[`${type}Args`] as z.ZodType;
      const outputs = sdk[`${type}Outputs` as keyof typeof sdk] as z.ZodType | undefined;
      const replacing = type === "Provider" ? new Set<string>() : sdk.replaceOnChangeFields(unwrap(args) as z.ZodObject);
      const input = this.interfaceOf(`${type}Args`, args, "input", type, true, replacing);
      top.push(`/** The arguments of a berth.${type}. */\n${input.text}`);
      if (outputs) top.push(`/** The outputs of a berth.${type}. */\n${this.interfaceOf(`${type}Outputs`, outputs, "output", type, true, new Set(), input.docs).text}`);
    }
    return [
      "// Generated by provider/sdk-types.ts from the zod schemas in sdk/schema: do not edit. After changing a schema,",
      "// run `npm run sdk-types` (test/unit/sdk-types.test.ts fails while this file is stale).",
      'import type * as pulumi from "@pulumi/pulumi";',
      "",
      [...top, ...this.interfaces].join("\n"),
      this.outputNames(),
    ].join("\n");
  }

  /** What the SDK's classes need of the schemas at run time, so a program never loads zod (a tenth of its start). */
  private outputNames(): string {
    const entries = SDK_TYPES.flatMap((type) => {
      const outputs = sdk[`${type}Outputs` as keyof typeof sdk] as z.ZodType | undefined;
      return outputs ? [`  ${type}: [${Object.keys(defOf(unwrap(outputs)).shape).map((k) => JSON.stringify(k)).join(", ")}],`] : [];
    });
    return `/** Each resource's output names: its class passes every one to Pulumi, which makes an Output of each. */\nexport const OUTPUT_NAMES = {\n${entries.join("\n")}\n} as const;\n`;
  }
}

/** The text of sdk/types.ts. */
export function sdkTypes(): string {
  return new Generator().render();
}

if (require.main === module) {
  fs.writeFileSync(SDK_TYPES_FILE, sdkTypes());
  console.log(`wrote ${SDK_TYPES_FILE}`);
}
