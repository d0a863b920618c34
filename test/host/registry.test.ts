// A Registry resource served by berth (Debian's docker-registry) with an htpasswd user: push and pull round trip,
// refusal without or with wrong credentials, skopeo reading what berth pushed, OCI layouts from skopeo and umoci
// imported, and berth's save read back by skopeo and by berth.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createNativeRuntime, type Runtime } from "../../native";
import { berthProviders } from "../../provider/resources";
import type { Provider } from "../../provider/resources/provider";
import { REPO, freePort } from "./helpers";

let root: string;
let rt: Runtime;
let other: Runtime;
let registry: Provider;
let port: number;
let endpoint: string;
let registryInputs: Record<string, unknown>;
const creds = { username: "alice", password: "s3cret-pw" };

beforeAll(async () => {
  root = fs.mkdtempSync("/tmp/berth-test-");
  rt = createNativeRuntime({ root: path.join(root, "a"), runDir: path.join(root, "run-a") });
  other = createNativeRuntime({ root: path.join(root, "b"), runDir: path.join(root, "run-b") });
  const tar = path.join(root, "busybox.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
  await rt.images.importRootfs({ ref: "busybox:latest", tarball: tar, config: { cmd: ["sh"] } });
  fs.mkdirSync(path.join(root, "ctx"));
  fs.writeFileSync(path.join(root, "ctx/Dockerfile"), "FROM busybox\nRUN echo pushed > /pushed.txt\nCMD [\"cat\", \"/pushed.txt\"]\n");
  await rt.volumes.create({ name: "berth-test-regdata" });
  port = await freePort();
  endpoint = `127.0.0.1:${port}`;
  registry = berthProviders(rt, root).get("berth:index:Registry")!;
}, 60_000);

afterAll(async () => {
  await registry?.delete({ urn: "", id: "berth-test-registry", inputs: registryInputs ?? {}, outputs: {} }).catch(() => undefined);
  fs.rmSync(root, { recursive: true, force: true });
});

const skopeo = (args: string[]) => execFileSync("skopeo", args, { encoding: "utf8" });
/** What the registry serves for ref, as skopeo inspects it (with "--raw": the manifest itself). */
const inspectPushed = (ref: string, ...flags: string[]) =>
  JSON.parse(skopeo(["inspect", ...flags, "--tls-verify=false", "--creds", `${creds.username}:${creds.password}`, `docker://${ref}`]));

describe("registry", () => {
  it("serves a Registry resource whose state holds only the bcrypt hash of the password", async () => {
    const news = { name: "berth-test-registry", port, volume: "berth-test-regdata", users: [creds] };
    const checked = await registry.check({ urn: "u", name: "reg", news, randomSeed: "s" });
    expect(checked.failures).toEqual([]);
    registryInputs = checked.inputs;
    const users = checked.inputs.users as Array<Record<string, string>>;
    expect(users[0].password).toBeUndefined();
    expect(users[0].passwordHash).toMatch(/^\$2b\$10\$/);
    expect(JSON.stringify(checked.inputs)).not.toContain(creds.password);
    // The same password again keeps the same hash: no diff.
    const again = await registry.check({ urn: "u", name: "reg", olds: checked.inputs, news, randomSeed: "s" });
    expect((await registry.diff({ urn: "u", id: "x", oldInputs: checked.inputs, oldOutputs: { status: "running" }, news: again.inputs })).changes).toBe(false);
    const made = await registry.create({ urn: "u", inputs: checked.inputs, preview: false });
    expect(made.outputs).toMatchObject({ url: `http://${endpoint}`, endpoint, status: "running" });
  }, 30_000);

  it("pushes with credentials, skips blobs the registry has, and skopeo reads what berth pushed", async () => {
    const target = `${endpoint}/app:1`;
    const { info } = await rt.images.build({ ref: target, context: path.join(root, "ctx") });
    const repoDigest = await rt.images.push(target, target, { auth: creds });
    const inspected = inspectPushed(target);
    expect(repoDigest).toBe(`${endpoint}/app@${inspected.Digest}`);
    // The store keeps layers uncompressed (digest = diff id); they leave gzipped, so the pushed manifest is another.
    expect(inspected.Digest).not.toBe(info.manifestDigest);
    expect(inspected.Layers).toHaveLength(2);
    for (const [i, layer] of (inspected.Layers as string[]).entries()) expect(layer).not.toBe(info.layers[i]);
    const raw = inspectPushed(target, "--raw");
    expect(raw.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual(Array(2).fill("application/vnd.oci.image.layer.v1.tar+gzip"));
    // Everything is there already: a second push uploads nothing.
    expect(await rt.images.push(target, `${endpoint}/app:2`, { auth: creds })).toBe(repoDigest);
  }, 60_000);

  it("refuses to push a stored layer whose tar no longer matches its digest, and leaves no compressed copy behind", async () => {
    const dir = path.join(root, "damaged");
    fs.mkdirSync(path.join(dir, "rootfs"), { recursive: true });
    fs.writeFileSync(path.join(dir, "rootfs/file"), "intact\n");
    execFileSync("tar", ["-cf", path.join(dir, "layer.tar"), "-C", path.join(dir, "rootfs"), "."]);
    const info = await rt.images.importRootfs({ ref: `${endpoint}/damaged:1`, tarball: path.join(dir, "layer.tar"), config: {} });
    const blob = path.join(root, "a/blobs/sha256", info.layers[0].slice(7));
    const bytes = fs.readFileSync(blob);
    bytes[bytes.indexOf("intact")] ^= 0x20; // "Intact": same size, another digest
    fs.writeFileSync(blob, bytes);
    await expect(rt.images.push(`${endpoint}/damaged:1`, `${endpoint}/damaged:1`, { auth: creds })).rejects.toThrow(
      `image store is damaged: layer blob ${info.layers[0]} reads as sha256:`,
    );
    expect(fs.readdirSync(path.join(root, "a/ingest")).filter((f) => f.includes("push"))).toEqual([]);
    await rt.images.remove(`${endpoint}/damaged:1`);
  }, 30_000);

  it("pushes an unchanged image again without compressing it again; a repository lacking the layer gets it compressed and checked", async () => {
    const dir = path.join(root, "repush");
    fs.mkdirSync(path.join(dir, "rootfs"), { recursive: true });
    // Over 4 MiB, so its gzip form is several members, which skopeo (Go's gzip) and berth's pull read back whole.
    fs.writeFileSync(path.join(dir, "rootfs/random"), randomBytes(5 << 20));
    fs.writeFileSync(path.join(dir, "rootfs/file"), "intact\n".repeat(1 << 18));
    execFileSync("tar", ["-cf", path.join(dir, "layer.tar"), "-C", path.join(dir, "rootfs"), "."]);
    const ref = `${endpoint}/repush:1`;
    const info = await rt.images.importRootfs({ ref, tarball: path.join(dir, "layer.tar"), config: {} });
    const repoDigest = await rt.images.push(ref, ref, { auth: creds });
    const copied = path.join(dir, "copied");
    skopeo(["copy", "-q", "--src-tls-verify=false", "--src-creds", `${creds.username}:${creds.password}`, "--dest-decompress", `docker://${ref}`, `dir:${copied}`]);
    const digests = fs.readdirSync(copied).map((f) => `sha256:${createHash("sha256").update(fs.readFileSync(path.join(copied, f))).digest("hex")}`);
    expect(digests).toContain(info.layers[0]);

    // The stored tar is damaged now: a push that read it would refuse. The registry has its gzip form, so it is not read.
    const blob = path.join(root, "a/blobs/sha256", info.layers[0].slice(7));
    const bytes = fs.readFileSync(blob);
    bytes[bytes.indexOf("intact")] ^= 0x20;
    fs.writeFileSync(blob, bytes);
    expect(await rt.images.push(ref, `${endpoint}/repush:2`, { auth: creds })).toBe(repoDigest);
    const pulled = await other.images.pull(`${endpoint}/repush:2`, { auth: creds });
    expect(pulled.layers).toEqual(info.layers);
    await other.images.remove(`${endpoint}/repush:2`);
    // Another repository has no such blob (a registry's blobs are per repository): the layer is read again, and checked.
    await expect(rt.images.push(ref, `${endpoint}/elsewhere:1`, { auth: creds })).rejects.toThrow(`image store is damaged: layer blob ${info.layers[0]} reads as sha256:`);
    // The record of the gzip form goes with the blob it was made from.
    const record = path.join(root, "a/gzip", info.layers[0].slice(7));
    expect(fs.existsSync(record)).toBe(true);
    await rt.images.remove(ref);
    expect(fs.existsSync(record)).toBe(false);
  }, 60_000);

  it("builds and pushes through an Image resource; without credentials its create fails unauthorized, leaving nothing", async () => {
    const image = berthProviders(rt, root).get("berth:index:Image")!;
    const news = { name: `${endpoint}/resource:1`, build: { context: "ctx" }, push: true, registry: { auth: creds } };
    const checked = await image.check({ urn: "u", name: "img", news, randomSeed: "s" });
    expect(JSON.stringify(checked.inputs)).not.toContain(creds.password);
    const made = await image.create({ urn: "u", inputs: checked.inputs, preview: false });
    expect(made.outputs.repoDigests).toEqual([`${endpoint}/resource@${inspectPushed(`${endpoint}/resource:1`).Digest}`]);
    const anonymous = await image.check({ urn: "u", name: "anon", news: { ...news, name: `${endpoint}/anon:1`, registry: undefined }, randomSeed: "s" });
    await expect(image.create({ urn: "u", inputs: anonymous.inputs, preview: false })).rejects.toThrow(/^unauthorized: registry .* needs credentials/);
    // The refused create leaves no image that no stack knows of.
    expect(await rt.images.inspect(`${endpoint}/anon:1`)).toBeUndefined();
  }, 60_000);

  it("refuses a push without credentials or with a wrong password, saying unauthorized", async () => {
    const target = `${endpoint}/app:1`;
    await expect(rt.images.push(target, `${endpoint}/nope:1`)).rejects.toThrow(/^unauthorized: registry 127\.0\.0\.1:\d+ needs credentials/);
    await expect(rt.images.push(target, `${endpoint}/nope:1`, { auth: { ...creds, password: "wrong" } })).rejects.toThrow(
      `unauthorized: registry ${endpoint} refused the credentials of user "alice"`,
    );
    expect(JSON.parse(skopeo(["inspect", "--tls-verify=false", "--creds", `${creds.username}:${creds.password}`, `docker://${endpoint}/app:1`])).Digest).toBeTruthy();
    const missing = spawnSync("skopeo", ["inspect", "--tls-verify=false", "--creds", `${creds.username}:${creds.password}`, `docker://${endpoint}/nope:1`]);
    expect(missing.status).not.toBe(0);
  }, 30_000);

  it("pulls into another store and runs a container of the pulled image", async () => {
    const ref = `${endpoint}/app:1`;
    await expect(other.images.pull(ref, { auth: { ...creds, password: "wrong" } })).rejects.toThrow(/unauthorized/);
    await expect(other.images.pull(`${endpoint}/absent:1`, { auth: creds })).rejects.toThrow(/^not found: manifest absent:1/);
    const pulled = await other.images.pull(ref, { auth: creds });
    const built = (await rt.images.inspect(ref))!;
    expect(pulled.id).toBe(built.id);
    expect(pulled.layers).toEqual(built.layers);
    const name = `berth-test-pulled-${port}`;
    try {
      const c = await other.containers.run({ name, image: pulled.id, command: ["sleep", "30"] });
      expect(c.status).toBe("running");
      expect(fs.readFileSync(`/proc/${c.pid}/root/pushed.txt`, "utf8")).toBe("pushed\n");
    } finally {
      await other.containers.remove(name, { graceSeconds: 0 });
    }
  }, 60_000);

  it("says unreachable for a registry nobody serves", async () => {
    const closed = await freePort();
    await expect(other.images.pull(`127.0.0.1:${closed}/x:1`)).rejects.toThrow(/^registry 127\.0\.0\.1:\d+ unreachable: ECONNREFUSED/);
  });

  it("imports OCI layouts written by skopeo and umoci", async () => {
    const layout = path.join(root, "skopeo-oci");
    skopeo(["copy", "--src-tls-verify=false", "--src-creds", `${creds.username}:${creds.password}`, `docker://${endpoint}/app:1`, `oci:${layout}:v1`]);
    const fromSkopeo = await other.images.importArchive({ ref: "from-skopeo:v1", path: layout });
    expect(fromSkopeo.id).toBe((await rt.images.inspect(`${endpoint}/app:1`))!.id);

    const umoci = path.join(root, "umoci");
    execFileSync("umoci", ["init", "--layout", umoci]);
    execFileSync("umoci", ["new", "--image", `${umoci}:t`]);
    execFileSync("umoci", ["unpack", "--rootless", "--image", `${umoci}:t`, path.join(root, "bundle")]);
    fs.writeFileSync(path.join(root, "bundle/rootfs/hello.txt"), "from umoci");
    execFileSync("umoci", ["repack", "--image", `${umoci}:t`, path.join(root, "bundle")]);
    const fromUmoci = await other.images.importArchive({ ref: "from-umoci:t", path: umoci });
    const dir = path.join(root, "b", "layers", fromUmoci.layers[fromUmoci.layers.length - 1].slice(7));
    expect(fs.readFileSync(path.join(dir, "hello.txt"), "utf8")).toBe("from umoci");
  }, 60_000);

  it("saves an archive skopeo reads as docker-archive and OCI archive, and berth imports both ways", async () => {
    const ref = `${endpoint}/app:1`;
    const file = path.join(root, "saved.tar");
    await rt.images.save([ref], file);
    const original = (await rt.images.inspect(ref))!;
    const asDocker = JSON.parse(skopeo(["inspect", `docker-archive:${file}`]));
    expect(asDocker.Layers).toHaveLength(2);
    const ociRaw = JSON.parse(skopeo(["inspect", "--raw", `oci-archive:${file}`]));
    expect(ociRaw.config.digest).toBe(original.id);
    const back = await other.images.importArchive({ ref: "saved:1", path: file });
    expect(back.id).toBe(original.id);
    // The docker-save view alone (no index.json), as an older Docker writes it.
    const dockerOnly = path.join(root, "docker-only");
    fs.mkdirSync(dockerOnly);
    execFileSync("tar", ["-xf", file, "-C", dockerOnly, "--exclude=index.json", "--exclude=oci-layout"]);
    const viaManifest = await other.images.importArchive({ ref: "docker-only:1", path: dockerOnly });
    expect(viaManifest.id).toBe(original.id);
    const docker = spawnSync("docker", ["info"], { timeout: 5000 });
    if (docker.status !== 0) console.log("docker load of berth's save skipped: no Docker engine answers `docker info`");
    else {
      execFileSync("docker", ["load", "-i", file]);
      expect(execFileSync("docker", ["image", "inspect", "-f", "{{.Id}}", ref], { encoding: "utf8" }).trim()).toBe(original.id);
      execFileSync("docker", ["rmi", ref]);
    }
  }, 60_000);

  it("serves TLS with the given certificate; a client trusts it only with the CA", async () => {
    const tlsPort = await freePort();
    const [cert, key] = [path.join(root, "cert.pem"), path.join(root, "key.pem")];
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
    fs.mkdirSync(path.join(root, "tls-data"));
    const name = "berth-test-tls-registry";
    try {
      const info = await rt.registries.ensure({ name, address: "127.0.0.1", port: tlsPort, storage: path.join(root, "tls-data"), tls: { certificate: cert, key } });
      expect(info.url).toBe(`https://127.0.0.1:${tlsPort}`);
      const target = `127.0.0.1:${tlsPort}/app:1`;
      await expect(rt.images.push(`${endpoint}/app:1`, target)).rejects.toThrow(`registry 127.0.0.1:${tlsPort}: its TLS certificate is not trusted`);
      expect(await rt.images.push(`${endpoint}/app:1`, target, { ca: cert })).toMatch(new RegExp(`^127.0.0.1:${tlsPort}/app@sha256:`));
    } finally {
      await rt.registries.remove(name);
    }
  }, 60_000);

  it("keeps the data in the volume when the registry goes", async () => {
    await registry.delete({ urn: "u", id: "berth-test-registry", inputs: registryInputs, outputs: {} });
    expect(await rt.registries.inspect("berth-test-registry")).toBeUndefined();
    const data = (await rt.volumes.inspect("berth-test-regdata"))!.mountpoint;
    expect(fs.readdirSync(path.join(data, "docker/registry/v2/repositories")).sort()).toEqual(["app", "repush", "resource"]);
  });
});
