// What a prune run by another berth process on the same root must leave: an object a stack is making right now
// (its owner is recorded before it is made, so there is no moment at which it is nobody's), and a container
// waiting for its restart policy to start it again (Docker keeps those). The other process's prune runs at the
// worst moment: right after the runtime made the object, before the provider returns.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { createNativeRuntime, type Runtime } from "../../native";
import { berthProviders } from "../../provider/resources";
import type { PropertyMap } from "../../provider/resources/provider";
import { spawn, spawnSync } from "node:child_process";
import { stagingPath } from "../../native/staging";
import { ensureQuickstartRootfs, QUICKSTART, REPO, waitFor } from "./helpers";

const tag = randomBytes(3).toString("hex");
const name = (what: string) => `pr${tag}${what}`;
const tarball = path.join(QUICKSTART, "busybox-rootfs.tar");
const urn = (type: string, n: string) => `urn:pulumi:dev::races::berth:index:${type}::${n}`;

let tmp: string;
/** The stack's runtime, and another process's on the same root. */
let rt: Runtime;
let other: Runtime;

/** target with `method` calling `after` once it has returned, before its caller sees the result. */
function hooked<T extends object>(target: T, method: keyof T, after: () => Promise<void>): T {
  return new Proxy(target, {
    get(t, p) {
      const v = Reflect.get(t, p) as unknown;
      if (typeof v !== "function") return v;
      if (p !== method) return v.bind(t);
      return async (...args: unknown[]) => {
        const result = await v.apply(t, args);
        await after();
        return result;
      };
    },
  });
}

async function status(c: string): Promise<string | undefined> {
  return (await rt.containers.inspect(c))?.status;
}

beforeAll(async () => {
  ensureQuickstartRootfs();
  tmp = fs.mkdtempSync("/tmp/berth-test-races-");
  const opts = { root: path.join(tmp, "root"), runDir: path.join(tmp, "run") };
  [rt, other] = [createNativeRuntime(opts), createNativeRuntime(opts)];
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
  await rt.owners.claim("image", "bb:latest", urn("Image", "bb"));
});

afterAll(async () => {
  for (const c of await rt.containers.list()) await rt.containers.remove(c, { graceSeconds: 0 }).catch(() => undefined);
  await rt.system.prune().catch(() => undefined);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("system prune in another process", () => {
  it("keeps a container a stack is making, even one that stopped at once", async () => {
    const c = name("c");
    const pruned: string[][] = [];
    const stack = {
      ...rt,
      containers: hooked(rt.containers, "run", async () => {
        await waitFor("the container to stop", async () => ((await status(c)) === "stopped" ? true : undefined));
        pruned.push((await other.system.prune()).containers);
      }),
    };
    const provider = berthProviders(stack, tmp).get("berth:index:Container")!;
    const checked = await provider.check({ urn: urn("Container", "c"), name: "c", news: { name: c, image: "bb", command: ["true"] }, randomSeed: "s" });
    expect(checked.failures).toEqual([]);
    await provider.create({ urn: urn("Container", "c"), inputs: checked.inputs, preview: false });
    expect(pruned).toEqual([[]]);
    expect(await status(c)).toBe("stopped");
    expect(await rt.owners.ownerOf("container", c)).toBe(urn("Container", "c"));
  });

  it("keeps an image a stack is making, which no container uses yet (prune -a)", async () => {
    const ref = `${name("img")}:1`;
    const pruned: string[][] = [];
    const stack = { ...rt, images: hooked(rt.images, "importRootfs", async () => void pruned.push((await other.system.prune({ all: true })).images)) };
    const provider = berthProviders(stack, tmp).get("berth:index:Image")!;
    // Its own config, so not the same image as the owned "bb".
    const inputs: PropertyMap = { name: ref, rootfs: { tarball }, config: { cmd: ["sh"], env: [`TAG=${tag}`] } };
    const checked = await provider.check({ urn: urn("Image", "img"), name: "img", news: inputs, randomSeed: "s" });
    expect(checked.failures).toEqual([]);
    await provider.create({ urn: urn("Image", "img"), inputs: checked.inputs, preview: false });
    expect(pruned).toEqual([[]]);
    expect(await rt.images.inspect(ref)).toBeDefined();
  });

  it("a create that fails leaves no owner record behind", async () => {
    const c = name("bad");
    const provider = berthProviders(rt, tmp).get("berth:index:Container")!;
    // Unchecked, so the runtime is the one refusing it: after the owner was recorded.
    await expect(provider.create({ urn: urn("Container", "bad"), inputs: { name: c, image: "bb", command: ["/no/such/program"] }, preview: false })).rejects.toThrow(
      "/no/such/program",
    );
    expect(await rt.containers.inspect(c)).toBeUndefined();
    expect(await rt.owners.ownerOf("container", c)).toBeUndefined();
  });

  it("keeps a container waiting for its restart policy, and takes it once the user stopped it", async () => {
    const c = name("again");
    await rt.containers.run({ name: c, image: "bb", command: ["sh", "-c", "exit 3"], restart: "on-failure" });
    // The back-off doubles from 100 ms: after four failures the container waits at least 1.6 s between runs.
    await waitFor("a long wait to restart", async () => {
      const s = (await rt.containers.inspect(c))?.state;
      return s?.status === "restarting" && s.restartCount >= 4 ? true : undefined;
    }, 20_000, 20);
    expect((await other.system.prune()).containers).not.toContain(c);
    expect(await rt.containers.inspect(c)).toBeDefined();
    await rt.containers.stop(c, { graceSeconds: 0 });
    expect((await other.system.prune()).containers).toContain(c);
  });
});

describe("garbage collection after a killed build", () => {
  it("sweeps the build's sandbox (its step's container and overlay too) and staging files of processes that are gone, never a live one's", async () => {
    const ingest = path.join(tmp, "root", "ingest");
    const ctx = path.join(tmp, "killed");
    fs.mkdirSync(ctx, { recursive: true });
    fs.writeFileSync(path.join(ctx, "Dockerfile"), "FROM bb\nRUN --network=none sleep 60\n");
    const script = `const { createNativeRuntime } = require(${JSON.stringify(path.join(REPO, "dist/native"))});
      createNativeRuntime(${JSON.stringify({ root: path.join(tmp, "root"), runDir: path.join(tmp, "run") })}).images.build({ ref: "killed:1", context: ${JSON.stringify(ctx)} });`;
    const worker = spawn(process.execPath, ["-e", script], { stdio: "ignore" });
    /** The step's container under a sandbox of the build, once runc has it running. */
    const stepOf = (d: string): { sandbox: string; step: string; pid: number } | undefined => {
      if (!/\/build-\d+-\d+-[0-9a-f]+$/.test(d)) return undefined;
      const runcRoot = path.join(d, "runc");
      for (const step of fs.existsSync(runcRoot) ? fs.readdirSync(runcRoot) : []) {
        const state = spawnSync("runc", ["--root", runcRoot, "state", step], { encoding: "utf8" });
        const { pid, status } = (state.status === 0 ? JSON.parse(state.stdout) : {}) as { pid?: number; status?: string };
        if (status === "running" && pid) return { sandbox: d, step, pid };
      }
      return undefined;
    };
    const found = waitFor(
      "the build's step to run",
      () => (fs.existsSync(ingest) ? fs.readdirSync(ingest).map((n) => stepOf(path.join(ingest, n))).find(Boolean) : undefined),
      30_000,
      20,
    );
    // Killed outright, whatever happens: afterAll's prune then sweeps what it left.
    const { sandbox, pid } = await found.finally(() => worker.kill("SIGKILL"));
    // What other processes stage: one gone (a pid and start time no process has), one alive (this one), and
    // names an older berth gave.
    const gone = spawnSync("true").pid!;
    const staged = {
      gone: path.join(ingest, `commit-${gone}-123-abcd`),
      live: stagingPath(ingest, "build-file"),
      older: [path.join(ingest, `build-file-${gone}-abcd`), path.join(ingest, `commit-web-${gone}-1700000000000`)],
    };
    for (const f of [staged.gone, staged.live, ...staged.older]) fs.writeFileSync(f, "");
    expect(fs.readFileSync("/proc/self/mounts", "utf8")).toContain(`${sandbox}/rootfs`);

    await other.system.prune();
    expect(fs.readFileSync("/proc/self/mounts", "utf8")).not.toContain(sandbox);
    expect(fs.existsSync(sandbox)).toBe(false);
    // The step's process is gone with it.
    await waitFor("the step's process to end", () => (fs.existsSync(`/proc/${pid}`) ? undefined : true), 5000, 20);
    expect([staged.gone, ...staged.older].filter((f) => fs.existsSync(f))).toEqual([]);
    expect(fs.existsSync(staged.live)).toBe(true);
    expect(await rt.images.inspect("killed:1")).toBeUndefined();
  });
});
