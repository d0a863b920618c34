// A build and an image removal in two berth processes on one root: an image a build reads (COPY --from=IMAGE,
// RUN --mount=from=IMAGE) stays whole until the build ends, as its FROM image does, whatever `rmi` does meanwhile.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import type { Runtime } from "../../native";
import { berth, busyboxBuildRoot, collect, startBerth, waitFor } from "./helpers";

let root: string;
let env: NodeJS.ProcessEnv;
let rt: Runtime;

/** A context with a Dockerfile and these files. */
function context(name: string, dockerfile: string[], files: Record<string, string> = {}): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "Dockerfile"), dockerfile.join("\n"));
  for (const [f, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), content);
  return dir;
}

beforeAll(async () => {
  ({ root, env, rt } = await busyboxBuildRoot());
}, 60_000);

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe("a build while another process removes an image it reads", () => {
  // `other:N` is one layer holding a marker: imported, not built, so no build cache entry keeps it either.
  const makeOther = async (tag: string, marker: string) => {
    const dir = path.join(root, `other-${tag.replace(/\W/g, "-")}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "marker"), marker);
    execFileSync("tar", ["-C", dir, "-cf", `${dir}.tar`, "marker"]);
    await rt.images.importRootfs({ ref: tag, tarball: `${dir}.tar`, config: {} });
  };

  /** Starts the build, removes `ref` once the build's step `step` runs, and resolves to the build's result. */
  const buildWhileRemoving = async (ctx: string, tag: string, step: RegExp, ref: string) => {
    const child = startBerth(["build", "--progress", "plain", "-t", tag, ctx], env);
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const done = collect(child);
    await waitFor(`the build's step ${step}`, () => step.test(stderr) || undefined, 60_000);
    const removed = await berth(["rmi", ref], env);
    expect(removed.code, removed.stderr).toBe(0);
    const built = await done;
    return { ...built, stderr };
  };

  it("RUN --mount=type=bind,from=IMAGE reads the image whole while it is removed", async () => {
    await makeOther("other:1", "from other 1");
    const ctx = context("mount-from", [
      "FROM busybox",
      // The sleep gives the removal time to finish before the mount is read.
      "RUN --mount=type=bind,from=other:1,target=/m sh -c 'sleep 4; cat /m/marker > /seen'",
    ]);
    const built = await buildWhileRemoving(ctx, "mounted:1", /RUN --mount/, "other:1");
    expect(built.code, built.stderr).toBe(0);
    const seen = path.join(root, "seen-mount");
    await rt.containers.run({ name: `brm${process.pid}`, image: "mounted:1", networkMode: "none", command: ["sleep", "1000"] });
    try {
      const copied = await berth(["cp", `brm${process.pid}:/seen`, seen], env);
      expect(copied.code, copied.stderr).toBe(0);
      expect(fs.readFileSync(seen, "utf8")).toBe("from other 1");
    } finally {
      await rt.containers.remove(`brm${process.pid}`, { graceSeconds: 0 });
    }
    // The removed image's own layer went once the build was done with it (a collection now takes it).
    expect(await rt.images.inspect("other:1")).toBeUndefined();
  }, 120_000);
});
