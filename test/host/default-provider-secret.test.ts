// The default provider's inputs are the stack's `berth:*` config, recorded in the state as Pulumi records them: one
// set with `config set --secret` (a host, a key's path, ssh options) stays encrypted there, as every secret does.
// The host here is a closed loopback port, so the up fails after the provider is recorded, before anything is made.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { SECRET_SIG, SIG } from "../../provider/values";
import { berth } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/lifecycle");
const stack = `dpsecret${process.pid}${randomBytes(2).toString("hex")}`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "berth-dpsecret-"));
const env = { BERTH_ROOT: path.join(scratch, "root"), PULUMI_HOME: path.join(scratch, "home"), PULUMI_CONFIG_PASSPHRASE: "dp" };
const configFile = path.join(PROGRAM, `Pulumi.${stack}.yaml`);
const stateFile = path.join(PROGRAM, ".pulumi/stacks/lifecycle", `${stack}.json`);
const tarball = path.join(scratch, "empty.tar");
const user = `u${randomBytes(4).toString("hex")}`;
const run = (...args: string[]) => berth([...args, "-C", PROGRAM, "--stack", stack], env);

afterAll(() => {
  for (const f of [configFile, stateFile, `${stateFile}.bak`]) fs.rmSync(f, { force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe("the default provider's secret config", () => {
  it("is encrypted in the state, not written in plaintext", async () => {
    execFileSync("tar", ["-cf", tarball, "-C", scratch, "--files-from", "/dev/null"]);
    expect((await berth(["stack", "init", stack, "-C", PROGRAM], env)).code).toBe(0);
    for (const [k, v] of [["lifecycle:tarball", tarball], ["lifecycle:name", "dp"], ["lifecycle:memory", "64m"]]) {
      expect((await run("config", "set", k, v)).code).toBe(0);
    }
    const host = `ssh://${user}@127.0.0.1:1`;
    // Only the image: the container's check already asks the host, which fails the preview.
    const up = () => berth(["up", PROGRAM, "--stack", stack, "--yes", "--target", `urn:pulumi:${stack}::lifecycle::berth:index:Image::base`], env);
    const recorded = () => {
      const text = fs.readFileSync(stateFile, "utf8");
      return { text, provider: JSON.parse(text).checkpoint.latest.resources.find((r: { type: string }) => r.type === "pulumi:providers:berth") };
    };
    // First as plain config: recorded as it is.
    expect((await run("config", "set", "berth:host", host)).code).toBe(0);
    const plain = await up();
    expect(plain.stdout + plain.stderr).toContain("is unreachable");
    expect(recorded().provider?.inputs.host).toBe(host);

    // Made secret: the same host (the provider's resources stay), now encrypted in the state.
    expect((await run("config", "set", "--secret", "berth:host", host)).code).toBe(0);
    const secret = await up();
    expect(secret.stdout + secret.stderr).toContain("is unreachable");
    // Nor printed: messages name the provider instead (plain, the host was named).
    expect(plain.stdout + plain.stderr).toContain(user);
    expect(secret.stdout + secret.stderr).not.toContain(user);
    expect(secret.stdout + secret.stderr).toContain("[secret host of provider default]");
    const { text, provider } = recorded();
    expect(provider?.inputs.host).toMatchObject({ [SIG]: SECRET_SIG });
    expect(text).not.toContain(user);
  }, 120_000);
});
