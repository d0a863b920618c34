// The agent's staging directories (files.ts) are removed however a download ends: read whole, stopped by the
// reader, or never read because the connection was lost as the result went out.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { remoteDirs, slot, withFiles } from "../../native/remote/files";
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
});
