// Many hosts under the embedded engine: each resource goes to its provider's host, checks within the program are
// per host, and a provider that moves takes its resources with it, as Pulumi's DiffConfig/providerChanged decide.
import { describe, expect, it } from "vitest";
import type { DeploymentRun, Goal } from "../../provider/engine/deployment";
import { checkProviderConfig, diffProviderConfig, redact, secretHostTexts, type ProviderConfig } from "../../provider/resources";
import { KindProvider } from "../../provider/resources/kind";
import type { Provider } from "../../provider/resources/provider";
import { targetOf } from "../../provider/runtimes";
import { emptyDeployment, type DeploymentV3 } from "../../provider/state/checkpoint";
import { SECRET_SIG, SIG, UNKNOWN } from "../../provider/values";
import * as os from "node:os";
import { TYPE, fakeKind, thing, urn, world } from "./fake-world";

/** A fake host per provider configuration (by host, else root), each logging what is done on it. */
function fleet(defaultInputs: Record<string, string> = {}) {
  /** Hosts that cannot be reached: every operation there fails as ssh does. */
  const down = new Set<string>();
  const hosts = new Map<string, { objects: Map<string, unknown>; log: string[] }>();
  const hostOf = (config: ProviderConfig) => {
    const key = config.host ?? config.root ?? "local";
    if (!hosts.has(key)) hosts.set(key, { objects: new Map(), log: [] });
    return hosts.get(key)!;
  };
  const providersFor = (config: ProviderConfig) => {
    const h = hostOf(config);
    const kind = new KindProvider(TYPE, fakeKind(h.objects as never, h.log));
    const unreachable = () => {
      if (down.has(config.host ?? "")) throw new Error(`cannot reach ${config.host}: ssh: connect to host port 22: Connection refused`);
    };
    const guarded = Object.create(kind) as Provider;
    for (const op of ["create", "read", "update", "delete"] as const) {
      guarded[op] = async (req: never) => (unreachable(), (kind[op] as (r: never) => Promise<never>).call(kind, req));
    }
    return new Map<string, Provider>([[TYPE, guarded]]);
  };
  const w = world({ providersFor, providers: providersFor(checkProviderConfig(defaultInputs).config), defaultProviderInputs: defaultInputs });
  return { w, hosts, down, log: (key: string) => hosts.get(key)?.log ?? [] };
}

const provider = (name: string, inputs: Record<string, unknown>): Goal => ({
  type: "pulumi:providers:berth",
  name,
  custom: true,
  inputs,
  dependencies: [],
  propertyDependencies: {},
});

/** Registers the goals in order (a Provider's goal is followed by resources naming it with `on`), then finishes. */
async function deploy(run: DeploymentRun, goals: Array<Goal & { on?: string }>): Promise<DeploymentRun> {
  const refs = new Map<string, string>();
  for (const { on, ...goal } of goals) {
    const r = await run.register({ ...goal, ...(on ? { provider: refs.get(on) } : {}) }).catch(() => undefined);
    if (r && goal.type === "pulumi:providers:berth") refs.set(goal.name, `${r.urn}::${r.id}`);
  }
  if (!run.failed) await run.finish();
  return run;
}

const errors = (run: DeploymentRun) => run.diagnostics.filter((d) => d.severity === "error").map((d) => d.message);
/** Changing steps; "delete original" for the old copy a replacement leaves. */
const steps = (run: DeploymentRun) =>
  run.steps
    .filter((s) => s.op !== "same")
    .map((s) => `${s.old?.delete && s.op === "delete" ? "delete original" : s.op} ${s.urn.split("::").pop()}${s.replaces.length ? ` (${s.replaces.join(", ")})` : ""}`);

describe("providers of many hosts", () => {
  it("each resource goes to its provider's host; the same host port on two hosts is fine, twice on one is refused naming the host", async () => {
    const f = fleet();
    const h2 = provider("h2", { host: "ssh://root@10.0.0.101" });
    const run = await deploy(f.w.run(emptyDeployment()), [h2, thing("a", { name: "a", hostPort: 8080 }), { ...thing("b", { name: "b", hostPort: 8080 }), on: "h2" }]);
    expect(errors(run)).toEqual([]);
    expect(f.log("local")).toEqual(["create a"]);
    expect(f.log("ssh://root@10.0.0.101")).toEqual(["create b"]);
    const b = run.state.resources.find((r) => r.urn === urn("b"))!;
    const p = run.state.resources.find((r) => r.type === "pulumi:providers:berth" && r.urn.endsWith("::h2"))!;
    expect(b.provider).toBe(`${p.urn}::${p.id}`);

    const twice = await deploy(fleet().w.run(emptyDeployment(), true), [h2, { ...thing("b", { name: "b", hostPort: 8080 }), on: "h2" }, { ...thing("c", { name: "c", hostPort: 8080 }), on: "h2" }]);
    expect(errors(twice)).toEqual(['test:index:Thing "c" on ssh://root@10.0.0.101: host port 0.0.0.0:8080/tcp is already taken by test:index:Thing "b" in this program']);
  });

  it("two berth roots on this machine share its host ports but not names", async () => {
    const f = fleet();
    const alt = provider("alt", { root: "/srv/alt" });
    const names = await deploy(f.w.run(emptyDeployment(), true), [alt, thing("a", { name: "same", port: 1 }), { ...thing("b", { name: "same", port: 1 }), on: "alt" }]);
    expect(errors(names)).toEqual([]);
    const ports = await deploy(fleet().w.run(emptyDeployment(), true), [alt, thing("a", { hostPort: 80 }), { ...thing("b", { hostPort: 80 }), on: "alt" }]);
    expect(errors(ports)).toEqual([expect.stringContaining('host port 0.0.0.0:80/tcp is already taken by test:index:Thing "a" in this program')]);
  });

  it("two providers naming one machine and root differently (user, port, case) share its claims: names and ports", async () => {
    const a = provider("a", { host: "ssh://root@h2" });
    const b = provider("b", { host: "ssh://deploy@H2:22", sshOptions: ["ConnectTimeout=5"] });
    const names = await deploy(fleet().w.run(emptyDeployment(), true), [a, b, { ...thing("x", { name: "same", port: 1 }), on: "a" }, { ...thing("y", { name: "same", port: 1 }), on: "b" }]);
    expect(errors(names)).toEqual([expect.stringContaining('test:index:Thing "y" on ssh://deploy@H2:22: port 1 is already taken by test:index:Thing "x" in this program')]);
    const ports = await deploy(fleet().w.run(emptyDeployment(), true), [a, { ...b, inputs: { host: "ssh://h2", root: "/srv/other" } }, { ...thing("x", { hostPort: 80 }), on: "a" }, { ...thing("y", { hostPort: 80 }), on: "b" }]);
    expect(errors(ports)).toEqual([expect.stringContaining("host port 0.0.0.0:80/tcp is already taken")]);
  });

  it("a provider whose host changes is replaced, and so is every resource it manages: made on the new host, deleted on the old", async () => {
    const f = fleet();
    const first = await deploy(f.w.run(emptyDeployment()), [provider("h2", { host: "ssh://a" }), { ...thing("x", { name: "x" }), on: "h2" }]);
    const preview = await deploy(f.w.run(first.state, true), [provider("h2", { host: "ssh://b" }), { ...thing("x", { name: "x" }), on: "h2" }]);
    expect(steps(preview)).toEqual(["replace h2 (host)", "replace x (provider)", "delete original h2"]);
    expect(f.log("ssh://b")).toEqual([]);

    const moved = await deploy(f.w.run(first.state), [provider("h2", { host: "ssh://b" }), { ...thing("x", { name: "x" }), on: "h2" }]);
    expect(errors(moved)).toEqual([]);
    expect(f.log("ssh://b")).toEqual(["create x"]);
    expect(f.log("ssh://a")).toEqual(["create x", "delete x"]);
    expect(moved.steps.find((s) => s.urn === urn("x"))?.deleteBeforeReplace).toBe(false);
    expect(moved.state.resources.filter((r) => r.delete)).toEqual([]);

    // A new key or ssh option reaches the same host: the provider is updated, its resources stay.
    const rekeyed = await deploy(f.w.run(moved.state), [provider("h2", { host: "ssh://b", sshOptions: ["ConnectTimeout=5"] }), { ...thing("x", { name: "x" }), on: "h2" }]);
    expect(steps(rekeyed)).toEqual(["update h2"]);
  });

  it("a provider moved to another root of this machine deletes first (its host ports are the machine's)", async () => {
    const f = fleet();
    const first = await deploy(f.w.run(emptyDeployment()), [provider("p", { root: "/srv/one" }), { ...thing("x", { name: "x", hostPort: 80 }), on: "p" }]);
    const moved = await deploy(f.w.run(first.state), [provider("p", { root: "/srv/two" }), { ...thing("x", { name: "x", hostPort: 80 }), on: "p" }]);
    expect(errors(moved)).toEqual([]);
    expect(moved.steps.find((s) => s.urn === urn("x"))?.deleteBeforeReplace).toBe(true);
    expect([...f.log("/srv/one"), ...f.log("/srv/two")]).toEqual(["create x", "delete x", "create x"]);
  });

  it("the stack's berth:host moves the default provider's resources; moving a resource to another provider of the same host does not", async () => {
    const local = fleet();
    const first = await deploy(local.w.run(emptyDeployment()), [thing("x", { name: "x" })]);
    const remote = fleet({ host: "ssh://c" });
    const moved = await deploy(remote.w.run(first.state), [thing("x", { name: "x" })]);
    expect(steps(moved)).toEqual(["replace x (provider)", "delete original x", "delete original default"]);
    expect(remote.log("ssh://c")).toEqual(["create x"]);
    // The old copy was deleted through the old default provider's configuration: this machine.
    expect(remote.log("local")).toEqual(["delete x"]);

    const same = await deploy(remote.w.run(moved.state), [provider("c", { host: "ssh://c" }), { ...thing("x", { name: "x" }), on: "c" }]);
    expect(steps(same)).toEqual(["create c", "delete default"]); // x stays: the same host
  });

  it("destroy and refresh reach the host a resource was made on, also once the program no longer declares its provider", async () => {
    const f = fleet();
    const first = await deploy(f.w.run(emptyDeployment()), [provider("h2", { host: "ssh://a" }), { ...thing("x", { name: "x" }), on: "h2" }, thing("y", { name: "y" })]);
    f.hosts.get("ssh://a")!.objects.clear(); // removed by hand on that host
    const refresh = f.w.run(first.state);
    await refresh.refresh();
    expect(refresh.state.resources.map((r) => r.urn.split("::").pop())).not.toContain("x");

    const again = await deploy(f.w.run(refresh.state), [provider("h2", { host: "ssh://a" }), { ...thing("x", { name: "x" }), on: "h2" }, thing("y", { name: "y" })]);
    const dropped = await deploy(f.w.run(again.state), [thing("y", { name: "y" })]);
    expect(steps(dropped)).toEqual(["delete x", "delete h2"]);
    expect(f.log("ssh://a").at(-1)).toBe("delete x");

    const destroy = f.w.run(again.state);
    await destroy.destroy();
    expect(f.log("local").at(-1)).toBe("delete y");
    expect(destroy.state.resources).toEqual([]);
  });

  it("a bad host is refused at preview naming the field and the fix, also when it is not known yet", async () => {
    for (const [inputs, property, reason] of [
      [{ host: "tcp://10.0.0.1:2375" }, "host", /berth reaches another machine over SSH only.*ssh:\/\/\[user@\]host\[:port\]/],
      [{ host: "ssh://-oProxyCommand=x" }, "host", /must be ssh:\/\/\[user@\]host\[:port\]/],
      [{ host: "ssh://a:70000" }, "host", /must be ssh:\/\//],
      [{ identityFile: "~/.ssh/id" }, "identityFile", /only applies to another machine/],
      [{ host: "ssh://a", identityFile: "/nonexistent/key" }, "identityFile", /\/nonexistent\/key does not exist on this machine/],
      [{ host: "ssh://a", sshOptions: ["StrictHostKeyChecking=no"] }, "sshOptions[0]", /StrictHostKeyChecking=no would accept any host key/],
      [{ host: "ssh://a", sshOptions: ["-v"] }, "sshOptions[0]", /must be an OpenSSH option as Key=Value/],
      [{ host: "ssh://a", sshOptions: ["StrictHostKeyChecking=accept-new"] }, "sshOptions[0]", /StrictHostKeyChecking=accept-new would accept any host key; berth never skips/],
      [{ host: "ssh://a", sshOptions: ["ProxyCommand=nc %h %p"] }, "sshOptions[0]", /ProxyCommand=nc %h %p runs a command on this machine: put it in ~\/\.ssh\/config/],
      [{ host: "ssh://a", runDir: "/run/x" }, "runDir", /is this machine's/],
    ] as const) {
      const f = fleet();
      const run = await deploy(f.w.run(emptyDeployment(), true), [provider("h2", inputs), { ...thing("x", {}), on: "h2" }]);
      expect(errors(run), JSON.stringify(inputs)).toEqual([expect.stringMatching(new RegExp(`pulumi:providers:berth "h2": ${property.replace(/[[\]]/g, "\\$&")}: ${reason.source}`))]);
    }
    // Stack config arrives as strings: a list as JSON.
    expect(checkProviderConfig({ host: "ssh://a", sshOptions: '["ConnectTimeout=5"]' }).config.sshOptions).toEqual(["ConnectTimeout=5"]);
  });

  it("a host not known at preview is previewed as Pulumi previews an unconfigured provider; the update checks it in full", async () => {
    const f = fleet();
    const goals = (host: unknown, size = 0) => [provider("h2", { host }), { ...thing("x", { name: "x", size }), on: "h2" }, thing("y", { name: "y" })];
    const preview = await deploy(f.w.run(emptyDeployment(), true), goals(UNKNOWN, 1));
    expect(errors(preview)).toEqual([]);
    expect(steps(preview)).toEqual(["create h2", "create x", "create y"]);
    expect(preview.steps.find((s) => s.urn === urn("x"))?.new?.outputs).toEqual({});
    // Its schema needs no host: a bad literal is refused at preview (Pulumi would check nothing), not midway.
    const bad = await deploy(f.w.run(emptyDeployment(), true), goals(UNKNOWN));
    expect(errors(bad)).toEqual([expect.stringMatching(/^test:index:Thing "x".*: size: must be at least 1$/)]);
    // Once known, a bad value is refused before anything is made on that host.
    const up = await deploy(f.w.run(emptyDeployment()), goals("ssh://a"));
    expect(errors(up)).toEqual(['test:index:Thing "x" on ssh://a: size: must be at least 1']);
    expect(f.log("ssh://a")).toEqual([]);
    // An update cannot go on without it.
    const blind = await deploy(f.w.run(emptyDeployment()), goals(UNKNOWN).slice(0, 1));
    expect(errors(blind)).toEqual([expect.stringMatching(/pulumi:providers:berth "h2": host: is not known yet/)]);
  });

  it("a host that already had resources, not known at preview: they are shown replaced with their provider", async () => {
    const f = fleet();
    const first = await deploy(f.w.run(emptyDeployment()), [provider("h2", { host: "ssh://a" }), { ...thing("x", { name: "x" }), on: "h2" }]);
    const preview = await deploy(f.w.run(first.state, true), [provider("h2", { host: UNKNOWN }), { ...thing("x", { name: "x" }), on: "h2" }]);
    expect(errors(preview)).toEqual([]);
    expect(steps(preview)).toEqual(["replace h2 (host)", "replace x (provider)", "delete original h2"]);
    // Pulumi's warning for a diff its unconfigured provider cannot make.
    expect(preview.diagnostics.filter((d) => d.severity === "warning").map((d) => d.message)).toEqual([
      expect.stringContaining('test:index:Thing "x": the provider for this resource has inputs that are not known during preview'),
    ]);
  });

  it("a secret host is never printed: messages name its provider", async () => {
    const secret = (value: string) => ({ [SIG]: SECRET_SIG, value });
    const f = fleet();
    const goals = [provider("vault", { host: secret("ssh://root@10.9.8.7") }), { ...thing("x", { name: "x", hostPort: 80 }), on: "vault" }, { ...thing("y", { name: "y", hostPort: 80 }), on: "vault" }];
    const preview = await deploy(f.w.run(emptyDeployment(), true), goals);
    f.down.add("ssh://root@10.9.8.7");
    const up = await deploy(f.w.run(emptyDeployment()), goals.slice(0, 2));
    const messages = [...errors(preview), ...errors(up)];
    expect(messages).toEqual([
      'test:index:Thing "y" on the host of provider vault: host port 0.0.0.0:80/tcp is already taken by test:index:Thing "x" in this program',
      expect.stringMatching(/^test:index:Thing "x" on the host of provider vault: create failed: cannot reach \[secret host of provider vault\]/),
    ]);
    expect(messages.join("\n")).not.toContain("10.9.8.7");
  });

  it("a secret bare hostname ('ssh://db') is hidden where ssh and its hints name a host, never in other words", () => {
    const hide = (host: string, message: string) =>
      redact(message, new Map(secretHostTexts({ host: { [SIG]: SECRET_SIG, value: host } }, "[secret host of provider vault]")));
    const H = "[secret host of provider vault]";
    // ssh's own words (OpenSSH prints the name lower-cased), and berth's hints that quote an ssh command.
    expect(hide("ssh://db", 'container "db" on ssh://db: create failed: ssh://db is unreachable: ssh: Could not resolve hostname db: Name or service not known'))
      .toBe(`container "db" on ${H}: create failed: ${H} is unreachable: ssh: Could not resolve hostname ${H}: Name or service not known`);
    expect(hide("ssh://DB", "ssh: connect to host db port 22: Connection refused")).toBe(`ssh: connect to host ${H} port 22: Connection refused`);
    expect(hide("ssh://db:2222", "No ED25519 host key is known for [db]:2222 and you have requested strict checking. Check it, then: ssh-keyscan -p 2222 db >> ~/.ssh/known_hosts (or connect once with ssh -p 2222 db)"))
      .toBe(`No ED25519 host key is known for [${H}]:2222 and you have requested strict checking. Check it, then: ssh-keyscan -p 2222 ${H} >> ~/.ssh/known_hosts (or connect once with ssh -p 2222 ${H})`);
    expect(hide("ssh://root@db", "Host key for db has changed: ssh-keygen -R 'db'; Connection to db closed.")).toBe(`Host key for ${H} has changed: ssh-keygen -R '${H}'; Connection to ${H} closed.`);
    // Not a word of berth's own, nor another name holding it.
    const ours = 'volume db of container db: connection lost during containers.run("db"): host dbx, hostname db2 and host db.local are others; waiting for db; the database db is kept';
    expect(hide("ssh://db", ours)).toBe(ours);
  });

  it("a cosmetic change of host or root is no change: nothing is replaced", async () => {
    const f = fleet();
    const goals = (inputs: Record<string, unknown>) => [provider("h2", inputs), { ...thing("x", { name: "x" }), on: "h2" }];
    const first = await deploy(f.w.run(emptyDeployment()), goals({ host: "ssh://root@h:22", root: "/srv/berth/" }));
    const same = await deploy(f.w.run(first.state, true), goals({ host: "ssh://root@H", root: "/srv//berth" }));
    expect(steps(same)).toEqual([]);
    expect(diffProviderConfig({ host: "ssh://h" }, { host: "ssh://h", root: "/var/lib/berth" })).toEqual({ diffs: [], replaces: [] });
    expect(diffProviderConfig({ host: "ssh://h", identityFile: "~/.ssh/k" }, { host: "ssh://h", identityFile: `${os.homedir()}/.ssh/k` })).toEqual({ diffs: [], replaces: [] });
    expect(diffProviderConfig({ host: "ssh://h", sshOptions: '["A=1"]' }, { host: "ssh://h", sshOptions: ["A=1"] })).toEqual({ diffs: [], replaces: [] });
    expect(diffProviderConfig({ host: "ssh://h" }, { host: "ssh://h:2222" })).toEqual({ diffs: ["host"], replaces: ["host"] });
    expect(diffProviderConfig({ root: "/srv/a/" }, { root: "/srv/b" })).toEqual({ diffs: ["root"], replaces: ["root"] });
  });

  it("a name and the address this machine's files give it are one machine: /etc/hosts, ssh's HostName; no root is the default root", async () => {
    expect(targetOf({ host: "ssh://root@localhost" }).machine).toBe(targetOf({ host: "ssh://127.0.0.1:22" }).machine);
    // sshd on loopback is this machine; another port may be a VM's forward.
    expect(targetOf({ host: "ssh://root@localhost" }).machine).toBe(targetOf({}).machine);
    expect(targetOf({ host: "ssh://root@localhost:2222" }).machine).not.toBe(targetOf({}).machine);
    expect(targetOf({ host: "ssh://web-alias", sshOptions: ["HostName=10.1.2.3", "Port=2222"] }).machine).toBe(targetOf({ host: "ssh://10.1.2.3:2222" }).machine);
    expect(targetOf({ host: "ssh://h" }).root).toBe(targetOf({ host: "ssh://h", root: "/var/lib/berth/" }).root);
    const ports = await deploy(fleet().w.run(emptyDeployment(), true), [
      provider("a", { host: "ssh://localhost" }),
      provider("b", { host: "ssh://root@127.0.0.1" }),
      { ...thing("x", { hostPort: 80 }), on: "a" },
      { ...thing("y", { hostPort: 80 }), on: "b" },
    ]);
    expect(errors(ports)).toEqual([expect.stringContaining("host port 0.0.0.0:80/tcp is already taken")]);
  });

  it("DiffConfig: another host, root or runDir replaces; a key or an ssh option only updates; the version never counts", () => {
    expect(diffProviderConfig({ host: "ssh://a" }, { host: "ssh://b" })).toEqual({ diffs: ["host"], replaces: ["host"] });
    expect(diffProviderConfig({ host: "ssh://a" }, { host: "ssh://a", identityFile: "~/k" })).toEqual({ diffs: ["identityFile"], replaces: [] });
    expect(diffProviderConfig({ root: "/a", version: "1" }, { root: "/a", version: "2" })).toEqual({ diffs: [], replaces: [] });
    expect(targetOf({ host: "ssh://root@A:22" }).machine).toBe(targetOf({ host: "ssh://deploy@a" }).machine);
  });

  it("destroy with one host unreachable deletes the rest, fails naming that host, and keeps its resources and provider in the state", async () => {
    const f = fleet();
    const first = await deploy(f.w.run(emptyDeployment()), [provider("h2", { host: "ssh://a" }), { ...thing("x", { name: "x" }), on: "h2" }, thing("y", { name: "y" })]);
    f.down.add("ssh://a");
    const destroy = f.w.run(first.state);
    await destroy.destroy();
    expect(errors(destroy)).toEqual([expect.stringMatching(/test:index:Thing "x".*cannot reach ssh:\/\/a/)]);
    expect(f.log("local").at(-1)).toBe("delete y");
    const left = destroy.state.resources.map((r) => r.urn.split("::").pop());
    expect(left).toEqual(expect.arrayContaining(["x", "h2"]));
    expect(left).not.toContain("y");
    expect(destroy.state.pending_operations ?? []).toEqual([]);

    f.down.delete("ssh://a");
    const again = f.w.run(destroy.state);
    await again.destroy();
    expect(errors(again)).toEqual([]);
    expect(again.state.resources).toEqual([]);
    expect(f.log("ssh://a").at(-1)).toBe("delete x");
  });

  it("an up with one host unreachable makes the rest, records only what exists, and the next run converges", async () => {
    const f = fleet();
    const goals = [provider("h2", { host: "ssh://a" }), thing("y", { name: "y" }), { ...thing("x", { name: "x" }), on: "h2" }];
    f.down.add("ssh://a");
    const failed = await deploy(f.w.run(emptyDeployment()), goals);
    expect(errors(failed)).toEqual([expect.stringMatching(/test:index:Thing "x" on ssh:\/\/a: .*cannot reach ssh:\/\/a/)]);
    expect(failed.state.resources.map((r) => r.urn.split("::").pop())).not.toContain("x");
    expect(failed.state.pending_operations ?? []).toEqual([]);
    expect([...f.hosts.get("local")!.objects.keys()]).toEqual(["y"]);
    expect(failed.state.resources.map((r) => r.urn.split("::").pop())).toContain("y");

    f.down.delete("ssh://a");
    const converged = await deploy(f.w.run(failed.state), goals);
    expect(errors(converged)).toEqual([]);
    expect(steps(converged)).toEqual(["create x"]);
    expect([...f.hosts.get("ssh://a")!.objects.keys()]).toEqual(["x"]);
  });

  it("a move to a host that cannot be reached leaves the old host's resources and the state whole; the next run converges", async () => {
    const f = fleet();
    const goals = (host: string) => [provider("h2", { host }), { ...thing("x", { name: "x" }), on: "h2" }, thing("y", { name: "y" })];
    const first = await deploy(f.w.run(emptyDeployment()), goals("ssh://a"));
    f.down.add("ssh://b");
    const failed = await deploy(f.w.run(first.state), goals("ssh://b"));
    expect(errors(failed)).toEqual([expect.stringMatching(/cannot reach ssh:\/\/b/)]);
    expect([...f.hosts.get("ssh://a")!.objects.keys()]).toEqual(["x"]);
    const x = failed.state.resources.find((r) => r.urn === urn("x") && !r.delete)!;
    const via = failed.state.resources.find((r) => `${r.urn}::${r.id}` === x.provider);
    expect(via?.inputs).toEqual({ host: "ssh://a" });

    f.down.delete("ssh://b");
    const converged = await deploy(f.w.run(failed.state), goals("ssh://b"));
    expect(errors(converged)).toEqual([]);
    expect([...f.hosts.get("ssh://a")!.objects.keys()]).toEqual([]);
    expect([...f.hosts.get("ssh://b")!.objects.keys()]).toEqual(["x"]);
    expect(converged.state.resources.filter((r) => r.delete)).toEqual([]);
    expect(converged.state.resources.filter((r) => r.type === "pulumi:providers:berth").map((r) => r.inputs).sort((a, b) => Object.keys(a).length - Object.keys(b).length)).toEqual([{}, { host: "ssh://b" }]);
  });

  it("a provider recorded by the Pulumi CLI (its inputs carry __internal) is read as Pulumi wrote it: no diff, and its resources stay on its host", async () => {
    const f = fleet();
    const goals = [provider("p", { root: "/srv/one" }), { ...thing("x", { name: "x" }), on: "p" }];
    const first = await deploy(f.w.run(emptyDeployment()), goals);
    const byPulumi = { ...first.state, resources: first.state.resources.map((r) => (r.type === "pulumi:providers:berth" ? { ...r, inputs: { __internal: {}, ...r.inputs } } : r)) };
    const same = await deploy(f.w.run(byPulumi, true), goals);
    expect(steps(same)).toEqual([]);
    const dropped = await deploy(f.w.run(byPulumi), []);
    expect(errors(dropped)).toEqual([]);
    expect(f.log("/srv/one")).toEqual(["create x", "delete x"]);
    expect(f.log("local")).toEqual([]);
  });

  it("a resource whose recorded provider is missing from the state is not deleted on another host in its place", async () => {
    const f = fleet();
    const first = await deploy(f.w.run(emptyDeployment()), [provider("h2", { host: "ssh://a" }), { ...thing("x", { name: "x" }), on: "h2" }]);
    f.hosts.get("local")?.objects.set("x", {}); // the same name on this machine: not the stack's
    const lost = { ...first.state, resources: first.state.resources.filter((r) => !r.urn.endsWith("::h2")) };
    const destroy = f.w.run(lost);
    await destroy.destroy();
    expect(f.log("local")).toEqual([]);
    expect(errors(destroy)).toEqual([expect.stringMatching(/test:index:Thing "x".*provider .*h2.* is not in the state/)]);
    expect(destroy.state.resources.map((r) => r.urn)).toContain(urn("x"));
  });
});

export type { DeploymentV3 };
