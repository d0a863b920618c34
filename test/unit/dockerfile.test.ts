// The Dockerfile parser and Docker's word expansion, on their own.
import { describe, expect, it } from "vitest";
import { parseDockerfile } from "../../native/build/dockerfile";
import { expandWord, expandWords } from "../../native/build/words";
import { DockerIgnore } from "../../native/build/context";
import { parseMount } from "../../native/build/mounts";

describe("Dockerfile parser", () => {
  it("reads directives, comments, continuations, flags and both forms with their line numbers", () => {
    const { directives, instructions } = parseDockerfile(
      [
        "# syntax=docker/dockerfile:1",
        "# escape=`",
        "",
        "# a comment",
        "from busybox AS base",
        "RUN echo a && `",
        "  # dropped comment",
        "    echo b",
        'CMD ["sh", "-c", "echo hi"]',
        "CMD [not json",
        "COPY --from=base --chown=1:2 /a /b",
        "HEALTHCHECK --interval=5s --retries=3 CMD true",
      ].join("\n"),
    );
    expect(directives).toEqual({ syntax: "docker/dockerfile:1", escape: "`" });
    expect(instructions.map((i) => [i.name, i.line, i.json, i.args])).toEqual([
      ["FROM", 5, false, ["busybox", "AS", "base"]],
      ["RUN", 6, false, ["echo a &&     echo b"]],
      ["CMD", 9, true, ["sh", "-c", "echo hi"]],
      ["CMD", 10, false, ["[not json"]],
      ["COPY", 11, false, ["/a", "/b"]],
      ["HEALTHCHECK", 12, false, ["CMD", "true"]],
    ]);
    expect(instructions[4].flags).toEqual({ from: "base", chown: "1:2" });
    expect(instructions[5].flags).toEqual({ interval: "5s", retries: "3" });
  });

  it("reads flags as BuildKit does: quotes removed, `--` ending them, repeated list flags kept", () => {
    const [copy, run] = parseDockerfile(`FROM x\nCOPY --chown="1:1" --exclude=*.md --exclude='x y' -- a b\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t true`).instructions.slice(1);
    expect(copy.flags.chown).toBe("1:1");
    expect(copy.flagLists.exclude).toEqual(["*.md", "x y"]);
    expect(copy.args).toEqual(["a", "b"]);
    expect(run.flagLists.mount).toEqual(["type=cache,target=/c", "type=tmpfs,target=/t"]);
  });

  it("names the line of an unknown instruction, a missing argument, a bad flag and a non-JSON SHELL", () => {
    expect(() => parseDockerfile("FROM x\n\nFROB y")).toThrow("Dockerfile:3: unknown instruction: FROB");
    expect(() => parseDockerfile("FROM x\nRUN")).toThrow("Dockerfile:2: RUN requires at least one argument");
    expect(() => parseDockerfile("FROM x\nCOPY --form=a b c")).toThrow("Dockerfile:2: unknown flag: --form for COPY (COPY takes --from, --chown, --chmod, --link, --parents, --exclude)");
    expect(() => parseDockerfile("FROM x\nSHELL /bin/sh")).toThrow("Dockerfile:2: SHELL requires the arguments to be in JSON form");
    expect(() => parseDockerfile("# escape=x\nFROM x")).toThrow("Dockerfile:1: invalid escape token 'x' does not match ` or \\");
    expect(() => parseDockerfile("# escape=`\n# escape=\\\nFROM x")).toThrow("Dockerfile:2: only one escape parser directive can be used");
    expect(() => parseDockerfile(`FROM x\nRUN echo ${"a".repeat(70000)}`)).toThrow("Dockerfile:2: dockerfile line greater than max allowed size of 65535");
    expect(() => parseDockerfile("FROM x\nCMD [1, 2]")).toThrow("Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only");
    expect(() => parseDockerfile("# only a comment\n")).toThrow("file with no instructions");
  });
});

describe("word expansion", () => {
  const vars = new Map([["A", "1"], ["E", ""], ["S", "x y"]]);
  it("expands as Docker does", () => {
    expect(expandWord("$A-${A}-${B:-d}-${A:+set}-${B:+no}-${E:-empty}-${E-unsetonly}", vars)).toBe("1-1-d-set--empty-");
    expect(expandWord("'$A' \"$A\" \\$A", vars)).toBe("$A 1 $A");
    expect(expandWords('a "b c" $S', vars)).toEqual(["a", "b c", "x", "y"]);
    expect(() => expandWord("${B:?must be set}", vars)).toThrow("B: must be set");
  });
  it("expands special and positional parameters to nothing, as Docker does", () => {
    expect(expandWord("a$1b$@c${#}d${?:-e}${1:-x}", vars)).toBe("abcdex");
  });
});

describe(".dockerignore", () => {
  it("follows Docker's rules: directories cover their contents, ** spans levels, ! re-includes, last match wins", () => {
    const ig = new DockerIgnore("# comment\nnode_modules\n**/*.log\n*.md\n!README.md\n/tmp/*\n");
    expect(ig.ignores("node_modules/x/y.js")).toBe(true);
    expect(ig.ignores("a/b/c.log")).toBe(true);
    expect(ig.ignores("x.log")).toBe(true);
    expect(ig.ignores("notes.md")).toBe(true);
    expect(ig.ignores("README.md")).toBe(false);
    expect(ig.ignores("docs/notes.md")).toBe(false);
    expect(ig.ignores("tmp/a")).toBe(true);
    expect(ig.ignores("src/main.ts")).toBe(false);
    expect(new DockerIgnore("**/\n!keep").ignores("a/b")).toBe(true);
    expect(() => new DockerIgnore("[")).toThrow();
    expect(() => new DockerIgnore("!")).toThrow('illegal exclusion pattern: "!"');
  });
});

describe("RUN --mount", () => {
  it("makes every target absolute against the working directory, a secret's too (BuildKit's rule)", () => {
    expect(parseMount("type=secret,id=tok,target=tok", "/app")).toMatchObject({ target: "/app/tok" });
    expect(parseMount("type=cache,target=c", "/app")).toMatchObject({ target: "/app/c" });
    expect(parseMount("type=secret,id=tok", "/app")).toMatchObject({ target: "/run/secrets/tok" });
    expect(parseMount("type=secret,id=tok,env=TOK", "/app")).toMatchObject({ target: undefined, env: "TOK" });
  });
});
