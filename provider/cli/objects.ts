// Host objects as the day-2 commands see them: names resolved within the current stack (a resource name such as
// "web" finds the container the stack's `web` made), the ownership guard (an object a stack made is not removed
// behind its back without --force), and the `network` and `volume` command groups.
import * as fs from "node:fs";
import * as path from "node:path";
import type { NetworkInfo, ObjectKind, Runtime, VolumeInfo } from "../../native/runtime";
import { parseUrn } from "../engine/urn";
import { loadProject } from "../engine/program";
import { list, needArgs, on, str, type Command, type FlagSpec, type ParsedArgs } from "./args";
import { filters, labelMatches, printRows, renderTemplate } from "./format";
import { stackOf } from "./stack";

/** -C and --stack: which stack's resource names the arguments may be (no -s: Docker's commands use it). */
export const SCOPE_FLAGS: FlagSpec[] = [
  { name: "cwd", short: "C", value: "DIR", help: "the Pulumi project whose resource names may name objects (default: .)" },
  { name: "stack", value: "NAME", help: "the stack whose resource names may name objects (default: the selected one, else dev)" },
];

const TYPES: Record<ObjectKind, string> = {
  container: "berth:index:Container",
  image: "berth:index:Image",
  network: "berth:index:Network",
  volume: "berth:index:Volume",
  registry: "berth:index:Registry",
};

/** "stack dev of project quickstart (resource web)". */
export function describeOwner(urn: string): string {
  const u = parseUrn(urn);
  return `stack ${u.stack} of project ${u.project} (resource ${u.name})`;
}

/** Names objects on the command line: as given when such an object exists, else by the current stack's resource. */
export class Names {
  constructor(
    private readonly rt: Runtime,
    private readonly p: ParsedArgs,
  ) {}

  private stackScope(): { stack: string; project: string } | undefined {
    const dir = str(this.p, "cwd") ?? ".";
    if (!fs.existsSync(path.join(dir, "Pulumi.yaml"))) return undefined;
    return { stack: stackOf(this.p, dir), project: loadProject(path.resolve(dir)).name };
  }

  async resolve(kind: ObjectKind, name: string, exists: (n: string) => Promise<unknown>): Promise<string> {
    if (await exists(name).catch(() => undefined)) return name;
    const scope = this.stackScope();
    if (!scope) return name;
    for (const [object, urn] of await this.rt.owners.list(kind)) {
      const u = parseUrn(urn);
      if (u.stack === scope.stack && u.project === scope.project && u.type === TYPES[kind] && u.name === name) return object;
    }
    return name;
  }

  container = (name: string) => this.resolve("container", name, (n) => this.rt.containers.inspect(n));
  network = (name: string) => this.resolve("network", name, (n) => this.rt.networks.inspect(n));
  volume = (name: string) => this.resolve("volume", name, (n) => this.rt.volumes.inspect(n));
}

/** Refuses to remove an object a stack owns unless forced; once removed, call `released`. */
export async function guardRemoval(rt: Runtime, kind: ObjectKind, name: string, force: boolean): Promise<void> {
  const urn = await rt.owners.ownerOf(kind, name);
  if (!urn || force) return;
  throw new Error(
    `${kind} ${name} belongs to ${describeOwner(urn)}: remove it from the program and run berth up (or berth destroy), or pass --force to remove it anyway`,
  );
}

/** `--format` output of inspect: the template for each object, or the objects as a JSON array. */
export function printInspected(objects: unknown[], format: string | undefined): void {
  if (format) for (const o of objects) console.log(renderTemplate(format === "json" ? "{{json .}}" : format, o));
  else console.log(JSON.stringify(objects, null, 2));
}

const FORMAT: FlagSpec = { name: "format", value: "STRING", help: "a Go template ({{.Name}}, {{json .}}, table …), or json" };
/** inspect's --format is also -f (where ls has -f for --filter). */
export const INSPECT_FORMAT: FlagSpec = { name: "format", short: "f", value: "STRING", help: "a Go template ({{.Name}}, {{json .Labels}}, {{index .Labels \"k\"}} …), or json" };
const FILTER: FlagSpec = { name: "filter", short: "f", value: "KEY=VALUE", repeat: true, help: "only objects that match (repeatable)" };
const QUIET: FlagSpec = { name: "quiet", short: "q", help: "only names" };
const FORCE_OWNED = "remove it even though a stack owns it";

/**
 * Removes what a prune may take, one at a time: objects no stack owns and nothing uses (the runtime refuses an
 * object in use, which a prune skips). Prints Docker's "Deleted …" list.
 */
async function prune(rt: Runtime, kind: "network" | "volume", names: string[], remove: (n: string) => Promise<void>): Promise<string[]> {
  const owned = await rt.owners.list(kind);
  const gone: string[] = [];
  for (const n of names) {
    if (owned.has(n)) continue;
    try {
      await remove(n);
      gone.push(n);
    } catch {
      // in use
    }
  }
  return gone;
}

/** The STACK column: "project/stack" of an object's owner, empty when no stack owns it. */
export async function ownerColumn(rt: Runtime, kind: ObjectKind): Promise<(name: string) => string> {
  const owned = await rt.owners.list(kind);
  return (name) => {
    const u = owned.has(name) ? parseUrn(owned.get(name)!) : undefined;
    return u ? `${u.project}/${u.stack}` : "";
  };
}

export function networkCommands(runtime: () => Runtime): Command[] {
  const inspectAll = async (rt: Runtime) =>
    (await Promise.all((await rt.networks.list()).map((n) => rt.networks.inspect(n)))).filter((i): i is NetworkInfo => !!i);
  return [
    {
      name: "network ls",
      aliases: ["network list"],
      summary: "List networks (STACK: the project/stack that owns one).",
      flags: [FILTER, FORMAT, QUIET, { name: "no-trunc", help: "do not truncate (names are never truncated)" }],
      async run(p) {
        needArgs(p, "network ls", 0);
        const rt = runtime();
        const f = filters(list(p, "filter"), ["name", "driver", "id"], "network ls");
        const stackOfNet = await ownerColumn(rt, "network");
        const rows = (await inspectAll(rt))
          .map((n) => ({ ID: n.name, Name: n.name, Driver: n.driver, Scope: "local", Subnet: n.subnet, Gateway: n.gateway, Bridge: n.bridge, Stack: stackOfNet(n.name) }))
          .filter((r) => (f.get("name") ?? [r.Name]).some((v) => r.Name.includes(v)))
          .filter((r) => (f.get("id") ?? [r.ID]).some((v) => r.ID.startsWith(v)))
          .filter((r) => (f.get("driver") ?? [r.Driver]).includes(r.Driver));
        if (on(p, "quiet")) rows.forEach((r) => console.log(r.Name));
        else printRows(rows, { format: str(p, "format"), columns: ["Name", "Driver", "Subnet", "Stack"], headers: { Name: "NAME", ID: "NETWORK ID", Driver: "DRIVER", Subnet: "SUBNET", Scope: "SCOPE", Stack: "STACK" } });
        return 0;
      },
    },
    {
      name: "network inspect",
      usage: "NETWORK...",
      summary: "Everything berth knows about networks, as JSON.",
      flags: [INSPECT_FORMAT, ...SCOPE_FLAGS],
      async run(p) {
        const rt = runtime();
        const names = new Names(rt, p);
        const found = [];
        for (const n of needArgs(p, "network inspect", 1, true)) {
          const info = await rt.networks.inspect(await names.network(n));
          if (!info) throw new Error(`network ${n} not found`);
          found.push({ ...info, owner: await rt.owners.ownerOf("network", info.name) });
        }
        printInspected(found, str(p, "format"));
        return 0;
      },
    },
    {
      name: "network rm",
      aliases: ["network remove"],
      usage: "NETWORK...",
      summary: "Remove networks (refused while a container is attached, or a stack owns it without --force).",
      flags: [{ name: "force", short: "f", help: FORCE_OWNED }, ...SCOPE_FLAGS],
      async run(p) {
        const rt = runtime();
        const names = new Names(rt, p);
        for (const given of needArgs(p, "network rm", 1, true)) {
          const n = await names.network(given);
          if (!(await rt.networks.inspect(n))) throw new Error(`network ${given} not found`);
          await guardRemoval(rt, "network", n, on(p, "force"));
          await rt.networks.remove(n);
          await rt.owners.release("network", n);
          console.log(given);
        }
        return 0;
      },
    },
    {
      name: "network prune",
      summary: "Remove every network no container uses and no stack owns.",
      flags: [{ name: "force", short: "f", help: "do not ask for confirmation" }],
      async run(p) {
        needArgs(p, "network prune", 0);
        if (!on(p, "force")) throw new Error("WARNING! This removes all networks not used by at least one container and owned by no stack: pass --force (-f) to confirm");
        const rt = runtime();
        const gone = await prune(rt, "network", await rt.networks.list(), (n) => rt.networks.remove(n));
        if (gone.length > 0) console.log(`Deleted Networks:\n${gone.join("\n")}`);
        return 0;
      },
    },
  ];
}

export function volumeCommands(runtime: () => Runtime): Command[] {
  const inspectAll = async (rt: Runtime) =>
    (await Promise.all((await rt.volumes.list()).map((n) => rt.volumes.inspect(n)))).filter((i): i is VolumeInfo => !!i);
  return [
    {
      name: "volume ls",
      aliases: ["volume list"],
      summary: "List volumes (STACK: the project/stack that owns one).",
      flags: [FILTER, FORMAT, QUIET],
      async run(p) {
        needArgs(p, "volume ls", 0);
        const rt = runtime();
        const f = filters(list(p, "filter"), ["name", "label", "driver", "dangling"], "volume ls");
        const stackOfVolume = await ownerColumn(rt, "volume");
        const used = new Set((await Promise.all((await rt.containers.list()).map((c) => rt.containers.inspect(c)))).flatMap((i) => i?.spec?.mounts?.map((m) => m.volume) ?? []));
        const rows = (await inspectAll(rt))
          .map((v) => ({ Driver: "local", Name: v.name, Mountpoint: v.mountpoint, Labels: Object.entries(v.labels).map(([k, x]) => `${k}=${x}`).join(","), Stack: stackOfVolume(v.name), labels: v.labels }))
          .filter((r) => (f.get("name") ?? [r.Name]).some((v) => r.Name.includes(v)))
          .filter((r) => (f.get("label") ?? []).every((l) => labelMatches(r.labels, l)))
          .filter((r) => (f.get("dangling") ?? []).every((d) => (d === "true" || d === "1") === !used.has(r.Name)));
        if (on(p, "quiet")) rows.forEach((r) => console.log(r.Name));
        else printRows(rows, { format: str(p, "format"), columns: ["Driver", "Name", "Stack"], headers: { Driver: "DRIVER", Name: "VOLUME NAME", Stack: "STACK", Mountpoint: "MOUNTPOINT", Labels: "LABELS" } });
        return 0;
      },
    },
    {
      name: "volume inspect",
      usage: "VOLUME...",
      summary: "Everything berth knows about volumes, as JSON.",
      flags: [INSPECT_FORMAT, ...SCOPE_FLAGS],
      async run(p) {
        const rt = runtime();
        const names = new Names(rt, p);
        const found = [];
        for (const n of needArgs(p, "volume inspect", 1, true)) {
          const info = await rt.volumes.inspect(await names.volume(n));
          if (!info) throw new Error(`get ${n}: no such volume`);
          found.push({ ...info, driver: "local", owner: await rt.owners.ownerOf("volume", info.name) });
        }
        printInspected(found, str(p, "format"));
        return 0;
      },
    },
    {
      name: "volume rm",
      aliases: ["volume remove"],
      usage: "VOLUME...",
      summary: "Remove volumes and their data (refused while mounted, or a stack owns it without --force).",
      flags: [{ name: "force", short: "f", help: FORCE_OWNED }, ...SCOPE_FLAGS],
      async run(p) {
        const rt = runtime();
        const names = new Names(rt, p);
        for (const given of needArgs(p, "volume rm", 1, true)) {
          const n = await names.volume(given);
          if (!(await rt.volumes.inspect(n))) throw new Error(`get ${given}: no such volume`);
          await guardRemoval(rt, "volume", n, on(p, "force"));
          await rt.volumes.remove(n);
          await rt.owners.release("volume", n);
          console.log(given);
        }
        return 0;
      },
    },
    {
      name: "volume prune",
      summary: "With --all, remove every named volume no container mounts and no stack owns, and its data.",
      flags: [
        { name: "force", short: "f", help: "do not ask for confirmation" },
        { name: "all", short: "a", help: "named volumes too (without it there is nothing to prune: berth's anonymous volumes go with their container)" },
      ],
      async run(p) {
        needArgs(p, "volume prune", 0);
        if (!on(p, "force")) throw new Error("WARNING! This removes all volumes not used by at least one container and owned by no stack, with their data: pass --force (-f) to confirm");
        const rt = runtime();
        // As Docker since 23: without --all only anonymous volumes, and berth has none outside a container.
        const candidates = on(p, "all") ? await rt.volumes.list() : [];
        const gone = await prune(rt, "volume", candidates, (n) => rt.volumes.remove(n));
        if (gone.length > 0) console.log(`Deleted Volumes:\n${gone.join("\n")}`);
        return 0;
      },
    },
  ];
}
