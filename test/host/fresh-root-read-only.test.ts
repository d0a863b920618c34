// A preview (and `ps`, `images`, `inspect`…) on a berth root that does not exist changes nothing on the host: it
// answers as on an empty root and leaves no root directory nor locks directory in /dev/shm. The first command
// that writes makes the root as before (0700, its locks on tmpfs).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { berth, clearRoot, ensureQuickstartRootfs, QUICKSTART } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/fixed-names-rename");
const stack = `fresh${process.pid}`;
const parent = fs.mkdtempSync(path.join(os.tmpdir(), "berth-freshroot-"));
const root = path.join(parent, "root");
const env = { BERTH_ROOT: root, PULUMI_CONFIG_PASSPHRASE: "freshroot" };
const lockDirs = () => fs.readdirSync("/dev/shm").filter((n) => n.startsWith("berth-locks-")).sort();
/**
 * Whether a locks directory names this test's root (its `.root` file, written as the directory is made:
 * native/lock-dir.ts), not another test's running meanwhile.
 */
const ours = (n: string): boolean => {
  try {
    return fs.readFileSync(path.join("/dev/shm", n, ".root"), "utf8").split("\n")[0] === root;
  } catch {
    return false;
  }
};

afterAll(async () => {
  fs.rmSync(path.join(PROGRAM, `Pulumi.${stack}.yaml`), { force: true });
  fs.rmSync(path.join(PROGRAM, ".pulumi/stacks/fixedrename", `${stack}.json`), { force: true });
  if (fs.existsSync(root)) await clearRoot(root);
  fs.rmSync(parent, { recursive: true, force: true });
}, 60_000);

describe("a berth root that does not exist", () => {
  it("is left absent by preview and the read-only commands, with no new locks directory", async () => {
    ensureQuickstartRootfs();
    const config = { volume: `fresh${process.pid}`, container: `fresh${process.pid}`, tarball: path.join(QUICKSTART, "busybox-rootfs.tar") };
    fs.writeFileSync(path.join(PROGRAM, `Pulumi.${stack}.yaml`), `config:\n${Object.entries(config).map(([k, v]) => `  fixedrename:${k}: "${v}"`).join("\n")}\n`);
    const before = lockDirs();

    const preview = await berth(["preview", PROGRAM, "--stack", stack], env);
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    expect(preview.stdout).toMatch(/\+\s+4 to create/);
    for (const args of [["ps", "-a"], ["images"], ["volume", "ls"], ["network", "ls"], ["inspect", "nosuch"], ["image", "inspect", "nosuch"], ["logs", "nosuch"], ["top", "nosuch"], ["diff", "nosuch"], ["stats", "--no-stream", "nosuch"]]) {
      await berth(args, env);
    }
    expect(fs.existsSync(root)).toBe(false);
    // Other tests' roots may come and go meanwhile: only a new one naming this root counts.
    expect(lockDirs().filter((n) => !before.includes(n) && ours(n))).toEqual([]);

    const up = await berth(["up", PROGRAM, "--stack", stack, "--yes"], env);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(fs.statSync(root).mode & 0o777).toBe(0o700);
    expect(fs.lstatSync(path.join(root, "locks")).isSymbolicLink()).toBe(true);
    const destroyed = await berth(["destroy", PROGRAM, "--stack", stack, "--yes"], env);
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
  }, 120_000);
});
