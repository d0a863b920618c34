// Defers loading modules a program's run seldom uses. @pulumi/pulumi requires, at load, TypeScript (to serialize
// closures), npm's Arborist, fdir and normalize-package-data (to find a closure's packages), its Automation API and
// OpenTelemetry's SDK (only with --tracing): over half a second of CPU before the program's first line. berth cannot change
// @pulumi/pulumi, so it answers those requires with a stand-in that loads the real module on first use.
import * as path from "node:path";

type Exports = Record<PropertyKey, unknown>;

/** Makes `require(name)` from `fromDir` return a stand-in until the module is used. */
export function deferLoading(fromDir: string, name: string): void {
  let file: string;
  try {
    file = require.resolve(name, { paths: [fromDir] });
  } catch {
    return; // Not installed: the real require will say so, if it ever happens.
  }
  if (require.cache[file]) return;
  let real: Exports | undefined;
  const load = (): Exports => {
    if (!real) {
      delete require.cache[file];
      real = require(file) as Exports;
    }
    return real;
  };
  // `__esModule` answered without loading, so TypeScript's import helpers hand the stand-in through untouched;
  // `default` then means what __importStar/__importDefault would have made of a plain CommonJS module.
  const member = (p: PropertyKey): unknown => {
    const mod = load();
    return p === "default" && !mod.__esModule ? mod : mod[p];
  };
  const standIn = new Proxy({} as Exports, {
    get: (_t, p) => (p === "__esModule" ? true : member(p)),
    has: (_t, p) => p in load(),
    ownKeys: () => Reflect.ownKeys(load()),
    getOwnPropertyDescriptor: (_t, p) => {
      const d = Reflect.getOwnPropertyDescriptor(load(), p);
      return d && { ...d, configurable: true };
    },
    set: (_t, p, v) => Reflect.set(load(), p, v),
  });
  const m = new (require("node:module") as typeof import("node:module"))(file);
  m.filename = file;
  m.loaded = true;
  m.paths = [];
  m.exports = standIn;
  require.cache[file] = m;
}

/** What @pulumi/pulumi (at pulumiDir) loads eagerly but a run needs only in rare cases. */
export function deferPulumiExtras(pulumiDir: string): void {
  const run = path.join(pulumiDir, "cmd", "run");
  deferLoading(pulumiDir, "typescript");
  for (const closureOnly of ["@npmcli/arborist", "normalize-package-data", "fdir"]) deferLoading(path.join(pulumiDir, "runtime", "closure"), closureOnly);
  deferLoading(pulumiDir, "./automation");
  for (const otel of ["resources", "sdk-trace-base", "exporter-zipkin", "instrumentation-grpc", "sdk-trace-node", "instrumentation"]) {
    deferLoading(run, `@opentelemetry/${otel}`);
  }
}

/**
 * zod loads, with itself, the messages of every language it speaks (about 50 files, a tenth of the CLI's start);
 * berth's are English, which zod sets up from its own file. The rest load if `z.locales` is ever read.
 */
export function deferZodLocales(): void {
  const zod = path.dirname(require.resolve("zod/package.json"));
  deferLoading(zod, path.join(zod, "v4", "locales", "index.cjs"));
}

/**
 * @pulumi/pulumi's runner opens an inspector session and enables the debugger before the program's first line, so
 * that serializing a closure can map functions to files: 70 ms, and then an event for every script compiled. The
 * session is opened on first use instead (enabling the debugger then reports the scripts loaded so far).
 */
export function deferInspector(pulumiDir: string): void {
  const hooks = require(path.join(pulumiDir, "runtime", "closure", "v8Hooks.js")) as { isInitializedAsync(): Promise<void> };
  hooks.isInitializedAsync = async () => {};
}
