// The Container resource's networking inputs: Docker's -p forms, the default network, claims that let the engine
// catch two resources taking one host port or static address, and refusals at preview naming the field.
import { describe, expect, it } from "vitest";
import type { Runtime } from "../../native/runtime";
import { berthProviders } from "../../provider/resources";
import { parsePortString } from "../../sdk/schema";
import { networkingOf } from "../../provider/resources/container-network";
import { UNKNOWN } from "../../provider/values";

const runtime = {
  images: { inspect: async () => ({ id: "sha256:1" }) },
  networks: {
    inspect: async (name: string) =>
      name === "lan" ? { name, subnet: "10.5.0.0/24", gateway: "10.5.0.1" } : undefined,
  },
  volumes: { inspect: async () => undefined },
  containers: { inspect: async (name: string) => (name === "db" ? { name } : undefined), portTaken: async () => undefined, problems: async () => [] },
} as unknown as Runtime;
const container = berthProviders(runtime, "/tmp").get("berth:index:Container")!;
const check = (news: Record<string, unknown>, declared: string[] = []) =>
  container.check({ urn: "urn:pulumi:dev::p::t::web", name: "web", news: { image: "i", ...news }, randomSeed: "s", declared: new Map(declared.map((c) => [c, { urn: "urn:other", inputs: {} }])) });

describe("ports in Docker's forms", () => {
  it.each([
    ["80", { containerPort: 80 }],
    ["8080:80", { hostPort: 8080, containerPort: 80 }],
    ["127.0.0.1:8080:80", { hostIp: "127.0.0.1", hostPort: 8080, containerPort: 80 }],
    ["127.0.0.1::80/udp", { hostIp: "127.0.0.1", containerPort: 80, protocol: "udp" }],
  ])("%s", (s, form) => {
    expect(parsePortString(s)).toEqual({ hostIp: undefined, hostPort: undefined, protocol: undefined, ...form });
  });

  it("maps every form to the runtime's ports, 0 meaning a picked host port", async () => {
    const { inputs, failures } = await check({ network: "lan", ports: ["8080:80", "127.0.0.1::53/udp", { containerPort: 81 }] });
    expect(failures).toEqual([]);
    expect(networkingOf(inputs as never).ports).toEqual([
      { hostIp: "0.0.0.0", hostPort: 8080, containerPort: 80, protocol: "tcp" },
      { hostIp: "127.0.0.1", hostPort: 0, containerPort: 53, protocol: "udp" },
      { hostIp: "0.0.0.0", hostPort: 0, containerPort: 81, protocol: "tcp" },
    ]);
  });

  it("refuses what is not a port form, naming the entry", async () => {
    const { failures } = await check({ ports: ["8080:80:tcp", "70000:80"] });
    expect(failures.map((f) => f.property)).toEqual(["ports[0]", "ports[1]"]);
  });
});

describe("network inputs", () => {
  it("puts a container naming no network on the default bridge", async () => {
    const { inputs } = await check({});
    expect(networkingOf(inputs as never).networkMode).toBe("bridge");
    expect(networkingOf((await check({ network: "lan" })).inputs as never).networkMode).toBeUndefined();
  });

  it("claims fixed host ports and static addresses, not picked ports", async () => {
    const { inputs } = await check({ networks: [{ network: "lan", ip: "10.5.0.7" }], ports: ["8080:80", "90"] });
    expect(container.claims(inputs)).toEqual([
      `container ${inputs.name}`,
      "host port 0.0.0.0:8080/tcp",
      "address 10.5.0.7 on network lan",
    ]);
  });

  it.each<[Record<string, unknown>, string, string]>([
    [{ networks: [{ network: "lan", ip: "10.6.0.7" }] }, "networks[0].ip", "Invalid address 10.6.0.7: It does not belong to any of this network's subnets"],
    [{ networks: [{ network: "lan", ip: "10.5.0.1" }] }, "networks[0].ip", "Address already in use"],
    [{ networks: [{ network: "bridge", ip: "172.17.0.5" }] }, "networks[0].ip", "user specified IP address is supported on user defined networks only"],
    [{ networks: [{ network: "nope" }] }, "networks[0].network", 'no network "nope"'],
    [{ networkMode: "host", ports: ["80:80"] }, "ports", "conflicting options: port publishing"],
    [{ networkMode: "host", network: "lan" }, "networkMode", "conflicting options: networks and network mode"],
    [{ networkMode: "container:ghost" }, "networkMode", 'no container "ghost"'],
    [{ networkMode: "overlay" }, "networkMode", 'must be "bridge", "none", "host" or "container:NAME"'],
    [{ network: "lan", ports: ["80:80", "80:81"] }, "ports[1]", "host port 0.0.0.0:80/tcp is published twice"],
    [{ networks: [{ network: "lan", mac: "nope" }] }, "networks[0].mac", "must be a MAC"],
    [{ extraHosts: ["db"] }, "extraHosts[0]", 'must be "host:ip"'],
  ])("refuses %j", async (news, property, reason) => {
    const { failures } = await check(news);
    expect(failures).toEqual([{ property, reason: expect.stringContaining(reason) }]);
  });

  it("judges a static address by the network the program declares, and another container's in the program", async () => {
    const declared = new Map([
      ["network dmz", { urn: "urn:net", inputs: { name: "dmz", subnet: "10.7.0.0/24", auxAddresses: { router: "10.7.0.9" } } }],
      ["container peer", { urn: "urn:peer", inputs: { name: "peer", image: "i", networks: [{ network: "dmz", ip: "10.7.0.5" }], ports: ["8080:80"] } }],
    ]);
    const at = (ip: string, ports?: string[]) =>
      container.check({ urn: "urn:web", name: "web", news: { image: UNKNOWN, networks: [{ network: "dmz", ip }], ports }, randomSeed: "s", declared });
    expect((await at("10.8.0.5")).failures).toEqual([{ property: "networks[0].ip", reason: expect.stringContaining("does not belong") }]);
    expect((await at("10.7.0.9")).failures).toEqual([{ property: "networks[0].ip", reason: expect.stringContaining('auxiliary address "router"') }]);
    expect((await at("10.7.0.5")).failures).toEqual([{ property: "networks[0].ip", reason: expect.stringContaining("container peer") }]);
    expect((await at("10.7.0.6", ["127.0.0.1:8080:81"])).failures).toEqual([{ property: "ports[0]", reason: expect.stringContaining("already published by container peer") }]);
    expect((await at("10.7.0.6")).failures).toEqual([]);
  });

  it("accepts a container:NAME declared earlier in the program, or running", async () => {
    expect((await check({ networkMode: "container:db" })).failures).toEqual([]);
    expect((await check({ networkMode: "container:app" }, ["container app"])).failures).toEqual([]);
  });
});
