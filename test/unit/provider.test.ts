// Check and diff of berth's resource types, from their schemas, over a runtime that knows one image and network.
import { describe, expect, it } from "vitest";
import type { ContainerSpec, Runtime } from "../../native/runtime";
import { berthProviders } from "../../provider/resources";
import { UNKNOWN } from "../../provider/values";

const runtime = {
  images: { inspect: async (ref: string) => (ref === "known:latest" ? { id: "sha256:1" } : undefined) },
  networks: { inspect: async (name: string) => (name === "known" ? { name } : undefined), conflicts: async () => undefined },
  volumes: { inspect: async () => undefined },
  containers: {
    portTaken: async () => undefined,
    // A host with 8 CPUs: what the runtime would say, from the limits the provider passes it.
    problems: async (spec: Partial<ContainerSpec>) => ((spec.limits?.cpus ?? 0) > 8 ? [{ field: "cpus", reason: "only 8 CPUs" }] : []),
  },
} as unknown as Runtime;
const providers = berthProviders(runtime, "/tmp");
const container = providers.get("berth:index:Container")!;
const network = providers.get("berth:index:Network")!;
const check = (p: typeof container, news: Record<string, unknown>, declared: string[] = []) =>
  p.check({ urn: "urn:pulumi:dev::p::t::web", name: "web", news, randomSeed: "seed", declared: new Map(declared.map((c) => [c, { urn: "urn:other", inputs: {} }])) });

describe("Container check", () => {
  it("names every missing reference and what to do about it", async () => {
    const { failures } = await check(container, {
      image: "nope:1",
      network: "elsewhere",
      volumes: [{ volume: "data", target: "/data" }],
      ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81, hostPort: 8080 }],
    });
    expect(failures).toEqual([
      { property: "image", reason: 'no image "nope:1" in berth\'s store: declare a berth.Image and pass its imageId' },
      { property: "volumes[0].volume", reason: 'no volume "data": declare a berth.Volume and pass its name' },
      { property: "ports[1]", reason: "host port 0.0.0.0:8080/tcp is published twice" },
      { property: "network", reason: 'no network "elsewhere": declare a berth.Network and pass its name' },
    ]);
  });

  it("accepts references declared earlier in the same program", async () => {
    const { failures } = await check(container, { image: "new:1", network: "n" }, ["image new:1", "network n"]);
    expect(failures).toEqual([]);
  });

  it("leaves a preview's unknowns to be checked once known, and judges every known field beside them", async () => {
    const { failures, inputs } = await check(container, { image: UNKNOWN, network: UNKNOWN, ports: [{ containerPort: 80, hostPort: 99999 }] });
    expect(failures).toEqual([{ property: "ports[0].hostPort", reason: "must be between 1 and 65535" }]);
    expect(inputs.image).toBe(UNKNOWN);
    const beside = await check(container, { image: UNKNOWN, cpus: 999, memory: UNKNOWN, network: "elsewhere" });
    expect(beside.failures.map((f) => f.property).sort()).toEqual(["cpus", "network"]);
    const env = await check(container, { image: UNKNOWN, env: { "A=B": "1" } });
    expect(env.failures).toEqual([{ property: "env.A=B", reason: "must not contain '='" }]);
  });

  it("refuses at check what a network mode excludes, as run does, and never on a value not known yet", async () => {
    const props = async (news: Record<string, unknown>) => (await check(container, { image: "known:latest", ...news }, ["container peer"])).failures.map((f) => f.property);
    expect(await props({ networkMode: "none", links: ["db:db"] })).toEqual(["links"]);
    expect(await props({ networkMode: "host", interfaces: [{ host: "btbr0", address: "10.9.0.2/24" }] })).toEqual(["interfaces"]);
    expect(await props({ networkMode: "container:peer", hostname: "web", dns: ["10.0.0.53"] })).toEqual(["hostname", "dns"]);
    // A mode or a list known only once another resource is made may turn out to be no conflict at all.
    expect(await props({ networkMode: UNKNOWN, network: "known" })).toEqual([]);
    expect(await props({ networkMode: "host", ports: UNKNOWN, links: UNKNOWN })).toEqual([]);
  });

  it("previews a list fed whole by another resource's output (unknown as a whole) and judges it once known", async () => {
    for (const field of ["ports", "volumes", "networks", "links", "interfaces", "binds"]) {
      const { failures, inputs } = await check(container, { image: "known:latest", [field]: UNKNOWN });
      expect([field, failures]).toEqual([field, []]);
      expect(inputs[field]).toBe(UNKNOWN);
    }
    const registry = providers.get("berth:index:Registry")!;
    const reg = await registry.check({ urn: "urn:pulumi:dev::p::t::reg", name: "reg", news: { port: 5000, volume: "data", users: UNKNOWN }, randomSeed: "seed", declared: new Map([["volume data", { urn: "u", inputs: {} }]]) });
    expect([reg.failures, reg.inputs.users]).toEqual([[], UNKNOWN]);
  });

  it("gives a stable autoname from the seed and keeps it across updates", async () => {
    const first = await check(container, { image: "known:latest" });
    expect(first.inputs.name).toMatch(/^web-[0-9a-f]{7}$/);
    expect((await check(container, { image: "known:latest" })).inputs.name).toBe(first.inputs.name);
    const again = await container.check({ urn: "u", name: "web", olds: first.inputs, news: { image: "known:latest", env: { A: "1" } }, randomSeed: "other" });
    expect(again.inputs.name).toBe(first.inputs.name);
  });
});

describe("Container diff", () => {
  const olds = { name: "web-1", image: "known:latest", env: { A: "1" }, stopTimeout: 10, __defaults: ["name"] };
  const diff = (news: Record<string, unknown>, oldOutputs: Record<string, unknown> = { status: "running" }) =>
    container.diff({ urn: "u", id: "web-1", oldInputs: olds, oldOutputs, news: { ...olds, ...news } });

  it("replaces on env, naming the path; updates stopTimeout in place; nothing for equal inputs", async () => {
    expect(await diff({ env: { A: "2" } })).toMatchObject({ changes: true, replaces: ["env"], detailedDiff: { "env.A": { kind: "update-replace" } } });
    expect(await diff({ stopTimeout: 1 })).toMatchObject({ changes: true, replaces: [], diffs: ["stopTimeout"] });
    expect(await diff({})).toMatchObject({ changes: false });
  });

  it("replaces a container refresh saw dead", async () => {
    expect(await diff({}, { status: "stopped" })).toMatchObject({ replaces: ["status"] });
  });

  it("deletes before replacing when the same host port is published", async () => {
    const ports = [{ containerPort: 80, hostPort: 8080 }];
    const res = await container.diff({ urn: "u", id: "web-1", oldInputs: { ...olds, ports }, oldOutputs: { status: "running" }, news: { ...olds, ports, env: {} } });
    expect(res.deleteBeforeReplace).toBe(true);
    expect((await diff({ env: {} })).deleteBeforeReplace).toBe(false);
  });
});

describe("Network diff", () => {
  const olds = { name: "net-1", driver: "bridge", subnet: "10.1.0.0/24", __defaults: ["name"] };
  const diff = (news: Record<string, unknown>) =>
    network.diff({ urn: "u", id: "net-1", oldInputs: olds, oldOutputs: {}, news: { ...olds, ...news } });

  it("deletes before replacing when the new subnet overlaps the old one, not when it is apart", async () => {
    expect(await diff({ subnet: "10.1.0.0/16" })).toMatchObject({ replaces: ["subnet"], deleteBeforeReplace: true });
    expect(await diff({ subnet: "10.1.0.128/25" })).toMatchObject({ replaces: ["subnet"], deleteBeforeReplace: true });
    expect(await diff({ subnet: "10.2.0.0/24" })).toMatchObject({ replaces: ["subnet"], deleteBeforeReplace: false });
  });
});

describe("preview outputs", () => {
  it("echo an input only where the output has its shape: a port whose host port is picked at create stays unknown", async () => {
    const preview = async (ports: unknown[]) => (await container.create({ urn: "u", inputs: { name: "web", image: "known:latest", ports }, preview: true })).outputs;
    const picked = await preview(["127.0.0.1::80"]);
    expect(picked).not.toHaveProperty("ports");
    expect(picked).toMatchObject({ name: "web", image: "known:latest" });
    const fixed = [{ hostIp: "127.0.0.1", hostPort: 8080, containerPort: 80, protocol: "tcp" }];
    expect((await preview(fixed)).ports).toEqual(fixed);
  });
});

describe("Network check", () => {
  it("wants the subnet in network form and the gateway inside it", async () => {
    expect((await check(network, { subnet: "10.1.0.5/24" })).failures).toEqual([
      { property: "subnet", reason: 'invalid subnet "10.1.0.5/24": it should be 10.1.0.0/24' },
    ]);
    expect((await check(network, { subnet: "10.1.0.0/24", gateway: "10.2.0.1" })).failures).toEqual([
      { property: "gateway", reason: "no matching subnet for gateway 10.2.0.1: use an address inside 10.1.0.0/24" },
    ]);
    expect((await check(network, { subnet: "10.1.0.0/33" })).failures[0].property).toBe("subnet");
  });

  it("judges every known field beside unknown ones, never a known one against an unknown", async () => {
    const failures = async (news: Record<string, unknown>, declared: Array<[string, Record<string, unknown>]> = []) =>
      (await network.check({ urn: "urn:pulumi:dev::p::t::net", name: "net", news, randomSeed: "s", declared: new Map(declared.map(([c, inputs]) => [c, { urn: "urn:other", inputs }])) })).failures;
    expect(await failures({ name: UNKNOWN, subnet: "10.1.0.0/24", gateway: "10.2.0.1" })).toEqual([
      { property: "gateway", reason: "no matching subnet for gateway 10.2.0.1: use an address inside 10.1.0.0/24" },
    ]);
    expect(await failures({ subnet: UNKNOWN, gateway: "10.2.0.1", driver: "macvlan", parent: "lo" })).toEqual([
      { property: "parent", reason: "loopback interface is not a valid macvlan parent link" },
    ]);
    expect(await failures({ subnet: "10.1.0.0/24", parent: UNKNOWN, driver: "macvlan", bridgeName: "btx" })).toEqual([
      { property: "bridgeName", reason: 'bridgeName applies to driver "bridge" only' },
    ]);
    expect(await failures({ subnet: "10.1.0.0/24", bridgeName: UNKNOWN, parent: "eth1" })).toEqual([{ property: "parent", reason: 'parent applies to driver "macvlan" only' }]);
    // The program's other networks: a known subnet overlapping one declared earlier.
    expect(await failures({ name: UNKNOWN, subnet: "10.1.0.0/16" }, [["network other", { subnet: "10.1.2.0/24" }]])).toEqual([
      { property: "subnet", reason: "Pool overlaps with other one on this address space: 10.1.0.0/16 overlaps 10.1.2.0/24 of network other in this program; pick a subnet no other network of the program overlaps" },
    ]);
    expect(await failures({ subnet: UNKNOWN, gateway: UNKNOWN, ipRange: "10.9.0.0/24" })).toEqual([]);
  });
});
