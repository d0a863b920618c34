// `docker diff`: what a container changed in its root filesystem, read from its overlay upper directory. A
// whiteout (a 0:0 character device) is a deletion; an entry some image layer also has is a change; the rest
// are additions. berth's own mount points (/.berth) are left out.
import * as fs from "node:fs";
import * as path from "node:path";
import { lstatBelow } from "../confine";

export async function rootfsChanges(upper: string, lowerDirs: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await fs.promises.readdir(path.join(upper, rel), { withFileTypes: true })) {
      const p = path.posix.join(rel, entry.name);
      if (p === "/.berth") continue;
      // Only a character device can be a whiteout: the rest need no lstat of their own.
      if (entry.isCharacterDevice() && (await fs.promises.lstat(path.join(upper, p))).rdev === 0) {
        out.push(`D ${p}`);
        continue;
      }
      // Never through a layer's symlink: an image's absolute symlink would point into the host.
      let inLower = false;
      for (const d of lowerDirs) if (!inLower && lstatBelow(d, p)) inLower = true;
      out.push(`${inLower ? "C" : "A"} ${p}`);
      if (entry.isDirectory()) await walk(p);
    }
  };
  await walk("/");
  return out;
}
