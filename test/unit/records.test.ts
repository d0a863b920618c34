// Container records are cached per process and checked against the file on every read: what another process
// (or another instance) writes is seen at once.
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { layout } from "../../native/paths";
import { ContainerRecords, type ContainerRecord } from "../../native/container/record";

const tmp = fs.mkdtempSync("/tmp/berth-test-records-");
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const record = (name: string, image: string): ContainerRecord => ({
  spec: { name, image },
  imageId: image,
  layers: [],
  createdAt: new Date().toISOString(),
});

describe("ContainerRecords", () => {
  const paths = layout(path.join(tmp, "root"), path.join(tmp, "run"));
  const mine = new ContainerRecords(paths);
  const other = new ContainerRecords(paths);

  it("sees another writer's change, addition and removal on the next read or list", async () => {
    fs.mkdirSync(paths.container("a").dir, { recursive: true });
    await mine.write(record("a", "one"));
    expect((await mine.read("a"))?.imageId).toBe("one");
    // Same length and written at once: only the file's identity tells the two apart.
    await other.write(record("a", "two"));
    expect((await mine.read("a"))?.imageId).toBe("two");
    fs.mkdirSync(paths.container("b").dir, { recursive: true });
    await other.write(record("b", "one"));
    expect((await mine.list()).map((r) => r.spec.name).sort()).toEqual(["a", "b"]);
    fs.rmSync(paths.container("a").dir, { recursive: true });
    expect(await mine.read("a")).toBeUndefined();
    expect((await mine.list()).map((r) => r.spec.name)).toEqual(["b"]);
  });

  it("keeps no record of a container removed meanwhile (a long-lived supervisor or agent lists them for days)", async () => {
    const cached = () => [...(mine as unknown as { cache: Map<string, unknown> }).cache.keys()].sort();
    for (const n of ["c", "d"]) {
      fs.mkdirSync(paths.container(n).dir, { recursive: true });
      await other.write(record(n, "one"));
    }
    await mine.list();
    expect(cached()).toEqual(["b", "c", "d"]);
    for (const n of ["c", "d"]) fs.rmSync(paths.container(n).dir, { recursive: true });
    await mine.list();
    expect(cached()).toEqual(["b"]);
  });
});
