// A client of the registry HTTP API v2 (OCI distribution): manifests and blobs, with Basic and Bearer-token auth
// answering the registry's WWW-Authenticate challenge. Every failure says which it is — unreachable,
// unauthorized, not found, digest mismatch — with the registry and what to do.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { INDEX_TYPES, MANIFEST_TYPES } from "../image/oci";
import { isLoopback } from "./reference";

export interface RegistryAuth {
  username: string;
  password: string;
}

export interface RegistryOptions {
  /** Credentials; without them the Docker CLI's (config.json: credHelpers, credsStore, auths) are used. */
  auth?: RegistryAuth;
  /**
   * Without `auth`: where credentials come from instead of this host's docker login, asked only when the registry
   * wants them (a remote build asks its caller, as `docker -H ssh://` builds with the client's login).
   */
  askAuth?: () => Promise<RegistryAuth | undefined>;
  /** true: plain HTTP. Default: HTTPS, except loopback registries, which may also answer plain HTTP. */
  insecure?: boolean;
  /** PEM file of a CA to trust (a registry with a self-signed certificate). */
  ca?: string;
}

/** The largest manifest, token or error answer read whole: distribution's own bound on a manifest (4 MiB). */
const MAX_ANSWER = 4 << 20;

export class RegistryError extends Error {
  constructor(
    readonly kind: "unreachable" | "unauthorized" | "not found" | "digest mismatch" | "refused",
    message: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
}

/** A whole answer, refused beyond `limit` bytes (a registry's answers are hostile input: it could send forever). */
export async function readAll(body: Readable, limit = MAX_ANSWER): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of body) {
    size += (c as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new RegistryError("refused", `the registry's answer is larger than ${limit} bytes`);
    }
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

/** The registry's own error text ({"errors":[{"code","message"}]}), when it gave one. */
async function errorText(res: Response): Promise<string> {
  const text = (await readAll(res.body)).toString();
  try {
    const errors = (JSON.parse(text) as { errors?: Array<{ code: string; message: string }> }).errors ?? [];
    if (errors.length > 0) return errors.map((e) => `${e.code}: ${e.message}`).join("; ");
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200) || `HTTP ${res.status}`;
}

/** The Docker CLI's config file: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export const dockerConfigFile = (): string => path.join(process.env.DOCKER_CONFIG ?? path.join(os.homedir(), ".docker"), "config.json");

/** `PROGRAM get` fed `input`, as a credential helper is run; never rejects (a failure to run is `error`). */
function runHelper(program: string, input: string): Promise<{ status: number | null; stdout: string; stderr: string; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const child = spawn(program, ["get"], { stdio: ["pipe", "pipe", "pipe"], timeout: 30_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b));
    child.stderr.on("data", (b: Buffer) => (stderr += b));
    child.stdin.on("error", () => {}); // a helper that exits without reading says why on stderr
    child.stdin.end(input);
    child.on("error", (error) => resolve({ status: null, stdout, stderr, error }));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * Asks a credential helper (`docker-credential-NAME get`, the server on stdin) for a registry's credentials, as
 * the Docker CLI does; undefined when it has none. Asynchronous: a helper waiting on a keychain prompt does not
 * stop the other operations of the run.
 */
async function credentialHelper(helper: string, registry: string): Promise<RegistryAuth | undefined> {
  const program = `docker-credential-${helper}`;
  const r = await runHelper(program, registry);
  if (r.error) throw new RegistryError("unauthorized", `credential helper ${program} for ${registry} cannot run (${r.error.code ?? r.error.message}): install it on PATH or change ${dockerConfigFile()}`);
  const out = r.stdout.trim();
  if (r.status !== 0) {
    if (/credentials not found/i.test(out + r.stderr)) return undefined;
    throw new RegistryError("unauthorized", `credential helper ${program} failed for ${registry}: ${(out || r.stderr).trim() || `exit ${r.status}`}`);
  }
  try {
    const { Username, Secret } = JSON.parse(out) as { Username?: string; Secret?: string };
    return Username && Secret ? { username: Username, password: Secret } : undefined;
  } catch {
    throw new RegistryError("unauthorized", `credential helper ${program} answered for ${registry} with something that is not JSON`);
  }
}

/**
 * Credentials for a registry from the Docker CLI's config, in its order: the registry's `credHelpers` entry, the
 * `credsStore` helper, then the `auths` entry.
 */
export async function dockerConfigAuth(registry: string, file = dockerConfigFile()): Promise<RegistryAuth | undefined> {
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }>; credsStore?: string; credHelpers?: Record<string, string> };
  try {
    config = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
  const host = (k: string) => k.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  const helper = Object.entries(config.credHelpers ?? {}).find(([k]) => host(k) === registry)?.[1] ?? config.credsStore;
  if (helper) {
    const found = await credentialHelper(helper, registry);
    if (found) return found;
  }
  const entry = Object.entries(config.auths ?? {}).find(([k]) => host(k) === registry)?.[1];
  if (!entry) return undefined;
  if (entry.auth) {
    const plain = Buffer.from(entry.auth, "base64").toString();
    const colon = plain.indexOf(":");
    return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }
  return entry.username && entry.password ? { username: entry.username, password: entry.password } : undefined;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^(\w+)\s*(.*)$/.exec(header.trim());
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2].matchAll(/(\w+)="([^"]*)"/g)) params[p[1]] = p[2];
  return { scheme: m[1].toLowerCase(), params };
}

export class RegistryClient {
  private scheme?: Promise<"http" | "https">;
  private authorization?: string;
  /** The credentials, looked up on the registry's first challenge: most registries a pull meets want none. */
  private auth?: Promise<RegistryAuth | undefined>;
  private readonly ca?: Buffer;

  constructor(
    readonly registry: string,
    private readonly opts: RegistryOptions = {},
  ) {
    this.ca = opts.ca === undefined ? undefined : fs.readFileSync(opts.ca);
  }

  private async send(method: string, url: URL, headers: Record<string, string>, body?: Buffer | (() => Readable)): Promise<Response> {
    const lib = url.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, { method, headers, ca: this.ca, timeout: 60_000 }, (res) =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
      );
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error("no answer within 60 s")));
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else body().on("error", (e) => req.destroy(e)).pipe(req);
    });
  }

  /**
   * The scheme this registry speaks: fixed by `insecure`, else HTTPS, with plain HTTP allowed on loopback. Found
   * once, however many requests start at once.
   */
  private async base(): Promise<string> {
    this.scheme ??= this.findScheme();
    return `${await this.scheme}://${this.registry}`;
  }

  private async findScheme(): Promise<"http" | "https"> {
    if (this.opts.insecure !== undefined) return this.opts.insecure ? "http" : "https";
    if (!isLoopback(this.registry)) return "https";
    const probe = await this.send("GET", new URL(`https://${this.registry}/v2/`), {}).then(
      (r) => (r.body.resume(), true),
      // Only a server that does not speak TLS at all is taken to be plain HTTP; a certificate problem is not.
      (e: NodeJS.ErrnoException) => !/EPROTO|wrong version number|ECONNRESET|socket hang up/.test(`${e.code} ${e.message}`),
    );
    return probe ? "https" : "http";
  }

  /** One request with auth: on a 401 the challenge is answered (Basic, or a Bearer token) and the request repeated. */
  async request(method: string, pathAndQuery: string, headers: Record<string, string> = {}, body?: Buffer | (() => Readable)): Promise<Response> {
    const url = new URL(pathAndQuery, await this.base());
    const attempt = async (): Promise<Response> => {
      try {
        return await this.send(method, url, { ...headers, ...(this.authorization ? { authorization: this.authorization } : {}) }, body);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (/CERT|certificate/i.test(`${err.code} ${err.message}`)) {
          throw new RegistryError("unreachable", `registry ${this.registry}: its TLS certificate is not trusted (${err.message}); give the CA that signed it`);
        }
        const hint = /EPROTO|wrong version|ECONNRESET/.test(`${err.code} ${err.message}`) && url.protocol === "https:"
          ? " (it may speak plain HTTP: mark the registry insecure)"
          : err.code === "ECONNREFUSED" ? " (is the registry running on that address and port?)" : "";
        throw new RegistryError("unreachable", `registry ${this.registry} unreachable: ${err.code ?? ""} ${err.message}${hint}`.replace(/  +/g, " "));
      }
    };
    let res = await attempt();
    if (res.status !== 401) return res;
    const challenge = parseChallenge(res.headers["www-authenticate"] as string | undefined);
    res.body.resume();
    const o = this.opts;
    const auth = await (this.auth ??= o.auth ? Promise.resolve(o.auth) : o.askAuth ? o.askAuth() : dockerConfigAuth(this.registry));
    if (!auth) {
      throw new RegistryError("unauthorized", `unauthorized: registry ${this.registry} needs credentials — give a username and password, or log in with docker so ~/.docker/config.json has them`);
    }
    const basic = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
    if (challenge?.scheme === "bearer") this.authorization = `Bearer ${await this.token(challenge.params, basic, auth.username)}`;
    else this.authorization = basic;
    res = await attempt();
    if (res.status === 401) {
      res.body.resume();
      throw new RegistryError("unauthorized", `unauthorized: registry ${this.registry} refused the credentials of user "${auth.username}"`);
    }
    return res;
  }

  private async token(params: Record<string, string>, basic: string, user: string): Promise<string> {
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set("service", params.service);
    if (params.scope) realm.searchParams.set("scope", params.scope);
    const res = await this.send("GET", realm, { authorization: basic }).catch((e: Error) => {
      throw new RegistryError("unreachable", `token server ${realm.origin} of registry ${this.registry} unreachable: ${e.message}`);
    });
    if (res.status === 401 || res.status === 403) {
      res.body.resume();
      throw new RegistryError("unauthorized", `unauthorized: the token server of ${this.registry} refused the credentials of user "${user}"`);
    }
    if (res.status !== 200) throw new RegistryError("refused", `token server of ${this.registry} answered ${await errorText(res)}`);
    const body = JSON.parse((await readAll(res.body)).toString()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError("refused", `token server of ${this.registry} gave no token`);
    return token;
  }

  /** Fails with a message naming what was asked for, unless the status is one of `ok`. */
  async expect(res: Response, ok: number[], what: string): Promise<Response> {
    if (ok.includes(res.status)) return res;
    const text = await errorText(res);
    if (res.status === 404) throw new RegistryError("not found", `not found: ${what} on registry ${this.registry} (${text})`);
    if (res.status === 401 || res.status === 403) throw new RegistryError("unauthorized", `unauthorized: ${what} on registry ${this.registry} (${text})`);
    throw new RegistryError("refused", `registry ${this.registry} refused ${what}: ${text}`);
  }
}

export const MANIFEST_ACCEPT = [...MANIFEST_TYPES, ...INDEX_TYPES].join(", ");
