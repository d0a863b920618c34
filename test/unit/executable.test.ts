// The command lookup through an image's layers (a preview's check) stays inside the layers: a lower layer's
// symlinked parent is never followed on the host, even where an upper layer has a real directory of that name.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { executableProblem } from "../../native/container/executable";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-exec-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("command lookup through layers", () => {
  it("finds a command in a lower layer, and none through a lower layer's symlink to a host directory", async () => {
    const [top, lower, outside] = ["top", "lower", "outside"].map((d) => path.join(dir, d));
    fs.mkdirSync(path.join(top, "usr"), { recursive: true });
    fs.mkdirSync(path.join(lower, "bin"), { recursive: true });
    fs.mkdirSync(path.join(outside, "bin"), { recursive: true });
    fs.writeFileSync(path.join(lower, "bin", "tool"), "", { mode: 0o755 });
    fs.writeFileSync(path.join(outside, "bin", "hosttool"), "", { mode: 0o755 });
    fs.symlinkSync(outside, path.join(lower, "usr"));
    const view = { layers: [top, lower], mounts: [] };
    expect(await executableProblem(view, "tool", ["PATH=/bin"])).toBeUndefined();
    expect(await executableProblem(view, "hosttool", ["PATH=/usr/bin"])).toBe('exec: "hosttool": executable file not found in $PATH');
    expect(await executableProblem(view, "/usr/bin/hosttool", [])).toBe('exec: "/usr/bin/hosttool": stat /usr/bin/hosttool: no such file or directory');
  });
});
