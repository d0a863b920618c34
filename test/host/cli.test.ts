// The CLI as a user drives it, through bin/berth on this host: usage errors and help, config and stack commands,
// Docker's day-2 flags on a deployed stack's container (named by its resource name), the image, network and
// volume commands, and the ownership guard that keeps a stack's objects from being removed behind its back.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, berth, clearRoot, freePort, httpGet, startBerth, waitFor } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/day2");
const stack = `cli${process.pid}`;
const prefix = `tcli${randomBytes(3).toString("hex")}`;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-cli-"));
const tarball = path.join(root, "busybox-rootfs.tar");
const pulumiHome = path.join(root, "pulumi-home");
const env = { BERTH_ROOT: root, PULUMI_HOME: pulumiHome, PULUMI_CONFIG_PASSPHRASE: "day2", FROM_HERE: "here" };
const configFile = path.join(PROGRAM, `Pulumi.${stack}.yaml`);
const stateFile = path.join(PROGRAM, ".pulumi/stacks/day2", `${stack}.json`);
const subnet = `10.${200 + (process.pid % 50)}.${process.pid % 250}.0/24`;
let port = 0;
let registryPort = 0;

const cli = (...args: string[]) => berth(args, env);
/** A command run in the project's scope: resource names name containers. */
const scoped = (...args: string[]) => berth([...args, "-C", PROGRAM, "--stack", stack], env);
/** The same for commands whose flags end at the container's name (exec, top). */
const scopedFirst = (command: string, ...args: string[]) => berth([command, "-C", PROGRAM, "--stack", stack, ...args], env);
const setConfig = (c: Record<string, string | number>) =>
  fs.writeFileSync(configFile, `config:\n${Object.entries({ tarball, prefix, subnet, port, registryPort, ...c }).map(([k, v]) => `  day2:${k}: "${v}"`).join("\n")}\n`);
const containerName = () =>
  (JSON.parse(fs.readFileSync(stateFile, "utf8")).checkpoint.latest.resources as Array<{ urn: string; outputs: { name: string } }>).find((r) =>
    r.urn.endsWith("Container::web"),
  )!.outputs.name;

beforeAll(async () => {
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  [port, registryPort] = [await freePort(), await freePort()];
  setConfig({ greeting: "one" });
}, 60_000);

afterAll(async () => {
  await berth(["destroy", PROGRAM, "--stack", stack, "--yes"], env);
  await clearRoot(root);
  for (const f of [configFile, stateFile, `${stateFile}.bak`]) fs.rmSync(f, { force: true });
  fs.rmSync(root, { recursive: true, force: true });
}, 60_000);

describe("usage", () => {
  it("prints the version, help for every command, and refuses unknown commands and flags with exit 2 and a hint", async () => {
    expect((await cli("--version")).stdout).toMatch(/^berth v\d+\.\d+\.\d+/);
    expect((await cli("version")).stdout).toMatch(/^berth v/);
    const help = await cli("help", "logs");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--tail N");
    expect((await cli("logs", "--help")).stdout).toBe(help.stdout);
    expect((await cli("network", "ls", "--help")).stdout).toContain("--filter KEY=VALUE");
    expect((await cli("help", "network")).stdout).toContain("network prune");
    expect((await cli("network")).stdout).toBe((await cli("help", "network")).stdout);
    const unknown = await cli("lgs", "x");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "lgs" for "berth"');
    expect(unknown.stderr).toContain('Did you mean "berth logs"?');
    // Day-2 commands no longer read flags as container names.
    for (const args of [["ps", "--bogus"], ["logs", "--tailx", "5", "c"], ["stop", "-z", "c"], ["volume", "ls", "--nope"], ["up", "--nope"]]) {
      const r = await cli(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/unknown (shorthand )?flag/);
      expect(r.stderr).toContain(`See 'berth ${args[0] === "volume" ? "volume ls" : args[0]} --help'.`);
    }
    expect((await cli("logs", "--tail")).stderr).toContain("flag needs an argument: --tail");
    expect((await cli("network", "frob")).code).toBe(2);
    // -H is Docker's day-2 flag: a deploy or stack command given it is refused, not run where the stack's config says.
    for (const args of [["up", "/nonexistent", "--yes"], ["destroy", "/nonexistent", "--yes"], ["config", "set", "k", "v"]]) {
      const r = await cli("-H", "ssh://root@127.0.0.1:1", ...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain(`-H/--host is for day-2 commands, not "${args[0] === "config" ? "config set" : args[0]}"`);
    }
    expect((await cli("-H", "ssh://root@127.0.0.1:1", "up", "/nonexistent")).stderr).toContain("berth config set berth:host ssh://root@127.0.0.1:1");
    // Glued, as pflag reads it.
    expect((await cli("-Hssh://root@127.0.0.1:1", "up", "/nonexistent")).stderr).toContain("berth config set berth:host ssh://root@127.0.0.1:1");
    // An ssh key or option with no remote host is refused, not dropped while this machine is checked.
    const keyless = await cli("host", "check", "-i", "/nonexistent/key");
    expect(keyless.code).toBe(2);
    expect(keyless.stderr).toContain("-i and -o are for a remote host");
  });
});

describe("config and stacks", () => {
  it("lists, gets, sets and removes config; inits, selects, lists and removes stacks", async () => {
    const project = path.join(root, "project");
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: proj\nruntime: nodejs\n");
    const inProject = (...args: string[]) => berth([...args, "-C", project], env);
    expect((await inProject("stack", "init", "alpha")).stdout).toContain("Created stack 'alpha'");
    expect((await inProject("stack", "init", "alpha")).stderr).toContain("stack 'alpha' already exists");
    expect((await inProject("stack", "init", "beta")).code).toBe(0);
    // init selects: config goes to beta's file.
    expect((await inProject("config", "set", "color", "blue")).code).toBe(0);
    expect((await inProject("config", "set", "token", "s3cret", "--secret")).code).toBe(0);
    expect(fs.readFileSync(path.join(project, "Pulumi.beta.yaml"), "utf8")).not.toContain("s3cret");
    const listing = (await inProject("config")).stdout;
    expect(listing).toMatch(/^KEY\s+VALUE\n/);
    expect(listing).toMatch(/color\s+blue/);
    expect(listing).toMatch(/token\s+\[secret\]/);
    expect((await inProject("config", "--show-secrets")).stdout).toMatch(/token\s+s3cret/);
    expect(JSON.parse((await inProject("config", "--json")).stdout)).toEqual({ "proj:color": { value: "blue", secret: false }, "proj:token": { secret: true } });
    expect((await inProject("config", "get", "token")).stdout.trim()).toBe("s3cret");
    expect((await inProject("config", "rm", "color")).code).toBe(0);
    expect((await inProject("config", "get", "color")).stderr).toContain("configuration key 'color' not found for stack 'beta'");
    expect((await inProject("config", "rm", "color")).code).toBe(1);

    let ls = (await inProject("stack", "ls")).stdout;
    expect(ls).toMatch(/^NAME\s+LAST UPDATE\s+RESOURCE COUNT\n/);
    expect(ls).toMatch(/\nbeta\*\s+now\s+0/);
    expect((await inProject("stack", "select", "alpha")).code).toBe(0);
    expect((await inProject("stack", "ls")).stdout).toMatch(/\nalpha\*/);
    expect((await inProject("stack", "select", "gamma")).stderr).toContain("no stack named 'gamma' found");
    // A stack name becomes a file name: one with "/" is refused, wherever it comes in.
    for (const args of [["stack", "select", "../escape", "--create"], ["config", "set", "k", "v", "--stack", "../../escape"]]) {
      const r = await inProject(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain('invalid stack name "../');
    }
    expect([path.join(project, ".pulumi/stacks/escape.json"), path.join(project, "escape.yaml")].filter((f) => fs.existsSync(f))).toEqual([]);
    // Where the Pulumi CLI keeps the selection.
    const ws = fs.readdirSync(path.join(pulumiHome, "workspaces"));
    expect(ws.some((f) => /^proj-[0-9a-f]{40}-workspace\.json$/.test(f))).toBe(true);
    expect((await inProject("stack", "rm", "beta")).stderr).toContain("--yes");
    expect((await inProject("stack", "rm", "beta", "--yes")).stdout).toContain("Stack 'beta' has been removed!");
    expect(fs.existsSync(path.join(project, "Pulumi.beta.yaml"))).toBe(false);
    ls = (await inProject("stack", "ls")).stdout;
    expect(ls).not.toContain("beta");
  });
});

describe("a deployed stack's objects", () => {
  let name = "";

  beforeAll(async () => {
    const up = await scopedUp();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    name = containerName();
  }, 120_000);

  const scopedUp = () => berth(["up", PROGRAM, "--stack", stack, "--yes"], env);

  it("ps: image names, --format, --filter, -n, -q, --no-trunc", async () => {
    const ps = (await cli("ps")).stdout;
    expect(ps).toMatch(/^NAMES\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS/);
    expect(ps).toMatch(new RegExp(`${name}\\s+${prefix}-base:latest\\s+"sh -c echo one; ech…"\\s+.*Up .*127\\.0\\.0\\.1:${port}->80/tcp`));
    expect((await cli("ps", "--no-trunc")).stdout).toContain(`"sh -c echo one; echo two; echo three;`);
    const formatted = await cli("ps", "--format", '{{.Names}} {{.Image}} {{.Label "tier"}} {{.State}}', "--filter", "label=tier=front");
    expect(formatted.stdout.trim()).toBe(`${name} ${prefix}-base:latest front running`);
    expect((await cli("ps", "--filter", "label=tier=back", "-q")).stdout).toBe("");
    expect((await cli("ps", "-q", "--filter", `name=${name}`, "--filter", `ancestor=${prefix}-base`)).stdout.trim()).toBe(name);
    expect((await cli("ps", "-a", "--filter", "status=exited", "--filter", `name=${name}`, "-q")).stdout).toBe("");
    expect((await cli("ps", "-n", "1", "-q")).stdout.trim().split("\n")).toHaveLength(1);
    const table = (await cli("ps", "--filter", `name=${name}`, "--format", "table {{.Names}}\\t{{.Networks}}")).stdout;
    expect(table).toMatch(new RegExp(`^NAMES\\s+NETWORKS\\n${name}\\s+${prefix}-net\\n$`));
    const json = JSON.parse((await cli("ps", "--filter", `name=${name}`, "--format", "{{json .}}")).stdout);
    expect(json).toMatchObject({ Names: name, State: "running", Stack: `day2/${stack}` });
  });

  it("logs: --tail, --since, --until, -t, by resource name", async () => {
    expect((await scoped("logs", "web")).stdout).toBe("one\ntwo\nthree\n");
    expect((await scoped("logs", "--tail", "2", "web")).stdout).toBe("two\nthree\n");
    expect((await scoped("logs", "-n", "0", "web")).stdout).toBe("");
    const stamped = (await scoped("logs", "-t", "--tail", "1", "web")).stdout;
    const [time, text] = stamped.trim().split(" ");
    expect(text).toBe("three");
    expect(Math.abs(Date.parse(time) - Date.now())).toBeLessThan(120_000);
    expect((await scoped("logs", "--since", "1m", "web")).stdout).toBe("one\ntwo\nthree\n");
    expect((await scoped("logs", "--until", "2020-01-01T00:00:00Z", "web")).stdout).toBe("");
    expect((await scoped("logs", "--since", String(Math.floor(Date.now() / 1000) + 60), "web")).stdout).toBe("");
    expect((await cli("logs", "web")).stderr).toContain("No such container: web"); // outside the project
    expect((await scoped("logs", "--since", "yesterday", "web")).code).toBe(2);
    // -f: what the container writes later, as it comes (its init's stdout is the log).
    const following = startBerth(["logs", "-f", "--tail", "1", "-C", PROGRAM, "--stack", stack, "web"], env);
    let followed = "";
    following.stdout!.on("data", (d) => (followed += d));
    try {
      await waitFor("the tail", () => (followed === "three\n" ? true : undefined), 10_000);
      await scopedFirst("exec", "web", "sh", "-c", "echo later > /proc/1/fd/1");
      await waitFor("the new line", () => (followed === "three\nlater\n" ? true : undefined), 10_000);
    } finally {
      process.kill(-following.pid!, "SIGKILL");
    }
  });

  it("exec: -e, -w, -u, -d, -i, -t", async () => {
    const r = await scopedFirst("exec", "-e", "FOO=bar", "-e", "FROM_HERE", "-w", "/data", "-u", "65534", "web", "sh", "-c", 'echo "$FOO $FROM_HERE $GREETING $(pwd) $(id -u)"');
    expect(r.stdout.trim(), r.stderr).toBe("bar here one /data 65534");
    // -i passes berth's stdin; without it the command's stdin is empty; -t gives it a terminal.
    const piped = (...flags: string[]) =>
      spawnSync(path.join(REPO, "bin/berth"), ["exec", "-C", PROGRAM, "--stack", stack, ...flags, "web", "sh", "-c", "sleep 0.3; read -r l; echo \"[$l]\"; tty; exit 3"], {
        env: { ...process.env, ...env },
        input: "typed\n",
        encoding: "utf8",
      });
    expect(piped("-i")).toMatchObject({ status: 3, stdout: "[typed]\nnot a tty\n" });
    expect(piped()).toMatchObject({ status: 3, stdout: "[]\nnot a tty\n" });
    const tty = piped("-it");
    expect(tty.status, tty.stderr).toBe(3);
    expect(tty.stdout).toMatch(/\[typed\]\r\n\/dev\/pts\/\d+\r\n$/);
    const mountpoint = JSON.parse((await cli("volume", "inspect", `${prefix}-data`)).stdout)[0].mountpoint as string;
    const detached = path.join(mountpoint, "detached");
    expect((await scopedFirst("exec", "-d", "web", "sh", "-c", "sleep 4; echo done > /data/detached")).code).toBe(0);
    expect(fs.existsSync(detached)).toBe(false); // returned before the command finished
    await waitFor("the detached command", () => (fs.existsSync(detached) ? true : undefined), 20_000, 100);
    await waitFor("its output", () => (fs.readFileSync(detached, "utf8") === "done\n" ? true : undefined), 5_000, 100);
  });

  it("inspect --format, of containers, images, networks and volumes; port; top with ps options", async () => {
    expect((await scoped("inspect", "--format", "{{.Name}} {{.State.Status}} {{index .Spec.Labels \"tier\"}}", "web")).stdout.trim()).toBe(`${name} running front`);
    const image = await cli("inspect", "-f", "{{.Ref}}", `${prefix}-base`);
    expect(image.stdout.trim(), image.stderr).toBe(`${prefix}-base:latest`);
    expect((await cli("inspect", "--format", "{{.Subnet}}", `${prefix}-net`)).stdout.trim()).toBe(subnet);
    expect((await cli("inspect", "--type", "volume", "--format", "{{json .Labels}}", `${prefix}-data`)).stdout.trim()).toBe('{"role":"data"}');
    expect((await cli("inspect", "--type", "network", `${prefix}-data`)).stderr).toContain(`No such object: ${prefix}-data`);
    expect((await cli("inspect", "-f", "{{range .Layers}}", `${prefix}-base`)).stderr).toContain('function "range" not supported');
    expect((await cli("image", "inspect", "--format", "{{.Owner}}", `${prefix}-base`)).stdout.trim()).toBe(`urn:pulumi:${stack}::day2::berth:index:Image::base`);
    expect((await scoped("port", "web")).stdout.trim()).toBe(`80/tcp -> 127.0.0.1:${port}`);
    expect((await scoped("port", "web", "80")).stdout.trim()).toBe(`127.0.0.1:${port}`);
    expect((await scoped("port", "web", "81/udp")).stderr).toContain("No public port '81/udp' published");
    const top = (await scopedFirst("top", "web", "-o", "pid,comm")).stdout;
    expect(top).toMatch(/^\s*PID\s+COMMAND/);
    expect(top).toContain("httpd");
  });

  it("stats: MEM %, NET I/O and BLOCK I/O", async () => {
    expect((await httpGet(`http://127.0.0.1:${port}/`)).body).toBe("hello\n");
    const s = (await scoped("stats", "--no-stream", "web")).stdout;
    expect(s).toMatch(/^NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS\n/);
    const [net] = (await scoped("stats", "--no-stream", "--format", "{{.NetIO}}", "web")).stdout.trim().split("\n");
    const [rx, tx] = net.split(" / ");
    expect(rx).not.toBe("0B");
    expect(tx).not.toBe("0B");
    expect((await scoped("stats", "--no-stream", "--format", "{{.MemPerc}}", "web")).stdout.trim()).toMatch(/^\d+\.\d\d%$/);
  });

  it("preview --refresh writes nothing, not even an owner record; refresh writes it back", async () => {
    const owner = path.join(root, "owners", "volume", `${prefix}-data`);
    const urn = fs.readFileSync(owner, "utf8");
    fs.rmSync(owner);
    const preview = await berth(["preview", PROGRAM, "--stack", stack, "--refresh"], env);
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    expect(fs.existsSync(owner)).toBe(false);
    const refresh = await berth(["refresh", PROGRAM, "--stack", stack, "--yes"], env);
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    expect(fs.readFileSync(owner, "utf8")).toBe(urn);
  });

  it("guards what the stack owns: rm, network rm, volume rm, rmi and the prunes leave it unless --force", async () => {
    expect((await scoped("stop", "-t", "1", "web")).stdout.trim()).toBe("web");
    const rm = await scoped("rm", "web");
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain(`container ${name} belongs to stack ${stack} of project day2 (resource web)`);
    expect((await cli("network", "rm", `${prefix}-net`)).stderr).toContain("belongs to stack");
    expect((await cli("volume", "rm", `${prefix}-data`)).stderr).toContain("belongs to stack");
    expect((await cli("rmi", `${prefix}-base`)).stderr).toContain(`container ${name} is using its referenced image`);
    expect((await cli("volume", "prune", "-f", "-a")).stdout).not.toContain(`${prefix}-data`);
    expect((await cli("network", "prune")).stderr).toContain("--force");
    expect((await cli("network", "prune", "-f")).stdout).not.toContain(`${prefix}-net`);
    const vols = (await cli("volume", "ls", "--filter", `name=${prefix}`)).stdout;
    expect(vols).toMatch(new RegExp(`local\\s+${prefix}-data\\s+day2/${stack}`));
    expect((await cli("volume", "ls", "-q", "--filter", "label=role=data", "--filter", `name=${prefix}`)).stdout.trim()).toBe(`${prefix}-data`);
    expect((await cli("network", "ls", "--filter", `name=${prefix}`, "--format", "{{.Name}} {{.Driver}} {{.Stack}}")).stdout.trim()).toBe(`${prefix}-net bridge day2/${stack}`);
    expect((await scoped("start", "web")).code).toBe(0);
  });

  it("images, tag, save, rmi, load, push, pull and image prune", async () => {
    const copy = `${prefix}-copy:1`;
    expect((await cli("tag", `${prefix}-base`, copy)).code).toBe(0);
    const images = (await cli("images", `${prefix}-*`)).stdout;
    expect(images).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s+STACK\n/);
    expect(images).toMatch(new RegExp(`${prefix}-base\\s+latest\\s+[0-9a-f]{12}\\s+N/A\\s+\\S+\\s+day2/${stack}`));
    expect(images).toMatch(new RegExp(`${prefix}-copy\\s+1\\s+[0-9a-f]{12}`));
    expect((await cli("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", `reference=${prefix}-copy`)).stdout.trim()).toBe(copy);
    const archive = path.join(root, "copy.tar");
    expect((await cli("save", "-o", archive, copy)).code).toBe(0);
    const rmi = await cli("rmi", copy);
    expect(rmi.stdout, rmi.stderr).toBe(`Untagged: ${copy}\n`); // the id stays: base has it
    expect((await cli("load", "-i", archive)).stdout).toBe(`Loaded image: ${copy}\n`);
    // Through a pipe, as `docker save IMAGE | docker load`.
    const piped = execFileSync("sh", ["-c", `"${REPO}/bin/berth" save ${copy} | "${REPO}/bin/berth" load`], { env: { ...process.env, ...env }, encoding: "utf8" });
    expect(piped).toBe(`Loaded image: ${copy}\n`);
    expect((await cli("save", copy)).stderr).toBe(""); // stdout is a pipe here: allowed

    // A second image (not the container's): what push, pull and prune act on.
    const snap = `${prefix}-snap:1`;
    expect((await scoped("commit", "-m", "snapshot", "web", snap)).stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const remote = `127.0.0.1:${registryPort}/${prefix}/app:1`;
    expect((await cli("tag", snap, remote)).code).toBe(0);
    const push = await cli("push", remote);
    expect(push.stdout, push.stderr).toMatch(new RegExp(`^${remote.replace(/[.]/g, "\\.")}: digest: sha256:[0-9a-f]{64}\\n$`));
    expect((await cli("rmi", remote)).stdout).toBe(`Untagged: ${remote}\n`);
    const pull = await cli("pull", remote);
    expect(pull.stdout, pull.stderr).toContain(`Status: Downloaded image for ${remote}`);

    expect((await cli("image", "prune", "-f")).stdout).toBe(""); // nothing dangling
    // -a: what no container uses; the base (and its second name, the same image) stay.
    const pruned = (await cli("image", "prune", "-a", "-f")).stdout;
    expect(pruned).toContain(`untagged: ${snap}`);
    expect(pruned).toContain(`untagged: ${remote}`);
    expect(pruned).toMatch(/deleted: sha256:[0-9a-f]{64}/);
    expect(pruned).not.toContain(`${prefix}-base`);
    expect(pruned).not.toContain(copy);
    expect((await cli("images", "-q", `${prefix}-*`)).stdout.trim().split("\n")).toHaveLength(1);
  }, 60_000);

  it("events: --since, --until, --filter; a replaced container's stop and destroy", async () => {
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    setConfig({ greeting: "two" });
    // Pulumi's question on a terminal: details shows the diff and asks again; no declines, saying so.
    const asked = spawnSync("script", ["-qec", `"${REPO}/bin/berth" up "${PROGRAM}" --stack ${stack} --color never`, "/dev/null"], {
      input: "details\nno\n",
      env: { ...process.env, ...env },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(asked.status).toBe(1);
    expect(asked.stdout).toMatch(/~ env\.GREETING: "one" => "two" \(forces replacement\)/);
    expect(asked.stdout).toContain("confirmation declined, not proceeding with the update");
    expect(containerName()).toBe(name);
    expect((await berth(["refresh", PROGRAM, "--stack", stack], env)).stderr).toContain("--yes must be passed in");
    const up = await scopedUp();
    expect(up.code, up.stdout + up.stderr).toBe(0);
    // Each step as it starts and when it is done, with its time.
    expect(up.stdout).toMatch(/\+- berth:index:Container +web +replacing \[diff: ~env\].* \(0s\)\n/);
    expect(up.stdout).toMatch(/\+- berth:index:Container +web +replaced \[diff: ~env\].* \(\d+\.\d\ds\)\n/);
    expect(up.stdout).toMatch(/Resources:\n +\+- 1 replaced\n +\d+ unchanged/);
    expect(containerName()).not.toBe(name); // a replacement gets a new autoname, made before the old one goes
    const events = (await cli("events", "--since", since, "--until", "0s", "--filter", `container=${name}`)).stdout;
    const actions = events.trim().split("\n").map((l) => l.split(" ")[2]);
    // The supervisor may see the exit ("die") before the removal is done, or not at all.
    expect(actions.filter((a) => a !== "die")).toEqual(["stop", "destroy"]);
    name = containerName();
    const creates = (await cli("events", "--since", since, "--until", "0s", "--filter", "event=create", "--filter", "event=start", "--format", "{{.Action}} {{.Actor.ID}}")).stdout;
    expect(creates).toContain(`create ${name}\n`);
    expect(creates).toContain(`start ${name}\n`);
    // Without --since, only what happens from now on.
    const live = startBerth(["events", "--filter", `container=${name}`], env);
    let seen = "";
    live.stdout!.on("data", (d) => (seen += d));
    try {
      await new Promise((r) => setTimeout(r, 1000));
      await scoped("pause", "web");
      await scoped("unpause", "web");
      await waitFor("the pause and unpause events", () => (/container unpause/.test(seen) ? true : undefined), 20_000, 100);
    } finally {
      process.kill(-live.pid!, "SIGKILL");
    }
    expect(seen).toMatch(/container pause/);
    expect(seen).not.toMatch(/container create/);

    // A deployed stack cannot be removed while it has resources.
    const rm = await scoped("stack", "rm", "--yes");
    expect(rm.stderr).toContain("still has resources; removal rejected");
    expect((await scoped("stack", "ls")).stdout).toMatch(new RegExp(`${stack}\\*?\\s+\\S+.*\\s+\\d+`));
  }, 90_000);
});
