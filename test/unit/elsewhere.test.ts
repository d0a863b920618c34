// A day-2 command's resource name that the stack's state places on another machine: its provider's configuration
// (where the command goes when given no host), and the refusal naming where it is and how to reach it — a secret host by its provider's name only, as the engine's messages do — and says nothing
// when the resource is where the command acts, or the stack has no such resource.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { elsewhere, stackState } from "../../provider/cli/elsewhere";
import { Names } from "../../provider/cli/objects";
import { newPassphraseState } from "../../provider/state/secrets";
import type { Runtime } from "../../native/runtime";
import { SECRET_SIG, SIG } from "../../provider/values";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-elsewhere-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A project whose stack "dev" holds containers "web2" and "web3" made through provider "h2" with these inputs. */
function project(h2: Record<string, unknown>, latest: Record<string, unknown> = {}): string {
  const p = fs.mkdtempSync(path.join(dir, "p-"));
  fs.writeFileSync(path.join(p, "Pulumi.yaml"), `name: proj\nruntime: nodejs\nbackend:\n  url: file://${p}\n`);
  const prov = "urn:pulumi:dev::proj::pulumi:providers:berth::h2";
  const resources = [
    { urn: prov, id: "id-h2", type: "pulumi:providers:berth", custom: true, inputs: h2, outputs: h2 },
    ...["web2", "web3"].map((n) => ({ urn: `urn:pulumi:dev::proj::berth:index:Container::${n}`, id: `${n}-1`, type: "berth:index:Container", custom: true, provider: `${prov}::id-h2`, inputs: {}, outputs: {} })),
  ];
  const file = path.join(p, ".pulumi/stacks/proj/dev.json");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ version: 3, checkpoint: { stack: "organization/proj/dev", latest: { manifest: { time: "", magic: "", version: "" }, resources, ...latest } } }));
  return p;
}

const TYPE = "berth:index:Container";

describe("a resource name the stack places elsewhere", () => {
  it("names the host and the command that reaches it; nothing when it is where the command acts", () => {
    const p = project({ host: "ssh://root@10.9.9.9" });
    expect(elsewhere(stackState({ dir: p, stack: "dev" }), { stack: "dev" }, TYPE, "web2", {}, "logs web2")).toEqual({
      config: { host: "ssh://root@10.9.9.9" },
      why: "container web2 of stack dev (provider h2) is on ssh://root@10.9.9.9, not on this machine: berth -H ssh://root@10.9.9.9 logs web2, or with no -H nor BERTH_HOST (berth then goes where the stack says)",
    });
    expect(elsewhere(stackState({ dir: p, stack: "dev" }), { stack: "dev" }, TYPE, "web2", { host: "ssh://root@10.9.9.9:22" }, "logs web2")).toBeUndefined();
    expect(elsewhere(stackState({ dir: p, stack: "dev" }), { stack: "dev" }, TYPE, "other", {}, "logs other")).toBeUndefined();
    expect(elsewhere(stackState({ dir: p, stack: "dev" }), { stack: "dev" }, "berth:index:Volume", "web2", {}, "volume inspect web2")).toBeUndefined();
  });

  it("a secret host is named by its provider only", () => {
    const p = project({ host: { [SIG]: SECRET_SIG, plaintext: JSON.stringify("ssh://root@10.9.9.9") } });
    const { why } = elsewhere(stackState({ dir: p, stack: "dev" }), { stack: "dev" }, TYPE, "web2", { host: "ssh://root@10.8.8.8" }, "logs web2")!;
    expect(why).toMatch(/^container web2 of stack dev \(provider h2\) is on \[secret host of provider h2\], not on ssh:\/\/root@10\.8\.8\.8, which -H\/BERTH_HOST names: berth -H \[secret host of provider h2\] logs web2/);
    expect(why).not.toContain("10.9.9.9");
  });

  it("reads the stack once per command, and writes nothing: not even the checkpoint's salt into Pulumi.<stack>.yaml", () => {
    process.env.PULUMI_CONFIG_PASSPHRASE = "day-2";
    const made = newPassphraseState("day-2");
    const sealed = { [SIG]: SECRET_SIG, ciphertext: made.crypter.encrypt(JSON.stringify("ssh://root@10.9.9.9")) };
    // As `pulumi up` leaves it when Pulumi.dev.yaml was never written here: the salt only in the checkpoint.
    const p = project({ host: sealed }, { secrets_providers: { type: "passphrase", state: { salt: made.state } } });
    const before = fs.readdirSync(p).sort();
    const rt = { containers: { inspect: async () => undefined }, owners: { list: async () => new Map() }, retarget: () => false, host: "ssh://root@10.8.8.8" };
    const names = new Names(rt as unknown as Runtime, { flags: { cwd: p, stack: "dev" }, args: [] });
    return (async () => {
      await expect(names.container("web2")).rejects.toThrow(/container web2 of stack dev \(provider h2\) is on \[secret host of provider h2\]/);
      // The state is not read again for the next name: it still says where web3 is.
      fs.rmSync(path.join(p, ".pulumi/stacks/proj/dev.json"));
      await expect(names.container("web3")).rejects.toThrow(/container web3 of stack dev/);
      expect(fs.readdirSync(p).sort()).toEqual(before);
    })().finally(() => delete process.env.PULUMI_CONFIG_PASSPHRASE);
  });
});
