// config.json: Docker's ENTRYPOINT/CMD and env rules, namespaces, binds. Pure functions, no host objects.
import { describe, expect, it } from "vitest";
import { mergeEnv, processArgs, runtimeSpec } from "../../native/container/spec";

describe("processArgs", () => {
  const image = { entrypoint: ["/entry"], cmd: ["--serve"] };
  it.each([
    [{}, ["/entry", "--serve"]],
    [{ command: ["--once"] }, ["/entry", "--once"]],
    [{ entrypoint: ["/other"] }, ["/other"]],
    [{ entrypoint: ["/other"], command: ["x"] }, ["/other", "x"]],
    [{ entrypoint: [], command: ["sh"] }, ["sh"]],
  ])("%j gives %j", (spec, args) => {
    expect(processArgs("c", image, spec)).toEqual(args);
  });
  it("refuses a container with nothing to run", () => {
    expect(() => processArgs("c", {}, {})).toThrow('container "c" has no command');
  });
});

describe("mergeEnv", () => {
  it("adds PATH and HOSTNAME, lets the image and then the container override", () => {
    expect(mergeEnv("c", "h", ["PATH=/bin", "A=1", "B=x=y"], { A: "2", C: "" })).toEqual([
      "PATH=/bin",
      "HOSTNAME=h",
      "A=2",
      "B=x=y",
      "C=",
    ]);
  });
  it("refuses an env name with =", () => {
    expect(() => mergeEnv("c", "h", [], { "": "x" })).toThrow('invalid env name ""');
  });
});

describe("runtimeSpec", () => {
  const spec = runtimeSpec({
    hostname: "h",
    args: ["sh"],
    env: ["A=1"],
    cwd: "/",
    user: { uid: 0, gid: 0 },
    netnsPath: "/run/netns/berth-c",
    binds: [{ source: "/v", destination: "/data", readOnly: true }],
  });
  it("joins berth's network namespace and makes the others new", () => {
    expect(spec.linux.namespaces).toEqual([
      { type: "pid" },
      { type: "ipc" },
      { type: "uts" },
      { type: "mount" },
      { type: "network", path: "/run/netns/berth-c" },
    ]);
  });
  it("has Docker's default capabilities, runc's masked paths, and the binds", () => {
    expect(spec.process.capabilities.bounding).toContain("CAP_NET_BIND_SERVICE");
    expect(spec.process.capabilities.bounding).not.toContain("CAP_SYS_ADMIN");
    expect(spec.linux.maskedPaths).toContain("/proc/kcore");
    expect(spec.mounts.map((m) => m.destination)).toEqual([
      "/proc",
      "/dev",
      "/dev/pts",
      "/dev/shm",
      "/dev/mqueue",
      "/sys",
      "/sys/fs/cgroup",
      "/data",
    ]);
    expect(spec.mounts.at(-1)).toEqual({ destination: "/data", type: "bind", source: "/v", options: ["rbind", "rprivate", "ro"] });
  });
});
