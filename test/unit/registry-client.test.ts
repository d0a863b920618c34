// The registry client against a small registry on loopback that wants a Bearer token (as Docker Hub-style token
// servers do), and one that lies about a digest.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { resolveDigest } from "../../native/registry/transfer";
import { parseRegistryRef } from "../../native/registry/reference";

const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: {}, layers: [] }));
const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
let server: http.Server;
let registry: string;
const tokenRequests: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url!, "http://x");
    if (url.pathname === "/token") {
      tokenRequests.push(url.search);
      const ok = req.headers.authorization === `Basic ${Buffer.from("bob:pw").toString("base64")}`;
      res.writeHead(ok ? 200 : 401, { "content-type": "application/json" });
      return res.end(ok ? JSON.stringify({ token: "tok" }) : "{}");
    }
    if (req.headers.authorization !== "Bearer tok") {
      res.writeHead(401, { "www-authenticate": `Bearer realm="http://${registry}/token",service="fake",scope="repository:app:pull"` });
      return res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
    }
    if (url.pathname.includes("/huge/")) {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
      return res.end(Buffer.alloc(5 << 20, 0x20));
    }
    const lie = url.pathname.includes("/liar/");
    res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json", "docker-content-digest": lie ? `sha256:${"0".repeat(64)}` : digest });
    res.end(manifest);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  registry = `127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => {
  server.close();
});

describe("registry client", () => {
  it("answers a Bearer challenge with a token fetched with the credentials", async () => {
    expect(await resolveDigest(`${registry}/app:1`, { insecure: true, auth: { username: "bob", password: "pw" } })).toBe(digest);
    expect(tokenRequests.at(-1)).toBe("?service=fake&scope=repository%3Aapp%3Apull");
  });

  it("says unauthorized when the token server refuses, and digest mismatch when the content lies", async () => {
    await expect(resolveDigest(`${registry}/app:1`, { insecure: true, auth: { username: "bob", password: "no" } })).rejects.toThrow(
      `unauthorized: the token server of ${registry} refused the credentials of user "bob"`,
    );
    await expect(resolveDigest(`${registry}/liar/app:1`, { insecure: true, auth: { username: "bob", password: "pw" } })).rejects.toThrow(/^digest mismatch: manifest liar\/app:1/);
  });

  it("refuses a manifest larger than 4 MiB rather than reading whatever the registry sends", async () => {
    await expect(resolveDigest(`${registry}/huge/app:1`, { insecure: true, auth: { username: "bob", password: "pw" } })).rejects.toThrow(
      `manifest huge/app:1 from ${registry}: the registry's answer is larger than 4194304 bytes`,
    );
  });

  it("takes credentials from the Docker CLI's credential helpers: credHelpers first, then credsStore, then auths", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-creds-"));
    const saved = { PATH: process.env.PATH, DOCKER_CONFIG: process.env.DOCKER_CONFIG };
    // Helpers as Docker runs them: `docker-credential-NAME get`, the server on stdin, JSON on stdout.
    const helper = (name: string, answer: string) =>
      fs.writeFileSync(path.join(dir, `docker-credential-${name}`), `#!/usr/bin/env node
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  if (process.argv[2] !== "get") process.exit(2);
  ${answer}
});`, { mode: 0o755 });
    helper("good", `if (s.trim() !== ${JSON.stringify(registry)}) { console.log("credentials not found in native keychain"); process.exit(1); } console.log(JSON.stringify({ ServerURL: s, Username: "bob", Secret: "pw" }));`);
    helper("empty", `console.log("credentials not found in native keychain"); process.exit(1);`);
    helper("broken", `console.error("keychain locked"); process.exit(3);`);
    helper("slow", `setTimeout(() => console.log(JSON.stringify({ ServerURL: s, Username: "bob", Secret: "pw" })), 800);`);
    const config = (c: object) => fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(c));
    process.env.PATH = `${dir}:${process.env.PATH}`;
    process.env.DOCKER_CONFIG = dir;
    try {
      const wrong = Buffer.from("bob:wrong").toString("base64");
      config({ auths: { [registry]: { auth: wrong } }, credsStore: "empty", credHelpers: { [registry]: "good" } });
      expect(await resolveDigest(`${registry}/app:1`, { insecure: true })).toBe(digest);
      config({ auths: { [registry]: { auth: wrong } }, credsStore: "good" });
      expect(await resolveDigest(`${registry}/app:1`, { insecure: true })).toBe(digest);
      // A helper without credentials for this registry: the auths entry is used.
      config({ auths: { [`http://${registry}`]: { auth: Buffer.from("bob:pw").toString("base64") } }, credsStore: "empty" });
      expect(await resolveDigest(`${registry}/app:1`, { insecure: true })).toBe(digest);
      // A helper that takes its time (a keychain prompt) does not stop this process meanwhile.
      config({ credsStore: "slow" });
      let ticks = 0;
      const timer = setInterval(() => ticks++, 50);
      try {
        expect(await resolveDigest(`${registry}/app:1`, { insecure: true })).toBe(digest);
      } finally {
        clearInterval(timer);
      }
      expect(ticks).toBeGreaterThanOrEqual(8);
      config({ credHelpers: { [registry]: "broken" } });
      await expect(resolveDigest(`${registry}/app:1`, { insecure: true })).rejects.toThrow(`credential helper docker-credential-broken failed for ${registry}: keychain locked`);
      config({ credsStore: "absent" });
      await expect(resolveDigest(`${registry}/app:1`, { insecure: true })).rejects.toThrow(/credential helper docker-credential-absent for .* cannot run \(ENOENT\)/);
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.DOCKER_CONFIG === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = saved.DOCKER_CONFIG;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses references without a registry", () => {
    expect(() => parseRegistryRef("app:1")).toThrow('image reference "app:1" names no registry');
    expect(parseRegistryRef("localhost:5000/a/b")).toEqual({ registry: "localhost:5000", repository: "a/b", tag: "latest", digest: undefined });
  });
});
