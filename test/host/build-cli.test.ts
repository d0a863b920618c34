// `berth build` and `berth builder prune` through the real CLI on a root of their own: Docker's flags, BuildKit's
// progress on stderr, secrets from the environment, and a prune that empties the cache (dangling, then all).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { createNativeRuntime } from "../../native";
import { REPO, berth } from "./helpers";

let root: string;
let env: NodeJS.ProcessEnv;
let ctx: string;

beforeAll(async () => {
  root = fs.mkdtempSync("/tmp/berth-test-");
  env = { BERTH_ROOT: path.join(root, "state"), BERTH_RUN: path.join(root, "run"), SECRET_X: "from-the-env" };
  const tar = path.join(root, "busybox.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
  await createNativeRuntime({ root: env.BERTH_ROOT, runDir: env.BERTH_RUN }).images.importRootfs({ ref: "busybox:latest", tarball: tar, config: {} });
  ctx = path.join(root, "ctx");
  fs.mkdirSync(ctx);
  fs.writeFileSync(
    path.join(ctx, "Dockerfile"),
    [
      "FROM busybox",
      "ARG V=1",
      "RUN --mount=type=cache,target=/c,id=cli-cache sh -c 'echo $V >> /c/f; wc -l < /c/f'",
      "RUN --mount=type=secret,id=s,required sh -c 'wc -c < /run/secrets/s > /secret-len'",
      "COPY a /a",
    ].join("\n"),
  );
  fs.writeFileSync(path.join(ctx, "a"), "a");
}, 60_000);

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe("berth build / builder prune", () => {
  it("builds with Docker's flags, progress on stderr, then prunes the cache", async () => {
    const first = await berth(["build", "-t", "cli:1", "-t", "cli:latest", "--build-arg", "V=7", "--secret", "id=s,env=SECRET_X", ctx], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain("#1 [1/4] FROM busybox");
    expect(first.stderr).toMatch(/#2 [\d.]+ 1\n/);
    expect(first.stderr).toContain("naming to cli:1 done");
    expect(first.stderr).not.toContain("from-the-env");
    const rt = createNativeRuntime({ root: env.BERTH_ROOT, runDir: env.BERTH_RUN });
    expect((await rt.images.inspect("cli:latest"))?.id).toBe((await rt.images.inspect("cli:1"))?.id);

    const quiet = await berth(["build", "-q", "-t", "cli:1", "--build-arg", "V=7", "--secret", "id=s,env=SECRET_X", ctx], env);
    expect(quiet.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(quiet.stderr).toBe("");

    const noSecret = await berth(["build", "-t", "cli:2", "--no-cache", ctx], env);
    expect(noSecret.code).toBe(1);
    expect(noSecret.stderr).toContain('no build secret "s" was given');

    const unconfirmed = await berth(["builder", "prune"], env);
    expect([unconfirmed.code, unconfirmed.stderr.trim()]).toEqual([1, "berth builder: this would remove all dangling build cache: add --force (-f) to confirm"]);
    const recent = await berth(["builder", "prune", "-f", "--filter", "until=1h"], env);
    expect(recent.stdout.trim()).toBe("Total reclaimed space: 0B");

    // Dangling only: the image's layers keep their cache entries; the cache mount goes.
    const dangling = await berth(["builder", "prune", "-f"], env);
    expect(dangling.code, dangling.stderr).toBe(0);
    expect(dangling.stdout).toContain("cache mount cli-cache");
    // (The failed --no-cache build's first RUN made a layer no image has: that one goes.)
    for (const layer of (await rt.images.inspect("cli:1"))!.layers) expect(dangling.stdout).not.toContain(layer);
    const again = await berth(["build", "-t", "cli:1", "--build-arg", "V=7", "--secret", "id=s,env=SECRET_X", ctx], env);
    expect(again.stderr).toContain("#2 CACHED");

    const all = await berth(["builder", "prune", "-a", "-f"], env);
    expect(all.stdout).toMatch(/layer sha256:[0-9a-f]{64}/);
    expect(all.stdout).toMatch(/Total reclaimed space: \d/);
    expect(fs.readdirSync(path.join(env.BERTH_ROOT!, "leases")).filter((n) => n.startsWith("cache-"))).toEqual([]);
    // The image itself is untouched, and a rebuild runs its steps again (the cache mount starts empty).
    expect(await rt.images.inspect("cli:1")).toBeDefined();
    const rebuilt = await berth(["build", "-t", "cli:3", "--build-arg", "V=7", "--secret", "id=s,env=SECRET_X", ctx], env);
    expect(rebuilt.stderr).not.toContain("#2 CACHED");
    expect(rebuilt.stderr).toMatch(/#2 [\d.]+ 1\n/);
  });

  it("refuses bad flags in Docker's words", async () => {
    expect((await berth(["build", ctx, "--frob"], env)).stderr).toContain("unknown flag: --frob");
    expect((await berth(["build"], env)).stderr).toContain('"berth build" requires exactly 1 argument');
    expect((await berth(["builder", "prune", "-f", "--filter", "until=soon"], env)).stderr).toContain('"soon" is not a duration');
    expect((await berth(["build", "--secret", "id=s,env=NOPE_NOT_SET", ctx], env)).stderr).toContain("environment variable NOPE_NOT_SET is not set");
  });

  it("refuses a -t the store would refuse before building, and names an untagged build validly", async () => {
    const bad = await berth(["build", "-t", "app_", ctx], env);
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining('invalid argument "app_" for "-t, --tag" flag: invalid reference format')]);
    expect(bad.stderr).not.toContain("FROM busybox"); // nothing was built
    // A directory name Docker builds from that is no image name as it stands.
    const site = path.join(root, "_Site.");
    fs.mkdirSync(site);
    fs.writeFileSync(path.join(site, "Dockerfile"), "FROM busybox\n");
    const built = await berth(["build", site], env);
    expect(built.code, built.stderr).toBe(0);
    expect(await createNativeRuntime({ root: env.BERTH_ROOT, runDir: env.BERTH_RUN }).images.inspect("berth-build-site:latest")).toBeDefined();
  }, 60_000);
});
