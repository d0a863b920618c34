// Where a stack's checkpoint lives on disk (Pulumi's file backend layout), written atomically, and the lock that
// keeps two updates of one stack apart.
import { randomUUID } from "node:crypto";
import { freeze } from "immer";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CheckpointFile, DeploymentV3, ResourceState } from "./checkpoint";
import { emptyDeployment } from "./checkpoint";
import { sortResources } from "./order";
import { type Crypter, openSecrets, sealSecrets } from "./secrets";
import { containsSecret } from "../values";
import { sweepTemps, tempBeside } from "../../native/staging";
import { ownerAlive, self } from "../../native/lock";

export interface StackRef {
  /** Directory holding `.pulumi/` (Pulumi's file backend root). */
  backendDir: string;
  project: string;
  stack: string;
  /** Where the stack's passphrase salt lives (Pulumi.<stack>.yaml); needed only when there are secrets. */
  secrets?: SecretsSource;
}

export interface SecretsSource {
  readonly encryptionSalt: string | undefined;
  crypter(checkpointSalt?: string): Crypter;
}

const ORG = "organization";
/** Where serialize() puts the resources' texts: the value of checkpoint.latest.resources. */
const RESOURCES_HERE = "\u0000berth:resources";
/** checkpoint.latest.resources[i] is four levels deep. */
const RESOURCE_INDENT = " ".repeat(16);
/** The marker as laid out: only latest's own keys are at this indent (no string holds a raw newline), so a state's
 * string equal to the marker can never be taken for it. */
const RESOURCES_KEY = `\n${" ".repeat(12)}"resources": `;

export class StackStore {
  readonly file: string;
  private readonly lockDir: string;

  constructor(readonly ref: StackRef) {
    const root = path.join(ref.backendDir, ".pulumi");
    this.file = path.join(root, "stacks", ref.project, `${ref.stack}.json`);
    this.lockDir = path.join(root, "locks", ORG, ref.project, ref.stack);
  }

  get qualifiedName(): string {
    return `${ORG}/${this.ref.project}/${this.ref.stack}`;
  }

  load(): DeploymentV3 {
    let text: string;
    try {
      text = fs.readFileSync(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return freeze(emptyDeployment(), true);
      throw err;
    }
    const parsed = JSON.parse(text) as CheckpointFile;
    if (parsed.version !== 3) throw new Error(`${this.file}: checkpoint version ${parsed.version} is not supported (3 is)`);
    const latest = parsed.checkpoint.latest;
    if (!latest) return freeze(emptyDeployment(), true);
    const opened = openSecrets(latest, () => this.crypter(saltOf(latest))) as DeploymentV3;
    // Pulumi leaves out empty property maps (and an empty resource list).
    const complete = (r: ResourceState): ResourceState => ({ ...r, inputs: r.inputs ?? {}, outputs: r.outputs ?? {} });
    // Frozen as every state the engine makes: serialize() caches a resource's text by its object, so an edit in place
    // must throw rather than be written from the text cached before it.
    return freeze(
      {
        ...opened,
        resources: (opened.resources ?? []).map(complete),
        pending_operations: opened.pending_operations?.map((op) => ({ ...op, resource: complete(op.resource) })),
      },
      true,
    );
  }

  private crypter(checkpointSalt?: string): Crypter {
    if (!this.ref.secrets) throw new Error(`${this.file} holds secrets, but this stack has no secrets provider`);
    return this.ref.secrets.crypter(checkpointSalt);
  }

  /** Secrets sealed with the stack's passphrase, and the salt recorded as Pulumi records it. */
  private sealed(deployment: DeploymentV3): DeploymentV3 {
    const sealed = containsSecret(deployment) ? (sealSecrets(deployment, this.crypter(saltOf(deployment))) as DeploymentV3) : deployment;
    const salt = this.ref.secrets?.encryptionSalt ?? saltOf(deployment);
    return salt ? { ...sealed, secrets_providers: { type: "passphrase", state: { salt } } } : sealed;
  }

  /**
   * Each resource's text in the file as last written, by its state object (the engine's states are frozen: a
   * change is a new object), under the checkpoint salt it was sealed with. An update writes the checkpoint after
   * every few steps: sealing and serializing all N resources each time made a run of N resources O(N²).
   */
  private texts = new WeakMap<ResourceState, string>();
  private textsSalt?: string;

  private resourceText(res: ResourceState, salt: string | undefined): string {
    let text = this.texts.get(res);
    if (text === undefined) {
      const sealed = containsSecret(res) ? sealSecrets(res, this.crypter(salt)) : res;
      // As JSON.stringify(file, null, 4) lays out an element of checkpoint.latest.resources (no string holds a raw newline).
      text = RESOURCE_INDENT + JSON.stringify(sealed, null, 4).replace(/\n/g, `\n${RESOURCE_INDENT}`);
      this.texts.set(res, text);
    }
    return text;
  }

  /** The checkpoint file's text (JSON.stringify(file, null, 4)), in a directory made ready for it. */
  private serialize(deployment: DeploymentV3): string {
    const salt = saltOf(deployment);
    if (salt !== this.textsSalt) [this.texts, this.textsSalt] = [new WeakMap(), salt];
    const resources = sortResources(deployment.resources);
    const file: CheckpointFile = {
      version: 3,
      checkpoint: { stack: this.qualifiedName, latest: this.sealed({ ...deployment, resources: RESOURCES_HERE as unknown as ResourceState[] }) },
    };
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.ensureProjectMode();
    const list = resources.length === 0 ? "[]" : `[\n${resources.map((r) => this.resourceText(r, salt)).join(",\n")}\n${" ".repeat(12)}]`;
    const text = JSON.stringify(file, null, 4);
    const marker = RESOURCES_KEY + JSON.stringify(RESOURCES_HERE);
    const at = text.indexOf(marker) + RESOURCES_KEY.length;
    return text.slice(0, at) + list + text.slice(at + marker.length - RESOURCES_KEY.length);
  }

  /** Writes the whole checkpoint to a temp file, syncs it, then renames it over the old one. */
  save(deployment: DeploymentV3): void {
    const text = this.serialize(deployment);
    const tmp = tempBeside(this.file);
    const fd = fs.openSync(tmp, "w");
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
  }

  /** save(), with the write and sync off the main thread. One at a time: the last rename is what stays. */
  async write(deployment: DeploymentV3): Promise<void> {
    const text = this.serialize(deployment);
    const tmp = tempBeside(this.file);
    const fh = await fs.promises.open(tmp, "w");
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, this.file);
  }

  /** Pulumi's file backend keeps project-scoped stacks only when .pulumi/meta.yaml says version 1. */
  private ensureProjectMode(): void {
    const meta = path.join(this.ref.backendDir, ".pulumi", "meta.yaml");
    if (!fs.existsSync(meta)) fs.writeFileSync(meta, "version: 1\n");
  }

  /** Takes the stack's lock (Pulumi's layout: one file per holder). Throws, naming the holder, when taken. */
  lock(): () => void {
    fs.mkdirSync(this.lockDir, { recursive: true });
    const mine = path.join(this.lockDir, `${randomUUID()}.json`);
    // Pulumi's fields, and the process's start time (Pulumi ignores it): a pid the kernel gave out again is not the holder.
    const info = { pid: process.pid, start: self().start, username: os.userInfo().username, hostname: os.hostname(), timestamp: new Date().toISOString() };
    fs.writeFileSync(mine, JSON.stringify(info));
    const release = () => fs.rmSync(mine, { force: true });
    for (const other of fs.readdirSync(this.lockDir).map((f) => path.join(this.lockDir, f))) {
      if (other === mine) continue;
      const holder = readLock(other);
      if (holder && holder.hostname === os.hostname() && !(holder.start === undefined ? alive(holder.pid) : ownerAlive({ pid: holder.pid, start: holder.start }))) {
        fs.rmSync(other, { force: true }); // its process is gone: a crash left it
        continue;
      }
      release();
      const who = holder ? `process ${holder.pid} on ${holder.hostname} since ${holder.timestamp}` : "another update";
      throw new Error(`the stack ${this.qualifiedName} is locked by ${who}; wait for it to finish (lock file ${other})`);
    }
    // Checkpoints that killed updates were writing: their temp files beside them (an older berth's were
    // "STACK.json.PID.tmp"; nothing else in a stacks directory is named so: a stack's own file ends in ".json").
    sweepTemps(path.dirname(this.file), /^.+\.json\.(\d+)\.tmp$/);
    return release;
  }
}

function saltOf(d: DeploymentV3): string | undefined {
  const state = d.secrets_providers?.type === "passphrase" ? (d.secrets_providers.state as { salt?: string }) : undefined;
  return state?.salt;
}

function readLock(file: string): { pid: number; start?: number; hostname: string; timestamp: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
