// The image builder: runs a parsed Dockerfile stage by stage with Docker's semantics. Metadata instructions only
// change the config; RUN, COPY, ADD (and WORKDIR creating its directory) make a layer, each looked up first in a
// cache keyed by the parent state, the instruction as expanded, and the content it reads.
import * as fs from "node:fs";
import * as path from "node:path";
import { createGunzip } from "node:zlib";
import type { Host } from "../host/exec";
import type { ImageInfo } from "../runtime";
import { canonicalJson } from "../json-file";
import { ContentStore, type StoredImage } from "../image/store";
import { HOST_ARCH, type Descriptor, type Healthcheck, type OciImageConfig } from "../image/oci";
import { commitLayer } from "../image/pack";
import { unpackLayer } from "../image/unpack";
import { resolveUser } from "../container/user";
import { DockerfileSyntaxError, parseDockerfile, parseInstruction, type Instruction } from "./dockerfile";
import { expandWord, expandWords, keyValues } from "./words";
import { DockerIgnore, describeFiles, fileDigest, listContext, matchPattern, sha256Hex, type ContextFile } from "./context";
import { ensureDir, placeItems, walkTree, type CopyItem } from "./copy";
import { resolveInRoot } from "../confine";
import { Sandbox } from "./sandbox";

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
  /** Refs to store the result under. */
  tags: string[];
  /** Progress lines ("Step 3/7 : RUN …", a step's output). */
  log?: (line: string) => void;
}

export interface BuildResult {
  info: ImageInfo;
  /** Layer-making steps that ran, and those the cache answered ("Dockerfile:LINE INSTRUCTION"). */
  ran: string[];
  cached: string[];
}

/** Finds a base image the store lacks (from a registry); undefined when nothing has it. */
export type BaseResolver = (ref: string) => Promise<StoredImage | undefined>;

interface State {
  config: OciImageConfig;
  layers: Descriptor[];
}

interface Stage {
  name?: string;
  index: number;
  state: State;
  /** Build args declared in this stage, with their values (undefined: declared, no value). */
  args: Map<string, string | undefined>;
  /** Whether CMD was set in this stage (ENTRYPOINT resets an inherited CMD). */
  cmdSet: boolean;
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

export class Builder {
  constructor(
    private readonly host: Host,
    private readonly store: ContentStore,
    private readonly resolveBase: BaseResolver = async () => undefined,
  ) {}

  async build(req: BuildRequest): Promise<BuildResult> {
    return new Build(this.host, this.store, this.resolveBase, req).run();
  }
}

/** One build: its Dockerfile, context, stages so far, and what ran. */
class Build {
  private readonly file: string;
  private escape = "\\";
  private readonly stages: Stage[] = [];
  private readonly globalArgs = new Map<string, string | undefined>();
  private readonly ran: string[] = [];
  private readonly cached: string[] = [];
  private context?: Promise<ContextFile[]>;

  constructor(
    private readonly host: Host,
    private readonly store: ContentStore,
    private readonly resolveBase: BaseResolver,
    private readonly req: BuildRequest,
  ) {
    this.file = path.resolve(req.context, req.dockerfile ?? "Dockerfile");
  }

  async run(): Promise<BuildResult> {
    const text = await fs.promises.readFile(this.file, "utf8").catch(() => {
      throw new Error(`Dockerfile ${this.file} not found: give the path of the Dockerfile (relative to the context)`);
    });
    const { directives, instructions } = parseDockerfile(text, this.label());
    this.escape = directives.escape ?? "\\";
    const groups = this.splitStages(instructions);
    const targetIndex = this.targetIndex(groups);
    // What the build makes stays leased until the image is named (no GC meanwhile takes a finished step's layer).
    return this.store.leased(async () => {
      for (const group of groups.slice(0, targetIndex + 1)) await this.runStage(group);
      const final = this.stages[targetIndex].state;
      const [first, ...more] = this.req.tags;
      const info = await this.store.commit(first, final.config, final.layers);
      for (const ref of more) await this.store.tag(first, ref);
      return { info, ran: this.ran, cached: this.cached };
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
        for (const [k, v] of keyValues(ins.args[0], new Map(), this.escape, false)) {
          this.globalArgs.set(k, this.req.buildArgs?.[k] ?? v);
        }
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

  private globalVars(): Map<string, string> {
    return new Map([...this.globalArgs].filter((e): e is [string, string] => e[1] !== undefined));
  }

  private fromParts(ins: Instruction): { ref: string; name?: string } {
    const words = expandWords(ins.args[0], this.globalVars(), this.escape);
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

  /** An image by ref from the store, or through the resolver (a registry). */
  private async image(ref: string): Promise<StoredImage | undefined> {
    const at = ref.indexOf("@");
    if (at < 0) return (await this.store.image(ref)) ?? this.resolveBase(ref);
    const [name, digest] = [ref.slice(0, at), ref.slice(at + 1)];
    for (const r of await this.store.refs()) {
      const img = r.startsWith(`${name}:`) ? await this.store.image(r) : undefined;
      if (img && (img.info.manifestDigest === digest || img.info.id === digest)) return img;
    }
    return this.resolveBase(ref);
  }

  private async runStage(group: Instruction[]): Promise<void> {
    const [from, ...rest] = group;
    const { ref, name } = this.fromParts(from);
    const stage: Stage = { name, index: this.stages.length, state: { config: emptyConfig(), layers: [] }, args: new Map(), cmdSet: false };
    this.req.log?.(`Step ${stage.index + 1}: ${from.text}`);
    if (ref.toLowerCase() !== "scratch") {
      const parent = this.stageNamed(ref);
      if (parent && /^\d+$/.test(ref)) throw this.fail(from, `cannot name a stage by number: use FROM … AS name`);
      const base = parent ? undefined : await this.image(ref);
      if (!parent && !base) {
        throw this.fail(from, `${ref}: base image not found in berth's store — build or import it first (there is no default registry)`);
      }
      if (base && !(await this.store.keepImage(base))) throw this.fail(from, `${ref}: base image was removed while the build started`);
      const config = structuredClone(parent ? parent.state.config : base!.config);
      stage.state = { config: { ...config, history: config.history ?? [] }, layers: parent ? [...parent.state.layers] : base!.manifest.layers };
    }
    const triggers = stage.state.config.config.OnBuild ?? [];
    delete stage.state.config.config.OnBuild;
    this.stages.push(stage);
    for (const trigger of triggers) {
      await this.step(stage, parseInstruction(trigger, from.line, `${this.label()} (ONBUILD of ${ref})`));
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

  private async step(stage: Stage, ins: Instruction): Promise<void> {
    const c = stage.state.config.config;
    const vars = this.vars(stage);
    const expand = (s: string) => expandWord(s, vars, this.escape);
    const words = () => (ins.json ? ins.args.map(expand) : expandWords(ins.args[0], vars, this.escape));
    const keyVals = (legacy: boolean) => {
      try {
        return keyValues(ins.args[0], vars, this.escape, legacy);
      } catch (e) {
        throw this.fail(ins, (e as Error).message);
      }
    };
    if (!LAYER_STEPS.has(ins.name)) this.req.log?.(`  ${ins.text}`);
    switch (ins.name) {
      case "ARG":
        for (const [k, v] of keyVals(false)) {
          const global = this.globalArgs.has(k) ? this.globalArgs.get(k) : undefined;
          stage.args.set(k, this.req.buildArgs?.[k] ?? v ?? global);
        }
        break;
      case "ENV":
        for (const [k, v] of keyVals(true)) {
          if (v === undefined) throw this.fail(ins, `${k} has no value: write ${k}=VALUE`);
          c.Env = setEnv(c.Env, k, v);
        }
        break;
      case "LABEL":
        for (const [k, v] of keyVals(true)) {
          if (v === undefined) throw this.fail(ins, `${k} has no value: write ${k}=VALUE`);
          c.Labels = { ...c.Labels, [k]: v };
        }
        break;
      case "MAINTAINER":
        stage.state.config.author = ins.args[0];
        break;
      case "EXPOSE":
        for (const p of words()) {
          const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
          if (!m) throw this.fail(ins, `"${p}" is not a port: write PORT, PORT/tcp or PORT/udp`);
          for (let n = Number(m[1]); n <= Number(m[2] ?? m[1]); n++) {
            c.ExposedPorts = { ...c.ExposedPorts, [`${n}/${(m[3] ?? "tcp").toLowerCase()}`]: {} };
          }
        }
        break;
      case "VOLUME":
        for (const v of words()) c.Volumes = { ...c.Volumes, [v]: {} };
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
        const inner = parseInstruction(trigger, ins.line, this.label());
        if (["ONBUILD", "FROM", "MAINTAINER"].includes(inner.name)) throw this.fail(ins, `${inner.name} is not allowed as an ONBUILD trigger`);
        c.OnBuild = [...(c.OnBuild ?? []), trigger];
        break;
      }
      case "WORKDIR": {
        const dir = path.posix.resolve(c.WorkingDir ?? "/", expand(ins.args[0]));
        c.WorkingDir = dir;
        if (!(await this.existsInStage(stage, dir))) {
          await this.layerStep(stage, ins, { dir }, async (box) => void (await ensureDir(box.rootfs, dir)));
        } else this.req.log?.(`  ${ins.text}`);
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
    const text = ins.args[0].trim();
    if (/^NONE$/i.test(text)) {
      if (Object.keys(ins.flags).length > 0) throw this.fail(ins, "NONE takes no options");
      return { Test: ["NONE"] };
    }
    const m = /^CMD\s+([\s\S]+)$/i.exec(text);
    if (!m) throw this.fail(ins, 'must be "HEALTHCHECK [OPTIONS] CMD command" or "HEALTHCHECK NONE"');
    let test: string[] = ["CMD-SHELL", m[1]];
    if (m[1].startsWith("[")) {
      const parsed: unknown = JSON.parse(m[1]);
      if (Array.isArray(parsed) && parsed.every((a) => typeof a === "string")) test = ["CMD", ...parsed];
    }
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

  private async runStep(stage: Stage, ins: Instruction): Promise<void> {
    const c = stage.state.config.config;
    const args = this.shellForm(stage, ins);
    // Build args reach RUN as environment (under the image's ENV), but are not kept in the image.
    const buildEnv = [...stage.args].filter(([k, v]) => v !== undefined && !envMap(c.Env).has(k)).map(([k, v]) => `${k}=${v}`);
    const env = [...buildEnv, ...(c.Env ?? [])];
    await this.layerStep(stage, ins, { args, env, user: c.User, cwd: c.WorkingDir }, async (box) => {
      const r = await box.run({ args, env, cwd: c.WorkingDir ?? "/", user: c.User });
      const output = `${r.stdout}${r.stderr}`.trim();
      if (output) this.req.log?.(output);
      if (r.code !== 0) {
        const tail = output.split("\n").slice(-10).join("\n");
        throw this.fail(ins, `${ins.args.join(" ")} failed with exit code ${r.code}${tail ? `:\n${tail}` : ""}`);
      }
    });
  }

  /**
   * A step that makes a layer: answered by the cache when an entry for (parent state, step, content) still has
   * its layer; otherwise run in a sandbox over the stage's layers, its upper directory committed as the layer.
   */
  private async layerStep(stage: Stage, ins: Instruction, key: unknown, work: (box: Sandbox) => Promise<void>): Promise<void> {
    const where = `${this.label()}:${ins.line} ${ins.text}`;
    const state = stage.state;
    const cacheKey = sha256Hex(canonicalJson({ parent: { config: state.config, layers: state.layers.map((l) => l.digest) }, step: ins.name, key }));
    const hit = this.req.noCache ? undefined : await this.cacheGet(cacheKey);
    let entry: CacheEntry;
    if (hit) {
      this.req.log?.(`  ${ins.text} (cached)`);
      this.cached.push(where);
      entry = hit;
    } else {
      this.req.log?.(`  ${ins.text}`);
      const box = await Sandbox.open(this.host, this.store.paths.ingest, this.lowers(state));
      try {
        await work(box);
        await box.close();
        const { desc, diffId } = await commitLayer(this.host, this.store, box.upper, where);
        entry = { desc, diffId };
      } finally {
        await box.discard();
      }
      this.ran.push(where);
      await this.store.putLease(`cache-${cacheKey}`, { blobs: [entry.desc.digest], layers: [entry.diffId], data: entry });
    }
    state.layers = [...state.layers, entry.desc];
    state.config.rootfs = { type: "layers", diff_ids: [...state.config.rootfs.diff_ids, entry.diffId] };
    state.config.history!.push({ created_by: ins.name === "RUN" ? ins.text.replace(/^RUN\s+/i, "/bin/sh -c ") : `/bin/sh -c #(nop) ${ins.text}` });
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
      fromState = stageRef?.state ?? { config: img!.config, layers: img!.manifest.layers };
    }
    const fromContext = fromState === undefined;
    type Source = { name: string; items: CopyItem[]; describe: string; archive?: boolean };
    const resolved: Source[] = [];
    const downloads: string[] = [];
    const fromBox = fromState && (await Sandbox.open(this.host, this.store.paths.ingest, this.lowers(fromState)));
    try {
      for (const src of sources) {
        if (isUrl(src)) {
          if (ins.name !== "ADD") throw this.fail(ins, `source ${src} is a URL: only ADD can fetch URLs`);
          const file = await this.download(ins, src);
          downloads.push(file);
          const stat = await fs.promises.stat(file);
          const name = path.posix.basename(new URL(src).pathname) || "index.html";
          const item = { src: file, rel: "", stat: Object.assign(stat, { mode: (stat.mode & ~0o7777) | 0o600 }) };
          resolved.push({ name, items: [item], describe: `${src} ${await fileDigest(file, stat)}` });
          continue;
        }
        if (fromContext) {
          for (const s of await this.contextSources(ins, src)) {
            const archive = ins.name === "ADD" && s.items[0].stat.isFile() && (await isArchive(s.items[0].src));
            resolved.push({ ...s, archive });
          }
        }
        else {
          const host = await resolveInRoot(fromBox!.rootfs, path.posix.resolve("/", src));
          if (!fs.existsSync(host)) throw this.fail(ins, `--from=${from}: ${src} does not exist in that stage`);
          resolved.push({ name: path.posix.basename(src), items: await walkTree(host), describe: src });
        }
      }
      const many = resolved.length > 1;
      if (many && !destIsDir) {
        throw this.fail(ins, `has ${resolved.length} sources, so the destination must be a directory ending in "/" (got "${destWord}")`);
      }
      const key = {
        args: words,
        chown: ins.flags.chown,
        chmod: ins.flags.chmod,
        from: fromState && { config: fromState.config, layers: fromState.layers.map((l) => l.digest) },
        content: await Promise.all(resolved.map(async (s) => s.describe + "\n" + (fromContext ? await describeFiles(s.items.map((i) => ({ rel: i.rel, abs: i.src, stat: i.stat }))) : ""))),
      };
      const mode = ins.flags.chmod === undefined ? undefined : this.chmod(ins);
      await this.layerStep(stage, ins, key, async (box) => {
        const owner = ins.flags.chown === undefined ? undefined : await this.chown(ins, box.rootfs, expandWord(ins.flags.chown, this.vars(stage)));
        for (const s of resolved) {
          const single = s.items[0];
          const isDirSource = single.stat.isDirectory();
          let target = dest;
          if (!isDirSource) {
            const existing = await fs.promises.stat(await resolveInRoot(box.rootfs, dest)).catch(() => undefined);
            if (destIsDir || existing?.isDirectory()) target = path.posix.join(dest, s.name);
          }
          if (s.archive) {
            await this.extract(ins, single.src, await ensureDir(box.rootfs, dest));
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
    const re = matchPattern(clean);
    const matches = clean === "." ? whole : files.filter((f) => f.rel === clean || (/[*?[]/.test(clean) && re.test(f.rel)));
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
    const file = path.join(this.store.paths.ingest, `download-${process.pid}-${Math.random().toString(16).slice(2)}`);
    await fs.promises.mkdir(this.store.paths.ingest, { recursive: true });
    await fs.promises.writeFile(file, Buffer.from(await res.arrayBuffer()));
    const modified = res.headers.get("last-modified");
    if (modified) await fs.promises.utimes(file, new Date(modified), new Date(modified));
    return file;
  }

  /** ADD of a local tar (plain or gzip): unpacked into dest with the same refusals as a layer. */
  private async extract(ins: Instruction, file: string, dir: string): Promise<void> {
    const raw = fs.createReadStream(file);
    const gz = (await magic(file)).subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]));
    await unpackLayer({ host: this.host, tar: gz ? raw.pipe(createGunzip()) : raw, dir, lowers: [], layer: `${this.label()}:${ins.line} (ADD ${path.basename(file)})` });
  }
}

async function magic(file: string): Promise<Buffer> {
  const fh = await fs.promises.open(file, "r");
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A tar (ustar magic at 257) or a gzip stream, the archives ADD unpacks. */
async function isArchive(file: string): Promise<boolean> {
  const b = await magic(file);
  return (b[0] === 0x1f && b[1] === 0x8b) || b.subarray(257, 262).toString() === "ustar";
}
