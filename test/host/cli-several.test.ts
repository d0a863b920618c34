// Day-2 commands given several names, as Docker's CLI takes them: a name that fails (here, one that does not exist)
// is reported and the others are still acted on; the exit code is then 1. Real objects in a root of the test's own.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { createNativeRuntime, type Runtime } from "../../native";
import { berth, clearRoot, ensureQuickstartRootfs, QUICKSTART, waitFor } from "./helpers";

const tag = randomBytes(3).toString("hex");
let tmp: string;
let root: string;
let runDir: string;
let rt: Runtime;
const cli = (...args: string[]) => berth(args, { BERTH_ROOT: root, BERTH_RUN: runDir });

const tarball = path.join(QUICKSTART, "busybox-rootfs.tar");

beforeAll(async () => {
  ensureQuickstartRootfs();
  tmp = fs.mkdtempSync("/tmp/berth-test-several-");
  [root, runDir] = [path.join(tmp, "root"), path.join(tmp, "run")];
  rt = createNativeRuntime({ root, runDir });
  for (const ref of ["bta", "btb"]) await rt.images.importRootfs({ ref, tarball, config: { cmd: ["sh"] } });
});

afterAll(async () => {
  await clearRoot(root, runDir);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("several names, one of them missing", () => {
  it("volume rm and network rm remove the others, report the missing one, and exit 1", async () => {
    for (const v of ["btv1", "btv2"]) await rt.volumes.create({ name: `${v}${tag}` });
    const octet = 100 + (parseInt(tag.slice(0, 2), 16) % 100);
    for (const [i, n] of ["btn1", "btn2"].entries()) await rt.networks.create({ name: `${n}${tag}`, subnet: `10.${octet}.${i}.0/24`, nat: false });
    for (const [kind, api] of [["volume", rt.volumes], ["network", rt.networks]] as const) {
      const [a, b] = kind === "volume" ? [`btv1${tag}`, `btv2${tag}`] : [`btn1${tag}`, `btn2${tag}`];
      const r = await cli(kind, "rm", a, "nosuch", b);
      expect([r.code, r.stdout], r.stderr).toEqual([1, `${a}\n${b}\n`]);
      expect(r.stderr).toMatch(kind === "volume" ? /no such volume/ : /network nosuch not found/);
      expect([await api.inspect(a), await api.inspect(b)]).toEqual([undefined, undefined]);
    }
  });

  it("rmi removes the others, reports the missing one, and exits 1", async () => {
    const r = await cli("rmi", "bta", "nosuch", "btb");
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/Untagged: bta:latest\n(.*\n)*Untagged: btb:latest\n/);
    expect(r.stderr).toContain("No such image: nosuch");
    expect(await rt.images.list()).toEqual([]);
  });

  it("wait prints the exit code of the others, reports the missing one, and exits 1", async () => {
    await rt.images.importRootfs({ ref: "btc", tarball, config: { cmd: ["sh"] } });
    const c = `btw${tag}`;
    await rt.containers.run({ name: c, image: "btc", command: ["sh", "-c", "exit 3"], stopTimeout: 0 });
    await waitFor("it exits", async () => ((await rt.containers.inspect(c))?.status === "running" ? undefined : true), 10_000, 20);
    const r = await cli("wait", "nosuch", c);
    expect([r.code, r.stdout], r.stderr).toEqual([1, "3\n"]);
    expect(r.stderr).toContain("No such container: nosuch");
  });
});
