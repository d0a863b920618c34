// The Host door: errors name the command and carry its stderr; a fake Host sees exactly what berth would run.
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { realHost, HostCommandError, type Host, type RunOptions } from "../../native";
import { plug, configure, type AttachmentRecord } from "../../native/network/attach";

const tmp = fs.mkdtempSync("/tmp/berth-test-exec-");
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("realHost", () => {
  it("throws an error naming the command and its stderr", async () => {
    const err = await realHost.run("ip", ["link", "show", "btnosuchlink0"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostCommandError);
    expect((err as Error).message).toBe(
      '`ip link show btnosuchlink0` failed (exit 1): Device "btnosuchlink0" does not exist.',
    );
  });

  it("feeds input and returns stdout", async () => {
    expect(await realHost.run("cat", [], { input: "batch\n" })).toBe("batch\n");
    expect((await realHost.tryRun("sh", ["-c", "exit 3"])).code).toBe(3);
  });

  it("sends output to a log file and reads the error back from it", async () => {
    const log = path.join(tmp, "out.log");
    fs.writeFileSync(log, "earlier run\n");
    await expect(realHost.run("sh", ["-c", "echo out; echo bad thing >&2; exit 2"], { logFile: log })).rejects.toThrow(
      /`sh -c .*` failed \(exit 2\): out\nbad thing$/,
    );
    expect(fs.readFileSync(log, "utf8")).toBe("earlier run\nout\nbad thing\n");
  });

  it("names the sysctl it could not write", async () => {
    await expect(realHost.writeSysctl("net.ipv4.no_such_key", "1")).rejects.toThrow(
      "writing sysctl net.ipv4.no_such_key=1 (/proc/sys/net/ipv4/no_such_key) failed",
    );
  });
});

describe("a fake Host", () => {
  it("sees a container's network plumbing as one ip batch per side", async () => {
    const calls: { cmd: string; args: readonly string[]; input?: string }[] = [];
    const fake: Host = {
      async run(cmd: string, args: readonly string[], opts: RunOptions = {}) {
        calls.push({ cmd, args, input: opts.input });
        return "";
      },
      tryRun: async () => ({ code: 0, stdout: "", stderr: "" }),
      writeSysctl: async () => undefined,
    };
    const a: AttachmentRecord = {
      network: "n", driver: "bridge", ifname: "eth0", hostIf: "btx", device: "btbr", ip: "10.9.0.2", prefix: 24,
      gateway: "10.9.0.1", mac: "02:42:0a:09:00:02", aliases: [], defaultRoute: true,
    };
    await plug(fake, "berth-x", [a]);
    await configure(fake, "berth-x", [a]);
    expect(calls).toEqual([
      {
        cmd: "ip",
        args: ["-batch", "-"],
        input:
          "netns add berth-x\n" +
          "link add btx type veth peer name eth0 address 02:42:0a:09:00:02 netns berth-x\n" +
          "link set btx master btbr up\n" +
          "neigh replace 10.9.0.2 lladdr 02:42:0a:09:00:02 dev btbr nud reachable\n",
      },
      {
        cmd: "ip",
        args: ["-n", "berth-x", "-batch", "-"],
        input: "link set lo up\naddr add 10.9.0.2/24 dev eth0\nlink set eth0 up\nroute add default via 10.9.0.1 dev eth0\n",
      },
    ]);
  });
});
