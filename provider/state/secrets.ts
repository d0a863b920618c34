// Pulumi's passphrase secrets provider, byte for byte: a key derived from PULUMI_CONFIG_PASSPHRASE with PBKDF2
// (SHA-256, 1,000,000 rounds) and the stack's salt, values sealed with AES-256-GCM as "v1:<nonce>:<ciphertext>".
// The salt state "v1:<salt>:<sealed 'pulumi'>" sits in Pulumi.<stack>.yaml (`encryptionsalt`) and in the
// checkpoint's secrets_providers, so either CLI opens the other's secrets.
import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { SIG, SECRET_SIG, mapSecrets, revealAll } from "../values";

export interface Crypter {
  encrypt(plaintext: string): string;
  decrypt(ciphertext: string): string;
  /** A keyed digest: equal values compare equal, and without the passphrase it tells nothing of the value. */
  fingerprint(plaintext: string): string;
}

const ROUNDS = 1_000_000;
const CHECK = "pulumi";
const keys = new Map<string, Buffer>();

/** PBKDF2 at Pulumi's cost takes most of a second: derive each (passphrase, salt) key once per process. */
function deriveKey(phrase: string, salt: Buffer): Buffer {
  const id = `${salt.toString("base64")}\n${phrase}`;
  let key = keys.get(id);
  if (!key) keys.set(id, (key = pbkdf2Sync(phrase, salt, ROUNDS, 32, "sha256")));
  return key;
}

function symmetricCrypter(key: Buffer): Crypter {
  return {
    encrypt(plaintext) {
      const nonce = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, nonce);
      const sealed = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
      return `v1:${nonce.toString("base64")}:${sealed.toString("base64")}`;
    },
    fingerprint(plaintext) {
      return createHmac("sha256", key).update(plaintext).digest("hex").slice(0, 16);
    },
    decrypt(ciphertext) {
      const [version, nonce, sealed, ...rest] = ciphertext.split(":");
      if (version !== "v1" || nonce === undefined || sealed === undefined || rest.length > 0) {
        throw new Error(`a secret is not in Pulumi's "v1:<nonce>:<ciphertext>" form`);
      }
      const bytes = Buffer.from(sealed, "base64");
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(nonce, "base64"));
      decipher.setAuthTag(bytes.subarray(bytes.length - 16));
      return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString("utf8");
    },
  };
}

/** A new salt state for a passphrase (what `pulumi stack init` writes as `encryptionsalt`). */
export function newPassphraseState(phrase: string): { state: string; crypter: Crypter } {
  const salt = randomBytes(8);
  const crypter = symmetricCrypter(deriveKey(phrase, salt));
  return { state: `v1:${salt.toString("base64")}:${crypter.encrypt(CHECK)}`, crypter };
}

/** The crypter for a salt state; refuses a passphrase that did not make it. */
export function passphraseCrypter(phrase: string, state: string): Crypter {
  const [version, salt] = state.split(":");
  if (version !== "v1" || !salt) throw new Error(`the stack's encryptionsalt "${state}" is not in Pulumi's v1 form`);
  const crypter = symmetricCrypter(deriveKey(phrase, Buffer.from(salt, "base64")));
  let check: string | undefined;
  try {
    check = crypter.decrypt(state.split(":").slice(2).join(":"));
  } catch {
    check = undefined;
  }
  if (check !== CHECK) throw new Error("incorrect passphrase: PULUMI_CONFIG_PASSPHRASE does not open this stack's secrets");
  return crypter;
}

/** The passphrase from the environment, read as the Pulumi CLI reads it. */
export function passphraseFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PULUMI_CONFIG_PASSPHRASE !== undefined) return env.PULUMI_CONFIG_PASSPHRASE;
  if (env.PULUMI_CONFIG_PASSPHRASE_FILE) {
    return fs.readFileSync(path.resolve(env.PULUMI_CONFIG_PASSPHRASE_FILE), "utf8").trim();
  }
  throw new Error("passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE environment variables");
}

/** A secret as the checkpoint stores it: the JSON of its value, sealed (nested secrets are covered by the outer one). */
export function sealSecrets(value: unknown, crypter: Crypter): unknown {
  return mapSecrets(value, (secret) => ({ [SIG]: SECRET_SIG, ciphertext: crypter.encrypt(JSON.stringify(revealAll(secret.value))) }));
}

/** The inverse of sealSecrets: `{sig, ciphertext}` (or Pulumi's `{sig, plaintext}`) back to `{sig, value}`. */
export function openSecrets(value: unknown, crypter: () => Crypter): unknown {
  if (isSealed(value)) {
    const v = value as { ciphertext?: string; plaintext?: string };
    const json = v.ciphertext !== undefined ? crypter().decrypt(v.ciphertext) : v.plaintext!;
    return { [SIG]: SECRET_SIG, value: openSecrets(JSON.parse(json), crypter) };
  }
  if (Array.isArray(value)) return value.map((v) => openSecrets(v, crypter));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, openSecrets(v, crypter)]));
  }
  return value;
}

function isSealed(value: unknown): boolean {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[SIG] === SECRET_SIG && !("value" in value);
}
