// BuildKit's own parser, shell and .dockerignore test data (../shared/conformance/buildkit, copied unchanged)
// run against berth's parser, word expansion and pattern matcher, compared in BuildKit's dump format. The data
// must be there: CI has it, and a missing directory fails here rather than passing nothing.
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { dump, parseTree } from "../../native/build/dockerfile";
import { expandWord, expandWords } from "../../native/build/words";
import { PatternMatcher } from "../../native/build/context";

const REPO = path.resolve(__dirname, "../..");
const DATA = path.resolve(REPO, "../shared/conformance/buildkit");
const PARSER = path.join(DATA, "frontend/dockerfile/parser");
const SHELL = path.join(DATA, "frontend/dockerfile/shell");

it("has BuildKit's conformance data", () => {
  expect(fs.existsSync(PARSER), `conformance data missing at ${DATA}: CI has it at ../shared beside the checkout`).toBe(true);
});

const dirs = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d).sort() : []);

describe("BuildKit parser testfiles", () => {
  const cases = dirs(path.join(PARSER, "testfiles"));
  it("has them all", () => expect(cases.length).toBeGreaterThanOrEqual(33));
  it.each(cases)("%s", (name) => {
    const dir = path.join(PARSER, "testfiles", name);
    const { root } = parseTree(fs.readFileSync(path.join(dir, "Dockerfile"), "utf8"));
    expect(dump(root) + "\n").toBe(fs.readFileSync(path.join(dir, "result"), "utf8"));
  });

  const negative = dirs(path.join(PARSER, "testfiles-negative"));
  it("has the negative ones", () => expect(negative.length).toBeGreaterThanOrEqual(4));
  it.each(negative)("refuses %s", (name) => {
    expect(() => parseTree(fs.readFileSync(path.join(PARSER, "testfiles-negative", name, "Dockerfile"), "utf8"))).toThrow();
  });

  it("gives BuildKit's line numbers (testfile-line)", () => {
    const { root } = parseTree(fs.readFileSync(path.join(PARSER, "testfile-line/Dockerfile"), "utf8"));
    expect([root.startLine, root.endLine]).toEqual([5, 31]);
    expect(root.children.map((c) => [c.startLine, c.endLine])).toEqual([[5, 5], [11, 12], [17, 31]]);
  });
});

/** Test-data lines: "#" comments and blank lines skipped. */
const dataLines = (file: string): string[] =>
  fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter((l) => !l.startsWith("#") && l.trimStart() !== "") : [];

describe("BuildKit shell envVarTest (Unix and all-platform lines)", () => {
  const env = new Map([["PWD", "/home"], ["SHELL", "bash"], ["KOREAN", "한국어"], ["NULL", ""]]);
  const cases = dataLines(path.join(SHELL, "envVarTest"))
    .map((l) => l.trimStart().split("|"))
    .filter((w) => w[0].trim() !== "W")
    .map((w) => [w[1].trim(), w[2].trim()]);
  it("has them all", () => expect(cases.length).toBeGreaterThanOrEqual(200));
  it.each(cases)("%s → %s", (source, expected) => {
    if (expected === "error") expect(() => expandWord(source, env)).toThrow();
    else expect(expandWord(source, env)).toBe(expected);
  });
});

describe("BuildKit shell wordsTest", () => {
  const env = new Map<string, string>();
  const cases: Array<[string, string[], Map<string, string>]> = [];
  for (const line of dataLines(path.join(SHELL, "wordsTest"))) {
    if (line.startsWith("ENV ")) {
      const kv = line.slice(3).trimStart();
      env.set(kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1));
      continue;
    }
    const [test, expected] = line.split("|");
    cases.push([test.trim(), expected.trimStart().split(","), new Map(env)]);
  }
  it("has them all", () => expect(cases.length).toBeGreaterThanOrEqual(24));
  it.each(cases)("%s → %j", (test, expected, vars) => {
    let words: string[];
    try {
      words = expandWords(test, vars);
    } catch {
      words = ["error"];
    }
    expect(words).toEqual(expected);
  });
});

describe("moby/patternmatcher cases (.dockerignore)", () => {
  const file = path.join(DATA, "patternmatcher-cases.json");
  const cases: Array<{ patterns: string[]; text: string; pass?: boolean; error?: boolean }> = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : [];
  it("has them all", () => expect(cases.length).toBeGreaterThanOrEqual(82));
  it.each(cases.map((c) => [JSON.stringify(c.patterns), c.text, c]))("%s on %s", (_p, _t, c) => {
    if (c.error) expect(() => new PatternMatcher(c.patterns).matchesOrParentMatches(c.text)).toThrow();
    else expect(new PatternMatcher(c.patterns).matchesOrParentMatches(c.text)).toBe(c.pass);
  });
});
