// Secrets as Pulumi's passphrase provider keeps them (config, checkpoint), secret inputs staying secret through a
// provider, and the backend found as the Pulumi CLI finds it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { KindProvider } from "../../provider/resources/kind";
import { chooseBackend } from "../../provider/state/backend";
import { emptyDeployment } from "../../provider/state/checkpoint";
import { passphraseCrypter } from "../../provider/state/secrets";
import { StackSettings } from "../../provider/state/stackconfig";
import { StackStore } from "../../provider/state/store";
import { SECRET_SIG, SIG, isSecret } from "../../provider/values";

// A salt state written by the Pulumi CLI for the passphrase "password" (from Pulumi's own tests).
const PULUMI_STATE = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ==";
const secret = (value: unknown) => ({ [SIG]: SECRET_SIG, value });

const dirs: string[] = [];
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-secrets-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  delete process.env.PULUMI_CONFIG_PASSPHRASE;
});

describe("the passphrase secrets provider", () => {
  it("opens a salt Pulumi wrote, refuses a wrong passphrase, and round-trips values", () => {
    const crypter = passphraseCrypter("password", PULUMI_STATE);
    const sealed = crypter.encrypt('"hunter2"');
    expect(sealed).toMatch(/^v1:[A-Za-z0-9+/=]{16}:[A-Za-z0-9+/=]+$/);
    expect(crypter.decrypt(sealed)).toBe('"hunter2"');
    expect(() => passphraseCrypter("wrong", PULUMI_STATE)).toThrow(/incorrect passphrase/);
  });

  it("config set --secret writes a salt and a secure value; the program gets it decrypted and marked secret", () => {
    const dir = tempDir();
    process.env.PULUMI_CONFIG_PASSPHRASE = "pw";
    const file = path.join(dir, "Pulumi.dev.yaml");
    new StackSettings(file, "app").set("token", "s3cret", true);
    new StackSettings(file, "app").set("berth:root", "/x", false);
    const text = fs.readFileSync(file, "utf8");
    expect(text).toMatch(/^encryptionsalt: v1:/m);
    expect(text).toMatch(/app:token:\n\s+secure: v1:/);
    expect(text).not.toContain("s3cret");
    expect(new StackSettings(file, "app").config()).toEqual({ values: { "app:token": "s3cret", "berth:root": "/x" }, secretKeys: ["app:token"] });
    delete process.env.PULUMI_CONFIG_PASSPHRASE;
    expect(() => new StackSettings(file, "app").config()).toThrow(/PULUMI_CONFIG_PASSPHRASE/);
  });

  it("the checkpoint holds ciphertext and Pulumi's secrets_providers, and loads back as secrets", () => {
    const dir = tempDir();
    process.env.PULUMI_CONFIG_PASSPHRASE = "password";
    fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), `encryptionsalt: ${PULUMI_STATE}\n`);
    const store = new StackStore({ backendDir: dir, project: "app", stack: "dev", secrets: new StackSettings(path.join(dir, "Pulumi.dev.yaml"), "app") });
    const resource = { urn: "urn:pulumi:dev::app::t::a", custom: true, type: "t", inputs: { pw: secret({ nested: "s3cret" }) }, outputs: { pw: secret({ nested: "s3cret" }) } };
    store.save({ ...emptyDeployment(), resources: [resource] });
    const text = fs.readFileSync(store.file, "utf8");
    expect(text).not.toContain("s3cret");
    const written = JSON.parse(text).checkpoint.latest;
    expect(written.secrets_providers).toEqual({ type: "passphrase", state: { salt: PULUMI_STATE } });
    const sealed = written.resources[0].inputs.pw;
    expect(Object.keys(sealed).sort()).toEqual([SIG, "ciphertext"].sort());
    expect(JSON.parse(passphraseCrypter("password", PULUMI_STATE).decrypt(sealed.ciphertext))).toEqual({ nested: "s3cret" });
    expect(store.load().resources[0].inputs).toEqual(resource.inputs);
  });
});

describe("a secret input through a provider", () => {
  const Args = z.strictObject({ name: z.string().optional(), pw: z.string().min(3, { error: "must be at least 3 characters" }) });
  const made: Array<Record<string, unknown>> = [];
  const provider = new KindProvider<z.infer<typeof Args>, { pw: string; length: number }>("test:index:T", {
    args: Args,
    outputs: z.object({ pw: z.string(), length: z.number() }),
    autoname: true,
    previewOutputs: () => ({}),
    idOf: (inputs) => inputs.name!,
    async create(inputs) {
      made.push(inputs);
      return { id: inputs.name!, outputs: { pw: inputs.pw, length: inputs.pw.length } };
    },
    read: async (_id, _inputs, outputs) => outputs,
    delete: async () => undefined,
  });

  it("is validated and used in plain, and stays secret in inputs and outputs", async () => {
    const checked = await provider.check({ urn: "u", name: "a", news: { pw: secret("s3cret") }, randomSeed: "u" });
    expect(checked.failures).toEqual([]);
    expect(isSecret(checked.inputs.pw)).toBe(true);
    const bad = await provider.check({ urn: "u", name: "a", news: { pw: secret("x") }, randomSeed: "u" });
    expect(bad.failures).toEqual([{ property: "pw", reason: "must be at least 3 characters" }]);
    const created = await provider.create({ urn: "u", inputs: checked.inputs, preview: false });
    expect(made.at(-1)!.pw).toBe("s3cret");
    expect(created.outputs.pw).toEqual(secret("s3cret"));
    expect(created.outputs.length).toBe(6);
    // Marking a value secret, or no longer, is not a change to the object.
    const diff = await provider.diff({ urn: "u", id: "a", oldInputs: checked.inputs, oldOutputs: created.outputs, news: { ...checked.inputs, pw: "s3cret" } });
    expect(diff.changes).toBe(false);
  });
});

describe("backend discovery", () => {
  it("follows --backend, PULUMI_BACKEND_URL, Pulumi.yaml, pulumi login, then the project directory", () => {
    const home = tempDir();
    const env = { PULUMI_HOME: home } as NodeJS.ProcessEnv;
    expect(chooseBackend({ projectDir: "/p", env })).toEqual({ dir: "/p", source: "project directory" });
    fs.writeFileSync(path.join(home, "credentials.json"), JSON.stringify({ current: "file:///from-login" }));
    expect(chooseBackend({ projectDir: "/p", env }).dir).toBe("/from-login");
    expect(chooseBackend({ projectDir: "/p", projectUrl: "file:///from-yaml", env }).dir).toBe("/from-yaml");
    const withEnv = { ...env, PULUMI_BACKEND_URL: "file://~/state?no_tmp_dir=true" };
    expect(chooseBackend({ projectDir: "/p", projectUrl: "file:///from-yaml", env: withEnv }).dir).toBe(path.join(os.homedir(), "state"));
    expect(chooseBackend({ flag: "file://rel", projectDir: "/p", env: withEnv }).dir).toBe(path.resolve("rel"));
    expect(() => chooseBackend({ flag: "https://api.pulumi.com", projectDir: "/p", env })).toThrow(/not a file backend; berth keeps state only in file:\/\/ backends/);
  });
});
