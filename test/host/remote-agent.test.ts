// The remote runtime against a real `berth agent` on a temporary root, started directly (the test-only `command`
// transport) or behind a relay process that stands for ssh: containers run, logs read, files uploaded (an image's
// rootfs, a build context) and downloaded (save, cp out), hostile tars refused both ways, the connection killed
// mid-call, berth missing, a too old agent, and one process for every concurrent call. The same over real SSH
// is in remote-ssh.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { remoteRuntime, RemoteError, type RemoteRuntime, type RemoteTarget } from "../../native/remote/client";
import { Peer } from "../../native/remote/peer";
import { hello, jsonFrame, readFrames } from "../../native/remote/protocol";
import { readTar, writeTar, type TarHeader } from "../../native/image/tar";
import { ensureQuickstartRootfs, freePort, QUICKSTART, REPO, stopSupervisor } from "./helpers";

const tag = randomBytes(3).toString("hex");
const IMAGE = `tr${tag}-base:1`;
const BUILT = `tr${tag}-built:1`;
const C1 = `tr${tag}a`;
const C2 = `tr${tag}b`;
let tmp: string;
let root: string;
let runDir: string;
let starts: string;
let rt: RemoteRuntime;

const BERTH = path.join(REPO, "bin/berth");
/** The agent behind a relay that copies the bytes both ways, as ssh does: killing it is a dropped connection. */
const RELAY = `const {spawn}=require("child_process");const c=spawn(process.argv[1],process.argv.slice(2),{stdio:["pipe","pipe","inherit"]});` +
  `process.stdin.pipe(c.stdin);c.stdout.pipe(process.stdout);c.on("exit",(code)=>process.exit(code??1));`;
const agentCommand = () => ["sh", "-c", `echo "$$" >> "${starts}"; exec env BERTH_RUN="${runDir}" node -e '${RELAY}' "$@"`, "agent", BERTH, "agent", "--root", root];
const target = (over: Partial<RemoteTarget> = {}): RemoteTarget => ({ url: "ssh://root@test-host", command: agentCommand(), ...over });
const startCount = () => fs.readFileSync(starts, "utf8").split("\n").filter(Boolean).length;

/** A fake agent that answers the hello, then serves `handler` (JavaScript, over dist/), for what a real one never sends. */
function fakeAgent(handler: string, helloJson = JSON.stringify(hello())): string[] {
  const dist = path.join(REPO, "dist/native");
  const script = `const {Peer}=require("${dist}/remote/peer.js");const p=require("${dist}/remote/protocol.js");` +
    `const {writeTar}=require("${dist}/image/tar.js");` +
    `process.stdout.write(p.jsonFrame(${helloJson}));` +
    `const peer=new Peer(process.stdout,"agent",${handler});` +
    `(async()=>{const f=p.readFrames(process.stdin)[Symbol.asyncIterator]();await f.next();await peer.receive({[Symbol.asyncIterator]:()=>f});})();`;
  return ["node", "-e", script];
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of stream) out.push(v);
  return out;
}

const header = (h: Partial<TarHeader> & { path: string }): TarHeader => ({
  type: "file", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: "", devmajor: 0, devminor: 0, ...h,
});

beforeAll(() => {
  ensureQuickstartRootfs();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-remote-"));
  root = path.join(tmp, "root");
  runDir = path.join(tmp, "run");
  starts = path.join(tmp, "starts");
  fs.writeFileSync(starts, "");
  rt = remoteRuntime(target());
});

afterAll(async () => {
  for (const c of [C1, C2]) await rt.containers.remove(c, { graceSeconds: 0 }).catch(() => undefined);
  for (const i of [BUILT, IMAGE]) await rt.images.remove(i).catch(() => undefined);
  await rt.close();
  stopSupervisor(root);
  fs.rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe("remote runtime through berth agent", () => {
  it("imports an image from a local tarball, runs a container and reads its logs, over one agent process", async () => {
    const info = await rt.images.importRootfs({ ref: IMAGE, tarball: path.join(QUICKSTART, "busybox-rootfs.tar"), config: { cmd: ["sh"], env: ["PATH=/bin"] } });
    expect(info.ref).toBe(IMAGE);
    const run = await rt.containers.run({ name: C1, image: IMAGE, command: ["sh", "-c", "echo hello from $HOSTNAME; exec sleep 600"], stopTimeout: 1 });
    expect(run.status).toBe("running");
    let text = "";
    for (let i = 0; i < 50 && !text.includes("hello"); i++) {
      text = (await collect(rt.containers.logs(C1))).map((l) => l.text).join("\n");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toContain(`hello from ${C1}`);
    // Many calls at once share the one connection.
    const all = await Promise.all([...Array(12)].map((_, i) => (i % 2 ? rt.containers.inspect(C1) : rt.images.inspect(IMAGE))));
    expect(all.every(Boolean)).toBe(true);
    expect(startCount()).toBe(1);
  }, 60_000);

  it("builds from a local context: .dockerignore honoured, the Dockerfile sent even when ignored, progress on the callback", async () => {
    const ctx = path.join(tmp, "ctx");
    fs.mkdirSync(path.join(ctx, "sub"), { recursive: true });
    fs.writeFileSync(path.join(ctx, "Dockerfile"), `FROM ${IMAGE}\nCOPY . /app\n`);
    fs.writeFileSync(path.join(ctx, ".dockerignore"), "secret.txt\nDockerfile\n");
    fs.writeFileSync(path.join(ctx, "a.txt"), "A\n");
    fs.writeFileSync(path.join(ctx, "secret.txt"), "do not send\n");
    fs.writeFileSync(path.join(ctx, "sub", "b.txt"), "B\n");
    const log: string[] = [];
    const built = await rt.images.build({ ref: BUILT, context: ctx, log: (l) => log.push(l) });
    expect(built.ran.length).toBeGreaterThan(0);
    expect(log.join("\n")).toMatch(/COPY/);
    await rt.containers.run({ name: C2, image: BUILT, command: ["sh", "-c", "cd /app && find . | sort; exec sleep 600"], stopTimeout: 1 });
    let text = "";
    for (let i = 0; i < 50 && !text.includes("b.txt"); i++) {
      text = (await collect(rt.containers.logs(C2))).map((l) => l.text).join("\n");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toContain("./a.txt");
    expect(text).toContain("./sub/b.txt");
    expect(text).not.toContain("secret");
  }, 120_000);

  it("saves to a local file and loads it back; copies a directory in and out", async () => {
    const file = path.join(tmp, "saved.tar");
    await rt.images.save([IMAGE], file);
    const names: string[] = [];
    for await (const e of readTar(fs.createReadStream(file))) {
      names.push(e.header.path);
      for await (const _ of e.data) void _;
    }
    expect(names).toContain("manifest.json");
    const loaded = await rt.images.load(file);
    expect(loaded.map((i) => i.ref)).toContain(IMAGE);

    const src = path.join(tmp, "files");
    fs.mkdirSync(path.join(src, "d"), { recursive: true });
    fs.writeFileSync(path.join(src, "d", "x.txt"), "x\n");
    fs.symlinkSync("d/x.txt", path.join(src, "link"));
    await rt.containers.copy(C1, "to", "/tmp", src);
    const out = path.join(tmp, "out");
    fs.mkdirSync(out);
    await rt.containers.copy(C1, "from", "/tmp/files", out);
    expect(fs.readFileSync(path.join(out, "files", "d", "x.txt"), "utf8")).toBe("x\n");
    expect(fs.readlinkSync(path.join(out, "files", "link"))).toBe("d/x.txt");
    // As a new name when the destination does not exist, as docker cp does.
    await rt.containers.copy(C1, "from", "/tmp/files/d/x.txt", path.join(tmp, "single.txt"));
    expect(fs.readFileSync(path.join(tmp, "single.txt"), "utf8")).toBe("x\n");
  }, 60_000);

  it("a TLS registry from local certificate files (kept on the remote, 0600) and a push trusting a local CA", async () => {
    const [cert, key] = [path.join(tmp, "cert.pem"), path.join(tmp, "key.pem")];
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
    const port = await freePort();
    const storage = (await rt.volumes.create({ name: `tr${tag}reg` })).mountpoint;
    const name = `tr${tag}reg`;
    try {
      const info = await rt.registries.ensure({ name, address: "127.0.0.1", port, storage, tls: { certificate: cert, key } });
      expect(info.url).toBe(`https://127.0.0.1:${port}`);
      // The runtime got copies under the remote's root, never the caller's paths; the same files again change nothing.
      const tls = info.spec!.tls!;
      for (const f of [tls.certificate, tls.key]) {
        expect(f.startsWith(path.join(root, "remote", "files") + "/")).toBe(true);
        expect(fs.statSync(f).mode & 0o777).toBe(0o600);
      }
      expect((await rt.registries.ensure({ name, address: "127.0.0.1", port, storage, tls: { certificate: cert, key } })).pid).toBe(info.pid);
      const target = `127.0.0.1:${port}/app:1`;
      await expect(rt.images.push(IMAGE, target)).rejects.toThrow("its TLS certificate is not trusted");
      expect(await rt.images.push(IMAGE, target, { ca: cert })).toMatch(new RegExp(`^127.0.0.1:${port}/app@sha256:`));
    } finally {
      await rt.registries.remove(name);
      await rt.volumes.remove(`tr${tag}reg`);
    }
  }, 60_000);

  it("a hostile download (a tar climbing out, or writing through its own symlink) is refused and writes nothing outside", async () => {
    const canary = path.join(tmp, "canary");
    fs.mkdirSync(canary);
    for (const entries of [
      [{ header: header({ path: "out", type: "dir", mode: 0o755 }) }, { header: header({ path: "out/../../escaped", size: 3 }), data: "bad" }],
      [
        { header: header({ path: "out", type: "dir", mode: 0o755 }) },
        { header: header({ path: "out/link", type: "symlink", linkname: canary }) },
        { header: header({ path: "out/link/pwned", size: 3 }), data: "bad" },
      ],
    ]) {
      const spec = JSON.stringify(entries);
      const handler = `async()=>({value:undefined,files:[writeTar(${spec}.map(e=>({header:e.header,data:e.data===undefined?undefined:()=>Buffer.from(e.data)})))]})`;
      const evil = remoteRuntime(target({ command: fakeAgent(handler) }));
      const dest = path.join(tmp, `dl-${randomBytes(2).toString("hex")}`);
      await expect(evil.containers.copy("x", "from", "/etc", dest)).rejects.toThrow(/refused/);
      await evil.close();
      expect(fs.readdirSync(canary)).toEqual([]);
      expect(fs.existsSync(path.join(tmp, "escaped"))).toBe(false);
      expect(fs.existsSync(dest)).toBe(false);
    }
  }, 30_000);

  it("a hostile upload to the agent is refused the same way, and the staging area is gone after", async () => {
    // What a killed agent left (its owner gone) is swept by the next one; also as an older berth named it (pid alone).
    for (const name of ["call-999999999-1-deadbeef", "999999999-deadbeef0123"]) fs.mkdirSync(path.join(root, "remote", "staging", name), { recursive: true });
    const child = spawn(agentCommand()[0], agentCommand().slice(1), { stdio: ["pipe", "pipe", "inherit"] });
    child.stdin.write(jsonFrame(hello()));
    const frames = readFrames(child.stdout)[Symbol.asyncIterator]();
    await frames.next();
    const peer = new Peer(child.stdin, "client");
    void peer.receive({ [Symbol.asyncIterator]: () => frames });
    const tar = writeTar([{ header: header({ path: "x/../../../../escaped-up", size: 3 }), data: () => Buffer.from("bad") }]);
    await expect(peer.call("images.importRootfs", [{ ref: `tr${tag}-evil:1`, tarball: { name: "x", tar }, config: {} }])).rejects.toThrow(/refused/);
    await expect(peer.call("images.importRootfs", [{ ref: `tr${tag}-evil:1`, tarball: { name: "../x", tar: writeTar([]) }, config: {} }])).rejects.toThrow(/one plain name/);
    child.stdin.end();
    await new Promise((r) => child.on("close", r));
    expect(fs.existsSync(path.join(tmp, "escaped-up"))).toBe(false);
    expect(fs.readdirSync(path.join(root, "remote", "staging"))).toEqual([]);
  }, 30_000);

  it("the connection killed mid-call: a clear error naming the call; the agent finishes it; the next call reconnects", async () => {
    const victim = remoteRuntime(target());
    await victim.containers.list(); // connected
    const before = startCount();
    const name = `tr${tag}k`;
    try {
      const pending = victim.containers.run({ name, image: IMAGE, command: ["sleep", "600"], stopTimeout: 1 });
      // Killed once the agent has started the create (its directory is there), not after a guess at how long it takes.
      for (let i = 0; i < 500 && !fs.existsSync(path.join(root, "containers", name)); i++) await new Promise((r) => setTimeout(r, 2));
      const relayPid = Number(fs.readFileSync(starts, "utf8").trim().split("\n").pop());
      process.kill(relayPid, "SIGKILL");
      const err = (await pending.catch((e: unknown) => e)) as RemoteError;
      expect(err).toBeInstanceOf(RemoteError);
      expect(err.reason).toBe("lost");
      expect(err.message).toMatch(new RegExp(`connection to ssh://root@test-host lost during containers\\.run\\("${name}"\\).*run again`));
      // The agent ran the create to its end; the next call is a new connection.
      let state: string | undefined;
      for (let i = 0; i < 100 && state !== "running"; i++) {
        state = (await victim.containers.inspect(name))?.status;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(state).toBe("running");
      expect(startCount()).toBe(before + 1);
    } finally {
      await victim.containers.remove(name, { graceSeconds: 0 }).catch(() => undefined);
      await victim.close();
    }
  }, 60_000);

  it("berth missing, a too old agent, a shell that prints at login, no ssh here: one error each, naming the host and the fix", async () => {
    const missing = remoteRuntime(target({ command: ["sh", "-c", "exec berth-not-installed-here agent"] }));
    const e1 = (await missing.volumes.list().catch((e: unknown) => e)) as RemoteError;
    expect([e1.reason, e1.message]).toEqual(["missing", expect.stringMatching(/berth is not installed on ssh:\/\/root@test-host .*README "Many hosts"/)]);

    const old = remoteRuntime(target({ command: fakeAgent("()=>1", JSON.stringify({ t: "hello", protocol: 0, berth: "0.0.1" })) }));
    const e2 = (await old.volumes.list().catch((e: unknown) => e)) as RemoteError;
    expect(e2.reason).toBe("version");
    expect(e2.message).toMatch(/ssh:\/\/root@test-host runs berth v0\.0\.1 \(agent protocol 0\); this berth is v\S+ \(protocol 2\).*too old.*install berth/);

    const noisy = remoteRuntime(target({ command: ["sh", "-c", `echo 'Welcome to your server'; exec ${BERTH} agent --root ${root}`] }));
    const e3 = (await noisy.volumes.list().catch((e: unknown) => e)) as RemoteError;
    expect(e3.reason).toBe("protocol");
    expect(e3.message).toMatch(/did not answer as a berth agent: it printed "Welcome to your server/);

    const noSsh = remoteRuntime(target({ command: ["/nonexistent/ssh"] }));
    const e5 = (await noSsh.volumes.list().catch((e: unknown) => e)) as RemoteError;
    expect([e5.reason, e5.message]).toEqual(["unreachable", expect.stringMatching(/^cannot run \/nonexistent\/ssh to reach ssh:\/\/root@test-host: .*openssh-client/)]);

    const oldBerth = remoteRuntime(target({ command: ["sh", "-c", `echo 'error: unknown command "agent" for "berth"' >&2; exit 2`] }));
    const e4 = (await oldBerth.volumes.list().catch((e: unknown) => e)) as RemoteError;
    expect([e4.reason, e4.message]).toEqual(["version", expect.stringMatching(/too old to serve as an agent/)]);
  }, 30_000);

  it("close() ends the agent; a call after it connects again; a connection never closed holds no process up", async () => {
    const r = remoteRuntime(target());
    await r.volumes.list();
    const pid = Number(fs.readFileSync(starts, "utf8").trim().split("\n").pop());
    await r.close();
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    await r.volumes.list();
    await r.close();
    // Idle, an unclosed connection does not keep its process alive (the agent then sees its input end).
    const script = `const {remoteRuntime}=require(${JSON.stringify(path.join(REPO, "dist/native/remote/client.js"))});` +
      `remoteRuntime({url:"ssh://t",command:${JSON.stringify(agentCommand())}}).volumes.list().then((v)=>console.log(JSON.stringify(v)));`;
    expect(execFileSync("node", ["-e", script], { encoding: "utf8", timeout: 20_000 }).trim()).toBe("[]");
  }, 30_000);
});

describe("berth agent's entry", () => {
  it("loads only the runtime and the protocol, not the CLI, the SDK or zod; other arguments get the CLI's answers", async () => {
    const hook = path.join(tmp, "modules-hook.js");
    const list = path.join(tmp, "modules.json");
    fs.writeFileSync(hook, `process.on("exit",()=>require("fs").writeFileSync(${JSON.stringify(list)},JSON.stringify(Object.keys(require.cache))));`);
    const r = remoteRuntime(target({ command: ["env", `NODE_OPTIONS=--require ${hook}`, `BERTH_RUN=${runDir}`, BERTH, "agent", `--root=${root}`] }));
    expect(await r.volumes.list()).toEqual(expect.any(Array));
    await r.close();
    const loaded = (JSON.parse(fs.readFileSync(list, "utf8")) as string[]).map((m) => path.relative(REPO, m));
    expect(loaded).toContain("dist/native/remote/agent.js");
    expect(loaded.filter((m) => /^dist\/(provider|sdk)\/|node_modules\/(zod|@pulumi)\//.test(m))).toEqual([]);
    // Help and a flag the agent does not take go through the CLI, which knows them.
    expect(execFileSync(BERTH, ["agent", "--help"], { encoding: "utf8" })).toMatch(/Usage:\s+berth agent/);
    const bad = spawnSync(BERTH, ["agent", "--bogus"], { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
    expect([bad.status, bad.stderr]).toEqual([2, expect.stringContaining("--bogus")]);
  }, 30_000);
});
