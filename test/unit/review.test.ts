// Reviewing a change: a saved plan holds the run to its steps, the Markdown summary masks secrets, the graph is
// Pulumi's DOT.
import { describe, expect, it } from "vitest";
import { dotGraph, makePlan, markdownDiagnostics, markdownSummary, planViolation, unmetPlan } from "../../provider/engine/review";
import type { Step } from "../../provider/engine/steps";
import { emptyDeployment } from "../../provider/state/checkpoint";
import { SECRET_SIG, SIG } from "../../provider/values";

const URN = "urn:pulumi:dev::p::berth:index:Volume::v";
const fingerprint = (text: string) => `fp(${text.length})`;
const step = (op: Step["op"], inputs: Record<string, unknown>): Step => ({
  op,
  urn: URN,
  type: "berth:index:Volume",
  old: op === "create" ? undefined : { urn: URN, custom: true, type: "berth:index:Volume", inputs: { labels: { a: "0" } }, outputs: {} },
  new: { urn: URN, custom: true, type: "berth:index:Volume", inputs, outputs: {} },
  diffs: op === "replace" ? ["labels"] : [],
  replaces: op === "replace" ? ["labels"] : [],
  detailedDiff: op === "replace" ? { "labels.a": { kind: "update-replace" } } : {},
});

describe("saved plans", () => {
  const secretLabels = { labels: { [SIG]: SECRET_SIG, value: { a: "hush" } } };
  const plan = makePlan("p", "dev", [step("create", secretLabels)], fingerprint);

  it("keep secrets out of the file, and refuse a step that is not the planned one, naming why", () => {
    expect(JSON.stringify(plan)).not.toContain("hush");
    expect(plan.resources[URN].inputs).toEqual({ labels: "[secret fp(12)]" });
    expect(planViolation(plan, step("create", secretLabels), fingerprint)).toBeUndefined();
    expect(planViolation(plan, step("create", { labels: { [SIG]: SECRET_SIG, value: { a: "other!" } } }), fingerprint)).toContain("its inputs differ from the plan (labels)");
    expect(planViolation(plan, step("replace", secretLabels), fingerprint)).toContain("the plan says create, but now it would replace");
    expect(planViolation(makePlan("p", "dev", [], fingerprint), step("create", {}), fingerprint)).toContain("the plan leaves it unchanged");
    expect(unmetPlan(plan, [])).toEqual(['berth:index:Volume "v": the plan says create, but now nothing would change']);
  });
});

describe("review output", () => {
  it("a Markdown summary lists steps, reasons and property changes with secrets masked", () => {
    const md = markdownSummary("berth preview of p/dev", [step("replace", { labels: { [SIG]: SECRET_SIG, value: { a: "hush" } } })]);
    expect(md).toContain("| `+-` | `berth:index:Volume` | v | replace | `labels` | `labels` |");
    expect(md).toContain("```diff");
    expect(md).not.toContain("hush");
    expect(md).toContain("[secret]");
    expect(markdownSummary("t", [])).toContain("No changes.");
  });

  it("a Markdown summary's diagnostics: what the program printed left out, the run's secrets masked in the rest", () => {
    const steps = [step("replace", { labels: { [SIG]: SECRET_SIG, value: { a: "hush" } } })];
    const md = markdownDiagnostics(
      [
        // console.log and pulumi.log.info of a secret the program revealed: berth cannot tell it is one.
        { severity: "info", message: "the password is s3cr3t-pw" },
        { severity: "warning", message: "label hush and password s3cr3t-pw look weak" },
        { severity: "error", message: "the program exited with code 1" },
      ],
      steps,
      ["s3cr3t-pw"],
    );
    expect(md).not.toMatch(/s3cr3t|hush/);
    expect(md).toContain("warning: label [secret] and password [secret] look weak");
    expect(md).toContain("error: the program exited with code 1");
    expect(md).not.toContain("the password is");
    expect(markdownDiagnostics([{ severity: "info", message: "hi" }], [], [])).toBe("");
  });

  it("masks a secret quoted JSON-escaped, and each line of a multi-line secret", () => {
    const key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
    const md = markdownDiagnostics(
      [
        { severity: "warning", message: 'bad value {"password":"pa\\"ss"}' },
        { severity: "error", message: "key line 2: BKcwggSjAgEAAoIBAQC7 is not base64" },
        { severity: "error", message: `escaped: ${JSON.stringify(key)}` },
      ],
      [],
      ['pa"ss', key],
    );
    expect(md).toContain('bad value {"password":"[secret]"}');
    expect(md).toContain("key line 2: [secret] is not base64");
    expect(md).toContain('escaped: "[secret]"');
    expect(md).not.toMatch(/pa\\?"ss|BKcwgg|MIIEvQ/);
  });

  it("the graph is Pulumi's DOT: dependency and parent edges in Pulumi's colours", () => {
    const stack = { urn: "urn:pulumi:dev::p::pulumi:pulumi:Stack::p-dev", custom: false, type: "pulumi:pulumi:Stack", inputs: {}, outputs: {} };
    const net = { urn: "urn:pulumi:dev::p::berth:index:Network::n", custom: true, type: "berth:index:Network", inputs: {}, outputs: {}, parent: stack.urn };
    const web = { ...net, urn: "urn:pulumi:dev::p::berth:index:Container::web", dependencies: [net.urn] };
    expect(dotGraph({ ...emptyDeployment(), resources: [stack, net, web] })).toBe(
      [
        "strict digraph {",
        `    Resource0 [label="${stack.urn}"];`,
        `    Resource1 [label="${net.urn}"];`,
        '    Resource1 -> Resource0 [color = "#AA6639"];',
        `    Resource2 [label="${web.urn}"];`,
        '    Resource2 -> Resource1 [color = "#246C60"];',
        '    Resource2 -> Resource0 [color = "#AA6639"];',
        "}",
        "",
      ].join("\n"),
    );
  });
});
