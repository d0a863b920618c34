// How a TypeScript program starts fast: berth preloads a require hook (transpile-register.ts) into the program's
// Node process instead of letting @pulumi/pulumi's runner register ts-node. The hook transpiles each .ts file once,
// caches the JavaScript by content, and loads TypeScript only on a cache miss. Stack traces stay native (cheap:
// @pulumi/pulumi captures one per resource); source maps are switched on only when an uncaught error is about to
// be printed, so the error still points at the .ts line.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** What the parent tells the hook (through BERTH_TRANSPILE, as JSON). */
interface HookConfig {
  /** Where transpiled files are kept; written to only when possible. */
  cacheDir: string;
  /** The TypeScript module to transpile with, and its version (part of the cache key). */
  typescript: string;
  typescriptVersion: string;
  /** tsconfig.json of the project, when it has one. */
  tsconfig?: string;
  /** Where @pulumi/pulumi's runner resolves source-map-support from (the one copy that formats stacks). */
  pulumiDir: string;
}

/** Bumped when the emitted code or the options below change, so old cache entries are not used. */
const CACHE_VERSION = "1";

/**
 * How to start the program: a preload and its env for a CommonJS program; @pulumi/pulumi's own ts-node path for an
 * ES module program (package.json `"type": "module"`), which a require hook cannot load.
 */
export function programStart(projectDir: string, pulumiDir: string): { execArgv: string[]; env: Record<string, string> } {
  if (isEsModulePackage(projectDir)) return { execArgv: [], env: { PULUMI_NODEJS_TYPESCRIPT: "true", PULUMI_NODEJS_TRANSPILE_ONLY: "true" } };
  const tsconfigPath = path.join(projectDir, process.env.PULUMI_NODEJS_TSCONFIG_PATH ?? "tsconfig.json");
  const config: HookConfig = {
    cacheDir: path.join(projectDir, ".pulumi", "transpiled"),
    ...typescriptFor(pulumiDir),
    tsconfig: fs.existsSync(tsconfigPath) ? tsconfigPath : undefined,
    pulumiDir,
  };
  return { execArgv: ["--require", path.join(__dirname, "transpile-register.js")], env: { BERTH_TRANSPILE: JSON.stringify(config) } };
}

/** The nearest package.json above the project says whether its .ts files are ES modules. */
function isEsModulePackage(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(d, "package.json"), "utf8")).type === "module";
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") return false;
    }
    if (path.dirname(d) === d) return false;
  }
}

/** The TypeScript @pulumi/pulumi's runner would use: the one it resolves, else the copy it vendors. */
function typescriptFor(pulumiDir: string): { typescript: string; typescriptVersion: string } {
  try {
    const pkg = require.resolve("typescript/package.json", { paths: [pulumiDir] });
    const version = String(JSON.parse(fs.readFileSync(pkg, "utf8")).version);
    return { typescript: require.resolve("typescript", { paths: [pulumiDir] }), typescriptVersion: version };
  } catch {
    return { typescript: path.join(pulumiDir, "vendor", "typescript@3.8.3", "typescript.js"), typescriptVersion: "3.8.3" };
  }
}

/** A transpiled file: its JavaScript and source map. */
interface Output {
  code: string;
  map: string;
}

/** Thrown for syntax errors; @pulumi/pulumi prints a "TSError" without a stack, as it does for ts-node's. */
class TSError extends Error {
  override name = "TSError";
}

export class Transpiler {
  private readonly salt: string;
  private ts?: typeof import("typescript");
  private options?: import("typescript").CompilerOptions;

  constructor(private readonly config: HookConfig) {
    const tsconfigText = config.tsconfig ? fs.readFileSync(config.tsconfig, "utf8") : "";
    this.salt = JSON.stringify([CACHE_VERSION, config.typescriptVersion, tsconfigText]);
  }

  /** The JavaScript for one file, from the cache when its content, TypeScript and options are unchanged. */
  transpile(file: string, source: string): Output {
    const key = createHash("sha256").update(this.salt).update("\0").update(file).update("\0").update(source).digest("hex");
    const base = path.join(this.config.cacheDir, key.slice(0, 32));
    try {
      return { code: fs.readFileSync(`${base}.js`, "utf8"), map: fs.readFileSync(`${base}.js.map`, "utf8") };
    } catch {
      // Not cached yet (or unreadable): transpile below.
    }
    const out = this.compile(file, source);
    try {
      fs.mkdirSync(this.config.cacheDir, { recursive: true });
      // The map first, then the code: a reader that finds the code finds its map. Renames keep concurrent runs safe.
      for (const [ext, text] of [[".js.map", out.map], [".js", out.code]]) {
        const tmp = `${base}${ext}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, text);
        fs.renameSync(tmp, `${base}${ext}`);
      }
    } catch {
      // A read-only project still runs; it just transpiles every time.
    }
    return out;
  }

  private compile(file: string, source: string): Output {
    const ts = (this.ts ??= require(this.config.typescript) as typeof import("typescript"));
    const res = ts.transpileModule(source, { fileName: file, compilerOptions: this.compilerOptions(ts), reportDiagnostics: true });
    const errors = (res.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (errors.length) {
      const host = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => "\n" };
      throw new TSError(`⨯ Unable to compile TypeScript:\n${ts.formatDiagnostics(errors, host)}`);
    }
    // The map is kept aside (read only to print an error): drop the comment pointing at a file that does not exist.
    const code = res.outputText.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
    return { code, map: res.sourceMapText ?? "" };
  }

  /** As @pulumi/pulumi's runner sets up ts-node: its defaults under the project's tsconfig, emitting CommonJS. */
  private compilerOptions(ts: typeof import("typescript")): import("typescript").CompilerOptions {
    if (this.options) return this.options;
    let options: import("typescript").CompilerOptions = {};
    if (this.config.tsconfig) {
      const read = ts.readConfigFile(this.config.tsconfig, ts.sys.readFile);
      if (!read.error) options = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(this.config.tsconfig)).options;
    }
    const { moduleResolution: _r, outDir: _o, outFile: _f, rootDir: _d, declaration: _c, declarationMap: _m, composite: _p, incremental: _i, ...rest } = options;
    this.options = {
      target: ts.ScriptTarget.ES2020,
      ...rest,
      module: ts.ModuleKind.CommonJS,
      sourceMap: true,
      inlineSourceMap: false,
      inlineSources: false,
      noEmit: false,
      emitDeclarationOnly: false,
    };
    return this.options;
  }
}

/** Installs the .ts hook in this process (the program's), and source maps for errors that get printed. */
export function register(config: HookConfig): void {
  const transpiler = new Transpiler(config);
  const maps = new Map<string, string>();
  const Module = require("node:module") as { _extensions: Record<string, (m: NodeModule, file: string) => void> };
  Module._extensions[".ts"] = (m, file) => {
    const out = transpiler.transpile(file, fs.readFileSync(file, "utf8"));
    maps.set(file, out.map);
    (m as unknown as { _compile(code: string, file: string): void })._compile(out.code, file);
  };

  // @pulumi/pulumi's runner requires source-map-support/register, which would format every stack through source
  // maps. Install that same copy first, with a lookup for our maps, then keep V8's native formatting until an
  // error is about to be printed: its .stack is formatted on first read, by the formatter in place then.
  const sms = require(require.resolve("source-map-support", { paths: [path.join(config.pulumiDir, "cmd", "run")] }));
  sms.install({
    environment: "node",
    handleUncaughtExceptions: false,
    // Only the program's own files: mapping @pulumi/pulumi's frames through its maps names paths under node_modules
    // that make Node's util.inspect (which prints the error) spin until it runs out of memory.
    overrideRetrieveSourceMap: true,
    retrieveSourceMap: (source: string) => (maps.has(source) ? { url: source, map: maps.get(source) } : null),
  });
  const mapped = Error.prepareStackTrace;
  (Error as { prepareStackTrace?: unknown }).prepareStackTrace = undefined;
  // Registered before the runner's own handlers, so these run first.
  const mapStacks = () => void (Error.prepareStackTrace = mapped);
  process.on("uncaughtException", mapStacks);
  process.on("unhandledRejection", mapStacks);
}
