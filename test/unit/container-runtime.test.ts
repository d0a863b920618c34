// The container's lifecycle and limit args: Docker's refusals as check failures, sizes and durations parsed,
// restart decisions, and which fields change in place.
import { describe, expect, it } from "vitest";
import { ContainerArgs, parseBytes, parseSeconds, replaceOnChangeFields } from "../../sdk/schema";
import { shouldRestart } from "../../native/supervise/supervisor";
import { capabilities } from "../../native/container/options";
import { ociResources } from "../../native/container/limits";


const failures = (args: Record<string, unknown>) =>
  (ContainerArgs.safeParse({ image: "bb", ...args }).error?.issues ?? []).map((i) => `${i.path.join(".")}: ${i.message}`);

describe("container runtime args", () => {
  it("refuses Docker's bad combinations with Docker's words", () => {
    expect(failures({ memory: "256m", memorySwap: "128m" })).toEqual([
      "memorySwap: Minimum memoryswap limit should be larger than memory limit: make memorySwap at least memory, or -1 for unlimited swap",
    ]);
    expect(failures({ memorySwap: "512m" })).toEqual([
      "memorySwap: You should always set the Memory limit when using Memoryswap limit: set memory too",
    ]);
    expect(failures({ memory: "1k" })).toEqual(["memory: Minimum memory limit allowed is 6MB: give at least 6m"]);
    expect(failures({ capAdd: ["CAP_FLY"] })[0]).toContain('unknown capability: "CAP_FLY"');
    expect(failures({ binds: [{ source: "relative/path", target: "/data" }] })[0]).toContain('"relative/path" is not an absolute path');
    expect(failures({ binds: [{ source: "/tmp", target: "/proc" }] })[0]).toContain("cannot mount over /proc");
    expect(failures({ restart: "sometimes" })).toEqual([
      "restart: invalid restart policy 'sometimes': use \"no\", \"always\", \"unless-stopped\" or \"on-failure[:N]\"",
    ]);
    expect(failures({ restart: "on-failure:-1" })).toEqual(["restart: maximum retry count cannot be negative"]);
    expect(failures({ cpuShares: 1 })).toEqual(["cpuShares: the minimum allowed cpu-shares is 2"]);
    expect(failures({ stopSignal: "SIGBOGUS" })[0]).toContain("must be a signal");
    expect(failures({ stopSignal: "99" })[0]).toContain("must be a signal");
    expect(failures({ stopSignal: "sigrtmin+3" })).toEqual([]);
    expect(failures({ sysctls: { "kernel.foo": "1" } })[0]).toContain("is not a namespaced sysctl");
    expect(failures({ memory: "64m", memorySwap: -1, capAdd: ["net_admin"], restart: "on-failure:3" })).toEqual([]);
  });

  it("changes limits and the restart policy in place, and replaces for the rest", () => {
    const replacing = replaceOnChangeFields(ContainerArgs);
    for (const f of ["memory", "memorySwap", "cpus", "cpuset", "pidsLimit", "restart", "stopTimeout"]) expect(replacing.has(f)).toBe(false);
    for (const f of ["user", "readOnly", "capAdd", "binds", "healthcheck", "pid"]) expect(replacing.has(f)).toBe(true);
  });

  it("parses sizes and durations as Docker does", () => {
    expect(parseBytes("64m")).toBe(64 << 20);
    expect(parseBytes("1g")).toBe(1 << 30);
    expect(parseBytes(100)).toBe(100);
    expect(parseSeconds("1m30s")).toBe(90);
    expect(parseSeconds("500ms")).toBe(0.5);
  });

  it("gives memory+swap twice the memory by default, and a CPU quota over 100 ms", () => {
    expect(ociResources({ memory: 64 << 20, cpus: 1.5 })).toMatchObject({
      memory: { limit: 64 << 20, swap: 128 << 20 },
      cpu: { quota: 150_000, period: 100_000 },
    });
    expect(ociResources({ memory: 64 << 20, memorySwap: -1 }).memory!.swap).toBe(-1);
  });

  it("adds and drops capabilities from Docker's defaults", () => {
    const caps = capabilities({ capAdd: ["net_admin"], capDrop: ["CAP_CHOWN"] });
    expect(caps).toContain("CAP_NET_ADMIN");
    expect(caps).not.toContain("CAP_CHOWN");
    expect(capabilities({ capDrop: ["ALL"], capAdd: ["KILL"] })).toEqual([]);
    expect(capabilities({ privileged: true })).toContain("CAP_SYS_ADMIN");
  });

  it("restarts as the policy says", () => {
    expect(shouldRestart("no", 1, 0, false)).toBe(false);
    expect(shouldRestart("always", 0, 5, false)).toBe(true);
    expect(shouldRestart("always", 1, 0, true)).toBe(false);
    expect(shouldRestart("unless-stopped", 0, 0, false)).toBe(true);
    expect(shouldRestart("on-failure", 0, 0, false)).toBe(false);
    expect(shouldRestart("on-failure:3", 1, 2, false)).toBe(true);
    expect(shouldRestart("on-failure:3", 1, 3, false)).toBe(false);
  });
});

