// A root's containers directory is flagged TOPDIR on ext4 (native/host/spread.ts), so that each container's files
// are allocated in a block group of their own rather than where every earlier container's were deleted.
import { afterEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { realHost } from "../../native/host/exec";
import { spreadSubdirs } from "../../native/host/spread";

const EXT4_MAGIC = 0xef53;
const onExt4 = fs.statfsSync(os.tmpdir()).type === EXT4_MAGIC && spawnSync("lsattr", ["-d", "/"]).status === 0;
const flags = (dir: string): string => execFileSync("lsattr", ["-d", dir], { encoding: "utf8" }).split(" ")[0];

let tmp = "";
afterEach(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!onExt4)("spreadSubdirs (skipped: the temp directory is not on ext4)", () => {
  it("flags the directory TOPDIR, once per process, and new subdirectories leave its block group", async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-test-spread-"));
    const dir = path.join(tmp, "containers");
    fs.mkdirSync(dir);
    expect(flags(dir)).not.toContain("T");
    await spreadSubdirs(realHost, dir);
    expect(flags(dir)).toContain("T");
    // Orlov places each in the group with the fewest directories: not all beside the parent any more.
    const groupOf = (p: string) => Math.floor(fs.statSync(p).ino / 8192);
    const groups = new Set(Array.from({ length: 8 }, (_, i) => (fs.mkdirSync(path.join(dir, `c${i}`)), groupOf(path.join(dir, `c${i}`)))));
    expect(groups.size).toBeGreaterThan(1);
  });

  it("leaves a directory it cannot flag as it is, without an error", async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-test-spread-"));
    await expect(spreadSubdirs(realHost, path.join(tmp, "missing"))).resolves.toBeUndefined();
  });
});
