// A container's /etc files read by berth (the user lookup, at a check over the image's layers and at a start over
// the rootfs) are hostile: a container sharing a volume over /etc can swap /etc/passwd for a FIFO (a read would
// hang the preview) or a link to a host file between berth's lstat and its read. Both paths read with one rule and
// one size cap.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readSmallFile, SMALL_FILE_MAX } from "../../native/confine";
import { readTextIn } from "../../native/container/executable";
import { resolveUser, resolveUserWith } from "../../native/container/user";

let root: string;
let layer: string;
let secret: string;
const passwd = () => path.join(layer, "etc/passwd");
const LINE = "app:x:1000:1001::/:/bin/sh\n";
const view = () => ({ layers: [layer], mounts: [] });

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-etc-read-"));
  layer = path.join(root, "layer");
  fs.mkdirSync(path.join(layer, "etc"), { recursive: true });
  secret = path.join(root, "host-shadow");
  fs.writeFileSync(secret, `root:$6$hostsecret:0:0\n${LINE}`);
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Puts `make` at /etc/passwd, whatever was there. */
function plant(make: (p: string) => void) {
  fs.rmSync(passwd(), { force: true });
  make(passwd());
}

/** The user as the check (over the layers) and the start (over the rootfs) resolve it: found or the error. */
async function bothWays(): Promise<string[]> {
  const say = (p: Promise<{ uid: number; gid: number }>) => p.then((u) => `${u.uid}:${u.gid}`, (e: Error) => e.message);
  return [await say(resolveUserWith("app", (f) => readTextIn(view(), f))), await say(resolveUser("app", layer))];
}

describe("a container's /etc/passwd", () => {
  it("is read when it is a regular file", async () => {
    plant((p) => fs.writeFileSync(p, LINE));
    expect(await bothWays()).toEqual(["1000:1001", "1000:1001"]);
  });

  it("is absent, at once, when it is a FIFO or a link to a host file", async () => {
    plant((p) => execFileSync("mkfifo", [p]));
    expect(await bothWays()).toEqual([expect.stringMatching(/unable to find user app/), expect.stringMatching(/unable to find user app/)]);
    plant((p) => fs.symlinkSync(secret, p));
    expect(await bothWays()).toEqual([expect.stringMatching(/unable to find user app/), expect.stringMatching(/unable to find user app/)]);
  }, 10_000);

  it("swapped after its lstat for a link to a host file or a FIFO is neither followed nor waited on", async () => {
    plant((p) => fs.writeFileSync(p, LINE));
    const seen = fs.lstatSync(passwd());
    fs.linkSync(passwd(), path.join(root, "kept")); // the seen inode stays taken: no new file gets its number
    plant((p) => fs.symlinkSync(secret, p));
    expect(await readSmallFile(passwd(), seen)).toBeUndefined();
    plant((p) => execFileSync("mkfifo", [p]));
    expect(await readSmallFile(passwd(), seen)).toBeUndefined();
    // Another regular file there now (a hard link to a host file would be one): not the inode the lstat saw.
    plant((p) => fs.writeFileSync(p, LINE));
    expect(await readSmallFile(passwd(), seen)).toBeUndefined();
    expect(await readSmallFile(passwd(), fs.lstatSync(passwd()))).toBe(LINE);
  }, 10_000);

  it("has one size cap at a check and at a start: over it the file is absent to both", async () => {
    plant((p) => fs.writeFileSync(p, LINE.padEnd(SMALL_FILE_MAX, "#")));
    expect(await bothWays()).toEqual(["1000:1001", "1000:1001"]);
    plant((p) => fs.writeFileSync(p, LINE.padEnd(SMALL_FILE_MAX + 1, "#")));
    expect(await bothWays()).toEqual([expect.stringMatching(/unable to find user app/), expect.stringMatching(/unable to find user app/)]);
  }, 10_000);
});
