// Issue 14's remote gaps, over real SSH to simulated hosts (sim-hosts.ts): `exec -t` passes a window resize on
// to the remote terminal (through the runtime and through the CLI on a terminal of its own); a build on the remote
// pulls its base image with the caller's docker login (a credential helper here, asked only when the registry
// wants credentials), written nowhere there; the registry TLS files the remote keeps go once no registry uses them.
import { createHash, randomBytes } from "node:crypto";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { remoteRuntime, type RemoteRuntime } from "../../native/remote/client";
import { HOST_ARCH } from "../../native/image/oci";
import { KEPT_GRACE_MS } from "../../native/remote/files";
import { ensureQuickstartRootfs, QUICKSTART, REPO, waitFor } from "./helpers";
import { makeSimHosts, type SimHosts } from "./sim-hosts";

const tag = randomBytes(3).toString("hex");
const IMAGE = `rd${tag}-base:1`;
const C = `rd${tag}c`;
let sim: SimHosts;
let rt: RemoteRuntime;
const started: ChildProcess[] = [];

/** A writable async stream a test feeds by hand (exec's stdin, its resizes). */
function feed<T>() {
  const queue: T[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  return {
    push(v: T) {
      queue.push(v);
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
    async *[Symbol.asyncIterator](): AsyncGenerator<T> {
      for (;;) {
        if (queue.length > 0) yield queue.shift()!;
        else if (ended) return;
        else await new Promise<void>((r) => (wake = r));
      }
    },
  };
}

beforeAll(async () => {
  ensureQuickstartRootfs();
  sim = await makeSimHosts(1);
  rt = remoteRuntime(sim.hosts[0].target);
  await rt.images.importRootfs({ ref: IMAGE, tarball: path.join(QUICKSTART, "busybox-rootfs.tar"), config: { cmd: ["sh"], env: ["PATH=/bin"] } });
  await rt.containers.run({ name: C, image: IMAGE, command: ["sleep", "3600"], stopTimeout: 0 });
}, 120_000);

afterAll(async () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  await rt?.containers.remove(C, { graceSeconds: 0 }).catch(() => undefined);
  // A registry a failed test left running (sim-hosts' cleanup empties containers, networks and volumes only).
  for (const name of (await rt?.registries.list().catch(() => [])) ?? []) await rt.registries.remove(name).catch(() => undefined);
  await rt?.close();
  await sim?.cleanup();
}, 60_000);

/**
 * What the container's terminal says its size is, `stty size` every 0.3 s until a line of input. runc sizes the
 * terminal just after the command starts (ExecOptions.size), hence the pause before the first.
 */
const SIZES = ["sh", "-c", "sleep 0.5; while :; do stty size; read -t 0.3 x && exit 0; done"];

describe("exec -t over ssh", () => {
  it("a resize after the start reaches the container's terminal", async () => {
    const stdin = feed<Uint8Array>();
    const resize = feed<{ rows: number; cols: number }>();
    let out = "";
    const done = rt.containers.exec(C, SIZES, { tty: true, size: { rows: 24, cols: 80 }, stdin, resize, stdout: (c) => void (out += Buffer.from(c).toString()) });
    await waitFor("the first size", () => /\d+ \d+/.test(out) || undefined, 30_000);
    resize.push({ rows: 50, cols: 132 });
    await waitFor("the new size", () => /50 132/.test(out) || undefined, 30_000);
    stdin.push(Buffer.from("\n"));
    stdin.end();
    expect(await done).toBe(0);
    expect(out.replace(/\r/g, "").trim().split("\n").at(-1)).toBe("50 132");
  }, 60_000);

  it("berth -H … exec -it on a terminal: the terminal resized (SIGWINCH), the container's is too", async () => {
    const h = sim.hosts[0];
    const argv = [path.join(REPO, "bin/berth"), "-H", h.url, "exec", "-it", C, ...SIZES];
    const quoted = argv.map((a) => `'${a}'`).join(" ");
    // berth on a terminal of its own (util-linux script), 30x90 before it starts.
    const child = spawn("script", ["--quiet", "--flush", "--return", "--echo", "never", "--command", `stty rows 30 cols 90; exec ${quoted}`, "/dev/null"], {
      env: { ...process.env, BERTH_IDENTITY_FILE: sim.identityFile, BERTH_SSH_OPTIONS: JSON.stringify(sim.sshOptions) },
      stdio: ["pipe", "pipe", "pipe"],
    });
    started.push(child);
    let out = "";
    child.stdout!.on("data", (b: Buffer) => (out += b));
    child.stderr!.on("data", (b: Buffer) => (out += b));
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    await waitFor("the first size", () => /\d+ \d+/.test(out) || undefined, 30_000);
    // The window of berth's terminal changes, as when a user resizes theirs: the kernel signals berth.
    const [berthPid] = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(" ");
    execFileSync("stty", ["-F", `/proc/${berthPid}/fd/0`, "rows", "40", "cols", "100"]);
    await waitFor("the new size", () => /40 100/.test(out) || undefined, 30_000);
    child.stdin!.write("\n");
    expect(await exited, out).toBe(0);
    expect(out.replace(/\r/g, "").trim().split("\n").at(-1)).toBe("40 100");
  }, 60_000);
});

/** A registry (v2 API, Basic auth only) serving one image, run inside the host on its loopback. */
function fakeRegistry(dir: string, user: string, password: string): { script: string; ref: (port: number) => string } {
  fs.mkdirSync(path.join(dir, "rootfs"));
  fs.writeFileSync(path.join(dir, "rootfs/from-base"), "base\n");
  const tar = execFileSync("tar", ["-C", path.join(dir, "rootfs"), "-cf", "-", "from-base"]);
  const layer = zlib.gzipSync(tar);
  const diffId = `sha256:${sha(tar)}`;
  const config = Buffer.from(JSON.stringify({ architecture: HOST_ARCH, os: "linux", config: { Env: ["PATH=/bin"] }, rootfs: { type: "layers", diff_ids: [diffId] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${sha(config)}`, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${sha(layer)}`, size: layer.length }],
  }));
  for (const [name, body] of [["manifest", manifest], [`sha256:${sha(config)}`, config], [`sha256:${sha(layer)}`, layer]] as const) fs.writeFileSync(path.join(dir, name), body);
  const basic = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  const script = `const fs=require("fs"),path=require("path");const dir=${JSON.stringify(dir)};
require("http").createServer((req,res)=>{
  fs.appendFileSync(path.join(dir,"requests"),JSON.stringify([req.method,req.url,req.headers.authorization||""])+"\\n");
  if(req.headers.authorization!==${JSON.stringify(basic)}){res.writeHead(401,{"www-authenticate":'Basic realm="test"'});return res.end();}
  const m=/^\\/v2\\/base\\/(manifests|blobs)\\/(.+)$/.exec(req.url);
  if(!m){res.writeHead(404);return res.end();}
  const file=path.join(dir,m[1]==="manifests"?"manifest":m[2]);
  if(!fs.existsSync(file)){res.writeHead(404);return res.end();}
  res.writeHead(200,m[1]==="manifests"?{"content-type":"application/vnd.oci.image.manifest.v1+json"}:{});res.end(fs.readFileSync(file));
}).listen(0,"127.0.0.1",function(){console.log(this.address().port)});`;
  return { script, ref: (port) => `127.0.0.1:${port}/base:1` };
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("a remote build's base image and registry files", () => {
  it("the base image is pulled with the caller's docker login (its credential helper, asked on the challenge); nothing of it written there", async () => {
    const h = sim.hosts[0];
    const dir = fs.mkdtempSync(path.join(sim.dir, "registry-"));
    const secret = `pw-${randomBytes(8).toString("hex")}`;
    const registry = fakeRegistry(dir, "caller", secret);
    const [cmd, ...args] = h.inHost(["node", "-e", registry.script]);
    const server = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    started.push(server);
    const port = Number(await new Promise<string>((r) => server.stdout!.once("data", (b: Buffer) => r(b.toString().trim()))));
    const base = registry.ref(port);

    // The caller's docker config: a credsStore helper that knows the registry, as `docker login` with a keychain leaves.
    const docker = fs.mkdtempSync(path.join(sim.dir, "docker-"));
    fs.writeFileSync(path.join(docker, "config.json"), JSON.stringify({ credsStore: "simtest" }));
    fs.writeFileSync(path.join(docker, "docker-credential-simtest"), `#!/bin/sh\nread server\necho "$server" >> ${docker}/asked\n` +
      `[ "$server" = "127.0.0.1:${port}" ] && echo '{"Username":"caller","Secret":"${secret}"}' && exit 0\necho "credentials not found"; exit 1\n`, { mode: 0o755 });
    const context = fs.mkdtempSync(path.join(sim.dir, "context-"));
    fs.writeFileSync(path.join(context, "Dockerfile"), `FROM ${base}\nCOPY own /own\n`);
    fs.writeFileSync(path.join(context, "own"), "own\n");
    const saved = { PATH: process.env.PATH, DOCKER_CONFIG: process.env.DOCKER_CONFIG };
    process.env.PATH = `${docker}:${process.env.PATH}`;
    process.env.DOCKER_CONFIG = docker;
    try {
      // Without the caller's login (an empty config here), the registry's challenge goes unanswered.
      fs.writeFileSync(path.join(docker, "config.json"), "{}");
      await expect(rt.images.build({ ref: `rd${tag}-built:0`, context })).rejects.toThrow(/unauthorized: registry 127\.0\.0\.1:\d+ needs credentials/);
      fs.writeFileSync(path.join(docker, "config.json"), JSON.stringify({ credsStore: "simtest" }));
      const built = await rt.images.build({ ref: `rd${tag}-built:1`, context });
      expect(built.info.ref).toBe(`rd${tag}-built:1`);
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.DOCKER_CONFIG === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved.DOCKER_CONFIG;
    }
    const requests = fs.readFileSync(path.join(dir, "requests"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as string[]);
    expect(requests.filter((r) => r[2] !== "").every((r) => r[2] === `Basic ${Buffer.from(`caller:${secret}`).toString("base64")}`)).toBe(true);
    expect(requests.some((r) => r[1].startsWith("/v2/base/blobs/") && r[2] !== "")).toBe(true);
    expect(fs.readFileSync(path.join(docker, "asked"), "utf8").trim().split("\n")).toEqual([`127.0.0.1:${port}`]);
    // The password is in no file of the remote's berth root (the build crossed it in the call only).
    const found = h.exec("grep", ["-rlF", secret, h.root]);
    expect([found.status, found.stdout]).toEqual([1, ""]);
    await rt.images.remove(`rd${tag}-built:1`);
    await rt.images.remove(base).catch(() => undefined);
  }, 90_000);

  it("kept registry TLS files: removed once no registry names them (after their grace), kept while one does", async () => {
    const h = sim.hosts[0];
    const tls = fs.mkdtempSync(path.join(sim.dir, "tls-"));
    const pair = (name: string) => {
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", `/CN=${name}`, "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", path.join(tls, `${name}.key`), "-out", path.join(tls, `${name}.crt`)], { stdio: "ignore" });
      return { certificate: path.join(tls, `${name}.crt`), key: path.join(tls, `${name}.key`) };
    };
    const storage = (n: string) => {
      const d = path.join(h.root, `storage-${n}`);
      fs.mkdirSync(d, { recursive: true });
      return d;
    };
    const kept = path.join(h.root, "remote/files");
    const keptNow = () => fs.readdirSync(kept).sort();
    const age = () => {
      const past = new Date(Date.now() - KEPT_GRACE_MS - 60_000);
      for (const f of keptNow()) fs.utimesSync(path.join(kept, f), past, past);
    };
    const [a, b] = [`rd${tag}ra`, `rd${tag}rb`];
    const [pa, pb] = [Number(20000 + (process.pid % 20000)), Number(20001 + (process.pid % 20000))];
    await rt.registries.ensure({ name: a, address: "127.0.0.1", port: pa, storage: storage("a"), tls: pair("a") });
    await rt.registries.ensure({ name: b, address: "127.0.0.1", port: pb, storage: storage("b"), tls: pair("b") });
    const both = keptNow();
    expect(both).toHaveLength(4);
    // Removed: its two files go (once past the grace a call that sent them has to record its registry); b's stay.
    age();
    await rt.registries.remove(a);
    const left = keptNow();
    expect(left).toHaveLength(2);
    expect((await rt.registries.inspect(b))!.spec!.tls).toEqual({ certificate: path.join(kept, left.find((f) => (fs.readFileSync(path.join(kept, f), "utf8").includes("CERTIFICATE")))!), key: expect.stringContaining(kept) });
    // A new certificate for b: the old pair goes with the change.
    age();
    await rt.registries.ensure({ name: b, address: "127.0.0.1", port: pb, storage: storage("b"), tls: pair("b2") });
    expect(keptNow()).toHaveLength(2);
    expect(keptNow().some((f) => left.includes(f))).toBe(false);
    // Within the grace nothing is taken (another agent's call may be about to name them), and files left by a
    // removal made elsewhere (berth on the host itself) go when the next agent starts.
    const again = remoteRuntime(h.target);
    try {
      await rt.registries.remove(b);
      expect(keptNow()).toHaveLength(2);
      age();
      await again.registries.list();
      expect(keptNow()).toEqual([]);
    } finally {
      await again.close();
    }
  }, 90_000);
});
