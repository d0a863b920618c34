// The seam's import rules, read from the sources: the provider and the SDK reach a host only through `Runtime`
// (and the factories that make one); what else they import from native/ is pure — no host access, nor anything
// that has it — or reads only the caller's files; native/ imports nothing from sdk/ or provider/.
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const REPO = path.resolve(__dirname, "../..");

function tsFiles(dir: string): string[] {
  return fs.readdirSync(path.join(REPO, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(rel);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [rel] : [];
  });
}

/** The modules a file imports at run time (type-only imports are left out), as repo paths or "node:x" names. */
function imports(file: string): string[] {
  const text = fs.readFileSync(path.join(REPO, file), "utf8");
  const found = [...text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"([^"]+)"|require\("([^"]+)"\)|import\("([^"]+)"\)/gm)];
  return found.map((m) => {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith(".")) return spec;
    const base = path.join(path.dirname(file), spec);
    return fs.existsSync(path.join(REPO, `${base}.ts`)) ? `${base}.ts` : path.join(base, "index.ts");
  });
}

/** Every native module `file` reaches at run time, itself included. */
function closure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const m of imports(file)) if (m.startsWith("native/")) closure(m, seen);
  return seen;
}

/** Runtime factories: they make a `Runtime` for the CLI, the engine and the plugin. */
const FACTORIES = ["native/index.ts", "native/runtime.ts", "native/runtime-lifecycle.ts"];
/**
 * Read or write only the caller's own files, nothing else on any host: a build context, the digests of a check's
 * files; the owner-named temp files of the state directory (staging names, whose owner is this process as
 * /proc/self tells: native/lock.ts); the lstat and readlink of paths below a root the caller names (native/confine.ts:
 * the context's Dockerfile, resolved inside the context); the kernel's random generator (/dev/urandom, for temp names:
 * native/random.ts).
 */
const CALLER_FILES = ["native/build/context.ts", "native/digest-cache.ts", "native/staging.ts", "native/json-file.ts", "native/lock.ts", "native/confine.ts", "native/random.ts"];
const HOST_ACCESS = ["node:child_process", "node:net", "node:os", "child_process", "os"];

describe("the Runtime seam", () => {
  const outside = [...tsFiles("provider"), ...tsFiles("sdk")];
  const used = new Set(outside.flatMap(imports).filter((m) => m.startsWith("native/") && !FACTORIES.includes(m) && !m.startsWith("native/remote/")));

  it("native/ imports nothing from sdk/ or provider/", () => {
    const wrong = tsFiles("native").flatMap((f) => imports(f).filter((m) => /^(sdk|provider)\//.test(m)).map((m) => `${f} → ${m}`));
    expect(wrong).toEqual([]);
  });

  it("what the provider and the SDK import from native/ besides the runtime touches no host", () => {
    expect(used.size).toBeGreaterThan(0);
    for (const module of used) {
      for (const m of closure(module)) {
        const header = fs.readFileSync(path.join(REPO, m), "utf8").split("\n", 3).join(" ");
        const hostly = imports(m).filter((i) => HOST_ACCESS.includes(i) || i.startsWith("native/host/") || ((i === "node:fs" || i === "fs") && !CALLER_FILES.includes(m)));
        expect(hostly, `${m} (imported through ${module})`).toEqual([]);
        if (m === module) expect(header, `${m} says at its top that it is pure or what it reads`).toMatch(/^\/\/ (Pure:|Reads only)/);
      }
    }
  });
});
