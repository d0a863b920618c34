// The package schema GetSchema serves (provider/plugin/schema.ts), checked against what the zod schemas say and,
// when a Pulumi source tree is at hand, validated against Pulumi's package metaschema (pkg/codegen/schema/pulumi.json).
import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import type { Runtime } from "../../native/runtime";
import { packageSchema } from "../../provider/plugin/schema";
import { berthProviders } from "../../provider/resources";
import * as sdk from "../../sdk/schema";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON documents
const schema: Json = packageSchema();
const RESOURCES = ["Image", "Network", "Volume", "Container", "Registry"];
const METASCHEMA = process.env.PULUMI_METASCHEMA ?? "/work/pulumi-src/pkg/codegen/schema/pulumi.json";

/** Every property spec of the schema, with where it is. */
function allProperties(): Array<[string, Json]> {
  const out: Array<[string, Json]> = [];
  const add = (where: string, props: Record<string, Json> = {}) => Object.entries(props).forEach(([k, p]) => out.push([`${where}.${k}`, p]));
  for (const [token, r] of Object.entries<Json>(schema.resources)) {
    add(`${token} properties`, r.properties);
    add(`${token} inputProperties`, r.inputProperties);
  }
  for (const [token, t] of Object.entries<Json>(schema.types)) add(token, t.properties);
  add("provider", schema.provider.inputProperties);
  return out;
}

/** The draft 2020-12 keywords pulumi.json uses: enough to validate a document against it. */
function validate(doc: Json, root: Json): string[] {
  const errors: string[] = [];
  const typeOk = (v: unknown, t: string) =>
    t === "integer" ? Number.isInteger(v) : t === "array" ? Array.isArray(v) : t === "object" ? typeof v === "object" && v !== null && !Array.isArray(v) : t === "null" ? v === null : typeof v === t;
  const check = (v: Json, s: Json, at: string): boolean => {
    if (s === true) return true;
    if (s === false) return fail(`${at}: not allowed`);
    const before = errors.length;
    if (s.$ref) check(v, s.$ref.split("/").slice(1).reduce((o: Json, k: string) => o[k], root), at);
    if (s.type && ![s.type].flat().some((t: string) => typeOk(v, t))) fail(`${at}: not ${s.type}`);
    if (s.const !== undefined && v !== s.const) fail(`${at}: not ${JSON.stringify(s.const)}`);
    if (s.enum && !s.enum.includes(v)) fail(`${at}: not one of ${s.enum.join(", ")}`);
    if (s.pattern && typeof v === "string" && !new RegExp(s.pattern, "u").test(v)) fail(`${at}: does not match ${s.pattern}`);
    if (s.minLength !== undefined && typeof v === "string" && v.length < s.minLength) fail(`${at}: too short`);
    if (s.minItems !== undefined && Array.isArray(v) && v.length < s.minItems) fail(`${at}: too few items`);
    if (Array.isArray(v) && s.items !== undefined) v.forEach((x, i) => check(x, s.items, `${at}[${i}]`));
    if (typeOk(v, "object")) {
      for (const k of s.required ?? []) if (!(k in v)) fail(`${at}: ${k} is required`);
      for (const [k, x] of Object.entries(v)) {
        if (s.propertyNames) check(k, s.propertyNames, `${at} key ${k}`);
        if (s.properties && k in s.properties) check(x, s.properties[k], `${at}.${k}`);
        else if (s.additionalProperties !== undefined) check(x, s.additionalProperties, `${at}.${k}`);
      }
    }
    for (const sub of s.allOf ?? []) check(v, sub, at);
    const passing = (subs: Json[]) => subs.filter((sub) => quiet(() => check(v, sub, at))).length;
    if (s.anyOf && passing(s.anyOf) === 0) fail(`${at}: matches none of anyOf`);
    if (s.oneOf && passing(s.oneOf) !== 1) fail(`${at}: matches ${passing(s.oneOf)} of oneOf, not exactly one`);
    return errors.length === before;
  };
  const fail = (message: string) => (errors.push(message), false);
  const quiet = (work: () => boolean) => {
    const mark = errors.length;
    const ok = work();
    errors.length = mark;
    return ok;
  };
  check(doc, root, "schema");
  return errors;
}

describe("the package schema", () => {
  it("has every resource type and the provider, each property typed and described", () => {
    expect(Object.keys(schema.resources).sort()).toEqual(RESOURCES.map((r) => `berth:index:${r}`).sort());
    // The provider's own list of types (a runtime is not needed to name them).
    expect(Object.keys(schema.resources).sort()).toEqual([...berthProviders({} as Runtime, "/").keys()].sort());
    expect(schema.language.nodejs.packageName).toBe("berth-iac");
    expect(Object.keys(schema.provider.inputProperties).sort()).toEqual(["host", "identityFile", "root", "runDir", "sshOptions"]);
    for (const [where, p] of allProperties()) {
      expect(p.type ?? p.$ref ?? p.oneOf, where).toBeDefined();
      expect(p.description, `${where} has no description (a JSDoc comment on the zod field)`).toBeTruthy();
      if (p.$ref?.startsWith("#/types/")) expect(schema.types[p.$ref.slice("#/types/".length)], where).toBeDefined();
    }
    for (const r of RESOURCES) expect(schema.resources[`berth:index:${r}`].description, r).toBeTruthy();
  });

  it("says what the zod schemas say: required inputs, replace-on-change fields, secrets", () => {
    for (const r of RESOURCES) {
      const args = (sdk as Json)[`${r}Args`] as z.ZodObject;
      const spec = schema.resources[`berth:index:${r}`];
      expect(Object.keys(spec.inputProperties).sort(), r).toEqual(Object.keys(args.shape).sort());
      const replacing = Object.entries<Json>(spec.inputProperties).filter(([, p]) => p.replaceOnChanges).map(([k]) => k);
      expect(replacing.sort(), r).toEqual([...sdk.replaceOnChangeFields(args)].sort());
      const required = Object.entries(args.shape).filter(([, f]) => !(f as z.ZodType).safeParse(undefined).success).map(([k]) => k);
      expect(spec.requiredInputs ?? [], r).toEqual(required);
    }
    expect(schema.resources["berth:index:Container"].requiredInputs).toEqual(["image"]);
    expect(schema.resources["berth:index:Volume"].properties.mountpoint).toMatchObject({ type: "string" });
    expect(schema.types["berth:index:RegistryUser"].properties.password).toMatchObject({ type: "string", secret: true });
    expect(schema.types["berth:index:RegistryAuth"].properties.password.secret).toBe(true);
    expect(schema.resources["berth:index:Container"].inputProperties.ports.items.oneOf).toEqual([{ $ref: "#/types/berth:index:ContainerPort" }, { type: "string" }]);
    expect(schema.resources["berth:index:Container"].inputProperties.stopTimeout).toMatchObject({ type: "integer" });
  });

  const found = fs.existsSync(METASCHEMA);
  it.skipIf(!found)(`is valid against Pulumi's package metaschema${found ? "" : ` (skipped: no ${METASCHEMA}; set PULUMI_METASCHEMA)`}`, () => {
    const meta = JSON.parse(fs.readFileSync(METASCHEMA, "utf8"));
    expect(validate(schema, meta)).toEqual([]);
    // The validator is not vacuous: a property with two kinds of type, or a bad token, is caught.
    const broken = structuredClone(schema);
    broken.resources["berth:index:Volume"].inputProperties.name = { type: "string", items: { type: "string" } };
    broken.types["not a token"] = { type: "object" };
    expect(validate(broken, meta).length).toBeGreaterThan(0);
  });
});
