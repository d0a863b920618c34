// The program cache (provider/engine/transpile.ts) stays bounded: a miss drops entries older than a month.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { Transpiler } from "../../provider/engine/transpile";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

it("drops month-old entries when it writes a new one, and keeps recent ones", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-transpile-"));
  dirs.push(dir);
  const cache = path.join(dir, ".pulumi", "transpiled");
  fs.mkdirSync(cache, { recursive: true });
  const old = path.join(cache, "0".repeat(32) + ".js");
  const recent = path.join(cache, "1".repeat(32) + ".js");
  fs.writeFileSync(old, "old");
  fs.writeFileSync(recent, "recent");
  const monthAgo = (Date.now() - 31 * 24 * 3600 * 1000) / 1000;
  fs.utimesSync(old, monthAgo, monthAgo);
  const file = path.join(dir, "index.ts");
  const out = new Transpiler(dir).transpile(file, "const x: number = 1;\nexport { x };\n");
  expect(out.code).toContain("x = 1");
  expect(fs.existsSync(old)).toBe(false);
  expect(fs.existsSync(recent)).toBe(true);
  expect(fs.readdirSync(cache).filter((n) => n.endsWith(".js"))).toHaveLength(2);
});
