// examples/registry as a user runs it: a Registry with a secret password, an image built and pushed to it, a
// container of it. A changed context file shows in preview as an image update and the container's replace because
// of its image; nothing is built in preview, and nothing changes on the up after.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, berth, clearRoot, freePort } from "./helpers";

const EXAMPLE = path.join(REPO, "examples/registry");
const stack = `t${process.pid}`;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-e2e-registry-"));
const configFile = path.join(EXAMPLE, `Pulumi.${stack}.yaml`);
const stateFile = path.join(EXAMPLE, ".pulumi/stacks/registry", `${stack}.json`);
const page = path.join(EXAMPLE, "app/page.txt");
const env = { BERTH_ROOT: root, PULUMI_CONFIG_PASSPHRASE: "berth-test" };
const cli = (...args: string[]) => berth([...args, EXAMPLE, "--stack", stack], env);
let port = 0;

beforeAll(async () => {
  const tar = path.join(EXAMPLE, "busybox-rootfs.tar");
  if (!fs.existsSync(tar)) execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
  port = await freePort();
  fs.writeFileSync(configFile, `config:\n  registry:port: "${port}"\n`);
});

afterAll(async () => {
  fs.writeFileSync(page, "v1\n");
  if (fs.existsSync(stateFile)) await cli("destroy", "--yes");
  await clearRoot(root); // what a failed destroy left
  for (const f of [configFile, stateFile, `${stateFile}.bak`]) fs.rmSync(f, { force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

describe("registry example", () => {
  it("builds, pushes with auth, replaces the container when a context file changes, and cleans up", async () => {
    const up = await cli("up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    // The build's progress, BuildKit's plain lines on stderr, each with the image's name.
    expect(up.stderr).toMatch(/\/app:1 #1 \[1\/\d+\] FROM /);
    expect(up.stderr).toMatch(/\/app:1 #\d+ naming to 127\.0\.0\.1:\d+\/app:1 done/);
    const state = fs.readFileSync(stateFile, "utf8");
    expect(state).not.toContain("change-me");
    const outputs = JSON.parse(state).checkpoint.latest.resources.find((r: { type: string }) => r.type === "pulumi:pulumi:Stack").outputs;
    const digest = JSON.parse(execFileSync("skopeo", ["inspect", "--tls-verify=false", "--creds", "ci:change-me", `docker://127.0.0.1:${port}/app:1`], { encoding: "utf8" })).Digest;
    expect(outputs.repoDigests).toEqual([`127.0.0.1:${port}/app@${digest}`]);

    fs.writeFileSync(page, "v2\n");
    const blobsBefore = fs.readdirSync(path.join(root, "blobs/sha256")).length;
    const preview = await cli("preview", "--json");
    expect(preview.code, preview.stderr).toBe(0);
    const steps = JSON.parse(preview.stdout).steps.filter((s: { op: string }) => s.op !== "same");
    expect(steps.map((s: { op: string; urn: string; replaceReasons?: string[] }) => [s.op, s.urn.split("::").pop(), s.replaceReasons ?? []])).toEqual([
      ["update", "app", []],
      ["replace", "worker", ["image"]],
    ]);
    expect(fs.readdirSync(path.join(root, "blobs/sha256")).length).toBe(blobsBefore);

    const second = await cli("up", "--yes");
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toContain("replace because of image");
    const third = await cli("up", "--yes");
    expect(third.stdout).toMatch(/6 unchanged/);

    const down = await cli("destroy", "--yes");
    expect(down.code, down.stdout + down.stderr).toBe(0);
    const registries = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(root) && l.includes("docker-registry"));
    expect(registries).toEqual([]);
  }, 240_000);
});
