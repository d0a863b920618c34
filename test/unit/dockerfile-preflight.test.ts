// What a preview sees wrong in a Dockerfile without building it: base images and COPY --from sources that are no
// earlier stage and no image berth can get, and COPY sources above the context; words with variables are the build's.
import { describe, expect, it } from "vitest";
import { dockerfileProblems } from "../../native/build/preflight";

const known = async (ref: string) => ref === "base:1";
const problems = (text: string) => dockerfileProblems(text, "Dockerfile", known);

describe("Dockerfile preflight", () => {
  it("accepts stages, stored images, scratch and variables", async () => {
    const text = [
      "ARG BASE=base:1",
      "FROM base:1 AS build",
      "COPY src/ /src/",
      "FROM scratch",
      "COPY --from=build /src /src",
      "COPY --from=0 /src /again",
      "FROM $BASE",
      "COPY --from=base:1 / /",
      "COPY ${SRC} /x",
    ].join("\n");
    expect(await problems(text)).toEqual([]);
  });

  it("names each refusal with its line, as the build would", async () => {
    const text = ["FROM nowhere:1", "COPY ../secret /s", "FROM scratch AS b", "COPY --from=frist /a /a", "COPY --from=b /a /a"].join("\n");
    expect(await problems(text)).toEqual([
      expect.stringMatching(/^Dockerfile:1: FROM nowhere:1: base image not found/),
      "Dockerfile:2: COPY failed: forbidden path outside the build context: ../secret",
      "Dockerfile:4: COPY --from=frist: no earlier stage and no image in berth's store has that name",
    ]);
  });
});
