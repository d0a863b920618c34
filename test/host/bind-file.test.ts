// Bind sources and targets: a source that is a file binds that file, as Docker's `-v /srv/app.conf:/etc/app.conf` does
// (a missing source is made a directory); nested targets are mounted parents first, whatever their order.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import type { Runtime } from "../../native";
import { busyboxRoot } from "./helpers";

const tag = randomBytes(3).toString("hex");
let tmp: string;
let rt: Runtime;
let remove: () => Promise<void>;

beforeAll(async () => {
  ({ tmp, rt, remove } = await busyboxRoot("berth-bindfile-"));
}, 60_000);

afterAll(() => remove(), 60_000);

async function exitOf(name: string): Promise<number | undefined> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const s = (await rt.containers.inspect(name))?.state;
    if (s?.status === "exited") return s.exitCode;
  }
  throw new Error(`${name} did not exit`);
}

describe("bind sources", () => {
  it("binds an existing file at a path the image lacks, and over a file it has", async () => {
    const conf = path.join(tmp, "app.conf");
    fs.writeFileSync(conf, "hello\n");
    const name = `tbf${tag}`;
    await rt.containers.run({
      name,
      image: "bb",
      command: ["sh", "-c", 'test "$(cat /srv/app.conf)" = hello && test -f /srv/app.conf && test "$(cat /bin/conf)" = hello'],
      binds: [{ source: conf, target: "/srv/app.conf" }, { source: conf, target: "/bin/conf" }],
      stopTimeout: 0,
    });
    expect(await exitOf(name)).toBe(0);
  }, 30_000);

  it("makes a missing source a directory", async () => {
    const dir = path.join(tmp, "made", "here");
    const name = `tbd${tag}`;
    await rt.containers.run({ name, image: "bb", command: ["sh", "-c", "test -d /data && touch /data/x"], binds: [{ source: dir, target: "/data" }], stopTimeout: 0 });
    expect(await exitOf(name)).toBe(0);
    expect(fs.existsSync(path.join(dir, "x"))).toBe(true);
  }, 30_000);

  it("mounts nested targets parents first, whatever their order (as Docker): the child stays visible", async () => {
    const parent = path.join(tmp, "nest", "p1");
    const child = path.join(tmp, "nest", "p2");
    fs.mkdirSync(parent, { recursive: true });
    fs.mkdirSync(child, { recursive: true });
    fs.writeFileSync(path.join(parent, "top"), "");
    fs.writeFileSync(path.join(child, "inner"), "");
    const both = "test -f /data/top && test -f /data/x/inner";
    const binds = [{ source: child, target: "/data/x/" }, { source: parent, target: "/data" }];
    for (const [i, order] of [binds, [...binds].reverse()].entries()) {
      const name = `tbn${i}${tag}`;
      await rt.containers.run({ name, image: "bb", command: ["sh", "-c", both], binds: order, stopTimeout: 0 });
      expect(await exitOf(name), `order ${i}`).toBe(0);
    }
    // A named volume (planned before binds) at /data/x under a bind at /data.
    const volume = `tbv${tag}`;
    await rt.volumes.create({ name: volume });
    const name = `tbn2${tag}`;
    await rt.containers.run({
      name, image: "bb", command: ["sh", "-c", "test -f /data/top && touch /data/x/from-volume"],
      binds: [{ source: parent, target: "/data" }], mounts: [{ volume, target: "/data/x" }], stopTimeout: 0,
    });
    expect(await exitOf(name)).toBe(0);
    // Written into the volume, not into the bind's directory beneath it.
    expect(fs.readdirSync(path.join(parent, "x"))).toEqual([]);
    expect(fs.existsSync(path.join((await rt.volumes.inspect(volume))!.mountpoint, "from-volume"))).toBe(true);
  }, 60_000);

  it("follows a source that is a symlink on the host, as mount(2) does: the command under it is found", async () => {
    const real = path.join(tmp, "linked", "real");
    fs.mkdirSync(path.join(real, "bin"), { recursive: true });
    fs.writeFileSync(path.join(real, "bin", "run"), "#!/bin/sh\nexit 7\n", { mode: 0o755 });
    // A relative link: followed inside the container, it leads nowhere.
    fs.symlinkSync("real", path.join(tmp, "linked", "link"));
    const name = `tbl${tag}`;
    await rt.containers.run({ name, image: "bb", command: ["/tool/bin/run"], binds: [{ source: path.join(tmp, "linked", "link"), target: "/tool" }], stopTimeout: 0 });
    expect(await exitOf(name)).toBe(7);
  }, 30_000);
});
