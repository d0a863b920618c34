// A build step's root filesystem: an overlay of the stage's layers under a fresh upper directory, into which
// RUN executes a one-shot runc container and COPY/ADD write. Once closed, the upper directory is exactly the
// step's layer in overlay form; commitLayer turns it into an OCI layer blob.
import * as fs from "node:fs";
import * as path from "node:path";
import type { CommandResult, Host } from "../host/exec";
import { prepare, mount, unmount } from "../snapshot/overlay";
import { mergeEnv, runtimeSpec, type Bind } from "../container/spec";
import { resolveUser } from "../container/user";
import { writeJson } from "../json-file";
import { stagingPath } from "../staging";

export interface Tmpfs {
  destination: string;
  /** Bytes. */
  size?: number;
}

export interface RunProcess {
  args: string[];
  /** KEY=VALUE, the stage's env and build args. */
  env: string[];
  cwd: string;
  user?: string;
  /** Host paths mounted into the step (RUN --mount, a heredoc script). */
  binds?: Bind[];
  tmpfs?: Tmpfs[];
  /** The process's output as it comes. */
  onOutput?: (chunk: string) => void;
  /** The network namespace to run in; without one the step has loopback only. */
  netnsPath?: string;
}

export class Sandbox {
  private constructor(
    private readonly host: Host,
    readonly dir: string,
    readonly rootfs: string,
    readonly upper: string,
  ) {}

  /** Mounts the layers (top first) under a new upper directory in a fresh directory below `parent`. */
  static async open(host: Host, parent: string, lowers: string[]): Promise<Sandbox> {
    const dir = stagingPath(parent, "build");
    const dirs = { upper: path.join(dir, "upper"), work: path.join(dir, "work"), rootfs: path.join(dir, "rootfs") };
    // overlayfs needs a lower directory even for a stage from scratch.
    const empty = path.join(dir, "empty");
    // Only root may look inside: the bundle's config.json holds the step's environment (a secret's, with env=).
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.promises.mkdir(empty);
    const m = prepare(lowers.length > 0 ? lowers : [empty], dirs);
    // Plain copy-up (no metacopy, index or redirects): the upper directory must hold whole files to be a layer.
    m.options.push("index=off", "metacopy=off", "redirect_dir=off");
    const box = new Sandbox(host, dir, dirs.rootfs, dirs.upper);
    try {
      await mount(host, m);
    } catch (e) {
      await box.discard();
      throw e;
    }
    return box;
  }

  /** Runs one process to its end in a container of this root filesystem. */
  async run(p: RunProcess): Promise<CommandResult> {
    const id = `berth-build-${path.basename(this.dir).slice(-8)}`;
    const hostname = "berth-build";
    const spec = runtimeSpec({
      hostname,
      args: p.args,
      env: mergeEnv(id, hostname, p.env),
      cwd: p.cwd,
      user: await resolveUser(p.user, this.rootfs),
      binds: p.binds ?? [],
      netnsPath: p.netnsPath,
    });
    const bundle = path.join(this.dir, "bundle");
    await fs.promises.mkdir(bundle, { recursive: true });
    const tmpfs = (p.tmpfs ?? []).map((t) => ({
      destination: t.destination,
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "nodev", "mode=1777", ...(t.size === undefined ? [] : [`size=${t.size}`])],
    }));
    await writeJson(path.join(bundle, "config.json"), { ...spec, mounts: [...spec.mounts, ...tmpfs], root: { path: this.rootfs, readonly: false } });
    // A runc state root of its own: build steps stay out of `runc list` of berth's long-lived containers.
    const root = ["--root", path.join(this.dir, "runc")];
    try {
      return await this.host.tryRun("runc", [...root, "run", "--bundle", bundle, id], { onOutput: p.onOutput });
    } finally {
      await this.host.tryRun("runc", [...root, "delete", "--force", id]);
    }
  }

  /** Unmounts; the upper directory stays for commitLayer. */
  async close(): Promise<void> {
    await unmount(this.host, this.rootfs);
  }

  async discard(): Promise<void> {
    await unmount(this.host, this.rootfs).catch(() => undefined);
    await fs.promises.rm(this.dir, { recursive: true, force: true });
  }
}
