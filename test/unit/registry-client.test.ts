// The registry client against a small registry on loopback that wants a Bearer token (as Docker Hub-style token
// servers do), and one that lies about a digest.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as http from "node:http";
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

  it("refuses references without a registry", () => {
    expect(() => parseRegistryRef("app:1")).toThrow('image reference "app:1" names no registry');
    expect(parseRegistryRef("localhost:5000/a/b")).toEqual({ registry: "localhost:5000", repository: "a/b", tag: "latest", digest: undefined });
  });
});
