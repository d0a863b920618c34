// How a TypeScript program starts fast: the program host (program-host.ts) installs this require hook instead of
// letting @pulumi/pulumi's runner register ts-node. The hook transpiles each .ts file once with berth's own
// TypeScript, caches the JavaScript by content under the project's .pulumi/transpiled/, and loads TypeScript only
// on a cache miss. Stack traces stay native (mapping
// every stack the SDK reads costs); source maps are switched on only when an uncaught error is about to be printed,
// so the error still points at the .ts line.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

interface HookConfig {
  /** The project directory: its tsconfig.json (or PULUMI_NODEJS_TSCONFIG_PATH) gives the compiler options. */
  dir: string;
  /** @pulumi/pulumi's runner (PULUMI/cmd/run): source-map-support is resolved from there (the copy it installs). */
  pulumiRun: string;
}

/** Bumped when the emitted code or the options below change, so old cache entries are not used. */
const CACHE_VERSION = "1";

/** Cache entries older than this go when a new one is written. */
const STALE_MS = 30 * 24 * 3600 * 1000;

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
  private readonly cacheDir: string;
  private readonly tsconfig?: string;
  private readonly salt: string;
  private ts?: typeof import("typescript");
  private options?: import("typescript").CompilerOptions;

  constructor(dir: string) {
    this.cacheDir = path.join(dir, ".pulumi", "transpiled");
    const tsconfig = path.resolve(dir, process.env.PULUMI_NODEJS_TSCONFIG_PATH ?? "tsconfig.json");
    this.tsconfig = fs.existsSync(tsconfig) ? tsconfig : undefined;
    // The key covers the tsconfig's own text, not files it `extends`: touch it after changing those.
    const tsconfigText = this.tsconfig ? fs.readFileSync(this.tsconfig, "utf8") : "";
    const tsVersion = JSON.parse(fs.readFileSync(require.resolve("typescript/package.json"), "utf8")).version;
    this.salt = JSON.stringify([CACHE_VERSION, tsVersion, tsconfigText]);
  }

  /** The JavaScript for one file, from the cache when its content, TypeScript and options are unchanged. */
  transpile(file: string, source: string): Output {
    const key = createHash("sha256").update(this.salt).update("\0").update(file).update("\0").update(source).digest("hex");
    const base = path.join(this.cacheDir, key.slice(0, 32));
    try {
      return { code: fs.readFileSync(`${base}.js`, "utf8"), map: fs.readFileSync(`${base}.js.map`, "utf8") };
    } catch {
      // Not cached yet (or unreadable): transpile below.
    }
    const out = this.compile(file, source);
    try {
      fs.mkdirSync(this.cacheDir, { recursive: true });
      // The map first, then the code: a reader that finds the code finds its map. Renames keep concurrent runs safe.
      for (const [ext, text] of [[".js.map", out.map], [".js", out.code]]) {
        const tmp = `${base}${ext}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, text);
        fs.renameSync(tmp, `${base}${ext}`);
      }
      this.sweep();
    } catch {
      // A read-only project still runs; it just transpiles every time.
    }
    return out;
  }

  /**
   * Drops entries written more than STALE_MS ago, on a miss only (a program was edited), so the cache holds about
   * the versions of the last month. An entry still in use that goes is transpiled again once; a concurrent run
   * reading it falls back to transpiling.
   */
  private sweep(): void {
    const cutoff = Date.now() - STALE_MS;
    for (const name of fs.readdirSync(this.cacheDir)) {
      const file = path.join(this.cacheDir, name);
      try {
        if (fs.statSync(file).mtimeMs < cutoff) fs.rmSync(file, { force: true });
      } catch {
        // Gone already (another run swept it).
      }
    }
  }

  private compile(file: string, source: string): Output {
    const ts = (this.ts ??= require("typescript") as typeof import("typescript"));
    const res = ts.transpileModule(source, { fileName: file, compilerOptions: this.compilerOptions(ts), reportDiagnostics: true });
    // Only the file's own (syntax) errors: option diagnostics (no file) are about the options forced below, e.g.
    // TypeScript 6 deprecating the Node10 resolution that transpile-only output never uses.
    const errors = (res.diagnostics ?? []).filter((d) => d.file && d.category === ts.DiagnosticCategory.Error);
    if (errors.length) {
      const host = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => "\n" };
      throw new TSError(`⨯ Unable to compile TypeScript:\n${ts.formatDiagnostics(errors, host)}`);
    }
    // The map is kept aside (read only to print an error): drop the comment pointing at a file that does not exist.
    const code = res.outputText.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
    return { code, map: res.sourceMapText ?? "" };
  }

  /** The project's tsconfig (`extends` followed), else Pulumi's defaults; emitting CommonJS with a separate map. */
  private compilerOptions(ts: typeof import("typescript")): import("typescript").CompilerOptions {
    if (this.options) return this.options;
    let options: import("typescript").CompilerOptions = { target: ts.ScriptTarget.ES2020, esModuleInterop: true };
    if (this.tsconfig) {
      const read = ts.readConfigFile(this.tsconfig, ts.sys.readFile);
      if (read.error) throw new Error(`${this.tsconfig}: ${ts.flattenDiagnosticMessageText(read.error.messageText, "\n")}`);
      options = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(this.tsconfig), undefined, this.tsconfig).options;
    }
    // Maps name the .ts file itself: no output directory to be relative to.
    const { outDir: _outDir, rootDir: _rootDir, sourceRoot: _sourceRoot, mapRoot: _mapRoot, ...kept } = options;
    this.options = {
      ...kept,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      sourceMap: true,
      inlineSourceMap: false,
      inlineSources: false,
      declaration: false,
      noEmit: false,
      emitDeclarationOnly: false,
    };
    return this.options;
  }
}

/** Installs the .ts hook in this process (the program's), and source maps for errors that get printed. */
export function register(config: HookConfig): void {
  const transpiler = new Transpiler(config.dir);
  const maps = new Map<string, string>();
  const extensions = require.extensions as Record<string, (m: NodeJS.Module, file: string) => void>;
  const js = extensions[".js"];
  for (const ext of [".ts", ".cts"]) {
    extensions[ext] = (m, file) => {
      if (file.split(path.sep).includes("node_modules")) return js(m, file);
      const out = transpiler.transpile(file, fs.readFileSync(file, "utf8"));
      maps.set(file, out.map);
      (m as NodeJS.Module & { _compile(code: string, file: string): void })._compile(out.code, file);
    };
  }

  // @pulumi/pulumi's runner requires source-map-support/register, which would format every stack through source
  // maps. Install that same copy first, with a lookup for our maps, then keep native formatting until an error is
  // about to be printed: its .stack is formatted on first read, by the formatter in place then.
  const sms = require(require.resolve("source-map-support", { paths: [config.pulumiRun] }));
  sms.install({
    environment: "node",
    handleUncaughtExceptions: false,
    // Only the program's own files: mapping @pulumi/pulumi's frames through its maps names paths under node_modules
    // that make Node's util.inspect (which prints the error) spin until it runs out of memory.
    overrideRetrieveSourceMap: true,
    retrieveSourceMap: (source: string) => (maps.has(source) ? { url: source, map: maps.get(source) } : null),
  });
  const mapped = Error.prepareStackTrace;
  (Error as { prepareStackTrace?: unknown }).prepareStackTrace = formatStack;
  // Registered before the runner's own handlers, so these run first.
  const mapStacks = () => void (Error.prepareStackTrace = mapped);
  process.on("uncaughtException", mapStacks);
  process.on("unhandledRejection", mapStacks);
}

/** As Node formats a stack with no Error.prepareStackTrace (its own errors show their code: `TypeError [ERR_X]: …`). */
function formatStack(error: Error, trace: NodeJS.CallSite[]): string {
  let head: string;
  try {
    head = isNodeError(error) ? `${error.name} [${(error as { code?: string }).code}]: ${error.message}` : Error.prototype.toString.call(error);
  } catch {
    head = "<error>";
  }
  return trace.length === 0 ? head : `${head}\n    at ${trace.join("\n    at ")}`;
}

function isNodeError(error: object): boolean {
  for (let o: object | null = error; o; o = Object.getPrototypeOf(o)) {
    if (Object.getOwnPropertySymbols(o).some((s) => s.description === "kIsNodeError")) return true;
  }
  return false;
}
