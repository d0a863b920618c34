// Containers that stay up, as a user drives them: a program's limits changed in place by `berth up` (same
// process), other fields replacing, bad input refused at preview, the day-2 commands, and refresh + up bringing
// back a container removed by hand.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runcId } from "../../native/names";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cgroupFile } from "../../native/supervise/cgroup";
import { REPO, berth, clearRoot, runcAt } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/lifecycle");
const stack = `life${process.pid}`;
const name = `tlc${randomBytes(3).toString("hex")}`;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-life-cli-"));
const tarball = path.join(root, "busybox-rootfs.tar");
const env = { BERTH_ROOT: root };
const configFile = path.join(PROGRAM, `Pulumi.${stack}.yaml`);
const stateDir = path.join(PROGRAM, ".pulumi");

const setConfig = (c: Record<string, string>) =>
  fs.writeFileSync(configFile, `config:\n${Object.entries({ tarball, name, ...c }).map(([k, v]) => `  lifecycle:${k}: "${v}"`).join("\n")}\n`);
const stackCli = (...args: string[]) => berth([...args, PROGRAM, "--stack", stack], env);
const cli = (...args: string[]) => berth(args, env);
const memoryLimit = () => fs.readFileSync(cgroupFile(`/${runcId(root, name)}`, "memory", "memory.limit_in_bytes", "memory.max"), "utf8").trim();
const initPid = async () => JSON.parse((await cli("inspect", name)).stdout)[0].pid as number;

beforeAll(() => {
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
});

afterAll(async () => {
  await stackCli("destroy", "--yes");
  await clearRoot(root);
  fs.rmSync(configFile, { force: true });
  fs.rmSync(path.join(stateDir, "stacks/lifecycle", `${stack}.json`), { force: true });
  fs.rmSync(path.join(stateDir, "stacks/lifecycle", `${stack}.json.bak`), { force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

describe("a supervised container from a program", () => {
  it("is created, then its memory limit changes in place while other fields replace it", async () => {
    setConfig({ memory: "64m" });
    const up = await stackCli("up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(memoryLimit()).toBe(String(64 << 20));
    const pid = await initPid();

    setConfig({ memory: "96m" });
    const preview = await stackCli("preview", "--json");
    const step = JSON.parse(preview.stdout).steps.find((s: { urn: string }) => s.urn.endsWith("::app"));
    expect(step.op).toBe("update");
    expect((await stackCli("up", "--yes")).code).toBe(0);
    expect(memoryLimit()).toBe(String(96 << 20));
    expect(await initPid()).toBe(pid);

    setConfig({ memory: "96m", user: "65534" });
    const replace = JSON.parse((await stackCli("preview", "--json")).stdout).steps.find((s: { urn: string }) => s.urn.endsWith("::app"));
    expect(replace.op).toBe("replace");
    setConfig({ memory: "96m" });
  });

  it("refuses Docker's bad combinations at preview, changing nothing", async () => {
    setConfig({ memory: "96m", memorySwap: "32m" });
    const preview = await stackCli("preview");
    expect(preview.code).not.toBe(0);
    expect(preview.stdout + preview.stderr).toContain("Minimum memoryswap limit should be larger than memory limit");
    setConfig({ memory: "96m", restart: "sometimes" });
    expect((await stackCli("up", "--yes")).stdout).toContain("invalid restart policy 'sometimes'");
    expect(memoryLimit()).toBe(String(96 << 20));
    setConfig({ memory: "96m" });
  });

  it("answers the day-2 commands", async () => {
    expect((await cli("ps")).stdout).toMatch(new RegExp(`${name}\\s+lifecycle-${stack}:latest\\s+.*Up `));
    expect((await cli("logs", name)).stdout).toContain("started");
    const exec = await cli("exec", name, "sh", "-c", "readlink /proc/self/ns/pid; echo hi > /new-file");
    expect(exec.code).toBe(0);
    expect(exec.stdout.trim()).not.toBe(fs.readlinkSync("/proc/self/ns/pid"));
    expect((await cli("diff", name)).stdout).toContain("A /new-file");
    const copied = path.join(root, "copied");
    expect((await cli("cp", `${name}:/new-file`, copied)).code).toBe(0);
    expect(fs.readFileSync(copied, "utf8")).toBe("hi\n");
    fs.writeFileSync(copied, "from host\n");
    expect((await cli("cp", copied, `${name}:/etc/from-host`)).code).toBe(0);
    expect((await cli("exec", name, "cat", "/etc/from-host")).stdout).toBe("from host\n");
    expect((await cli("top", name)).stdout).toContain("sleep 600");
    expect((await cli("stats", "--no-stream", name)).stdout).toMatch(/96.00MiB/);
    expect((await cli("pause", name)).code).toBe(0);
    expect((await cli("ps")).stdout).toContain("(Paused)");
    expect((await cli("unpause", name)).code).toBe(0);
    expect((await cli("rm", name)).stderr).toContain(`You cannot remove a running container ${name}`);
    expect((await cli("stop", name)).code).toBe(0);
    expect((await cli("ps")).stdout).not.toContain(name);
    expect((await cli("ps", "-a")).stdout).toMatch(new RegExp(`${name} .*Exited \\(143\\)`));
    expect((await cli("wait", name)).stdout.trim()).toBe("143");
    expect((await cli("start", name)).code).toBe(0);
    // A signal Linux lacks is refused before anything happens, in Docker's words; names take any case, SIG or not.
    // Reported once, before any name is looked up: not "No such container" for the first name.
    const bogus = await cli("kill", "-s", "BOGUS", "nosuch", name);
    expect([bogus.code, bogus.stdout]).toEqual([1, ""]);
    expect(bogus.stderr.match(/Invalid signal: BOGUS/g)).toHaveLength(1);
    expect(bogus.stderr).not.toContain("No such container");
    // As Docker: a name that fails does not stop the others; each failure is reported, and the exit code is 1.
    const some = await cli("kill", "-s", "sigterm", "nosuch-a", name, "nosuch-b");
    expect([some.code, some.stdout], some.stderr).toEqual([1, `${name}\n`]);
    expect(some.stderr).toMatch(/No such container: nosuch-a\n(.*\n)*.*No such container: nosuch-b/);
    // "always": a kill is not a stop, so the supervisor brings it back.
    await new Promise((r) => setTimeout(r, 1000));
    const inspected = JSON.parse((await cli("inspect", name)).stdout)[0];
    expect(inspected.state).toMatchObject({ status: "running", restartCount: 1 });
    const events = (await cli("events", "--since", "10m", "--until", "0s")).stdout;
    expect(events).toMatch(new RegExp(`container die ${name} \\(exitCode=143, name=${name}\\)`));
    expect(events).toMatch(new RegExp(`container restart ${name} \\(restartCount=1, name=${name}\\)`));
  });

  it("refresh sees a container removed by hand, and up brings it back", async () => {
    execFileSync("runc", runcAt(root, name, ["delete", "--force", runcId(root, name)]));
    const refresh = await stackCli("refresh", "--yes");
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    expect((await stackCli("up", "--yes")).code).toBe(0);
    expect(JSON.parse((await cli("inspect", name)).stdout)[0].status).toBe("running");
    expect((await stackCli("preview", "--expect-no-changes")).code).toBe(0);
  });
});
