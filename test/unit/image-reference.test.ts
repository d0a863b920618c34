// Image names: one rule (native/image/reference.ts, Docker's reference format) for the SDK's schema, the store and
// the CLI; and the name an untagged `berth build` makes up always meets it.
import { describe, expect, it } from "vitest";
import { referenceProblem, untaggedBuildName } from "../../native/image/reference";
import { nameRef } from "../../native/image/oci";
import { imageRef } from "../../sdk/schema/image";

const GOOD = ["web", "web:1.0", "a.b_c__d---e", "127.0.0.1:5000/web:1.0", "localhost/a/b:v1", "[::1]:5000/x", "x.io/ns/app@sha256:" + "a".repeat(64), "app:1@sha512:" + "b".repeat(128), "app@sha384:" + "c".repeat(96), "a".repeat(237), `ns/${"a".repeat(242)}`, `x.io/${"a".repeat(250)}:1`, "index.docker.io/" + "a".repeat(237), "f".repeat(64) + ":1", "f".repeat(63)];
const BAD = ["web-", "a..b", "a/../b", "app_", "x//y", "-web", "Web", "web:", "web:-1", "a b", "../x", "a___b", "app@sha256:abc", "app@sha512:" + "b".repeat(64), "a".repeat(256), `x.io/${"a".repeat(251)}:1`, "-x.io/a", "app@sha384:" + "c".repeat(64), "a".repeat(238), `ns/${"a".repeat(243)}:1`, "docker.io/" + "a".repeat(238)];
// Docker's "cannot specify 64-byte hexadecimal strings": an image id is no name.
const HEX = "0123456789abcdef".repeat(4);

describe("the image reference rule", () => {
  it("takes what Docker takes", () => {
    for (const ref of GOOD) expect(referenceProblem(ref), ref).toBeUndefined();
  });

  it("refuses what Docker refuses, saying why", () => {
    for (const ref of BAD) expect(referenceProblem(ref), ref).toMatch(/invalid reference format/);
  });

  it("refuses an image id's 64 hex digits as a name, as Docker does", () => {
    expect(referenceProblem(HEX)).toMatch(/cannot specify 64-byte hexadecimal strings/);
    expect(() => nameRef(HEX)).toThrow(/cannot specify 64-byte hexadecimal strings/);
    expect(imageRef.safeParse(HEX).success).toBe(false);
  });

  it("is the store's rule and the schema's (the schema takes no digest: an image is stored under a name and tag)", () => {
    for (const ref of GOOD) expect(() => nameRef(ref), ref).not.toThrow();
    for (const ref of BAD) expect(() => nameRef(ref), ref).toThrow(/invalid reference format/);
    for (const ref of GOOD.filter((r) => !r.includes("@"))) expect(imageRef.safeParse(ref).success, ref).toBe(true);
    for (const ref of [...BAD, ...GOOD.filter((r) => r.includes("@"))]) expect(imageRef.safeParse(ref).success, ref).toBe(false);
  });
});

describe("the name an untagged build makes up", () => {
  it("is a valid name for any directory name Docker builds", () => {
    const cases: Record<string, string> = {
      app: "berth-build-app:latest",
      _site: "berth-build-site:latest",
      ".devcontainer": "berth-build-devcontainer:latest",
      app_: "berth-build-app:latest",
      "v1.": "berth-build-v1:latest",
      "my__-x": "berth-build-my-x:latest",
      "My App": "berth-build-my-app:latest",
      "a.b_c": "berth-build-a.b_c:latest",
      "___": "berth-build-image:latest",
      "日本": "berth-build-image:latest",
    };
    for (const [dir, name] of Object.entries(cases)) {
      expect(untaggedBuildName(dir), dir).toBe(name);
      expect(referenceProblem(untaggedBuildName(dir)), dir).toBeUndefined();
    }
    const long = untaggedBuildName(`${"a".repeat(242)}-${"b".repeat(20)}`);
    expect(referenceProblem(long)).toBeUndefined();
  });
});
