// berth's Pulumi package schema (what GetSchema serves, and what `pulumi import` binds and prints code with), made
// from the SDK's zod schemas: types, required fields and replace-on-change from the schema objects, descriptions
// from the JSDoc comments in their source, secrets by the rule the engine warns with (a field naming a password).
import type { z } from "zod";
import * as sdk from "../../sdk/schema";
import { SchemaDocs, defOf, isOptional, pascal, singular, unwrap } from "../schema-docs";
import { PACKAGE } from "../resources";
import { BERTH_VERSION } from "../state/checkpoint";
import { PASSWORD_FIELD } from "../values";

/** A Pulumi schema type or property spec (pkg/codegen/schema/pulumi.json: typeSpec, propertySpec). */
type Spec = Record<string, unknown>;

/** berth's resource types, by the names its SDK classes and schema exports share. */
const RESOURCES = ["Image", "Network", "Volume", "Container", "Registry"] as const;

class SchemaBuilder {
  readonly types: Record<string, Spec> = {};
  private readonly named = new Map<z.ZodType, string>();
  private readonly tokens = new Map<z.ZodType, string>();
  private readonly docs = new SchemaDocs();

  constructor() {
    // Exported object schemas keep their export's name ("NetworkAttachmentArgs" → berth:index:NetworkAttachment).
    for (const [name, value] of Object.entries(sdk)) {
      if (value && typeof value === "object" && "_zod" in value) this.named.set(value as z.ZodType, name.replace(/Args$/, ""));
    }
  }

  classDoc(name: string): string | undefined {
    return this.docs.classDoc(name);
  }

  /** Property specs of an object schema, and which are required. */
  properties(object: z.ZodType, owner: string, replacing: ReadonlySet<string> = new Set()): { properties: Record<string, Spec>; required: string[] } {
    const shape = defOf(unwrap(object)).shape as Record<string, z.ZodType>;
    const properties: Record<string, Spec> = {};
    const required: string[] = [];
    for (const [key, field] of Object.entries(shape)) {
      const description = this.docs.fieldDoc(shape, key);
      properties[key] = {
        ...this.typeOf(field, `${owner}${pascal(key)}`),
        ...(description ? { description } : {}),
        ...(replacing.has(key) ? { replaceOnChanges: true } : {}),
        ...(PASSWORD_FIELD.test(key) ? { secret: true } : {}),
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
