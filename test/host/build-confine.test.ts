// What a build mounts or copies from its context stays inside the context: a context symlink (an absolute target,
// or a relative one climbing out) used as a RUN --mount=type=bind source must not bind the host path it names,
// read-only or rw. Each case aims at a canary directory outside the context and checks it unchanged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Runtime } from "../../native";
import { buildDigest, readDockerfile } from "../../native/build/context";
import { berth, busyboxBuildRoot } from "./helpers";

let root: string;
let env: NodeJS.ProcessEnv;
let rt: Runtime;
let canary: string;

/** Every entry of a directory with its content: what an escape would change. */
const snapshot = (dir: string) => fs.readdirSync(dir).sort().map((f) => `${f}=${fs.readFileSync(path.join(dir, f), "utf8")}`);

beforeAll(async () => {
  ({ root, env, rt } = await busyboxBuildRoot());
  canary = path.join(root, "canary");
  fs.mkdirSync(canary);
  fs.writeFileSync(path.join(canary, "file"), "host secret");
}, 60_000);

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** A build of a context holding `link` (a symlink to `to`) and `inside/file`, whose one RUN binds `link` rw. */
async function buildThrough(name: string, to: string) {
  const ctx = path.join(root, name);
  fs.mkdirSync(path.join(ctx, "inside"), { recursive: true });
  fs.writeFileSync(path.join(ctx, "inside/file"), "context file");
  fs.symlinkSync(to, path.join(ctx, "link"));
  fs.writeFileSync(path.join(ctx, "Dockerfile"), [
    "FROM busybox",
    `RUN --mount=type=bind,source=link,target=/m,rw sh -c 'cat /m/file > /seen; echo escaped > /m/written; true'`,
  ].join("\n"));
  return berth(["build", "-t", `${name}:1`, ctx], env);
}

/** /seen of an image, read back through a container of it. */
async function seenIn(ref: string): Promise<string> {
  const ctr = `bcf${process.pid}`;
  await rt.containers.run({ name: ctr, image: ref, networkMode: "none", command: ["sleep", "1000"] });
  try {
    const out = path.join(root, `${ref.replace(/\W/g, "-")}.seen`);
    const copied = await berth(["cp", `${ctr}:/seen`, out], env);
    expect(copied.code, copied.stderr).toBe(0);
    return fs.readFileSync(out, "utf8");
  } finally {
    await rt.containers.remove(ctr, { graceSeconds: 0 });
  }
}

describe("RUN --mount=type=bind from the context", () => {
  for (const [what, to] of [
    ["an absolute symlink to a host directory", () => canary],
    ["a relative symlink climbing out of the context", () => "../canary"],
  ] as const) {
    it(`follows ${what} inside the context only: the host directory is neither read nor written`, async () => {
      const before = snapshot(canary);
      const built = await buildThrough(what.replace(/\W+/g, "-").toLowerCase(), to());
      expect(snapshot(canary)).toEqual(before);
      // Inside the context the link leads nowhere (as BuildKit resolves it): nothing to mount.
      expect(built.code, built.stderr).toBe(1);
      expect(built.stderr).toContain("file not found in build context");
    }, 60_000);
  }

  it("mounts what a symlink leads to inside the context", async () => {
    const built = await buildThrough("in-context", "inside");
    expect(built.code, built.stderr).toBe(0);
    expect(await seenIn("in-context:1")).toBe("context file");
    expect(fs.existsSync(path.join(root, "in-context/inside/written"))).toBe(false); // rw writes are discarded
  }, 60_000);
});

describe("the context's Dockerfile", () => {
  it("is read through its symlinks inside the context only: a link to a host file is neither read nor printed", async () => {
    const shadow = path.join(root, "shadow");
    fs.writeFileSync(shadow, "root:$6$hostsecret$hash:19000:0:99999:7:::\n");
    const ctx = path.join(root, "df-link");
    fs.mkdirSync(path.join(ctx, "docker"), { recursive: true });
    fs.symlinkSync(shadow, path.join(ctx, "Dockerfile"));
    const refused = await berth(["build", "-t", "dflink:1", ctx], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("not found in the build context");
    expect(refused.stderr).not.toContain("hostsecret");

    // A link to a Dockerfile elsewhere in the context is followed there, as BuildKit does.
    fs.writeFileSync(path.join(ctx, "docker/Dockerfile.real"), "FROM busybox\nRUN echo built > /built\n");
    fs.rmSync(path.join(ctx, "Dockerfile"));
    fs.symlinkSync("docker/Dockerfile.real", path.join(ctx, "Dockerfile"));
    const built = await berth(["build", "-t", "dflink:1", ctx], env);
    expect(built.code, built.stderr).toBe(0);
  }, 60_000);

  it("that cannot be resolved inside the context (a link loop) is not found: the host path it names is never read", async () => {
    // Inside the context /etc/os-release leads to itself (40 links, then an error); on the host it is a real file.
    const host = fs.readFileSync("/etc/os-release", "utf8").split("\n")[0];
    const ctx = path.join(root, "df-loop");
    fs.mkdirSync(path.join(ctx, "etc"), { recursive: true });
    fs.symlinkSync("/etc/os-release", path.join(ctx, "Dockerfile"));
    fs.symlinkSync("/etc/os-release", path.join(ctx, "etc/os-release"));
    for (const read of [() => readDockerfile(ctx), () => buildDigest({ context: ctx })]) {
      const err = await read().then(() => undefined, (e: Error) => e.message);
      expect(err).toContain("not found in the build context");
      expect(err).not.toContain(host);
    }
    const refused = await berth(["build", "-t", "dfloop:1", ctx], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("not found in the build context");
    expect(refused.stderr).not.toContain(host);
  }, 60_000);
});
