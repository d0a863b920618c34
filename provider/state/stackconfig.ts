// Pulumi.<stack>.yaml: the stack's config (plain and `secure:` values) and its passphrase salt, read and written
// as the Pulumi CLI does, so `pulumi config` and `berth config` edit one file.
import * as fs from "node:fs";
import * as yaml from "js-yaml";
import type { Crypter } from "./secrets";
import { newPassphraseState, passphraseCrypter, passphraseFromEnv } from "./secrets";

interface StackFile {
  secretsprovider?: string;
  encryptionsalt?: string;
  config?: Record<string, unknown>;
  [other: string]: unknown;
}

export interface StackConfig {
  /** Fully qualified key ("project:key", "berth:key") → value as the program receives it. */
  values: Record<string, string>;
  /** Keys whose values were stored `secure:`. */
  secretKeys: string[];
}

export class StackSettings {
  private cached?: Crypter;
  /** The file as last read or written: a run saves the checkpoint (which asks for the salt) after every step. */
  private doc?: StackFile;

  constructor(
    readonly file: string,
    private readonly project: string,
    /** For a command that only reads the stack (a day-2 command looking a name up): the file is never written. */
    private readonly readOnly = false,
  ) {}

  private read(): StackFile {
    return (this.doc ??= this.parse());
  }

  private parse(): StackFile {
    if (!fs.existsSync(this.file)) return {};
    const doc = yaml.load(fs.readFileSync(this.file, "utf8"));
    if (doc === null || doc === undefined) return {};
    if (typeof doc !== "object" || Array.isArray(doc)) throw new Error(`${this.file}: expected a YAML mapping`);
    return doc as StackFile;
  }

  private write(doc: StackFile): void {
    if (this.readOnly) throw new Error(`${this.file} is only read here`);
    fs.writeFileSync(this.file, yaml.dump(doc, { lineWidth: -1 }));
    this.doc = doc;
  }

  /** "port" → "quickstart:port", as Pulumi qualifies keys without a namespace. */
  qualify(key: string): string {
    return key.includes(":") ? key : `${this.project}:${key}`;
  }

  /** The salt state, when the stack has one. */
  get encryptionSalt(): string | undefined {
    return this.read().encryptionsalt;
  }

  /**
   * The crypter for this stack's secrets. The salt comes from the stack file, else from the checkpoint (as Pulumi
   * falls back to it), else a new one is made and written to the stack file.
   */
  crypter(checkpointSalt?: string): Crypter {
    if (this.cached) return this.cached;
    const doc = this.read();
    if (doc.secretsprovider && doc.secretsprovider !== "passphrase") {
      throw new Error(`${this.file}: secrets provider "${doc.secretsprovider}" is not supported by berth; only the passphrase provider is`);
    }
    const salt = doc.encryptionsalt ?? checkpointSalt;
    const phrase = passphraseFromEnv();
    if (salt) {
      this.cached = passphraseCrypter(phrase, salt);
      if (!doc.encryptionsalt && !this.readOnly) this.write({ encryptionsalt: salt, ...doc });
    } else {
      const made = newPassphraseState(phrase);
      this.write({ encryptionsalt: made.state, ...doc });
      this.cached = made.crypter;
    }
    return this.cached;
  }

  config(): StackConfig {
    const entries = Object.entries(this.read().config ?? {});
    const values: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [key, raw] of entries) {
      const name = this.qualify(key);
      if (isSecure(raw)) {
        values[name] = this.crypter().decrypt(raw.secure);
        secretKeys.push(name);
      } else {
        values[name] = typeof raw === "string" ? raw : JSON.stringify(raw);
      }
    }
    return { values, secretKeys };
  }

  /** `config set`: a secret is stored `secure: <ciphertext>`. */
  set(key: string, value: string, secret: boolean): void {
    const stored = secret ? { secure: this.crypter().encrypt(value) } : value;
    const doc = this.read();
    this.write({ ...doc, config: { ...(doc.config ?? {}), [this.qualify(key)]: stored } });
  }

  /** `config rm`: false when the key was not set. */
  remove(key: string): boolean {
    const doc = this.read();
    const name = this.qualify(key);
    const found = Object.keys(doc.config ?? {}).find((k) => this.qualify(k) === name);
    if (found === undefined) return false;
    const { [found]: _gone, ...rest } = doc.config!;
    this.write({ ...doc, config: rest });
    return true;
  }

  /** Every key as stored ("project:key"), whether secret, and its value (secrets only when asked, decrypted). */
  entries(reveal: boolean): Array<{ key: string; value?: string; secret: boolean }> {
    return Object.entries(this.read().config ?? {}).map(([key, raw]) => {
      const secret = isSecure(raw);
      const value = secret ? (reveal ? this.crypter().decrypt(raw.secure) : undefined) : typeof raw === "string" ? raw : JSON.stringify(raw);
      return { key: this.qualify(key), value, secret };
    });
  }
}

function isSecure(value: unknown): value is { secure: string } {
  return typeof value === "object" && value !== null && typeof (value as { secure?: unknown }).secure === "string";
}
