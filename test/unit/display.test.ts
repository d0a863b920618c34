// What preview, up, refresh and destroy print: step lines in progress and done, --diff's nested values, and the
// summaries (a replacement's deleted original is part of the replace; the default provider is never shown).
import { describe, expect, it } from "vitest";
import { propertyLines, renderDiagnostics, renderPlan, renderSummary, stepLine } from "../../provider/engine/display";
import type { Step, StepOp } from "../../provider/engine/steps";
import type { ResourceState } from "../../provider/state/checkpoint";

const urn = (type: string, name: string) => `urn:pulumi:dev::app::${type}::${name}`;
const state = (type: string, name: string, inputs: Record<string, unknown>, extra: Partial<ResourceState> = {}): ResourceState => ({
  urn: urn(type, name),
  custom: true,
  type,
  inputs: inputs as ResourceState["inputs"],
  outputs: {},
  ...extra,
});
const step = (op: StepOp, type: string, name: string, s: Partial<Step> = {}): Step => ({ op, urn: urn(type, name), type, diffs: [], replaces: [], detailedDiff: {}, ...s });
const C = "berth:index:Container";

describe("step lines", () => {
  it("say what is planned, in progress and done", () => {
    const s = step("create", C, "web");
    expect(stepLine(s, "plan")).toBe(" +  berth:index:Container    web                  create");
    expect(stepLine(s, "doing")).toBe(" +  berth:index:Container    web                  creating");
    expect(stepLine(s, "done")).toBe(" +  berth:index:Container    web                  created");
    expect(stepLine(s, "done", true)).toBe("\x1b[32m +  berth:index:Container    web                  created\x1b[0m");
    const original = step("delete", C, "web", { old: state(C, "web", {}, { delete: true }) });
    expect(stepLine(original, "doing")).toBe(" -- berth:index:Container    web                  deleting original");
  });
});

describe("--diff", () => {
  it("nests objects and arrays as Pulumi does, keys aligned", () => {
    const s = step("create", C, "web", { new: state(C, "web", { command: ["sh", "-c", "exec httpd"], env: { GREETING: "hi", A: "b" }, stopTimeout: 1, ports: [] }) });
    expect(propertyLines(s).join("\n")).toBe(
      [
        "      + command    : [",
        '            [0]: "sh"',
        '            [1]: "-c"',
        '            [2]: "exec httpd"',
        "        ]",
        "      + env        : {",
        '            GREETING: "hi"',
        '            A       : "b"',
        "        }",
        "      + stopTimeout: 1",
        "      + ports      : []",
      ].join("\n"),
    );
    const u = step("update", C, "web", {
      old: state(C, "web", { env: { GREETING: "hi" } }),
      new: state(C, "web", { env: { GREETING: "hi", EXTRA: { deep: [1] } } }),
      diffs: ["env"],
      detailedDiff: { "env.EXTRA": { kind: "add" } },
    });
    expect(renderPlan([u], { diff: true })).toBe(
      [" ~  berth:index:Container    web                  update [diff: ~env]", "      + env.EXTRA: {", "            deep: [", "                [0]: 1", "            ]", "        }"].join("\n"),
    );
  });
});

describe("summaries", () => {
  it("count a replacement once, hide the default provider, and count what a refresh left alone as unchanged", () => {
    const provider = "pulumi:providers:berth";
    const steps = [
      step("replace", C, "web"),
      step("delete", C, "web", { old: state(C, "web", {}, { delete: true }) }),
      step("delete", provider, "default", { old: state(provider, "default", {}) }),
      step("same", "berth:index:Volume", "data"),
    ];
    expect(renderSummary(steps, true)).toBe("Resources:\n    +- 1 replaced\n    1 unchanged");
    expect(renderPlan(steps, { diff: false })).not.toContain("pulumi:providers");
    expect(renderSummary([step("same", C, "a"), step("same", C, "b"), step("refresh", C, "c", { diffs: ["status"] })], true)).toBe(
      "Resources:\n    ~  1 refreshed\n    2 unchanged",
    );
  });
});

describe("diagnostics", () => {
  // @pulumi/pulumi colours every stack trace it prints, whatever the terminal.
  const coloured = { severity: "error" as const, message: "Error: stop\n    at \x1b[90m(/p/\x1b[31mindex.ts:6:7\x1b[90m)\x1b[39m" };
  it("drop the program's colours unless colour is on", () => {
    expect(renderDiagnostics([coloured])).toBe("error: Error: stop\n    at (/p/index.ts:6:7)");
    expect(renderDiagnostics([coloured], true)).toContain("\x1b[31m");
  });
});
