// The real Host's process runner, on a harmless command.
import { describe, expect, it, vi } from "vitest";
import { syncBuiltinESMExports } from "node:module";
import * as fs from "node:fs";
import * as path from "node:path";
import { realHost, runInTerminal, TERMINAL_WAIT_MS } from "../../native/host/exec";
import { Spawner } from "../../native/host/spawner";
import { processStart, self } from "../../native/lock";
import { processExited } from "../../native/host/probe";
import { spawn } from "node:child_process";

describe("realHost.tryRun onOutput", () => {
  it("passes a character split across two writes on whole", async () => {
    const chunks: string[] = [];
    const r = await realHost.tryRun("sh", ["-c", "printf '\\303'; sleep 0.2; printf '\\251\\n'"], { onOutput: (c) => chunks.push(c) });
    expect(r.stdout).toBe("é\n");
    expect(chunks.join("")).toBe("é\n");
  });
});

describe("realHost through its long-lived shell", () => {
  it("passes every argument through as is, however hostile to a shell", async () => {
    const args = ["a b", "it's", "$HOME", "`id`", "$(id)", "\\", "*", "--", "x'; touch /tmp/berth-spawner-pwned; '", ""];
    expect(await realHost.run("printf", ["%s|", ...args])).toBe(args.map((a) => `${a}|`).join(""));
    expect(require("node:fs").existsSync("/tmp/berth-spawner-pwned")).toBe(false);
  });

  it("keeps stdout, stderr, stdin and exit codes of concurrent commands apart", async () => {
    const runs = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        realHost.tryRun("sh", ["-c", `read x; echo "out $x"; echo "err ${i}" >&2; exit ${i % 7}`], { input: `in ${i}\n` }),
      ),
    );
    runs.forEach((r, i) => expect(r).toEqual({ code: i % 7, stdout: `out in ${i}\n`, stderr: `err ${i}\n` }));
  });

  it("reports a missing command as spawn does (ENOENT)", async () => {
    await expect(realHost.run("berth-no-such-command", [])).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("reports a command found whose own child is missing by its exit, not as the command missing", async () => {
    expect(await realHost.tryRun("sh", ["-c", "berth-no-such-command"])).toMatchObject({ code: 127, stderr: expect.stringMatching(/not found/) });
  });

  it("refuses a NUL byte in an argument as spawn does, never running the argument without it", async () => {
    await expect(realHost.run("printf", ["%s", "a\0b"])).rejects.toMatchObject({ code: "ERR_INVALID_ARG_VALUE" });
  });

  it("runs a command with a line break in an argument too", async () => {
    expect(await realHost.run("printf", ["%s", "two\nlines"])).toBe("two\nlines");
  });

  it("runs a command in the cwd given as chdir(2) would: a relative one not looked up in CDPATH, printing nothing", async () => {
    // A relative cwd goes to spawn (a `cd` in the shell would use CDPATH, and take "-" for OLDPWD).
    expect(Spawner.fits({ cmd: "pwd", args: [], cwd: "test" })).toBe(false);
    expect(Spawner.fits({ cmd: "pwd", args: [], cwd: "-" })).toBe(false);
    expect(Spawner.fits({ cmd: "pwd", args: [], cwd: "/" })).toBe(true);
    const spawner = new Spawner();
    const cdpath = fs.mkdtempSync("/tmp/berth-test-cdpath-");
    const saved = process.env.CDPATH;
    process.env.CDPATH = cdpath; // the shell takes its environment when it starts
    try {
      fs.mkdirSync(path.join(cdpath, "test"));
      expect(await realHost.run("pwd", ["-P"], { cwd: "test" })).toBe(`${path.resolve("test")}\n`);
      await expect(realHost.run("pwd", [], { cwd: "-" })).rejects.toThrow(/ENOENT/);
      // Absolute, through the shell: physically, as chdir(2) goes ("link/.." is the link target's parent).
      fs.mkdirSync(path.join(cdpath, "real", "sub"), { recursive: true });
      fs.symlinkSync(path.join(cdpath, "real", "sub"), path.join(cdpath, "link"));
      const r = await spawner.run({ cmd: "pwd", args: ["-P"], cwd: `${cdpath}/link/..` });
      expect(r).toEqual({ code: 0, stdout: `${path.join(cdpath, "real")}\n`, stderr: "" });
    } finally {
      if (saved === undefined) delete process.env.CDPATH;
      else process.env.CDPATH = saved;
      fs.rmSync(cdpath, { recursive: true, force: true });
    }
  });

  it("starts a detached command (logFile) out of berth's session, its output appended to the file", async () => {
    const fs = require("node:fs") as typeof import("node:fs");
    const log = fs.mkdtempSync("/tmp/berth-test-spawner-") + "/log";
    try {
      await realHost.run("sh", ["-c", "echo sid=$(cut -d' ' -f6 /proc/self/stat)"], { logFile: log });
      const sid = Number(/sid=(\d+)/.exec(fs.readFileSync(log, "utf8"))![1]);
      expect(sid).not.toBe(Number(fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ")[3]));
      expect(fs.statSync(log).mode & 0o777).toBe(0o600);
    } finally {
      fs.rmSync(log.replace(/\/log$/, ""), { recursive: true, force: true });
    }
  });
});

describe("the long-lived shell's directory", () => {
  it("is named after its owner, and a new shell sweeps those whose owner was killed (with what they held)", async () => {
    const parent = fs.existsSync("/dev/shm") ? "/dev/shm" : require("node:os").tmpdir();
    const dirOf = (pid: number, start: number) => fs.mkdtempSync(path.join(parent, `berth-spawn-${pid}-${start}-`));
    // The same pid with another start time is another process, long gone.
    const dead = dirOf(process.pid, self().start + 1);
    fs.writeFileSync(path.join(dead, "7.in"), "*filter\n-A INPUT -j ACCEPT\nCOMMIT\n");
    const live = dirOf(process.pid, self().start);
    const foreign = dirOf(process.pid, self().start + 2);
    fs.chownSync(foreign, 65534, 65534); // not berth's to remove
    const spawner = new Spawner();
    try {
      await spawner.run({ cmd: "true", args: [] });
      expect(fs.existsSync(dead)).toBe(false);
      expect(fs.existsSync(live) && fs.existsSync(foreign)).toBe(true);
      const own = (spawner as unknown as { dir: string }).dir;
      expect(path.basename(own)).toMatch(new RegExp(`^berth-spawn-${process.pid}-${self().start}-`));
      // Removed under it (by hand, or by a berth that cannot see this process): the next command starts afresh.
      fs.rmSync(own, { recursive: true });
      expect(await spawner.run({ cmd: "echo", args: ["still"] })).toEqual({ code: 0, stdout: "still\n", stderr: "" });
    } finally {
      for (const d of [dead, live, foreign]) fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

/** A process's /proc stat line; "" once it is gone. */
function statOf(pid: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return "";
  }
}

describe("the long-lived shell's children", () => {
  it("are reaped: commands run one by one and at once leave no zombies behind", async () => {
    const spawner = new Spawner();
    for (let i = 0; i < 10; i++) await spawner.run({ cmd: "true", args: [] });
    await Promise.all(Array.from({ length: 30 }, () => spawner.run({ cmd: "true", args: [] })));
    const shell = (spawner as unknown as { child: import("node:child_process").ChildProcess }).child.pid!;
    const zombies = () => fs.readFileSync(`/proc/${shell}/task/${shell}/children`, "utf8").split(" ").filter(Boolean)
      .filter((pid) => /\) Z/.test(statOf(pid))).length;
    // Each command sent reaps those that ended before it; a command's subshell reports before it exits, so under
    // load a few may end after the next command's reaping: a few more commands, and at most the last one's is left.
    let left = Infinity;
    for (let i = 0; i < 20 && left > 1; i++) {
      await spawner.run({ cmd: "true", args: [] });
      left = zombies();
    }
    expect(left).toBeLessThanOrEqual(1);
  });
});

describe("the long-lived shell killed", () => {
  it("reports what a command under way did (its exit code and output), not a failure, and the next command runs", async () => {
    const spawner = new Spawner();
    await spawner.run({ cmd: "true", args: [] });
    const shell = (spawner as unknown as { child: import("node:child_process").ChildProcess }).child;
    const running = spawner.run({ cmd: "sh", args: ["-c", "sleep 0.4; echo done; exit 3"] });
    await new Promise((r) => setTimeout(r, 100));
    shell.kill("SIGKILL");
    expect(await running).toEqual({ code: 3, stdout: "done\n", stderr: "" });
    expect(await spawner.run({ cmd: "echo", args: ["again"] })).toEqual({ code: 0, stdout: "again\n", stderr: "" });
  });
});

describe("runInTerminal", () => {
  it("gives up looking for a command's terminal that never shows, rather than polling /proc for the whole run", async () => {
    // `env` execs `sleep` at once: no child of `script` is ever named env, so its terminal is never found.
    const looks: number[] = [];
    const cjs = require("node:fs") as typeof import("node:fs");
    const read = cjs.readFileSync;
    const spy = vi.spyOn(cjs, "readFileSync").mockImplementation(((file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
      if (typeof file === "string" && file.endsWith("/children")) looks.push(Date.now());
      return (read as (...a: unknown[]) => unknown)(file, ...rest);
    }) as typeof cjs.readFileSync);
    syncBuiltinESMExports();
    const started = Date.now();
    try {
      async function* resizes() {
        yield { rows: 30, cols: 100 };
      }
      const code = await runInTerminal(["env", "sleep", String((TERMINAL_WAIT_MS + 1500) / 1000)], undefined, resizes(), { stdout: () => {}, stderr: () => {} });
      expect(code).toBe(0);
    } finally {
      spy.mockRestore();
      syncBuiltinESMExports();
    }
    expect(looks.length).toBeGreaterThan(0);
    expect(looks.at(-1)! - started).toBeLessThan(TERMINAL_WAIT_MS + 500);
  }, 20_000);

  it("a resize whose look for the terminal timed out is skipped, and the next resize looks again", async () => {
    // /proc unreadable for longer than a look waits (a busy host, a slow runc exec): the first resize is dropped.
    const cjs = require("node:fs") as typeof import("node:fs");
    const read = cjs.readFileSync;
    const blindUntil = Date.now() + TERMINAL_WAIT_MS + 300;
    const spy = vi.spyOn(cjs, "readFileSync").mockImplementation(((file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
      if (typeof file === "string" && file.endsWith("/children") && Date.now() < blindUntil) throw new Error("ENOENT");
      return (read as (...a: unknown[]) => unknown)(file, ...rest);
    }) as typeof cjs.readFileSync);
    syncBuiltinESMExports();
    let out = "";
    try {
      async function* resizes() {
        yield { rows: 30, cols: 100 };
        // Asked for once the first resize is done with: the second comes once /proc can be read again.
        await new Promise((r) => setTimeout(r, blindUntil + 300 - Date.now()));
        yield { rows: 40, cols: 120 };
      }
      const wait = (TERMINAL_WAIT_MS + 2000) / 1000;
      const code = await runInTerminal(["sh", "-c", `sleep ${wait}; stty size`], undefined, resizes(), { stdout: (b) => (out += b), stderr: () => {} });
      expect(code).toBe(0);
    } finally {
      spy.mockRestore();
      syncBuiltinESMExports();
    }
    expect(out.trim()).toBe("40 120");
  }, 20_000);
});

describe("processExited", () => {
  it("takes a zombie and a process gone for ended, and not a running one", async () => {
    // The shell's child ends once the shell has become a sleep, which never waits for it: a zombie.
    const parent = spawn("sh", ["-c", "sleep 0.2 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const child = Number(await new Promise<string>((r) => parent.stdout!.once("data", (b: Buffer) => r(b.toString()))));
      for (let i = 0; i < 100 && !/\) Z/.test(fs.readFileSync(`/proc/${child}/stat`, "utf8")); i++) await new Promise((r) => setTimeout(r, 10));
      expect(processStart(child)).toBeGreaterThan(0);
      expect(processExited(child)).toBe(true);
      expect(processExited(parent.pid!)).toBe(false);
    } finally {
      parent.kill("SIGKILL");
    }
    await new Promise((r) => parent.once("exit", r));
    expect(processExited(parent.pid!)).toBe(true);
  });
});
