// The overlay mount a container's rootfs is: made with the host's busybox, whatever directory berth runs in.
import { afterEach, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { realHost } from "../../native/host/exec";
import { isMounted } from "../../native/host/probe";
import { mount, prepare, unmount } from "../../native/snapshot/overlay";

const cwd = process.cwd();
let tmp = "";

afterEach(async () => {
  process.chdir(cwd);
  if (tmp && (await isMounted(path.join(tmp, "rootfs")))) execFileSync("umount", [path.join(tmp, "rootfs")]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("mount", () => {
  it("mounts the overlay, not a loop device, when berth runs in a directory holding a file named like its source", async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-test-overlay-"));
    const lower = path.join(tmp, "lower");
    fs.mkdirSync(lower);
    fs.writeFileSync(path.join(lower, "hello"), "hi\n");
    // A file an image or a user could leave where berth is started: busybox would loop-mount it as the source.
    fs.writeFileSync(path.join(tmp, "overlay"), Buffer.alloc(1 << 20));
    process.chdir(tmp);
    const dirs = { upper: path.join(tmp, "upper"), work: path.join(tmp, "work"), rootfs: path.join(tmp, "rootfs") };
    await mount(realHost, await prepare([lower], dirs));
    const line = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === dirs.rootfs);
    expect(line).toMatch(/ - overlay overlay /);
    expect(execFileSync("losetup", ["-j", path.join(tmp, "overlay")], { encoding: "utf8" })).toBe("");
    expect(fs.readFileSync(path.join(dirs.rootfs, "hello"), "utf8")).toBe("hi\n");
    await unmount(realHost, dirs.rootfs);
    expect(await isMounted(dirs.rootfs)).toBe(false);
  });
});

describe("realHost cwd", () => {
  it("runs a command in the directory given, and reports one that does not exist as the command's failure", async () => {
    expect(await realHost.run("pwd", [], { cwd: "/proc" })).toBe("/proc\n");
    const r = await realHost.tryRun("pwd", [], { cwd: "/berth-no-such-dir" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/berth-no-such-dir/);
  });
});
