// A bind whose source is a file binds that file, as Docker's `-v /srv/app.conf:/etc/app.conf` does (berth made
// every source a directory: an existing file failed with EEXIST); a missing source is still made a directory.
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
});
