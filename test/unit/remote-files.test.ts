// The agent's staging directories (files.ts) are removed however a download ends: read whole, stopped by the
// reader, or never read because the connection was lost as the result went out.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { KEPT_GRACE_MS, keptLock, receiveFiles, remoteDirs, sendFiles, slot, sweepKept, withFiles } from "../../native/remote/files";
import { tryLock } from "../../native/lock";
import { methodOf } from "../../native/remote/methods";
import { Peer } from "../../native/remote/peer";
import { jsonFrame, readFrames } from "../../native/remote/protocol";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-files-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A `save` served with its download staged: the runtime writes the file. */
const save = (root: string, args: unknown[], then?: () => void) =>
  withFiles(root, [slot(args, 1, "down")], async () => {
    fs.writeFileSync(args[1] as string, "image bytes");
    then?.();
    return "saved";
  }) as Promise<{ value: unknown; files: AsyncIterableIterator<Uint8Array>[] }>;

describe("remote files: staging", () => {
  it("a download's staging goes whether it is read whole, stopped before its first byte, or the connection is lost", async () => {
    const root = fs.mkdtempSync(path.join(tmp, "root-"));
    const staging = remoteDirs(root).staging;

    const whole = await save(root, ["img", undefined]);
    expect(fs.statSync(staging).mode & 0o777).toBe(0o700);
    let bytes = 0;
    for await (const b of whole.files[0]) bytes += b.length;
    expect(bytes).toBeGreaterThan(0);
    expect(fs.readdirSync(staging)).toEqual([]);

    const stopped = await save(root, ["img", undefined]);
    await stopped.files[0].return!();
    expect(fs.readdirSync(staging)).toEqual([]);

    // The agent end of a connection that drops while the call runs: its result (and the tar) goes nowhere.
    const agent: Peer = new Peer(new PassThrough(), "agent", (_m, args) => save(root, args, () => agent.fail(() => new Error("lost"))));
    await agent.receive(readFrames(Readable.from([jsonFrame({ t: "call", id: 1, m: "images.save", a: { v: ["img", null] } })])));
    await agent.idle();
    await sleep(50);
    expect(fs.readdirSync(staging)).toEqual([]);
  });

  it("a path the call reads arrives as what it leads to (a symlinked tarball, archive or context), as the local runtime reads it; a copy's symlink stays one", async () => {
    const root = fs.mkdtempSync(path.join(tmp, "root-"));
    const here = fs.mkdtempSync(path.join(tmp, "caller-"));
    fs.writeFileSync(path.join(here, "v3.tar"), "tar bytes");
    fs.symlinkSync("v3.tar", path.join(here, "latest.tar"));
    fs.mkdirSync(path.join(here, "app"));
    fs.writeFileSync(path.join(here, "app", "Dockerfile"), "FROM scratch\n");
    fs.symlinkSync("app", path.join(here, "current"));
    fs.writeFileSync(path.join(here, "Other.dockerfile"), "FROM other\n");
    fs.symlinkSync("Other.dockerfile", path.join(here, "df-link"));
    /** What the runtime on the agent sees at each path the call's arguments hold, after the files have crossed. */
    const staged = async (method: string, args: unknown[], look: (a: unknown[]) => string[]) => {
      const m = methodOf(method)!;
      await sendFiles(m.files(args));
      return (await withFiles(root, m.files(args), async () =>
        look(args).map((p) => (fs.lstatSync(p).isSymbolicLink() ? `link ${fs.readlinkSync(p)}` : fs.statSync(p).isDirectory() ? `dir ${fs.readdirSync(p)}` : fs.readFileSync(p, "utf8"))))) as string[];
    };
    expect(await staged("images.importRootfs", [{ ref: "x", tarball: path.join(here, "latest.tar") }], ([r]) => [(r as { tarball: string }).tarball])).toEqual(["tar bytes"]);
    expect(await staged("images.importArchive", [{ ref: "x", path: path.join(here, "latest.tar") }], ([r]) => [(r as { path: string }).path])).toEqual(["tar bytes"]);
    expect(await staged("images.load", [path.join(here, "latest.tar")], ([f]) => [f as string])).toEqual(["tar bytes"]);
    const build = (dockerfile?: string) => [{ ref: "x", context: path.join(here, "current"), dockerfile }];
    const seen = ([r]: unknown[]) => {
      const req = r as { context: string; dockerfile: string };
      return [req.context, path.resolve(req.context, req.dockerfile ?? "Dockerfile")];
    };
    expect(await staged("images.build", build(), seen)).toEqual(["dir Dockerfile", "FROM scratch\n"]);
    expect(await staged("images.build", build(path.join(here, "df-link")), seen)).toEqual(["dir Dockerfile", "FROM other\n"]);
    // docker cp copies a symlink as it is.
    expect(await staged("containers.copy", ["c", "to", "/", path.join(here, "latest.tar")], (a) => [a[3] as string])).toEqual(["link v3.tar"]);
    expect(fs.readdirSync(remoteDirs(root).staging)).toEqual([]);
  });

  it("a download whose destination is refused is stopped at the agent at once", async () => {
    let stopped = false;
    const tar: AsyncIterableIterator<Uint8Array> = {
      [Symbol.asyncIterator]: () => tar,
      next: () => new Promise(() => {}),
      return: async () => {
        stopped = true;
        return { value: undefined, done: true };
      },
    };
    await expect(receiveFiles("images.save", "ssh://h", [path.join(tmp, "no-such-dir", "out.tar")], [tar])).rejects.toThrow(/ENOENT/);
    expect(stopped).toBe(true);
  });
});

describe("remote files: kept files", () => {
  it("a sweep judges a kept file only once no call of another agent is sending it again: the file a call just sent stays", async () => {
    const root = fs.mkdtempSync(path.join(tmp, "root-"));
    const args: unknown[] = [Buffer.from("-----BEGIN CERTIFICATE-----")];
    const file = (await withFiles(root, [slot(args, 0, "kept")], async () => args[0])) as string;
    const past = new Date(Date.now() - 2 * KEPT_GRACE_MS);
    fs.utimesSync(file, past, past);
    // Another agent (the lock's file, not this process's queue) is sending the file again: its grace restarts
    // under the lock, so a sweep that read the old time before must not remove it.
    const release = await tryLock(keptLock(root));
    expect(release).toBeDefined();
    const sweep = sweepKept(root, new Set());
    await sleep(150);
    expect(fs.existsSync(file)).toBe(true);
    fs.utimesSync(file, new Date(), new Date());
    release!();
    expect(await sweep).toEqual([]);
    expect(fs.existsSync(file)).toBe(true);
    // Past its grace and unsent, it goes.
    fs.utimesSync(file, past, past);
    expect(await sweepKept(root, new Set())).toEqual([file]);
    expect(fs.readdirSync(remoteDirs(root).kept)).toEqual([]);
  });
});
