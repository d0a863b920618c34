// Which stack owns a host object: one file per object, root/owners/<kind>/<name>, holding the URN of the resource
// that made or adopted it. The provider writes it on create/import and removes it on delete, so the day-2
// commands can refuse to remove an object behind its stack's back (without --force) and find a container by its
// resource name. One file per object: two berth processes never rewrite each other's entries. Synchronous calls, as
// json-file.ts's: each create and delete claims or reads one, and fs.promises costs ~30× the CPU for a small file.
import * as fs from "node:fs";
import * as path from "node:path";
import type { ObjectKind, Owners } from "./runtime";
import { listDir, writeFileAtomic } from "./json-file";

export class OwnerFiles implements Owners {
  constructor(private readonly root: string) {}

  private file(kind: ObjectKind, name: string): string {
    // encodeURIComponent keeps "." and "..": encoded too, so no name resolves to a directory.
    const base = name === "." || name === ".." ? name.replace(/\./g, "%2E") : encodeURIComponent(name);
    return path.join(this.root, "owners", kind, base);
  }

  async claim(kind: ObjectKind, name: string, urn: string): Promise<void> {
    const file = this.file(kind, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // "#" never appears in an encoded name, so list() cannot mistake an owned object (say "web.tmp-1") for a temp file.
    writeFileAtomic(file, urn);
  }

  async release(kind: ObjectKind, name: string): Promise<void> {
    fs.rmSync(this.file(kind, name), { force: true });
  }

  async ownerOf(kind: ObjectKind, name: string): Promise<string | undefined> {
    try {
      return fs.readFileSync(this.file(kind, name), "utf8");
    } catch {
      return undefined;
    }
  }

  async list(kind: ObjectKind): Promise<Map<string, string>> {
    const dir = path.join(this.root, "owners", kind);
    const names = (await listDir(dir)).filter((n) => !n.includes("#"));
    const urns = await Promise.all(names.map((n) => fs.promises.readFile(path.join(dir, n), "utf8").catch(() => undefined)));
    return new Map(names.flatMap((n, i) => (urns[i] === undefined ? [] : [[decodeURIComponent(n), urns[i]!] as [string, string]])));
  }
}
