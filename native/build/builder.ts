// The image builder: runs a parsed Dockerfile stage by stage with Docker's semantics. Metadata instructions only
// change the config; RUN, COPY, ADD (and WORKDIR creating its directory) make a layer, each looked up first in a
// cache keyed by the parent state, the instruction as expanded, and the content it reads.
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import type { Host } from "../host/exec";
import type { BuildImageRequest, ImageInfo } from "../runtime";
import { canonicalJson } from "../canonical-json";
import { ContentStore, type StoredImage } from "../image/store";
import { HOST_ARCH, type Descriptor, type Healthcheck, type OciImageConfig } from "../image/oci";
import { commitLayer } from "../image/pack";
import { unpackLayer } from "../image/unpack";
import { resolveUser } from "../container/user";
import { DockerfileSyntaxError, chompHeredoc, parseDockerfile, parseHeredoc, parseInstruction, type Instruction } from "./dockerfile";
import { expandHeredoc, expandWord, expandWords } from "./words";
import { DockerIgnore, describeFiles, fileDigest, listContext, globRegex, PatternMatcher, readDockerfile, sha256Hex, type ContextFile } from "./context";
import { ensureDir, placeItems, walkTree, type CopyItem } from "./copy";
import { resolveInRoot } from "../confine";
import { Sandbox, type Tmpfs } from "./sandbox";
import { openTar, tarKind } from "./archive";
import { Progress, type Vertex } from "./progress";
import { CacheMounts, missingMountPoints, parseMount, removeMountPoints, type CacheMount, type RunMount } from "./mounts";
import type { BuildNetwork, StepNetworks } from "./network";
import type { Bind } from "../container/spec";
import { isDigest } from "../paths";
import { stagingPath } from "../staging";

export interface BuildRequest {
  /** The build context directory. */
  context: string;
  /** Path of the Dockerfile, relative to the context unless absolute (default "Dockerfile"). */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  /** The stage to build (default the last). */
  target?: string;
  /** Run every step, ignoring (but refreshing) the cache. */
  noCache?: boolean;
  /** Build secrets by id, for RUN --mount=type=secret: never in a layer, the cache key or the image. */
  secrets?: Record<string, string>;
  /** Credentials for a pulled image's registry, asked when it wants some (BuildImageRequest.registryAuth). */
  registryAuth?: BuildImageRequest["registryAuth"];
  /** Refs to store the result under. */
  tags: string[];
  /** Progress lines in BuildKit's plain format ("#3 [2/5] RUN make", the step's output, "#3 DONE 1.2s"). */
  log?: (line: string) => void;
}

export interface BuildResult {
  info: ImageInfo;
  /** Layer-making steps that ran, and those the cache answered ("Dockerfile:LINE INSTRUCTION"). */
  ran: string[];
  cached: string[];
}

/** Finds a base image the store lacks (from a registry, asking `registryAuth` for credentials); undefined when nothing has it. */
export type BaseResolver = (ref: string, registryAuth?: BuildRequest["registryAuth"]) => Promise<StoredImage | undefined>;

/** A layer of a state: its diff id, and its blob. */
interface LayerRef {
  diffId: string;
  desc: Descriptor;
}

interface State {
  config: OciImageConfig;
  layers: LayerRef[];
}

/** An image's state; its config's diff ids name its layers. */
const stateOf = (img: StoredImage): State => ({ config: img.config, layers: img.manifest.layers.map((d, i) => ({ diffId: img.config.rootfs.diff_ids[i], desc: d })) });

interface Stage {
  name?: string;
  index: number;
  state: State;
  /** Build args declared in this stage, with their values (undefined: declared, no value). */
  args: Map<string, string | undefined>;
  /** Whether CMD was set in this stage (ENTRYPOINT resets an inherited CMD). */
  cmdSet: boolean;
  /** Progress labels: "[builder 2/5]" (the stage's name only when the Dockerfile has several). */
  label: string;
  steps: number;
  done: number;
}

interface CacheEntry {
  desc: Descriptor;
  diffId: string;
}

const DEFAULT_SHELL = ["/bin/sh", "-c"];
const LAYER_STEPS = new Set(["RUN", "COPY", "ADD", "WORKDIR"]);

const emptyConfig = (): OciImageConfig => ({
  architecture: HOST_ARCH,
  os: "linux",
  config: {},
  rootfs: { type: "layers", diff_ids: [] },
  history: [],
});

function envMap(env: string[] = []): Map<string, string> {
  return new Map(env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
}

function setEnv(env: string[] = [], key: string, value: string): string[] {
  return [...env.filter((kv) => kv.slice(0, kv.indexOf("=")) !== key), `${key}=${value}`];
}

const DURATION = /^(\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$/;
const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

function durationNs(flag: string, v: string): number {
  if (!DURATION.test(v)) throw new Error(`--${flag}=${v} is not a duration such as 30s or 1m30s`);
  return [...v.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)].reduce((n, m) => n + Number(m[1]) * UNIT_NS[m[2]], 0);
}

const isUrl = (s: string): boolean => /^https?:\/\//.test(s);

/** BuildKit's automatic platform ARGs: in scope for FROM, and in a stage once declared (`ARG TARGETARCH`). */
const PLATFORM_ARGS: Record<string, string> = {
  TARGETPLATFORM: `linux/${HOST_ARCH}`, TARGETOS: "linux", TARGETARCH: HOST_ARCH, TARGETVARIANT: "",
  BUILDPLATFORM: `linux/${HOST_ARCH}`, BUILDOS: "linux", BUILDARCH: HOST_ARCH, BUILDVARIANT: "",
};

export interface BuilderOptions {
  /** Finds a base image the store lacks. */
  resolveBase?: BaseResolver;
  /** The network of RUN --network=default; without it every RUN has loopback only. */
  networks?: StepNetworks;
}

export class Builder {
  private readonly caches: CacheMounts;

  constructor(
    private readonly host: Host,
    private readonly store: ContentStore,
    private readonly opts: BuilderOptions = {},
  ) {
    this.caches = new CacheMounts(cacheMountDir(store.paths.root), store.paths.ingest);
  }

  async build(req: BuildRequest): Promise<BuildResult> {
    return new Build(this.host, this.store, { resolveBase: async () => undefined, ...this.opts, caches: this.caches }, req).run();
  }
}

/** Where a berth root keeps RUN --mount=type=cache directories. */
export const cacheMountDir = (root: string): string => path.join(root, "build-cache");

/** One build: its Dockerfile, context, stages so far, and what ran. */
class Build {
  private readonly file: string;
  private escape = "\\";
  private readonly stages: Stage[] = [];
  private readonly globalArgs = new Map<string, string | undefined>();
  private readonly ran: string[] = [];
  private readonly cached: string[] = [];
  private context?: Promise<ContextFile[]>;
  private readonly progress: Progress;
  private net?: Promise<BuildNetwork>;
  private stageCount = 1;

  constructor(
    private readonly host: Host,
    private readonly store: ContentStore,
    private readonly opts: Required<Pick<BuilderOptions, "resolveBase">> & BuilderOptions & { caches: CacheMounts },
    private readonly req: BuildRequest,
  ) {
    this.file = path.resolve(req.context, req.dockerfile ?? "Dockerfile");
    this.progress = new Progress(req.log);
  }

  async run(): Promise<BuildResult> {
    const { text } = await readDockerfile(this.req.context, this.req.dockerfile);
    const { escape, instructions } = parseDockerfile(text, this.label());
    this.escape = escape;
    const groups = this.splitStages(instructions);
    const targetIndex = this.targetIndex(groups);
    this.stageCount = targetIndex + 1;
    // What the build makes stays leased until the image is named (no GC meanwhile takes a finished step's layer).
    return this.store.leased(async () => {
      try {
        for (const group of groups.slice(0, targetIndex + 1)) await this.runStage(group);
        const final = this.stages[targetIndex].state;
        const [first, ...more] = this.req.tags;
        const v = this.progress.vertex("exporting to image");
        const info = await this.store.commit(first, final.config, final.layers.map((l) => l.desc));
        for (const ref of more) await this.store.tag(first, ref);
        v.note(`writing image ${info.id} done`);
        for (const ref of this.req.tags) v.note(`naming to ${ref} done`);
        v.done();
        return { info, ran: this.ran, cached: this.cached };
      } finally {
        if (this.net) await (await this.net.catch(() => undefined))?.release();
      }
    });
  }

  private label(): string {
    const rel = path.relative(this.req.context, this.file);
    return rel.startsWith("..") ? this.file : rel;
  }

  private fail(ins: Instruction, message: string): Error {
    return new Error(`${this.label()}:${ins.line}: ${ins.name} ${message}`);
  }

  /** Instructions grouped per FROM; ARGs before the first FROM are global. */
  private splitStages(instructions: Instruction[]): Instruction[][] {
    const groups: Instruction[][] = [];
    for (const ins of instructions) {
      if (ins.name === "FROM") groups.push([ins]);
      else if (groups.length > 0) groups[groups.length - 1].push(ins);
      else if (ins.name === "ARG") {
        for (const [k, v] of this.argWords(ins, this.globalVars())) this.globalArgs.set(k, this.req.buildArgs?.[k] ?? v);
      } else throw new DockerfileSyntaxError(this.label(), ins.line, `${ins.name} before FROM: only ARG may come before the first FROM`);
    }
    if (groups.length === 0) throw new DockerfileSyntaxError(this.label(), 1, "no FROM instruction: a Dockerfile must start a stage with FROM");
    return groups;
  }

  private targetIndex(groups: Instruction[][]): number {
    if (this.req.target === undefined) return groups.length - 1;
    const i = groups.findIndex((g) => this.fromParts(g[0]).name?.toLowerCase() === this.req.target!.toLowerCase());
    if (i < 0) {
      const names = groups.map((g) => this.fromParts(g[0]).name).filter(Boolean);
      throw new Error(`target stage "${this.req.target}" could not be found in ${this.label()} (stages: ${names.join(", ") || "none named"})`);
    }
    return i;
  }

  /** ARG's `name[=value]` words, each value expanded. */
  private argWords(ins: Instruction, vars: Map<string, string>): Array<[string, string | undefined]> {
    return ins.args.map((w) => {
      const eq = w.indexOf("=");
      if (eq === 0) throw this.fail(ins, `"${w}" has no name before "="`);
      if (eq < 0) return [w, undefined];
      try {
        return [w.slice(0, eq), expandWord(w.slice(eq + 1), vars, this.escape)];
      } catch (e) {
        throw this.fail(ins, (e as Error).message);
      }
    });
  }

  private globalVars(): Map<string, string> {
    return new Map([...Object.entries(PLATFORM_ARGS), ...[...this.globalArgs].filter((e): e is [string, string] => e[1] !== undefined)]);
  }

  private fromParts(ins: Instruction): { ref: string; name?: string } {
    const words = ins.args.map((w) => expandWord(w, this.globalVars(), this.escape));
    if (words.length === 1) return { ref: words[0] };
    if (words.length === 3 && words[1].toLowerCase() === "as") {
      if (!/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(words[2])) {
        throw new DockerfileSyntaxError(this.label(), ins.line, `invalid stage name "${words[2]}": use letters, digits, '_', '.' and '-'`);
      }
      return { ref: words[0], name: words[2] };
    }
    throw new DockerfileSyntaxError(this.label(), ins.line, 'FROM takes "IMAGE [AS NAME]"');
  }

  private stageNamed(name: string): Stage | undefined {
    const lower = name.toLowerCase();
    return this.stages.find((s) => s.name?.toLowerCase() === lower) ?? (/^\d+$/.test(name) ? this.stages[Number(name)] : undefined);
  }

  /**
   * An image by ref (FROM, COPY --from, RUN --mount from=), leased for the rest of the build: an `rmi` in another
   * process meanwhile takes its name, never the layers a step reads. Undefined when there is none (or it just went).
   */
  private async image(ref: string): Promise<StoredImage | undefined> {
    const img = await this.findImage(ref);
    return img && (await this.store.keepImage(img)) ? img : undefined;
  }

  /** An image by ref from the store, or through the resolver (a registry). */
  private async findImage(ref: string): Promise<StoredImage | undefined> {
    const at = ref.indexOf("@");
    if (at < 0) return (await this.store.image(ref)) ?? this.opts.resolveBase(ref, this.req.registryAuth);
    const [name, digest] = [ref.slice(0, at), ref.slice(at + 1)];
    for (const r of await this.store.refs()) {
      const img = r.startsWith(`${name}:`) ? await this.store.image(r) : undefined;
      if (img && (img.info.manifestDigest === digest || img.info.id === digest)) return img;
    }
    return this.opts.resolveBase(ref, this.req.registryAuth);
  }

  private async runStage(group: Instruction[]): Promise<void> {
    const [from, ...rest] = group;
    const { ref, name } = this.fromParts(from);
    if (from.flags.platform !== undefined) {
      const platform = expandWord(from.flags.platform, this.globalVars(), this.escape);
      if (platform !== PLATFORM_ARGS.TARGETPLATFORM) throw this.fail(from, `--platform=${platform}: berth builds for this host's platform only (${PLATFORM_ARGS.TARGETPLATFORM})`);
    }
    const index = this.stages.length;
    const label = this.stageCount > 1 ? `${name ?? `stage-${index}`} ` : "";
    const steps = 1 + rest.filter((i) => LAYER_STEPS.has(i.name)).length;
    const stage: Stage = { name, index, state: { config: emptyConfig(), layers: [] }, args: new Map(), cmdSet: false, label, steps, done: 0 };
    const v = this.vertex(stage, `FROM ${ref}`);
    if (ref.toLowerCase() !== "scratch") {
      const parent = this.stageNamed(ref);
      if (parent && /^\d+$/.test(ref)) throw this.fail(from, `cannot name a stage by number: use FROM … AS name`);
      const base = parent ? undefined : await this.image(ref);
      if (!parent && !base) {
        throw this.fail(from, `${ref}: base image not found in berth's store — build or import it first (there is no default registry)`);
      }
      const config = structuredClone(parent ? parent.state.config : base!.config);
      stage.state = { config: { ...config, history: config.history ?? [] }, layers: parent ? [...parent.state.layers] : stateOf(base!).layers };
    }
    v.done();
    const triggers = stage.state.config.config.OnBuild ?? [];
    delete stage.state.config.config.OnBuild;
    this.stages.push(stage);
    for (const trigger of triggers) {
      await this.step(stage, parseInstruction(trigger, from.line, `${this.label()} (ONBUILD of ${ref})`, this.escape));
    }
    for (const ins of rest) await this.step(stage, ins);
  }

  /** Variables an instruction expands: the stage's build args under its env. */
  private vars(stage: Stage): Map<string, string> {
    const vars = new Map<string, string>();
    for (const [k, v] of stage.args) if (v !== undefined) vars.set(k, v);
    for (const [k, v] of envMap(stage.state.config.config.Env)) vars.set(k, v);
    return vars;
  }

  private shellForm(stage: Stage, ins: Instruction): string[] {
    return ins.json ? ins.args : [...(stage.state.config.config.Shell ?? DEFAULT_SHELL), ins.args[0]];
  }

  /** One instruction; an error without its place (a bad expansion, say) gets the file, line and instruction. */
  private async step(stage: Stage, ins: Instruction): Promise<void> {
    try {
      await this.apply(stage, ins);
    } catch (e) {
      const message = (e as Error).message;
      if (e instanceof DockerfileSyntaxError || message.startsWith(`${this.label()}:`)) throw e;
      throw this.fail(ins, message);
    }
  }

  private async apply(stage: Stage, ins: Instruction): Promise<void> {
    const c = stage.state.config.config;
    const vars = this.vars(stage);
    const expand = (s: string) => expandWord(s, vars, this.escape);
    const words = () => ins.args.map(expand);
    const pairs = () => ins.pairs.map(([k, v]) => [expand(k), expand(v)]);
    switch (ins.name) {
      case "ARG":
        for (const [k, v] of this.argWords(ins, vars)) {
          const global = this.globalArgs.has(k) ? this.globalArgs.get(k) : PLATFORM_ARGS[k];
          stage.args.set(k, this.req.buildArgs?.[k] ?? v ?? global);
        }
        break;
      case "ENV":
        for (const [k, v] of pairs()) c.Env = setEnv(c.Env, k, v);
        break;
      case "LABEL":
        for (const [k, v] of pairs()) c.Labels = { ...c.Labels, [k]: v };
        break;
      case "MAINTAINER":
        stage.state.config.author = ins.args[0];
        break;
      case "EXPOSE":
        for (const p of ins.args.flatMap((a) => expandWords(a, vars, this.escape))) {
          const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
          if (!m) throw this.fail(ins, `"${p}" is not a port: write PORT, PORT/tcp or PORT/udp`);
          for (let n = Number(m[1]); n <= Number(m[2] ?? m[1]); n++) {
            c.ExposedPorts = { ...c.ExposedPorts, [`${n}/${(m[3] ?? "tcp").toLowerCase()}`]: {} };
          }
        }
        break;
      case "VOLUME":
        for (const v of words().filter((w) => w !== "")) c.Volumes = { ...c.Volumes, [v]: {} };
        break;
      case "USER":
        c.User = expand(ins.args[0]);
        break;
      case "STOPSIGNAL": {
        const sig = expand(ins.args[0]);
        if (!/^(SIG)?[A-Z0-9+-]+$|^\d+$/.test(sig)) throw this.fail(ins, `"${sig}" is not a signal such as SIGTERM or 15`);
        c.StopSignal = sig;
        break;
      }
      case "SHELL":
        c.Shell = ins.args;
        break;
      case "CMD":
        c.Cmd = this.shellForm(stage, ins);
        stage.cmdSet = true;
        break;
      case "ENTRYPOINT":
        c.Entrypoint = this.shellForm(stage, ins);
        if (!stage.cmdSet) c.Cmd = null;
        break;
      case "HEALTHCHECK":
        c.Healthcheck = this.healthcheck(ins);
        break;
      case "ONBUILD": {
        const trigger = ins.args[0];
        const inner = parseInstruction(trigger, ins.line, this.label(), this.escape);
        if (["ONBUILD", "FROM", "MAINTAINER"].includes(inner.name)) throw this.fail(ins, `${inner.name} is not allowed as an ONBUILD trigger`);
        c.OnBuild = [...(c.OnBuild ?? []), trigger];
        break;
      }
      case "WORKDIR": {
        const dir = path.posix.resolve(c.WorkingDir ?? "/", expand(ins.args[0]));
        c.WorkingDir = dir;
        if (!(await this.existsInStage(stage, dir))) {
          await this.layerStep(stage, ins, { dir }, async (box) => void (await ensureDir(box.rootfs, dir)));
        } else this.vertex(stage, ins.text).done();
        break;
      }
      case "RUN":
        await this.runStep(stage, ins);
        break;
      case "COPY":
      case "ADD":
        await this.copyStep(stage, ins, words());
        break;
    }
    if (!LAYER_STEPS.has(ins.name)) {
      stage.state.config.history!.push({ created_by: `/bin/sh -c #(nop) ${ins.text}`, empty_layer: true });
    }
  }

  private healthcheck(ins: Instruction): Healthcheck {
    const [type, ...cmd] = ins.args;
    if (/^NONE$/i.test(type)) {
      if (Object.keys(ins.flags).length > 0 || cmd.length > 0) throw this.fail(ins, "NONE takes no options or arguments");
      return { Test: ["NONE"] };
    }
    if (!/^CMD$/i.test(type ?? "") || cmd.length === 0) throw this.fail(ins, 'must be "HEALTHCHECK [OPTIONS] CMD command" or "HEALTHCHECK NONE"');
    const test = ins.json ? ["CMD", ...cmd] : ["CMD-SHELL", cmd[0]];
    const hc: Healthcheck = { Test: test };
    try {
      if (ins.flags.interval) hc.Interval = durationNs("interval", ins.flags.interval);
      if (ins.flags.timeout) hc.Timeout = durationNs("timeout", ins.flags.timeout);
      if (ins.flags["start-period"]) hc.StartPeriod = durationNs("start-period", ins.flags["start-period"]);
    } catch (e) {
      throw this.fail(ins, (e as Error).message);
    }
    if (ins.flags.retries !== undefined) {
      if (!/^[1-9]\d*$/.test(ins.flags.retries)) throw this.fail(ins, `--retries=${ins.flags.retries} must be a whole number of at least 1`);
      hc.Retries = Number(ins.flags.retries);
    }
    return hc;
  }

  private lowers(state: State): string[] {
    return this.store.layerDirs({ layers: state.config.rootfs.diff_ids });
  }

  /** Whether a container path exists in the stage's layers (a whiteout hides what is below it). */
  private async existsInStage(stage: Stage, p: string): Promise<boolean> {
    for (const dir of this.lowers(stage.state)) {
      const st = await fs.promises.lstat(path.join(dir, p)).catch(() => undefined);
      if (st) return !(st.isCharacterDevice() && st.rdev === 0);
    }
    return false;
  }

  /**
   * RUN's command with its heredocs, as BuildKit runs them: a lone `<<EOF` whose body starts with "#!" is a script
   * file run directly (mounted at /dev/pipes/EOF); a lone `<<EOF` otherwise is the shell's script; any other
   * command gets its bodies appended so the shell reads them as here-documents.
   */
  private runArgs(stage: Stage, ins: Instruction): { args: string[]; script?: { name: string; content: string } } {
    if (ins.heredocs.length === 0) return { args: this.shellForm(stage, ins) };
    const shell = stage.state.config.config.Shell ?? DEFAULT_SHELL;
    const lone = parseHeredoc(ins.args[0]);
    if (lone) {
      const doc = ins.heredocs[0];
      const content = doc.chomp ? chompHeredoc(doc.content) : doc.content;
      if (!content.startsWith("#!")) return { args: [...shell, content] };
      if (doc.name.includes("/") || doc.name === "." || doc.name === "..") throw this.fail(ins, `heredoc name "${doc.name}" cannot be a script file name`);
      return { args: [`/dev/pipes/${doc.name}`], script: { name: doc.name, content } };
    }
    return { args: [...shell, ins.heredocs.reduce((full, h) => `${full}\n${h.content}${h.name}`, ins.args[0])] };
  }

  private async runStep(stage: Stage, ins: Instruction): Promise<void> {
    const c = stage.state.config.config;
    const { args, script } = this.runArgs(stage, ins);
    // Build args reach RUN as environment (under the image's ENV), but are not kept in the image.
    const buildEnv = [...stage.args].filter(([k, v]) => v !== undefined && !envMap(c.Env).has(k)).map(([k, v]) => `${k}=${v}`);
    const env = [...buildEnv, ...(c.Env ?? [])];
    const network = ins.flags.network ?? "default";
    if (network !== "default" && network !== "none") {
      throw this.fail(ins, `--network=${network} is not allowed: use default (the default bridge, with NAT) or none`);
    }
    if (ins.flags.security !== undefined) throw this.fail(ins, `--security=${ins.flags.security} is not supported by berth's builder`);
    const mounts = (ins.flagLists.mount ?? []).map((v) => {
      try {
        return parseMount(v, c.WorkingDir ?? "/");
      } catch (e) {
        throw this.fail(ins, `--mount=${v}: ${(e as Error).message}`);
      }
    });
    const secrets = mounts.filter((m) => m.type === "secret").filter((m) => {
      if (this.req.secrets?.[m.id] !== undefined) return true;
      if (m.required) throw this.fail(ins, `--mount=type=secret,id=${m.id}: no build secret "${m.id}" was given (add it to the Image's build.secrets)`);
      return false;
    });
    const binds = await Promise.all(mounts.filter((m) => m.type === "bind").map((m) => this.bindSource(ins, stage, m)));
    // The key: what the step runs and mounts, never a secret's value.
    const key = {
      args, env, user: c.User, cwd: c.WorkingDir,
      ...(mounts.length > 0 ? { mounts: mounts.map((m) => (m.type === "secret" ? { ...m, present: secrets.includes(m) } : m)), binds: binds.map((b) => b.describe) } : {}),
      ...(network !== "default" ? { network } : {}),
    };
    await this.layerStep(stage, ins, key, async (box, progress) => {
      const secretDir = path.join(box.dir, "secrets");
      await fs.promises.mkdir(secretDir, { mode: 0o700 });
      const secretEnv: string[] = [];
      const fixed: Bind[] = [];
      for (const [i, m] of secrets.entries()) {
        if (m.type !== "secret") continue;
        const value = this.req.secrets![m.id];
        if (m.env) secretEnv.push(`${m.env}=${value}`);
        if (!m.target) continue;
        const file = path.join(secretDir, String(i));
        await fs.promises.writeFile(file, value, { mode: 0o600 });
        await fs.promises.chown(file, m.uid, m.gid);
        await fs.promises.chmod(file, m.mode);
        fixed.push({ source: file, destination: m.target, readOnly: true });
      }
      for (const b of binds) fixed.push(await b.bind(box.dir));
      if (script) {
        const file = path.join(box.dir, "heredoc-script");
        await fs.promises.writeFile(file, script.content, { mode: 0o755 });
        fixed.push({ source: file, destination: `/dev/pipes/${script.name}`, readOnly: true });
      }
      const tmpfs: Tmpfs[] = mounts.flatMap((m) => (m.type === "tmpfs" ? [{ destination: m.target, size: m.size }] : []));
      const caches = mounts.filter((m): m is CacheMount => m.type === "cache");
      const net = network === "default" && this.opts.networks ? await this.network() : undefined;
      const targets = [...fixed, ...(net?.binds ?? []), ...caches.map((m) => ({ destination: m.target })), ...tmpfs]
        .map((m) => m.destination)
        .filter((d) => !d.startsWith("/dev/"));
      const points = await missingMountPoints(box.rootfs, targets);
      try {
        const run = async (cacheBinds: Bind[]) =>
          box.run({ args, env: [...env, ...secretEnv], cwd: c.WorkingDir ?? "/", user: c.User, binds: [...fixed, ...cacheBinds, ...(net?.binds ?? [])], tmpfs, netnsPath: net?.netnsPath, onOutput: progress.output });
        const withCaches = (i: number, acc: Bind[]): ReturnType<typeof run> =>
          i === caches.length ? run(acc) : this.opts.caches.use(caches[i], (dir) => withCaches(i + 1, [...acc, { source: dir, destination: caches[i].target, readOnly: caches[i].readonly }]));
        const r = await withCaches(0, []);
        const output = `${r.stdout}${r.stderr}`.trim();
        if (r.code !== 0) {
          const tail = output.split("\n").slice(-10).join("\n");
          throw this.fail(ins, `${ins.args.join(" ")} failed with exit code ${r.code}${tail ? `:\n${tail}` : ""}`);
        }
      } finally {
        await fs.promises.rm(secretDir, { recursive: true, force: true });
        for (const b of binds) await b.release();
      }
      await removeMountPoints(box.rootfs, points);
    });
  }

  /**
   * A RUN --mount=type=bind source: a directory or file of the context (what .dockerignore leaves in, copied so
   * a rw mount cannot write to the context) or of a stage or image (its layers in a sandbox of their own).
   */
  private async bindSource(ins: Instruction, stage: Stage, m: Extract<RunMount, { type: "bind" }>): Promise<{ describe: unknown; bind: (dir: string) => Promise<Bind>; release: () => Promise<void> }> {
    if (m.from !== undefined) {
      const stageRef = this.stageNamed(m.from);
      if (stageRef === stage) throw this.fail(ins, `--mount from=${m.from} names the stage being built`);
      const img = stageRef ? undefined : await this.image(m.from);
      if (!stageRef && !img) throw this.fail(ins, `--mount from=${m.from}: no earlier stage and no image in berth's store has that name`);
      const state = stageRef?.state ?? stateOf(img!);
      let box: Sandbox | undefined;
      return {
        describe: { from: state.config.rootfs.diff_ids, source: m.source },
        bind: async () => {
          box = await Sandbox.open(this.host, this.store.paths.ingest, this.lowers(state));
          const source = await resolveInRoot(box.rootfs, path.posix.resolve("/", m.source));
          if (!fs.existsSync(source)) throw this.fail(ins, `--mount from=${m.from}: ${m.source} does not exist there`);
          return { source, destination: m.target, readOnly: m.readonly };
        },
        release: async () => void (await box?.discard()),
      };
    }
    let [src] = await this.contextSources(ins, m.source === "/" ? "." : m.source);
    if (src.items[0].stat.isSymbolicLink()) {
      // The bind is the kernel's, which would follow the link anywhere on the host: it is followed here instead,
      // inside the context only (as BuildKit resolves a mount's source), and what it leads to is mounted.
      const resolved = await resolveInRoot(this.req.context, src.describe).catch((e: Error) => {
        throw this.fail(ins, `--mount source=${m.source}: ${e.message}`);
      });
      const inside = path.relative(this.req.context, resolved);
      [src] = await this.contextSources(ins, inside === "" ? "." : inside);
    }
    return {
      describe: await describeFiles(src.items.map((i) => ({ rel: i.rel, abs: i.src, stat: i.stat }))),
      bind: async (dir) => {
        const copy = path.join(dir, `bind-${Math.random().toString(16).slice(2)}`);
        await fs.promises.mkdir(copy, { mode: 0o755 });
        const single = !src.items[0].stat.isDirectory();
        await placeItems(copy, single ? `/${src.name}` : "/", src.items, {});
        return { source: single ? path.join(copy, src.name) : copy, destination: m.target, readOnly: m.readonly };
      },
      release: async () => undefined,
    };
  }

  /**
   * A step that makes a layer: answered by the cache when an entry for (parent state, step, content) still has
   * its layer; otherwise run in a sandbox over the stage's layers, its upper directory committed as the layer.
   */
  /** The build's place on the network, taken at its first networked RUN. */
  private network(): Promise<BuildNetwork> {
    const id = randomBytes(3).toString("hex");
    this.net ??= this.opts.networks!(id, stagingPath(this.store.paths.ingest, "build-net"));
    return this.net;
  }

  /** A progress vertex for the stage's next step, "[stage i/n] TEXT". */
  private vertex(stage: Stage, text: string): Vertex {
    stage.done++;
    return this.progress.vertex(`[${stage.label}${stage.done}/${Math.max(stage.steps, stage.done)}] ${text}`);
  }

  private async layerStep(stage: Stage, ins: Instruction, key: unknown, work: (box: Sandbox, progress: Vertex) => Promise<void>): Promise<void> {
    const where = `${this.label()}:${ins.line} ${ins.text}`;
    const state = stage.state;
    // The parent's config names its layers (rootfs.diff_ids).
    const cacheKey = sha256Hex(canonicalJson({ parent: { config: state.config }, step: ins.name, key }));
    const hit = this.req.noCache ? undefined : await this.cacheGet(cacheKey);
    const putEntry = (e: CacheEntry) => this.store.putLease(`cache-${cacheKey}`, { blobs: [e.desc.digest], layers: [e.diffId], data: e });
    let layer: LayerRef;
    const v = this.vertex(stage, ins.text);
    if (hit) {
      v.cached();
      this.cached.push(where);
      layer = { diffId: hit.diffId, desc: hit.desc };
      // Its last use, for `berth builder prune --filter until=…`.
      await putEntry(hit);
    } else {
      const box = await Sandbox.open(this.host, this.store.paths.ingest, this.lowers(state));
      try {
        await work(box, v);
        await box.close();
        const { diffId, desc } = await commitLayer(this.host, this.store, box.upper, where);
        layer = { diffId, desc };
        v.done();
      } catch (e) {
        v.error((e as Error).message.split("\n")[0]);
        throw e;
      } finally {
        await box.discard();
      }
      this.ran.push(where);
      await putEntry(layer);
    }
    state.layers = [...state.layers, layer];
    state.config.rootfs = { type: "layers", diff_ids: [...state.config.rootfs.diff_ids, layer.diffId] };
    state.config.history!.push({ created_by: ins.name === "RUN" ? ins.text.replace(/^RUN\s+(--\S+\s+)*/i, "/bin/sh -c ") : `/bin/sh -c #(nop) ${ins.text}` });
  }

  private async cacheGet(key: string): Promise<CacheEntry | undefined> {
    const lease = await this.store.readLease<CacheEntry>(`cache-${key}`);
    const e = lease?.data;
    return e && (await this.store.protect([e.desc.digest], [e.diffId])) ? e : undefined;
  }

  private contextFiles(): Promise<ContextFile[]> {
    this.context ??= DockerIgnore.load(this.req.context).then((ignore) => listContext(this.req.context, ignore));
    return this.context;
  }

  private async copyStep(stage: Stage, ins: Instruction, words: string[]): Promise<void> {
    if (words.length < 2) throw this.fail(ins, "requires at least two arguments: SOURCE... DEST");
    const c = stage.state.config.config;
    const sources = words.slice(0, -1);
    const destWord = words[words.length - 1];
    const dest = path.posix.resolve(c.WorkingDir ?? "/", destWord);
    const destIsDir = destWord.endsWith("/") || destWord === ".";
    const from = ins.flags.from;
    let fromState: State | undefined;
    if (from !== undefined) {
      const stageRef = this.stageNamed(from);
      if (stageRef === stage) throw this.fail(ins, `--from=${from} names the stage being built`);
      const img = stageRef ? undefined : await this.image(from);
      if (!stageRef && !img) {
        throw this.fail(ins, `--from=${from}: no earlier stage and no image in berth's store has that name`);
      }
      fromState = stageRef?.state ?? stateOf(img!);
    }
    const fromContext = fromState === undefined;
    // ADD --checksum pins what a URL serves (BuildKit takes it for one URL source).
    const checksum = ins.flags.checksum;
    if (checksum !== undefined) {
      if (!isDigest(checksum)) throw this.fail(ins, `--checksum=${checksum} must be sha256: and 64 hex digits`);
      if (sources.length !== 1 || !isUrl(sources[0])) throw this.fail(ins, "--checksum applies to a single URL source only");
    }
    if (ins.flags["keep-git-dir"] !== undefined) throw this.fail(ins, "--keep-git-dir: git sources are not supported by berth's builder");
    // --parents keeps each source's path (below a "/./" in it, if any) under the destination.
    const parents = ins.flags.parents !== undefined && ins.flags.parents !== "false";
    let exclude: PatternMatcher | undefined;
    try {
      exclude = ins.flagLists.exclude && new PatternMatcher(ins.flagLists.exclude.map((e) => expandWord(e, this.vars(stage), this.escape)));
    } catch (e) {
      throw this.fail(ins, `--exclude: ${(e as Error).message}`);
    }
    type Source = { name: string; items: CopyItem[]; describe: string; parent?: string; archive?: Awaited<ReturnType<typeof tarKind>> };
    const resolved: Source[] = [];
    const downloads: string[] = [];
    const fromBox = fromState && (await Sandbox.open(this.host, this.store.paths.ingest, this.lowers(fromState)));
    try {
      for (const [i, src] of sources.entries()) {
        const doc = parseHeredoc(ins.args[i]) && ins.heredocs.find((h) => h.name === parseHeredoc(ins.args[i])!.name);
        if (doc) {
          // A heredoc source is a file of that name with the body (expanded unless its delimiter was quoted), 0664.
          const body = doc.chomp ? chompHeredoc(doc.content) : doc.content;
          const content = doc.expand ? expandHeredoc(body, this.vars(stage), this.escape) : body;
          const file = await this.tempFile(content);
          downloads.push(file);
          await fs.promises.chmod(file, 0o664);
          const stat = await fs.promises.stat(file);
          resolved.push({ name: doc.name, items: [{ src: file, rel: "", stat }], describe: `<<${doc.name} ${sha256Hex(content)}` });
          continue;
        }
        if (isUrl(src)) {
          if (ins.name !== "ADD") throw this.fail(ins, `source ${src} is a URL: only ADD can fetch URLs`);
          const file = await this.download(ins, src);
          downloads.push(file);
          const stat = await fs.promises.stat(file);
          if (checksum !== undefined && `sha256:${await fileDigest(file, stat)}` !== checksum) {
            throw this.fail(ins, `--checksum: ${src} has digest sha256:${await fileDigest(file, stat)}, not ${checksum}`);
          }
          const name = path.posix.basename(new URL(src).pathname) || "index.html";
          const item = { src: file, rel: "", stat: Object.assign(stat, { mode: (stat.mode & ~0o7777) | 0o600 }) };
          resolved.push({ name, items: [item], describe: `${src} ${await fileDigest(file, stat)}` });
          continue;
        }
        const pivot = src.indexOf("/./");
        const base = pivot < 0 ? "" : path.posix.normalize(src.slice(0, pivot).replace(/^\/+/, ""));
        const parentOf = (rel: string) => (base && base !== "." && rel.startsWith(`${base}/`) ? rel.slice(base.length + 1) : rel);
        const found: Source[] = [];
        if (fromContext) {
          for (const s of await this.contextSources(ins, src)) found.push({ ...s, parent: parentOf(s.describe) });
        } else {
          const host = await resolveInRoot(fromBox!.rootfs, path.posix.resolve("/", src));
          if (!fs.existsSync(host)) throw this.fail(ins, `--from=${from}: ${src} does not exist in that stage`);
          const rel = path.posix.resolve("/", src).slice(1);
          found.push({ name: path.posix.basename(src), items: await walkTree(host), describe: src, parent: parentOf(rel) });
        }
        for (const s of found) {
          // --exclude patterns match below a directory source, or a file source's name or path.
          if (exclude && !s.items[0].stat.isDirectory() && (exclude.matchesOrParentMatches(s.name) || exclude.matchesOrParentMatches(s.describe))) continue;
          if (exclude) s.items = s.items.filter((it) => it.rel === "" || !exclude.matchesOrParentMatches(it.rel));
          const archive = fromContext && ins.name === "ADD" && s.items[0].stat.isFile() ? await tarKind(s.items[0].src) : undefined;
          resolved.push({ ...s, archive });
        }
      }
      const many = resolved.length > 1;
      if (many && !destIsDir) {
        throw this.fail(ins, `has ${resolved.length} sources, so the destination must be a directory ending in "/" (got "${destWord}")`);
      }
      const key = {
        args: words,
        ...(parents ? { parents } : {}),
        ...(exclude ? { exclude: ins.flagLists.exclude } : {}),
        chown: ins.flags.chown,
        chmod: ins.flags.chmod,
        from: fromState && { config: fromState.config },
        content: await Promise.all(resolved.map(async (s) => s.describe + "\n" + (fromContext ? await describeFiles(s.items.map((i) => ({ rel: i.rel, abs: i.src, stat: i.stat }))) : ""))),
      };
      const mode = ins.flags.chmod === undefined ? undefined : this.chmod(ins);
      await this.layerStep(stage, ins, key, async (box) => {
        const owner = ins.flags.chown === undefined ? undefined : await this.chown(ins, box.rootfs, expandWord(ins.flags.chown, this.vars(stage)));
        for (const s of resolved) {
          const single = s.items[0];
          const isDirSource = single.stat.isDirectory();
          let target = dest;
          if (parents && s.parent !== undefined) target = path.posix.join(dest, s.parent);
          else if (!isDirSource) {
            const existing = await fs.promises.stat(await resolveInRoot(box.rootfs, dest)).catch(() => undefined);
            if (destIsDir || existing?.isDirectory()) target = path.posix.join(dest, s.name);
          }
          if (s.archive) {
            await this.extract(ins, single.src, s.archive, await ensureDir(box.rootfs, dest));
            continue;
          }
          await placeItems(box.rootfs, target, s.items, { owner, mode });
        }
      });
    } finally {
      await fromBox?.discard();
      for (const f of downloads) await fs.promises.rm(f, { force: true });
    }
  }

  /** A context source: a path or pattern relative to the context, never above it, minus .dockerignore'd files. */
  private async contextSources(ins: Instruction, src: string): Promise<Array<{ name: string; items: CopyItem[]; describe: string }>> {
    const clean = path.posix.normalize(src.replace(/^\/+/, "")).replace(/(.)\/+$/, "$1");
    if (clean === ".." || clean.startsWith("../")) {
      throw this.fail(ins, `failed: forbidden path outside the build context: ${src} (sources are relative to the context ${this.req.context})`);
    }
    const files = await this.contextFiles();
    const rootStat = await fs.promises.lstat(this.req.context);
    const whole = clean === "." ? [{ rel: "", abs: this.req.context, stat: rootStat }] : [];
    let re: RegExp | undefined;
    try {
      re = /[*?[]/.test(clean) ? globRegex(clean) : undefined;
    } catch (e) {
      throw this.fail(ins, `source ${src}: ${(e as Error).message}`);
    }
    const matches = clean === "." ? whole : files.filter((f) => f.rel === clean || re?.test(f.rel));
    if (matches.length === 0) {
      throw this.fail(ins, `failed: file not found in build context or excluded by .dockerignore: ${src}`);
    }
    return matches.map((m) => {
      const prefix = m.rel === "" ? "" : `${m.rel}/`;
      const below = m.stat.isDirectory() ? files.filter((f) => f.rel.startsWith(prefix)) : [];
      const items = [{ src: m.abs, rel: "", stat: m.stat }, ...below.map((f) => ({ src: f.abs, rel: f.rel.slice(prefix.length), stat: f.stat }))];
      return { name: path.posix.basename(m.rel || "."), items, describe: m.rel };
    });
  }

  private chmod(ins: Instruction): number {
    if (!/^[0-7]{3,4}$/.test(ins.flags.chmod)) throw this.fail(ins, `--chmod=${ins.flags.chmod} must be octal permission bits such as 755`);
    return parseInt(ins.flags.chmod, 8);
  }

  /** --chown=USER[:GROUP] against the image's own /etc files; a user alone means the same number for the group. */
  private async chown(ins: Instruction, rootfs: string, spec: string): Promise<{ uid: number; gid: number }> {
    try {
      const ids = await resolveUser(spec, rootfs);
      return spec.includes(":") ? ids : { uid: ids.uid, gid: /^\d+$/.test(spec) ? ids.uid : ids.gid };
    } catch (e) {
      throw this.fail(ins, `--chown=${spec}: ${(e as Error).message}`);
    }
  }

  private async download(ins: Instruction, url: string): Promise<string> {
    const res = await fetch(url).catch((e: Error) => {
      throw this.fail(ins, `cannot fetch ${url}: ${e.cause instanceof Error ? e.cause.message : e.message}`);
    });
    if (!res.ok) throw this.fail(ins, `cannot fetch ${url}: HTTP ${res.status} ${res.statusText}`);
    const file = await this.tempFile(Buffer.from(await res.arrayBuffer()));
    const modified = res.headers.get("last-modified");
    if (modified) await fs.promises.utimes(file, new Date(modified), new Date(modified));
    return file;
  }

  /** A file in the store's ingest directory (on the store's filesystem), removed by the caller. */
  private async tempFile(content: string | Buffer): Promise<string> {
    const file = stagingPath(this.store.paths.ingest, "build-file");
    await fs.promises.mkdir(this.store.paths.ingest, { recursive: true });
    await fs.promises.writeFile(file, content, { mode: 0o600 });
    return file;
  }

  /** ADD of a local tar (plain, gzip, bzip2, xz or zstd): unpacked into dest with the same refusals as a layer. */
  private async extract(ins: Instruction, file: string, kind: NonNullable<Awaited<ReturnType<typeof tarKind>>>, dir: string): Promise<void> {
    const { tar, done } = openTar(file, kind);
    try {
      await unpackLayer({ host: this.host, tar, dir, lowers: [], layer: `${this.label()}:${ins.line} (ADD ${path.basename(file)})` });
    } finally {
      // The tar reader stops at the end-of-archive blocks: what follows is not read, and the stream must close.
      tar.destroy();
    }
    await done;
  }
}
