// The program's process: `node program-host.js PULUMI/cmd/run ARGS…`, started in the project directory. It makes
// the project's .ts files load through berth's own TypeScript (transpile-only, the project's tsconfig), then hands
// over to @pulumi/pulumi's runner as Pulumi's language host would start it. berth's TypeScript, not the project's:
// a project may have none (Pulumi would fall back to its vendored TypeScript 3.8 and ts-node 7), or TypeScript 7
// for its own tsc, which has no transpile API. An ES-module project ("type": "module") is left to Pulumi's runner.
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";

/** The project's compiler options (its tsconfig, `extends` followed), as a CommonJS module with inline maps. */
function compilerOptions(dir: string): ts.CompilerOptions {
  const file = path.resolve(dir, process.env.PULUMI_NODEJS_TSCONFIG_PATH ?? "tsconfig.json");
  // Pulumi's defaults for a project without a tsconfig.
  let options: ts.CompilerOptions = { target: ts.ScriptTarget.ES2020, esModuleInterop: true };
  if (fs.existsSync(file)) {
    const read = ts.readConfigFile(file, ts.sys.readFile);
    if (read.error) throw new Error(`${file}: ${ts.flattenDiagnosticMessageText(read.error.messageText, "\n")}`);
    options = ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(file), undefined, file).options;
  }
  // Maps name the .ts file itself: no output directory to be relative to.
  const { outDir: _outDir, rootDir: _rootDir, sourceRoot: _sourceRoot, mapRoot: _mapRoot, ...kept } = options;
  return {
    ...kept,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    inlineSourceMap: true,
    sourceMap: false,
    declaration: false,
    noEmit: false,
  };
}

/** Loads .ts/.cts files outside node_modules by transpiling them; stack traces point at the TypeScript lines. */
function register(dir: string, pulumiRun: string): void {
  const options = compilerOptions(dir);
  const compiled = new Map<string, string>();
  // The runner installs source-map-support, which reads a file's map from its text: give it the compiled text.
  const sms = require(require.resolve("source-map-support", { paths: [pulumiRun] }));
  sms.install({ environment: "node", retrieveFile: (file: string) => compiled.get(file) ?? null });
  const extensions = require.extensions as Record<string, (m: NodeJS.Module, filename: string) => void>;
  const js = extensions[".js"];
  for (const ext of [".ts", ".cts"]) {
    extensions[ext] = (m, filename) => {
      if (filename.split(path.sep).includes("node_modules")) return js(m, filename);
      const out = ts.transpileModule(fs.readFileSync(filename, "utf8"), { fileName: filename, compilerOptions: options }).outputText;
      compiled.set(filename, out);
      (m as NodeJS.Module & { _compile(code: string, filename: string): void })._compile(out, filename);
    };
  }
}

function main(): void {
  const [pulumiRun, ...args] = process.argv.slice(2);
  const dir = process.cwd();
  let esm = false;
  try {
    esm = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).type === "module";
  } catch {
    // No package.json: a CommonJS program.
  }
  if (esm) process.env.PULUMI_NODEJS_TYPESCRIPT = "true";
  else register(dir, pulumiRun);
  // The runner reads its arguments from process.argv, as if started as `node cmd/run ARGS…`.
  process.argv = [process.argv[0], pulumiRun, ...args];
  require(pulumiRun);
}

main();
