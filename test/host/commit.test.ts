// `berth commit`: a container's changes (a file written, one deleted) become a new image; a container of that image
// sees them, and the image's config carries what the container ran with.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { runcId } from "../../native/names";
import { berth, collect, runcAt, ensureQuickstartRootfs, QUICKSTART, startBerth, waitFor } from "./helpers";

describe("berth commit", () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-commit-"));
  const env = { BERTH_ROOT: root };
  const rt: Runtime = createNativeRuntime({ root });
  const [source, child] = [`cmsrc${process.pid}`, `cmnew${process.pid}`];
  let base = "";

  beforeAll(async () => {
    ensureQuickstartRootfs();
    const tarball = path.join(QUICKSTART, "busybox-rootfs.tar");
    base = (await rt.images.importRootfs({ ref: "commit-base:latest", tarball, config: { cmd: ["sh"] } })).id;
  });
  afterAll(async () => {
    for (const name of [source, child]) await rt.containers.remove(name, { graceSeconds: 0 }).catch(() => undefined);
    for (const ref of ["commit-base:latest", "committed:v1"]) await rt.images.remove(ref).catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("turns a running container's changes into a layer of a new image", async () => {
    await rt.containers.run({
      name: source, image: base, networkMode: "none", env: { STAGE: "committed" },
      command: ["sh", "-c", "echo hi > /made.txt && rm /etc/group && touch /ready && exec sleep 1000"],
    });
    await waitFor("the source container's changes", () => fs.existsSync(path.join(root, "containers", source, "upper/ready")) || undefined);

    const committed = await berth(["commit", "-a", "ops", "-m", "seeded", source, "committed:v1"], env);
    expect(committed.code, committed.stderr).toBe(0);
    const image = (await rt.images.inspect("committed:v1"))!;
    expect(committed.stdout.trim()).toBe(image.id);
    expect(image.layers).toHaveLength(2);
    expect(image.config.env).toContain("STAGE=committed");
    expect((await rt.containers.inspect(source))!.status).toBe("running"); // paused only while copying

    await rt.containers.run({
      name: child, image: image.id, networkMode: "none",
      command: ["sh", "-c", 'test "$(cat /made.txt)" = hi && test ! -e /etc/group; echo $? > /result; exec sleep 1000'],
    });
    const out = path.join(root, "result");
    await waitFor("the new container's check", () => fs.existsSync(path.join(root, "containers", child, "upper/result")) || undefined);
    const copied = await berth(["cp", `${child}:/result`, out], env);
    expect(copied.code, copied.stderr).toBe(0);
    expect(fs.readFileSync(out, "utf8")).toBe("0\n");
  });

  it("killed while the container is paused for the copy, leaves it running, not frozen", async () => {
    const big = `cmbig${process.pid}`;
    // Enough to copy that the commit is still copying when it is killed.
    await rt.containers.run({ name: big, image: base, networkMode: "none", command: ["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=300 2>/dev/null; touch /ready; exec sleep 1000"] });
    try {
      await waitFor("the container's big file", () => fs.existsSync(path.join(root, "containers", big, "upper/ready")) || undefined, 60_000);
      const child = startBerth(["commit", big, "killed:1"], env);
      const exited = collect(child);
      const frozen = () => JSON.parse(execFileSync("runc", runcAt(root, big, ["state", runcId(root, big)]), { encoding: "utf8" })).status as string;
      await waitFor("the commit's pause", () => frozen() === "paused" || undefined, 30_000, 2);
      process.kill(-child.pid!, "SIGKILL"); // the whole process group, as a Ctrl-C would reach it
      await exited;
      await waitFor("the container running again", () => frozen() === "running" || undefined, 30_000);
      expect(await rt.images.inspect("killed:1")).toBeUndefined();
    } finally {
      await rt.containers.remove(big, { graceSeconds: 0 });
    }
  }, 120_000);

  it("names the container when there is none", async () => {
    const missing = await berth(["commit", "no-such-container", "x:1"], env);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("No such container: no-such-container");
  });
});
