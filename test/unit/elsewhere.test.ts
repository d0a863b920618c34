// A day-2 command's resource name that the stack's state places on another machine: the refusal names where it is
// and how to reach it — a secret host by its provider's name only, as the engine's messages do — and says nothing
// when the resource is where the command acts, or the stack has no such resource.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { elsewhere } from "../../provider/cli/elsewhere";
import { SECRET_SIG, SIG } from "../../provider/values";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-elsewhere-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A project whose stack "dev" holds container "web2" made through provider "h2" with these inputs. */
function project(h2: Record<string, unknown>): string {
  const p = fs.mkdtempSync(path.join(dir, "p-"));
  fs.writeFileSync(path.join(p, "Pulumi.yaml"), `name: proj\nruntime: nodejs\nbackend:\n  url: file://${p}\n`);
  const prov = "urn:pulumi:dev::proj::pulumi:providers:berth::h2";
  const resources = [
    { urn: prov, id: "id-h2", type: "pulumi:providers:berth", custom: true, inputs: h2, outputs: h2 },
    { urn: "urn:pulumi:dev::proj::berth:index:Container::web2", id: "web2-1", type: "berth:index:Container", custom: true, provider: `${prov}::id-h2`, inputs: {}, outputs: {} },
  ];
  const file = path.join(p, ".pulumi/stacks/proj/dev.json");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ version: 3, checkpoint: { stack: "organization/proj/dev", latest: { manifest: { time: "", magic: "", version: "" }, resources } } }));
  return p;
}

const TYPE = "berth:index:Container";

describe("a resource name the stack places elsewhere", () => {
  it("names the host and the command that reaches it; nothing when it is where the command acts", () => {
    const p = project({ host: "ssh://root@10.9.9.9" });
    expect(elsewhere({ dir: p, stack: "dev" }, TYPE, "web2", {}, "logs web2")).toBe(
      "container web2 of stack dev (provider h2) is on ssh://root@10.9.9.9, not on this machine: berth -H ssh://root@10.9.9.9 logs web2",
    );
    expect(elsewhere({ dir: p, stack: "dev" }, TYPE, "web2", { host: "ssh://root@10.9.9.9:22" }, "logs web2")).toBeUndefined();
    expect(elsewhere({ dir: p, stack: "dev" }, TYPE, "other", {}, "logs other")).toBeUndefined();
    expect(elsewhere({ dir: p, stack: "dev" }, "berth:index:Volume", "web2", {}, "volume inspect web2")).toBeUndefined();
  });

  it("a secret host is named by its provider only", () => {
    const p = project({ host: { [SIG]: SECRET_SIG, plaintext: JSON.stringify("ssh://root@10.9.9.9") } });
    const why = elsewhere({ dir: p, stack: "dev" }, TYPE, "web2", { host: "ssh://root@10.8.8.8" }, "logs web2")!;
    expect(why).toBe("container web2 of stack dev (provider h2) is on [secret host of provider h2], not on ssh://root@10.8.8.8, which -H/BERTH_HOST names: berth -H [secret host of provider h2] logs web2");
    expect(why).not.toContain("10.9.9.9");
  });
});
