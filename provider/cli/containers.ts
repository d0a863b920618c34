// Day-2 commands on the containers of this host's berth root, in Docker's vocabulary: ps, logs, exec, inspect,
// stats, top, stop, start, restart, kill, pause, unpause, rm, wait, diff, commit, cp, events.
import * as fs from "node:fs";
import type { ContainerInfo, Runtime } from "../../native/runtime";

export const CONTAINER_COMMANDS = new Set([
  "ps", "logs", "events", "exec", "inspect", "stats", "top", "stop", "start", "restart", "kill", "pause", "unpause", "rm", "wait", "diff", "commit", "cp",
]);

export const CONTAINER_USAGE = `
  ps [-a] [-q]                  list containers (running ones without -a)
  logs [-f] NAME                print a container's output (-f: keep following it)
  events [-f]                   start, die, oom, restart and health_status of every container (-f: follow)
  exec [-i] [-t] NAME CMD...    run a command in a running container's namespaces
  inspect NAME...               everything berth knows about containers, as JSON
  stats [--no-stream] [NAME...] CPU, memory and process counts
  top NAME                      a container's processes
  stop|start|restart [-t SEC] NAME...   stop (signal, then SIGKILL after SEC), start, both
  kill [-s SIGNAL] NAME...      signal every process of a container (default SIGKILL)
  pause|unpause NAME...         freeze and thaw a container's processes
  rm [-f] NAME...               delete containers (-f: also running ones)
  wait NAME...                  wait until containers exit; print their exit codes
  cp NAME:PATH HOSTPATH | cp HOSTPATH NAME:PATH   copy files out of or into a container
  diff NAME                     files added (A), changed (C), deleted (D) in a container's root filesystem
  commit [-a AUTHOR] [-m MSG] [-p=false] NAME REF   a new image: the container's image plus its changes`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ago(iso: string | undefined): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso ?? "")) / 1000));
  if (!Number.isFinite(s)) return "";
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  if (s < 3600) return `${Math.round(s / 60)} minutes`;
  return `${Math.round(s / 3600)} hours`;
}

/** Docker's STATUS column: "Up 5 seconds (healthy)", "Exited (3) 2 minutes ago", "Restarting (1) …". */
export function statusText(i: ContainerInfo): string {
  const st = i.state;
  if (i.status === "missing") return "Missing";
  if (st?.status === "restarting") return `Restarting (${st.exitCode}) ${ago(st.finishedAt)} ago`;
  if (i.status === "stopped" || st?.status === "exited") return `Exited (${st?.exitCode ?? 0}) ${ago(st?.finishedAt)} ago`;
  const health = st?.health ? ` (${st.health.status === "starting" ? "health: starting" : st.health.status})` : "";
  return `Up ${ago(st?.startedAt ?? i.createdAt)}${i.paused ? " (Paused)" : health}`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join("   ").trimEnd()).join("\n");
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${n.toFixed(i === 0 ? 0 : 2)}${units[i]}`;
}

interface Parsed {
  flags: Map<string, string | true>;
  args: string[];
}

/** Flags before the first positional argument (the rest, e.g. an exec command, are left alone). */
function parse(argv: string[], valued: string[]): Parsed {
  const flags = new Map<string, string | true>();
  let i = 0;
  for (; i < argv.length && argv[i].startsWith("-"); i++) {
    const a = argv[i];
    if (valued.includes(a)) flags.set(a, argv[++i] ?? "");
    else if (/^-[a-z]{2,}$/.test(a)) for (const c of a.slice(1)) flags.set(`-${c}`, true);
    else flags.set(a, true);
  }
  return { flags, args: argv.slice(i) };
}

async function inspectOrFail(rt: Runtime, name: string): Promise<ContainerInfo> {
  const info = await rt.containers.inspect(name);
  if (!info) throw new Error(`No such container: ${name}`);
  return info;
}

async function followLogs(files: string[], follow: boolean): Promise<void> {
  for (const f of files) process.stdout.write(fs.readFileSync(f));
  const current = files.at(-1);
  if (!follow || !current) return;
  let offset = fs.statSync(current).size;
  for (;;) {
    await sleep(200);
    const size = fs.statSync(current, { throwIfNoEntry: false })?.size ?? 0;
    if (size < offset) offset = 0; // cut by the supervisor's log bound
    if (size > offset) {
      const fd = fs.openSync(current, "r");
      const buf = Buffer.alloc(size - offset);
      fs.readSync(fd, buf, 0, buf.length, offset);
      fs.closeSync(fd);
      process.stdout.write(buf);
      offset = size;
    }
  }
}

async function stats(rt: Runtime, names: string[], stream: boolean): Promise<void> {
  const cpus = (await import("node:os")).cpus().length;
  for (;;) {
    const first = await Promise.all(names.map((n) => rt.containers.stats(n)));
    await sleep(500);
    const second = await Promise.all(names.map((n) => rt.containers.stats(n)));
    const rows = [["NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS"]];
    names.forEach((n, i) => {
      const cpu = ((second[i].cpuNanos - first[i].cpuNanos) / 5e8) * 100;
      const limit = second[i].memoryLimit ? bytes(second[i].memoryLimit!) : `${bytes(0)} (none)`;
      rows.push([n, `${Math.min(cpu, cpus * 100).toFixed(2)}%`, `${bytes(second[i].memoryBytes)} / ${limit}`, String(second[i].pids)]);
    });
    console.log(table(rows));
    if (!stream) return;
  }
}

export async function containerCommand(rt: Runtime, command: string, argv: string[]): Promise<number> {
  const { flags, args } = parse(argv, ["-t", "--time", "-s", "--signal"]);
  const c = rt.containers;
  const each = async (fn: (name: string) => Promise<void>) => {
    if (args.length === 0) throw new Error(`"berth ${command}" requires at least 1 container name`);
    for (const name of args) {
      await fn(name);
      console.log(name);
    }
    return 0;
  };
  const grace = flags.has("-t") || flags.has("--time") ? Number(flags.get("-t") ?? flags.get("--time")) : undefined;
  switch (command) {
    case "ps": {
      const infos = (await Promise.all((await c.list()).map((n) => c.inspect(n)))).filter((i): i is ContainerInfo => !!i);
      const shown = flags.has("-a") || flags.has("--all") ? infos : infos.filter((i) => i.status === "running");
      if (flags.has("-q")) shown.forEach((i) => console.log(i.name));
      else {
        const rows = [["NAME", "IMAGE", "STATUS", "IP", "PORTS"]];
        for (const i of shown) {
          const ports = (i.ports ?? []).map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.protocol}`);
          rows.push([i.name, i.imageId.replace("sha256:", "").slice(0, 12), statusText(i), i.ip ?? "", ports.join(", ")]);
        }
        console.log(table(rows));
      }
      return 0;
    }
    case "logs":
      await followLogs(await c.logFiles(args[0] ?? ""), flags.has("-f") || flags.has("--follow"));
      return 0;
    case "events":
      await followLogs(await c.eventFiles(), flags.has("-f") || flags.has("--follow"));
      return 0;
    case "exec":
      if (args.length < 2) throw new Error('"berth exec" requires a container name and a command');
      return c.exec(args[0], args.slice(1), { tty: flags.has("-t") || flags.has("--tty") });
    case "inspect":
      console.log(JSON.stringify(await Promise.all(args.map((n) => inspectOrFail(rt, n))), null, 2));
      return 0;
    case "stats": {
      const running: string[] = [];
      for (const n of args.length > 0 ? [] : await c.list()) if ((await c.inspect(n))?.status === "running") running.push(n);
      await stats(rt, args.length > 0 ? args : running, !flags.has("--no-stream"));
      return 0;
    }
    case "top":
      process.stdout.write(await c.top(args[0] ?? ""));
      return 0;
    case "stop":
      return each((n) => c.stop(n, { graceSeconds: grace }));
    case "start":
      return each((n) => c.start(n));
    case "restart":
      return each(async (n) => {
        await c.stop(n, { graceSeconds: grace });
        await c.start(n);
      });
    case "kill":
      return each((n) => c.kill(n, (flags.get("-s") ?? flags.get("--signal") ?? "KILL") as string));
    case "pause":
      return each((n) => c.pause(n));
    case "unpause":
      return each((n) => c.unpause(n));
    case "rm":
      return each(async (n) => {
        const info = await inspectOrFail(rt, n);
        if (info.status === "running" && !flags.has("-f") && !flags.has("--force")) {
          throw new Error(`You cannot remove a running container ${n}. Stop the container before attempting removal or force remove (-f)`);
        }
        await c.remove(n, { graceSeconds: 0 });
      });
    case "wait":
      for (const n of args) {
        for (;;) {
          const info = await inspectOrFail(rt, n);
          if (info.status !== "running" && info.state?.status !== "restarting") {
            console.log(info.state?.exitCode ?? 0);
            break;
          }
          await sleep(100);
        }
      }
      return 0;
    case "cp": {
      const [src, dst] = args;
      const inContainer = (a: string | undefined) => a !== undefined && /^[a-zA-Z0-9][a-zA-Z0-9_.-]*:/.test(a);
      if (inContainer(src) === inContainer(dst) || !src || !dst) {
        throw new Error('"berth cp" copies between a container and the host: NAME:PATH HOSTPATH or HOSTPATH NAME:PATH');
      }
      const [remote, local, direction] = inContainer(src) ? [src, dst, "from" as const] : [dst, src, "to" as const];
      const colon = remote.indexOf(":");
      await c.copy(remote.slice(0, colon), direction, remote.slice(colon + 1), local);
      return 0;
    }
    case "diff":
      for (const line of await c.diff(args[0] ?? "")) console.log(line);
      return 0;
    case "commit": {
      // Its own flags: -a takes a value here (in ps it does not).
      const { flags: own, args: rest } = parse(argv, ["-a", "--author", "-m", "--message"]);
      const [name, ref] = rest;
      if (!name || !ref || rest.length > 2) throw new Error('"berth commit" needs a container and a new image name: commit NAME REF');
      const text = (...keys: string[]) => keys.map((k) => own.get(k)).find((v): v is string => typeof v === "string");
      const pause = !own.has("-p=false") && !own.has("--pause=false");
      const image = await c.commit(name, ref, { author: text("-a", "--author"), message: text("-m", "--message"), pause });
      console.log(image.id);
      return 0;
    }
    default:
      throw new Error(`unknown command "${command}"`);
  }
}
