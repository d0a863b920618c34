// Day-2 commands on the containers of this host's berth root, with Docker's flags and output: ps, logs, events,
// exec, inspect, stats, top, port, stop, start, restart, kill, pause, unpause, rm, wait, cp, diff, commit.
// A container may be named by its resource name in the current stack (-C DIR, --stack NAME).
import { on as onEvent } from "node:events";
import * as fs from "node:fs";
import type { ContainerEvent, ContainerInfo, ImageInfo, Runtime } from "../../native/runtime";
import { eachName, int, list, needArgs, on, str, UsageError, type Command, type FlagSpec, type ParsedArgs } from "./args";
import { ago, binarySize, filters, FORMAT, humanDuration, humanSize, labelMatches, parseTime, printRows, renderTemplate, shortId } from "./format";
import { guardRemoval, INSPECT_FORMAT, Names, ownerColumn, printInspected, SCOPE_FLAGS } from "./objects";
import { splitRef } from "./images";
import { parseSignal } from "../../native/container/signals";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Docker's STATUS column: "Up 5 seconds (healthy)", "Exited (3) 2 minutes ago", "Restarting (1) …". */
export function statusText(i: ContainerInfo): string {
  const st = i.state;
  if (i.status === "missing") return "Missing";
  if (st?.status === "restarting") return `Restarting (${st.exitCode}) ${ago(st.finishedAt)}`;
  if (i.status === "stopped" || st?.status === "exited") return `Exited (${st?.exitCode ?? 0}) ${ago(st?.finishedAt)}`;
  const health = st?.health ? ` (${st.health.status === "starting" ? "health: starting" : st.health.status})` : "";
  const since = Date.parse(st?.startedAt ?? i.createdAt ?? "");
  return `Up ${humanDuration(Date.now() - since)}${i.paused ? " (Paused)" : health}`;
}

/** Docker's State: created, running, paused, restarting, exited, dead. */
function stateOf(i: ContainerInfo): string {
  if (i.paused) return "paused";
  if (i.state?.status === "restarting") return "restarting";
  if (i.status === "running") return "running";
  return i.status === "missing" ? "dead" : "exited";
}

const portText = (p: NonNullable<ContainerInfo["ports"]>[number]) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.protocol}`;

/** Every container, newest first. */
async function allContainers(rt: Runtime): Promise<ContainerInfo[]> {
  const infos = (await Promise.all((await rt.containers.list()).map((n) => rt.containers.inspect(n)))).filter((i): i is ContainerInfo => !!i);
  return infos.sort((a, b) => Date.parse(b.createdAt ?? "") - Date.parse(a.createdAt ?? ""));
}

/** A row of `ps`, with Docker's --format field names. */
function psRow(i: ContainerInfo, image: ImageInfo | undefined, stack: string, noTrunc: boolean): Record<string, unknown> {
  const spec = i.spec;
  const entrypoint = spec?.entrypoint ?? image?.config.entrypoint ?? [];
  const cmd = spec?.command ?? (spec?.entrypoint ? [] : (image?.config.cmd ?? []));
  const command = [...entrypoint, ...cmd].join(" ");
  const labels = spec?.labels ?? {};
  // IMAGE: the name the container was made from; an id is shown as the name of the image that has it.
  const given = spec?.image ?? i.imageId;
  const named = /^(sha256:)?[0-9a-f]{64}$/.test(given) ? image?.ref : given;
  return {
    ID: i.id,
    Names: i.name,
    Name: i.name,
    Image: named ?? (noTrunc ? i.imageId : shortId(i.imageId)),
    ImageID: i.imageId,
    Command: `"${noTrunc || command.length <= 20 ? command : `${command.slice(0, 19)}…`}"`,
    CreatedAt: i.createdAt ?? "",
    RunningFor: ago(i.createdAt),
    Ports: (i.ports ?? []).map(portText).join(", "),
    State: stateOf(i),
    Status: statusText(i),
    IP: i.ip ?? "",
    Networks: Object.keys(i.ips ?? {}).join(","),
    Mounts: (spec?.mounts ?? []).map((m) => m.volume).join(","),
    Labels: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(","),
    Label: (key: string) => labels[key] ?? "",
    Stack: stack,
  };
}

const PS_FILTERS = ["id", "name", "label", "status", "ancestor", "exited", "health", "network", "volume", "publish"];

function psFilter(f: Map<string, string[]>, i: ContainerInfo, image: ImageInfo | undefined): boolean {
  const any = (key: string, test: (v: string) => boolean) => !f.has(key) || f.get(key)!.some(test);
  const all = (key: string, test: (v: string) => boolean) => !f.has(key) || f.get(key)!.every(test);
  return (
    any("id", (v) => i.id.startsWith(v) || i.name.startsWith(v)) &&
    any("name", (v) => new RegExp(v).test(i.name)) &&
    all("label", (v) => labelMatches(i.spec?.labels, v)) &&
    any("status", (v) => stateOf(i) === v) &&
    any("ancestor", (v) => i.spec?.image === v || image?.ref === v || splitRef(image?.ref ?? "")[0] === v || i.imageId.replace("sha256:", "").startsWith(v.replace("sha256:", ""))) &&
    any("exited", (v) => stateOf(i) === "exited" && i.state?.exitCode === Number(v)) &&
    any("health", (v) => (i.state?.health?.status ?? "none") === v) &&
    any("network", (v) => v in (i.ips ?? {})) &&
    any("volume", (v) => (i.spec?.mounts ?? []).some((m) => m.volume === v || m.target === v)) &&
    any("publish", (v) => (i.ports ?? []).some((p) => `${p.containerPort}/${p.protocol}` === (v.includes("/") ? v : `${v}/tcp`)))
  );
}

/** A terminal's new size each time it is resized (SIGWINCH), until `signal`: what `exec -t` passes on. */
async function* terminalSizes(out: NodeJS.WriteStream, signal: AbortSignal): AsyncGenerator<{ rows: number; cols: number }> {
  try {
    for await (const _ of onEvent(out, "resize", { signal })) yield { rows: out.rows, cols: out.columns };
  } catch (e) {
    if (!signal.aborted) throw e;
  }
}

/** Docker's --tail: a number of lines, or "all" (undefined). */
function tailOf(p: ParsedArgs): number | undefined {
  const tail = str(p, "tail");
  if (tail === undefined || tail === "all") return undefined;
  const n = Number(tail);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`invalid value "${tail}" for --tail: a number of lines, or all`, "See 'berth logs --help'.");
  return n;
}

/** An event as `docker events` prints it: "<time> container <action> <name> (<k>=<v>, …)". */
const eventLine = (e: ContainerEvent) =>
  `${e.time} ${e.type} ${e.action} ${e.actor} (${Object.entries(e.attributes).map(([k, v]) => `${k}=${v}`).join(", ")})`;

/** The fields `docker events --format` reads. */
const eventFields = (e: ContainerEvent) => ({
  Time: e.time,
  Type: e.type,
  Action: e.action,
  Status: e.action,
  ID: e.actor,
  From: e.attributes.image,
  Actor: { ID: e.actor, Attributes: e.attributes },
});

async function stats(rt: Runtime, names: string[], p: ParsedArgs): Promise<void> {
  const format = str(p, "format");
  for (;;) {
    const first = await Promise.all(names.map((n) => rt.containers.stats(n).catch(() => undefined)));
    await sleep(500);
    const second = await Promise.all(names.map((n) => rt.containers.stats(n).catch(() => undefined)));
    const rows = [];
    for (const [i, n] of names.entries()) {
      const [before, s] = [first[i], second[i]];
      if (!s || !before) continue;
      const cpu = Math.min(((s.cpuNanos - before.cpuNanos) / 5e8) * 100, s.onlineCpus * 100);
      const limit = s.memoryLimit;
      rows.push({
        Name: n,
        Container: n,
        ID: n,
        CPUPerc: `${cpu.toFixed(2)}%`,
        MemUsage: `${binarySize(s.memoryBytes)} / ${binarySize(limit)}`,
        MemPerc: `${((s.memoryBytes / limit) * 100).toFixed(2)}%`,
        NetIO: `${humanSize(s.netRx)} / ${humanSize(s.netTx)}`,
        BlockIO: `${humanSize(s.blockRead)} / ${humanSize(s.blockWrite)}`,
        PIDs: String(s.pids),
      });
    }
    if (!on(p, "no-stream") && process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H");
    printRows(rows, {
      format,
      columns: ["Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"],
      headers: { Name: "NAME", Container: "CONTAINER", ID: "CONTAINER ID", CPUPerc: "CPU %", MemUsage: "MEM USAGE / LIMIT", MemPerc: "MEM %", NetIO: "NET I/O", BlockIO: "BLOCK I/O", PIDs: "PIDS" },
    });
    if (on(p, "no-stream")) return;
  }
}

const TIME: FlagSpec = { name: "time", short: "t", value: "SECONDS", help: "seconds to wait for it to stop before killing it (default: its stopTimeout, else 10)" };

export function containerCommands(runtime: () => Runtime): Command[] {
  /**
   * One container command that takes container names: resolves each, runs fn, prints the name as Docker does (one
   * that fails does not stop the others: eachName). `check` refuses bad flag values first, before any lookup.
   */
  const each = (
    name: string,
    summary: string,
    fn: (rt: Runtime, container: string, p: ParsedArgs) => Promise<void>,
    flags: FlagSpec[] = [],
    check?: (p: ParsedArgs) => void,
  ): Command => ({
    name,
    usage: "CONTAINER...",
    summary,
    flags: [...flags, ...SCOPE_FLAGS],
    async run(p) {
      const given = needArgs(p, name, 1, true);
      check?.(p);
      const rt = runtime();
      const names = new Names(rt, p);
      return eachName(given, async (g) => {
        await fn(rt, await names.container(g), p);
        console.log(g);
      });
    },
  });
  /** A command on one container: resolved, with the rest of the arguments. */
  const one = async (p: ParsedArgs, cmd: string) => {
    const rt = runtime();
    const [given, ...rest] = needArgs(p, cmd, 1, true);
    return { rt, name: await new Names(rt, p).container(given), rest };
  };
  const inspectOrFail = async (rt: Runtime, name: string) => {
    const info = await rt.containers.inspect(name);
    if (!info) throw new Error(`No such container: ${name}`);
    return info;
  };

  return [
    {
      name: "ps",
      aliases: ["container ls", "container list"],
      summary: "List containers (running ones unless -a).",
      flags: [
        { name: "all", short: "a", help: "all containers, not only running ones" },
        { name: "filter", short: "f", value: "KEY=VALUE", repeat: true, help: `only containers that match: ${PS_FILTERS.join(", ")} (repeatable)` },
        FORMAT,
        { name: "last", short: "n", value: "N", help: "the N containers created last (in every state)" },
        { name: "latest", short: "l", help: "the container created last (in every state)" },
        { name: "no-trunc", help: "full commands and image ids" },
        { name: "quiet", short: "q", help: "only names" },
      ],
      async run(p) {
        needArgs(p, "ps", 0);
        const rt = runtime();
        const f = filters(list(p, "filter"), PS_FILTERS, "ps");
        // Docker's -n -1 (its default) and -n 0 set no limit and keep the running-only view.
        const n = int(p, "last");
        const last = on(p, "latest") ? 1 : n !== undefined && n > 0 ? n : undefined;
        const images = new Map<string, ImageInfo>();
        for (const i of await rt.images.list()) if (!images.has(i.id)) images.set(i.id, i);
        const stackOf = await ownerColumn(rt, "container");
        let shown = await allContainers(rt);
        // -n and -l show every state, as Docker's; a status filter does too.
        if (!on(p, "all") && last === undefined && !f.has("status") && !f.has("exited")) shown = shown.filter((i) => i.status === "running");
        shown = shown.filter((i) => psFilter(f, i, images.get(i.imageId)));
        if (last !== undefined) shown = shown.slice(0, last);
        if (on(p, "quiet")) {
          shown.forEach((i) => console.log(i.name));
          return 0;
        }
        printRows(shown.map((i) => psRow(i, images.get(i.imageId), stackOf(i.name), on(p, "no-trunc"))), {
          format: str(p, "format"),
          columns: ["Names", "Image", "Command", "RunningFor", "Status", "Ports"],
          headers: { ID: "CONTAINER ID", Names: "NAMES", Name: "NAME", Image: "IMAGE", ImageID: "IMAGE ID", Command: "COMMAND", CreatedAt: "CREATED AT", RunningFor: "CREATED", Ports: "PORTS", State: "STATE", Status: "STATUS", IP: "IP", Networks: "NETWORKS", Mounts: "MOUNTS", Labels: "LABELS", Stack: "STACK" },
        });
        return 0;
      },
    },
    {
      name: "logs",
      usage: "CONTAINER",
      summary: "Print a container's output (times: when the supervisor saw each line, within 200 ms).",
      flags: [
        { name: "follow", short: "f", help: "keep printing what it writes" },
        { name: "tail", short: "n", value: "N", help: 'only the last N lines (default "all")' },
        { name: "since", value: "TIME", help: "only lines since a time (2026-01-02T15:04:05Z, Unix seconds) or for a duration (10m)" },
        { name: "until", value: "TIME", help: "only lines before a time or a duration ago" },
        { name: "timestamps", short: "t", help: "prefix each line with its time (RFC 3339)" },
        ...SCOPE_FLAGS,
      ],
      async run(p) {
        const { rt, name, rest } = await one(p, "logs");
        if (rest.length > 0) needArgs(p, "logs", 1);
        const since = str(p, "since") === undefined ? undefined : parseTime(str(p, "since")!, "--since");
        const until = str(p, "until") === undefined ? undefined : parseTime(str(p, "until")!, "--until");
        const stamp = on(p, "timestamps");
        for await (const l of rt.containers.logs(name, { since, until, tail: tailOf(p), follow: on(p, "follow") })) {
          process.stdout.write(`${stamp ? `${l.time} ` : ""}${l.text}\n`);
        }
        return 0;
      },
    },
    {
      name: "events",
      summary: "Container events (create, start, stop, kill, die, oom, restart, pause, unpause, destroy, health_status): new ones as they happen; --since for past ones.",
      flags: [
        { name: "since", value: "TIME", help: "also past events since a time or for a duration (10m)" },
        { name: "until", value: "TIME", help: "stop at this time (a past time: print and exit)" },
        { name: "filter", short: "f", value: "KEY=VALUE", repeat: true, help: "container=NAME, event=ACTION, type=container, image=IMAGE (repeatable)" },
        FORMAT,
      ],
      async run(p) {
        needArgs(p, "events", 0);
        const rt = runtime();
        const f = filters(list(p, "filter"), ["container", "event", "type", "image"], "events");
        const since = str(p, "since") === undefined ? undefined : parseTime(str(p, "since")!, "--since");
        const until = str(p, "until") === undefined ? undefined : parseTime(str(p, "until")!, "--until");
        const format = str(p, "format");
        for await (const e of rt.containers.events({ since, until, filters: Object.fromEntries(f) })) {
          console.log(format ? renderTemplate(format === "json" ? "{{json .}}" : format, eventFields(e)) : eventLine(e));
        }
        return 0;
      },
    },
    {
      name: "exec",
      usage: "CONTAINER COMMAND [ARG...]",
      summary: "Run a command in a running container's namespaces.",
      stopAtFirstArg: true,
      flags: [
        { name: "detach", short: "d", help: "start it and return" },
        { name: "env", short: "e", value: "KEY=VALUE", repeat: true, help: "set an environment variable (KEY alone: its value here)" },
        { name: "env-file", value: "FILE", repeat: true, help: "read environment variables from a file (KEY=VALUE lines)" },
        { name: "interactive", short: "i", help: "pass berth's stdin to the command (without it, the command's stdin is empty)" },
        { name: "tty", short: "t", help: "run it on a terminal of its own (made on the container's host)" },
        { name: "user", short: "u", value: "USER", help: "run as this user (name|uid[:group|gid])" },
        { name: "workdir", short: "w", value: "DIR", help: "working directory inside the container" },
        ...SCOPE_FLAGS,
      ],
      async run(p) {
        const { rt, name, rest } = await one(p, "exec");
        if (rest.length === 0) throw new UsageError('"berth exec" requires at least 2 arguments: CONTAINER COMMAND', "See 'berth exec --help'.");
        const fromFiles = list(p, "env-file").flatMap((file) =>
          fs.readFileSync(file, "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")),
        );
        // KEY alone takes its value here, on the caller's side of the seam.
        const env = [...fromFiles, ...list(p, "env")].map((e) => (e.includes("=") ? e : `${e}=${process.env[e] ?? ""}`));
        const tty = on(p, "tty");
        const interactive = on(p, "interactive");
        // As docker: a terminal here goes raw, so keys (^C too) reach the command's terminal untouched.
        const raw = tty && interactive && process.stdin.isTTY;
        if (raw) process.stdin.setRawMode(true);
        const resized = new AbortController();
        try {
          return await rt.containers.exec(name, rest, {
            tty,
            size: tty && process.stdout.isTTY ? { rows: process.stdout.rows, cols: process.stdout.columns } : undefined,
            resize: tty && process.stdout.isTTY ? terminalSizes(process.stdout, resized.signal) : undefined,
            detach: on(p, "detach"),
            env,
            user: str(p, "user"),
            workdir: str(p, "workdir"),
            stdin: interactive ? process.stdin : undefined,
            stdout: (c) => process.stdout.write(c),
            stderr: (c) => process.stderr.write(c),
          });
        } finally {
          resized.abort();
          if (raw) process.stdin.setRawMode(false);
        }
      },
    },
    {
      name: "inspect",
      usage: "NAME...",
      summary: "Everything berth knows about containers, images, networks or volumes, as JSON.",
      flags: [INSPECT_FORMAT, { name: "type", value: "TYPE", help: "container, image, network or volume (default: the first that has the name)" }, ...SCOPE_FLAGS],
      async run(p) {
        const rt = runtime();
        const names = new Names(rt, p);
        const type = str(p, "type");
        if (type && !["container", "image", "network", "volume"].includes(type)) throw new UsageError(`"${type}" is not a valid value for --type: container, image, network or volume`, "");
        const lookups: Array<[string, (n: string) => Promise<unknown>]> = [
          ["container", async (n) => rt.containers.inspect(await names.container(n))],
          ["image", (n) => rt.images.inspect(n)],
          ["network", async (n) => rt.networks.inspect(await names.network(n))],
          ["volume", async (n) => rt.volumes.inspect(await names.volume(n))],
        ];
        const found = [];
        for (const n of needArgs(p, "inspect", 1, true)) {
          let hit: unknown;
          for (const [kind, look] of lookups) {
            if (type && type !== kind) continue;
            hit = await look(n).catch(() => undefined);
            if (hit) break;
          }
          if (!hit) throw new Error(`No such object: ${n}`);
          found.push(hit);
        }
        printInspected(found, str(p, "format"));
        return 0;
      },
    },
    {
      name: "stats",
      usage: "[CONTAINER...]",
      summary: "CPU, memory, network and block I/O and process counts of running containers.",
      flags: [
        { name: "all", short: "a", help: "stopped containers too (their row is left out: they use nothing)" },
        FORMAT,
        { name: "no-stream", help: "print once and exit" },
        { name: "no-trunc", help: "accepted for Docker's sake: names are never truncated" },
        ...SCOPE_FLAGS,
      ],
      async run(p) {
        const rt = runtime();
        const names = new Names(rt, p);
        const chosen = p.args.length > 0 ? await Promise.all(p.args.map((n) => names.container(n))) : (await allContainers(rt)).filter((i) => i.status === "running").map((i) => i.name);
        for (const n of chosen) await inspectOrFail(rt, n);
        await stats(rt, chosen, p);
        return 0;
      },
    },
    {
      name: "top",
      usage: "CONTAINER [ps OPTIONS]",
      summary: "A container's processes, as ps shows them (default -o pid,user,time,args).",
      stopAtFirstArg: true,
      flags: SCOPE_FLAGS,
      async run(p) {
        const { rt, name, rest } = await one(p, "top");
        process.stdout.write(await rt.containers.top(name, rest.length > 0 ? rest : undefined));
        return 0;
      },
    },
    {
      name: "port",
      usage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
      summary: "A container's published ports.",
      flags: SCOPE_FLAGS,
      async run(p) {
        const { rt, name, rest } = await one(p, "port");
        if (rest.length > 1) needArgs(p, "port", 2);
        const ports = (await inspectOrFail(rt, name)).ports ?? [];
        if (rest.length === 0) {
          for (const q of ports) console.log(`${q.containerPort}/${q.protocol} -> ${q.hostIp}:${q.hostPort}`);
          return 0;
        }
        const [port, proto = "tcp"] = rest[0].split("/");
        const hits = ports.filter((q) => String(q.containerPort) === port && q.protocol === proto);
        if (hits.length === 0) throw new Error(`No public port '${port}/${proto}' published for ${p.args[0]}`);
        for (const q of hits) console.log(`${q.hostIp}:${q.hostPort}`);
        return 0;
      },
    },
    each("stop", "Stop containers: the stop signal, then SIGKILL after the timeout.", (rt, n, p) => rt.containers.stop(n, { graceSeconds: int(p, "time") }), [TIME]),
    each("start", "Start stopped containers.", (rt, n) => rt.containers.start(n)),
    each(
      "restart",
      "Stop, then start containers.",
      async (rt, n, p) => {
        await rt.containers.stop(n, { graceSeconds: int(p, "time") });
        await rt.containers.start(n);
      },
      [TIME],
    ),
    each(
      "kill",
      "Signal every process of containers (default SIGKILL).",
      (rt, n, p) => rt.containers.kill(n, str(p, "signal") ?? "KILL"),
      [{ name: "signal", short: "s", value: "SIGNAL", help: "the signal (name or number)" }],
      (p) => parseSignal(str(p, "signal") ?? "KILL"), // as Docker: a bad signal is the error, whatever the names
    ),
    each("pause", "Freeze containers' processes.", (rt, n) => rt.containers.pause(n)),
    each("unpause", "Thaw containers' processes.", (rt, n) => rt.containers.unpause(n)),
    each(
      "rm",
      "Delete containers (a running one, or one a stack owns, only with --force).",
      async (rt, n, p) => {
        const info = await rt.containers.inspect(n);
        if (!info) {
          // One whose removal was killed midway is no container any more, but what it left goes now.
          if (await rt.containers.finishRemoval(n)) return;
          throw new Error(`No such container: ${n}`);
        }
        const force = on(p, "force");
        if (info.status === "running" && !force) {
          throw new Error(`You cannot remove a running container ${n}. Stop the container before attempting removal or force remove (-f)`);
        }
        await guardRemoval(rt, "container", n, force);
        await rt.containers.remove(n, { graceSeconds: 0 });
        await rt.owners.release("container", n);
      },
      [
        { name: "force", short: "f", help: "also a running container (killed), and one a stack owns" },
        { name: "volumes", short: "v", help: "accepted for Docker's sake: anonymous volumes always go with their container" },
      ],
    ),
    {
      name: "wait",
      usage: "CONTAINER...",
      summary: "Wait until containers exit; print their exit codes.",
      flags: SCOPE_FLAGS,
      async run(p) {
        const rt = runtime();
        const names = new Names(rt, p);
        return eachName(needArgs(p, "wait", 1, true), async (given) => {
          const n = await names.container(given);
          for (;;) {
            const info = await inspectOrFail(rt, n);
            if (info.status !== "running" && info.state?.status !== "restarting") {
              console.log(info.state?.exitCode ?? 0);
              break;
            }
            await sleep(100);
          }
        });
      },
    },
    {
      name: "cp",
      usage: "CONTAINER:SRC_PATH DEST_PATH | SRC_PATH CONTAINER:DEST_PATH",
      summary: "Copy files out of or into a container.",
      flags: SCOPE_FLAGS,
      async run(p) {
        const [src, dst] = needArgs(p, "cp", 2);
        const inContainer = (a: string) => /^[a-zA-Z0-9][a-zA-Z0-9_.-]*:/.test(a);
        if (inContainer(src) === inContainer(dst)) {
          throw new UsageError('"berth cp" copies between a container and the host: CONTAINER:PATH HOSTPATH or HOSTPATH CONTAINER:PATH', "See 'berth cp --help'.");
        }
        const [remote, local, direction] = inContainer(src) ? [src, dst, "from" as const] : [dst, src, "to" as const];
        const colon = remote.indexOf(":");
        const rt = runtime();
        await rt.containers.copy(await new Names(rt, p).container(remote.slice(0, colon)), direction, remote.slice(colon + 1), local);
        return 0;
      },
    },
    {
      name: "diff",
      usage: "CONTAINER",
      summary: "Files added (A), changed (C), deleted (D) in a container's root filesystem.",
      flags: SCOPE_FLAGS,
      async run(p) {
        const { rt, name } = await one(p, "diff");
        needArgs(p, "diff", 1);
        for (const line of await rt.containers.diff(name)) console.log(line);
        return 0;
      },
    },
    {
      name: "commit",
      usage: "CONTAINER REPOSITORY[:TAG]",
      summary: "A new image: the container's image plus its changes as one layer (the container paused meanwhile).",
      flags: [
        { name: "author", short: "a", value: "AUTHOR", help: 'the author ("Jane <jane@example.com>")' },
        { name: "message", short: "m", value: "MESSAGE", help: "the commit message" },
        { name: "pause", short: "p", help: "pause the container while committing (default true; -p=false not to)" },
        ...SCOPE_FLAGS,
      ],
      async run(p) {
        const [given, ref] = needArgs(p, "commit", 2);
        const rt = runtime();
        const name = await new Names(rt, p).container(given);
        const image = await rt.containers.commit(name, ref, { author: str(p, "author"), message: str(p, "message"), pause: p.flags.pause !== false });
        console.log(image.id);
        return 0;
      },
    },
  ];
}
