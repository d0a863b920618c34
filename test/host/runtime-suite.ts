// The conformance suite of the `Runtime` seam: the same cases against every runtime (the native one here, the
// remote one over SSH, a Docker Engine backend later), as containerd's SnapshotterSuite runs against every
// snapshotter. It takes the runtime from the factory only and reaches the runtime's host only through it: the
// files it hands over (a rootfs tarball, archives, `copy`'s host side) are on this, the caller's, machine, and
// every effect is checked through another call (a file written by exec is read back by copy, a port a container
// publishes is seen taken by portTaken). Everything it makes is named `bt<tag>…` and removed at the end, also
// after a failure. Bounded: about 30 s on a quiet machine.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { ContainerSpec, Runtime } from "../../native/runtime";

export interface RuntimeUnderTest {
  runtime: Runtime;
  cleanup(): Promise<void>;
}

const REPO = path.resolve(__dirname, "../..");

/** The first item of a stream that passes `ok`, then the stream closed (its return()); fails after `ms`. */
async function firstOf<T>(stream: AsyncIterable<T>, ok: (v: T) => boolean, ms: number, what: string): Promise<T> {
  const it = stream[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  try {
    for (;;) {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error(`the stream ended before ${what}`);
      if (ok(r.value)) return r.value;
    }
  } finally {
    clearTimeout(timer);
    await it.return?.();
  }
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of stream) out.push(v);
  return out;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Bytes as a stream the callee reads. */
async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

export function runtimeSuite(name: string, makeRuntime: () => Promise<RuntimeUnderTest>): void {
  describe(`Runtime conformance: ${name}`, () => {
    const tag = randomBytes(3).toString("hex");
    const n = (what: string) => `bt${tag}${what}`;
    const IMAGE = `${n("img")}:1`;
    const NET = n("net");
    const VOL = n("vol");
    const C = n("c");
    // A /24 unlikely to be another test's: 10.200-249.x.0/24.
    const octet = randomBytes(2);
    const SUBNET = `10.${200 + (octet[0] % 50)}.${octet[1]}.0/24`;
    let rt: Runtime;
    let under: RuntimeUnderTest | undefined;
    let tmp: string;
    const made = { containers: [] as string[], images: [] as string[] };

    beforeAll(async () => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-suite-"));
      execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [path.join(tmp, "rootfs.tar")]);
      under = await makeRuntime();
      rt = under.runtime;
      made.images.push(IMAGE);
      await rt.images.importRootfs({ ref: IMAGE, tarball: path.join(tmp, "rootfs.tar"), config: { cmd: ["sh"], env: ["PATH=/bin"] } });
    });

    afterAll(async () => {
      if (rt) {
        for (const c of made.containers) await rt.containers.remove(c, { graceSeconds: 0 }).catch(() => undefined);
        await rt.registries.remove(n("reg")).catch(() => undefined);
        await rt.networks.remove(NET).catch(() => undefined);
        for (const v of [VOL, n("v2"), n("regdata")]) await rt.volumes.remove(v).catch(() => undefined);
        for (const i of made.images) await rt.images.remove(i).catch(() => undefined);
      }
      await under?.cleanup();
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    /** A container that logs to stdout and stderr, then waits; TERM ends it at once. */
    async function run(what: string, extra: Partial<ContainerSpec> = {}) {
      const c = n(what);
      made.containers.push(c);
      const script = 'echo started; echo oops >&2; trap "exit 0" TERM; while :; do sleep 0.1; done';
      return rt.containers.run({ name: c, image: IMAGE, command: ["sh", "-c", script], stopTimeout: 1, ...extra });
    }

    const exec = async (c: string, command: string[], opts: Parameters<Runtime["containers"]["exec"]>[2] = {}) => {
      let stdout = "";
      let stderr = "";
      const code = await rt.containers.exec(c, command, {
        ...opts,
        stdout: (b) => (stdout += Buffer.from(b).toString()),
        stderr: (b) => (stderr += Buffer.from(b).toString()),
      });
      return { code, stdout, stderr };
    };

    describe("images", () => {
      it("imports a rootfs, inspects it by name and id, lists, tags and removes a tag", async () => {
        const info = (await rt.images.inspect(IMAGE))!;
        expect(info.id).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(info.layers).toHaveLength(1);
        expect(info.config.cmd).toEqual(["sh"]);
        expect((await rt.images.inspect(info.id))?.id).toBe(info.id);
        expect((await rt.images.list()).map((i) => i.ref)).toContain(IMAGE);
        const other = `${n("tag")}:2`;
        made.images.push(other);
        expect((await rt.images.tag(IMAGE, other)).id).toBe(info.id);
        await rt.images.remove(other);
        expect(await rt.images.inspect(other)).toBeUndefined();
        expect((await rt.images.inspect(IMAGE))?.id).toBe(info.id);
        expect(await rt.images.inspect(`${n("none")}:1`)).toBeUndefined();
      });

      it("saves to a file on the caller's side, and loads and imports it back", async () => {
        const id = (await rt.images.inspect(IMAGE))!.id;
        const file = path.join(tmp, "saved.tar");
        await rt.images.save([IMAGE], file);
        const entries = execFileSync("tar", ["-tf", file], { encoding: "utf8" }).split("\n");
        expect(entries).toEqual(expect.arrayContaining(["manifest.json", "index.json", "oci-layout"]));
        const loaded = await rt.images.load(file);
        expect(loaded.map((i) => [i.ref, i.id])).toContainEqual([IMAGE, id]);
        const imported = `${n("arch")}:1`;
        made.images.push(imported);
        expect((await rt.images.importArchive({ ref: imported, path: file })).id).toBe(id);
        await rt.images.remove(imported);
      });
    });

    describe("builds and registries", () => {
      it("builds from a context on the caller's side, with progress through the callback and the cache", async () => {
        const ctx = path.join(tmp, "ctx");
        fs.mkdirSync(ctx);
        fs.writeFileSync(path.join(ctx, "hello.txt"), "built\n");
        fs.writeFileSync(path.join(ctx, "Dockerfile"), `FROM ${IMAGE}\nCOPY hello.txt /hello.txt\nENV BUILT=yes\n`);
        const ref = `${n("built")}:1`;
        made.images.push(ref);
        const lines: string[] = [];
        const first = await rt.images.build({ ref, context: ctx, log: (l) => lines.push(l) });
        expect(first.ran).toHaveLength(1);
        expect(first.info.layers).toHaveLength(2);
        expect(first.info.config.env).toContain("BUILT=yes");
        expect(lines.join("\n")).toMatch(/COPY hello.txt/);
        const again = await rt.images.build({ ref, context: ctx });
        expect(again).toMatchObject({ ran: [], info: { id: first.info.id } });
        expect(again.cached).toHaveLength(1);
        await rt.images.remove(ref);
        expect((await rt.images.pruneBuildCache({ all: true })).reclaimedBytes).toBeGreaterThanOrEqual(0);
      });

      it("runs a registry, pushes to it, resolves and pulls from it", async () => {
        const reg = n("reg");
        const storage = (await rt.volumes.create({ name: n("regdata") })).mountpoint;
        let endpoint = "";
        try {
          for (let attempt = 0; !endpoint; attempt++) {
            const port = 20_000 + (randomBytes(2).readUInt16BE() % 40_000);
            const info = await rt.registries.ensure({ name: reg, address: "127.0.0.1", port, storage }).catch((e: Error) => {
              if (attempt < 3 && /already in use/.test(e.message)) return undefined;
              throw e;
            });
            if (info) endpoint = info.endpoint;
          }
          expect(await rt.registries.inspect(reg)).toMatchObject({ name: reg, status: "running", endpoint });
          const remote = `${endpoint}/bt${tag}/img:1`;
          const pushed = await rt.images.push(IMAGE, remote);
          expect(pushed).toMatch(/@sha256:[0-9a-f]{64}$/);
          expect(await rt.images.resolve(remote)).toBe(pushed.slice(pushed.indexOf("@") + 1));
          const local = `${n("pulled")}:1`;
          made.images.push(local);
          expect((await rt.images.pull(remote, undefined, local)).id).toBe((await rt.images.inspect(IMAGE))!.id);
          await rt.images.remove(local);
        } finally {
          await rt.registries.remove(reg);
          await rt.volumes.remove(n("regdata"));
        }
        expect((await rt.registries.inspect(reg))?.status ?? "stopped").toBe("stopped");
      });
    });

    describe("volumes and networks", () => {
      it("makes, inspects, lists and removes a volume", async () => {
        const v = n("v2");
        const info = await rt.volumes.create({ name: v, labels: { suite: tag } });
        expect(info).toMatchObject({ name: v, labels: { suite: tag }, faults: [] });
        expect(info.mountpoint).toMatch(/^\//);
        expect(await rt.volumes.list()).toContain(v);
        await rt.volumes.remove(v);
        expect(await rt.volumes.inspect(v)).toBeUndefined();
        await rt.volumes.remove(v); // gone already: still fine
      });

      it("makes a bridge network, and reports what would clash with it or what the host lacks", async () => {
        const info = await rt.networks.create({ name: NET, subnet: SUBNET, nat: false });
        expect(info).toMatchObject({ name: NET, driver: "bridge", subnet: SUBNET, faults: [] });
        expect(info.gateway).toBe(SUBNET.replace(/0\/24$/, "1"));
        expect(info.bridge).toMatch(/^bt.{1,13}$/);
        expect(await rt.networks.list()).toContain(NET);
        expect(await rt.networks.conflicts({ name: NET, subnet: SUBNET, nat: false })).toBeUndefined();
        expect(await rt.networks.conflicts({ name: n("net2"), subnet: SUBNET, nat: false })).toMatchObject({ field: "subnet" });
        expect(await rt.networks.conflicts({ name: n("net2"), subnet: SUBNET, nat: false }, [NET])).toBeUndefined();
        const noParent = { name: n("mv"), subnet: "10.199.255.0/24", nat: false, driver: "macvlan" as const, parent: `bt${tag}none` };
        expect(await rt.networks.conflicts(noParent)).toMatchObject({ field: "parent", reason: expect.stringContaining(`bt${tag}none`) });
        expect(await rt.networks.conflicts({ name: "bridge", subnet: "10.199.254.0/24", nat: false })).toMatchObject({ field: "name" });
      });
    });

    describe("containers", () => {
      let port: number;

      beforeAll(async () => {
        await rt.volumes.create({ name: VOL });
        await rt.networks.create({ name: NET, subnet: SUBNET, nat: false });
        const info = await run("c", {
          network: NET,
          mounts: [{ volume: VOL, target: "/data" }],
          env: { GREETING: "hello" },
          ports: [{ hostIp: "127.0.0.1", hostPort: 0, containerPort: 80, protocol: "tcp" }],
        });
        port = info.ports![0].hostPort;
      });

      it("runs it: inspect shows it running on its network, with its published port", async () => {
        const info = (await rt.containers.inspect(C))!;
        expect(info).toMatchObject({ name: C, status: "running", faults: [], imageId: (await rt.images.inspect(IMAGE))!.id });
        expect(info.ip?.startsWith(SUBNET.replace(/0\/24$/, ""))).toBe(true);
        expect(port).toBeGreaterThan(0);
        expect(await rt.containers.list()).toContain(C);
        // Seen from inside: the address on its interface.
        expect((await exec(C, ["ip", "-4", "-o", "addr"])).stdout).toContain(`${info.ip}/24`);
      });

      it("exec: stdin in, stdout and stderr apart, the exit code; env, workdir, user", async () => {
        expect(await exec(C, ["sh", "-c", "cat; echo bad >&2; exit 5"], { stdin: chunks("hel", "lo\n") })).toEqual({ code: 5, stdout: "hello\n", stderr: "bad\n" });
        expect((await exec(C, ["cat"])).stdout).toBe(""); // no stdin: an empty one, not the caller's
        const r = await exec(C, ["sh", "-c", 'echo "$FOO $GREETING $(pwd) $(id -u)"'], { env: ["FOO=bar"], workdir: "/data", user: "65534" });
        expect(r).toEqual({ code: 0, stdout: "bar hello /data 65534\n", stderr: "" });
      });

      it("exec with a terminal: a pty of the given size, output on stdout", async () => {
        // runc sizes the terminal (and sets its line endings) just after the command starts: ask a moment later.
        const r = await exec(C, ["sh", "-c", "sleep 0.3; tty; stty size"], { tty: true, size: { rows: 33, cols: 101 } });
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\n33 101\r\n$/);
        const typed = await exec(C, ["sh", "-c", "read line; echo got $line; exit 4"], { tty: true, stdin: chunks("word\r") });
        expect(typed.code).toBe(4);
        expect(typed.stdout).toContain("got word");
        // The command reaches the container word for word: no shell on the way interprets it.
        const literal = await exec(C, ["sh", "-c", 'sleep 0.3; echo "$@"', "sh", "a'b $(id -u) `id` \"c\";", "\\d"], { tty: true });
        expect(literal).toMatchObject({ code: 0, stdout: "a'b $(id -u) `id` \"c\"; \\d\r\n" });
      });

      it("exec with a terminal, resized after the start: the command is signalled (SIGWINCH) and sees the new size", async () => {
        async function* resize() {
          await new Promise((r) => setTimeout(r, 1500)); // the trap is set by then
          yield { rows: 40, cols: 120 };
        }
        // Every SIGWINCH prints the size then (runc's own sizing at the start sends one too); the new one ends it.
        const script = 'trap \'s=$(stty size); echo "winch $s"; [ "$s" = "40 120" ] && exit 0\' WINCH; for i in $(seq 300); do sleep 0.1; done; exit 1';
        const r = await exec(C, ["sh", "-c", script], { tty: true, size: { rows: 33, cols: 101 }, resize: resize() });
        expect(r.stdout.replace(/\r/g, "").trim().split("\n").at(-1)).toBe("winch 40 120");
        expect(r.code).toBe(0);
      }, 40_000);

      it("detached exec returns at once, the command runs on", async () => {
        expect(await rt.containers.exec(C, ["sh", "-c", "sleep 1; echo done > /data/detached"], { detach: true })).toBe(0);
        await eventually("the detached command", async () => ((await exec(C, ["cat", "/data/detached"])).stdout === "done\n" ? true : undefined));
      });

      it("logs: both streams, tail, since/until, and follow until return()", async () => {
        const all = await eventually("the container's output", async () => {
          const lines = await collect(rt.containers.logs(C));
          return lines.length >= 2 ? lines : undefined;
        });
        expect(all.map((l) => l.text).sort()).toEqual(["oops", "started"]);
        for (const l of all) expect(Date.parse(l.time)).toBeGreaterThan(Date.now() - 120_000);
        expect(await collect(rt.containers.logs(C, { tail: 1 }))).toEqual(all.slice(1));
        expect(await collect(rt.containers.logs(C, { tail: 0 }))).toEqual([]);
        expect(await collect(rt.containers.logs(C, { until: Date.parse("2020-01-01T00:00:00Z") }))).toEqual([]);
        expect(await collect(rt.containers.logs(C, { since: Date.now() + 60_000 }))).toEqual([]);
        const followed = rt.containers.logs(C, { follow: true, tail: 0 });
        const later = firstOf(followed, (l) => l.text === "later", 10_000, "the followed line");
        await exec(C, ["sh", "-c", "echo later > /proc/1/fd/1"]);
        expect((await later).text).toBe("later");
        // A stream waiting for more ends at once on return().
        const idle = rt.containers.logs(C, { follow: true, tail: 0 })[Symbol.asyncIterator]();
        const pending = idle.next();
        const t0 = Date.now();
        await idle.return?.();
        expect(await pending).toMatchObject({ done: true });
        expect(Date.now() - t0).toBeLessThan(1000);
        await expect(collect(rt.containers.logs(n("nosuch")))).rejects.toThrow(/No such container/);
      });

      it("pause and unpause, seen in inspect and in the events stream", async () => {
        const since = Date.now();
        const live = rt.containers.events({ filters: { container: [C], event: ["unpause"] } });
        const unpaused = firstOf(live, () => true, 10_000, "the unpause event");
        await new Promise((r) => setTimeout(r, 300)); // the stream has looked at the file once
        await rt.containers.pause(C);
        expect((await rt.containers.inspect(C))?.paused).toBe(true);
        await rt.containers.unpause(C);
        expect((await rt.containers.inspect(C))?.paused).toBeFalsy();
        expect(await unpaused).toMatchObject({ type: "container", action: "unpause", actor: C });
        const past = await collect(rt.containers.events({ since, until: Date.now(), filters: { container: [C] } }));
        expect(past.map((e) => e.action)).toEqual(["pause", "unpause"]);
        const created = await collect(rt.containers.events({ since: 0, until: Date.now(), filters: { container: [C], event: ["create", "start"] } }));
        expect(created.map((e) => e.action)).toEqual(["create", "start"]);
        expect(await collect(rt.containers.events({ until: Date.now() }))).toEqual([]); // no since: only new ones
        const idle = rt.containers.events({ filters: { container: [n("nosuch")] } })[Symbol.asyncIterator]();
        const pending = idle.next();
        const t0 = Date.now();
        await idle.return?.();
        expect(await pending).toMatchObject({ done: true });
        expect(Date.now() - t0).toBeLessThan(1000);
      });

      it("copy in and out through files on the caller's side; diff; commit", async () => {
        const src = path.join(tmp, "in.txt");
        fs.writeFileSync(src, "from the caller\n");
        await rt.containers.copy(C, "to", "/in.txt", src);
        expect((await exec(C, ["cat", "/in.txt"])).stdout).toBe("from the caller\n");
        await exec(C, ["sh", "-c", "echo made inside > /made.txt"]);
        const out = path.join(tmp, "out");
        fs.mkdirSync(out);
        await rt.containers.copy(C, "from", "/made.txt", out);
        expect(fs.readFileSync(path.join(out, "made.txt"), "utf8")).toBe("made inside\n");
        expect(await rt.containers.diff(C)).toEqual(expect.arrayContaining(["A /in.txt", "A /made.txt"]));
        const ref = `${n("commit")}:1`;
        made.images.push(ref);
        const image = await rt.containers.commit(C, ref, { message: "suite" });
        expect(image.layers).toHaveLength(2);
        expect((await rt.images.inspect(ref))?.id).toBe(image.id);
        await rt.images.remove(ref);
      });

      it("stats, top and a limit changed in place", async () => {
        const s = await rt.containers.stats(C);
        expect(s.memoryBytes).toBeGreaterThan(0);
        expect(s.pids).toBeGreaterThanOrEqual(2);
        expect(s.onlineCpus).toBeGreaterThanOrEqual(1);
        expect(s.memoryLimit).toBeGreaterThan(64 * 1024 * 1024); // no limit yet: the host's memory
        expect(await rt.containers.top(C)).toMatch(/sleep|sh -c/);
        await rt.containers.update(C, { limits: { memory: 64 * 1024 * 1024 } });
        expect((await rt.containers.stats(C)).memoryLimit).toBe(64 * 1024 * 1024);
      });

      it("problems, conflicts of ports, before anything is made", async () => {
        expect(await rt.containers.problems({ devices: [`/dev/bt${tag}nosuch`] })).toEqual([
          { field: "devices[0]", reason: expect.stringContaining("no such file or directory") },
        ]);
        expect((await rt.containers.problems({ limits: { cpus: 100_000 } })).map((p) => p.field)).toEqual(["cpus"]);
        expect(await rt.containers.problems({ limits: { cpus: 0.5 }, devices: ["/dev/null"] })).toEqual([]);
        const missing = await rt.containers.problems({ name: n("x"), image: IMAGE, command: [`bt${tag}nosuchcmd`] });
        expect(missing.map((p) => p.field)).toEqual(["command"]);
        expect(await rt.containers.problems({ name: n("x"), image: IMAGE, command: ["sh"] })).toEqual([]);
        const published = { hostIp: "127.0.0.1", hostPort: port, containerPort: 80, protocol: "tcp" as const };
        expect(await rt.containers.portTaken(published, [])).toEqual(expect.stringContaining(String(port)));
        expect(await rt.containers.portTaken(published, [C])).toBeUndefined();
      });

      it("owners: claim, look up, list, release", async () => {
        const urn = `urn:pulumi:suite::p::berth:index:Container::${C}`;
        await rt.owners.claim("container", C, urn);
        expect(await rt.owners.ownerOf("container", C)).toBe(urn);
        expect((await rt.owners.list("container")).get(C)).toBe(urn);
        await rt.owners.release("container", C);
        expect(await rt.owners.ownerOf("container", C)).toBeUndefined();
      });

      it("system df counts what is there", async () => {
        const rows = await rt.system.df();
        expect(rows.map((r) => r.type)).toEqual(["Images", "Containers", "Local Volumes", "Build Cache"]);
        expect(rows[0].total).toBeGreaterThanOrEqual(1);
        expect(rows[1].active).toBeGreaterThanOrEqual(1);
      });

      it("stop, start, kill: the status and exit codes, the events", async () => {
        const since = Date.now();
        await rt.containers.stop(C, { graceSeconds: 5 });
        expect(await rt.containers.inspect(C)).toMatchObject({ status: "stopped", state: { exitCode: 0 } });
        await rt.containers.start(C);
        expect((await rt.containers.inspect(C))?.status).toBe("running");
        // The supervisor notes the start within a tick; a kill before that would go unseen by it.
        await firstOf(rt.containers.events({ since, filters: { container: [C], event: ["start"] } }), () => true, 10_000, "the start event");
        // Following ends when the container stops, as `docker logs -f` does; its last words are still there.
        const followed = collect(rt.containers.logs(C, { follow: true, tail: 0 }));
        await exec(C, ["sh", "-c", "printf 'last words' > /proc/1/fd/1"]);
        // A signal Linux lacks is refused before anything happens, in Docker's words: no event, still running.
        await expect(rt.containers.kill(C, "BOGUS")).rejects.toThrow("Invalid signal: BOGUS");
        await expect(rt.containers.kill(C, "0")).rejects.toThrow("Invalid signal: 0");
        expect((await rt.containers.inspect(C))?.status).toBe("running");
        const died = firstOf(rt.containers.events({ filters: { container: [C], event: ["die"] } }), () => true, 15_000, "the die event");
        await rt.containers.kill(C, "sigkill"); // any case, SIG or not, as Docker takes it
        expect((await died).attributes.exitCode).toBe("137");
        const ended = await Promise.race([followed, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
        expect(ended?.map((l) => l.text)).toEqual(["last words"]);
        const killed = await eventually("the killed container's exit", async () => {
          const i = await rt.containers.inspect(C);
          return i?.status === "stopped" && i.state?.exitCode !== undefined ? i : undefined;
        });
        expect(killed.state?.exitCode).toBe(137);
        await expect(rt.containers.exec(C, ["true"])).rejects.toThrow(/not running/);
        // A kill that fails (the container is not running, as Docker says) records no event either.
        await expect(rt.containers.kill(C, "KILL")).rejects.toThrow(/not running/);
        const events = await collect(rt.containers.events({ since, until: Date.now(), filters: { container: [C] } }));
        const actions = events.map((e) => e.action);
        expect(events.filter((e) => e.action === "kill").map((e) => e.attributes.signal)).toEqual(["9"]); // Docker's number
        expect(actions).toEqual(expect.arrayContaining(["stop", "start", "kill", "die"]));
        expect(actions.indexOf("kill")).toBeLessThan(actions.lastIndexOf("die"));
      });

      it("remove: gone from inspect and list; the volume keeps its data, the network can go", async () => {
        await rt.containers.remove(C, { graceSeconds: 0 });
        expect(await rt.containers.inspect(C)).toBeUndefined();
        expect(await rt.containers.list()).not.toContain(C);
        await rt.containers.remove(C); // gone already: still fine
        const reader = await run("r", { mounts: [{ volume: VOL, target: "/data" }] });
        expect((await exec(reader.name, ["cat", "/data/detached"])).stdout).toBe("done\n");
        await rt.containers.remove(reader.name, { graceSeconds: 0 });
        await rt.networks.remove(NET);
        expect(await rt.networks.inspect(NET)).toBeUndefined();
      });
    });
  });
}
