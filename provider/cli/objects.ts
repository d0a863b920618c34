// Host objects as the day-2 commands see them: names resolved within the current stack (a resource name such as
// "web" finds the container the stack's `web` made), the ownership guard (an object a stack made is not removed
// behind its back without --force), and the `network` and `volume` command groups.
import * as fs from "node:fs";
import * as path from "node:path";
import type { NetworkInfo, ObjectKind, Runtime, VolumeInfo } from "../../native/runtime";
import { parseUrn } from "../engine/urn";
import { loadProject } from "../engine/program";
import { eachName, list, needArgs, on, str, wordsWithout, type Command, type FlagSpec, type ParsedArgs } from "./args";
import { HOST_FLAG } from "./host";
import { filters, FORMAT, labelMatches, printRows, renderTemplate } from "./format";
import { stackOf } from "./stack";
import { elsewhere, stackState } from "./elsewhere";
import { THIS_MACHINE, type HostRuntime } from "../runtimes";
import type { ProviderConfig } from "../resources";
import type { DeploymentV3 } from "../state/checkpoint";

/**
 * The day-2 commands' runtime: `retarget` sends its calls from now on to the host a resource's provider names, when
 * the command was given no host (-H, $BERTH_HOST); false when it was.
 */
export type DayTwoRuntime = HostRuntime & { retarget(config: ProviderConfig): boolean };

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

/**
 * Names objects on the command line: as given when such an object exists, else by the current stack's resource.
 * One per command: the stack and each kind's owners are read once, however many names it resolves.
 */
export class Names {
  private scope?: { stack: string; project: string } | null;
  private readonly owned = new Map<ObjectKind, Promise<Map<string, string>>>();
  private state?: { read: DeploymentV3 | undefined };

  constructor(
    private readonly rt: Runtime,
    private readonly p: ParsedArgs,
  ) {}

  private stackScope(): { stack: string; project: string } | null {
    if (this.scope !== undefined) return this.scope;
    const dir = str(this.p, "cwd") ?? ".";
    if (!fs.existsSync(path.join(dir, "Pulumi.yaml"))) return (this.scope = null);
    return (this.scope = { stack: stackOf(this.p, dir), project: loadProject(path.resolve(dir)).name });
  }

  /** The current stack's objects of a kind, by resource name. */
  private stackObjects(kind: ObjectKind, scope: { stack: string; project: string }): Promise<Map<string, string>> {
    let objects = this.owned.get(kind);
    if (!objects) {
      objects = this.rt.owners.list(kind).then((owners) => {
        const byName = new Map<string, string>();
        for (const [object, urn] of owners) {
          const u = parseUrn(urn);
          if (u.stack === scope.stack && u.project === scope.project && u.type === TYPES[kind] && !byName.has(u.name)) byName.set(u.name, object);
        }
        return byName;
      });
      this.owned.set(kind, objects);
    }
    return objects;
  }

  async resolve(kind: ObjectKind, name: string, exists: (n: string) => Promise<unknown>, moved = false): Promise<string> {
    if (await exists(name).catch(() => undefined)) return name;
    const scope = this.stackScope();
    if (!scope) return name;
    const owned = (await this.stackObjects(kind, scope)).get(name);
    if (owned !== undefined) return owned;
    // Not here: the stack may say where it is — where the command goes, unless it was given a host.
    const rt = this.rt as Partial<DayTwoRuntime>;
    this.state ??= { read: stackState({ dir: str(this.p, "cwd") ?? ".", stack: scope.stack }) };
    const found = elsewhere(this.state.read, scope, TYPES[kind], name, rt.host && rt.host !== THIS_MACHINE ? { host: rt.host } : {}, commandLine(this.p));
    if (!found || moved) return name;
    if (!rt.retarget?.(found.config)) throw new Error(found.why);
    this.owned.clear(); // another host's owners from now on
    return this.resolve(kind, name, exists, true);
  }

  container = (name: string) => this.resolve("container", name, (n) => this.rt.containers.inspect(n));
  network = (name: string) => this.resolve("network", name, (n) => this.rt.networks.inspect(n));
  volume = (name: string) => this.resolve("volume", name, (n) => this.rt.volumes.inspect(n));
}

/** This command's words without the host it named (-H URL, -HURL, --host URL, --host=URL): what to run elsewhere. */
export function commandLine(p: ParsedArgs): string {
  return wordsWithout(p, HOST_FLAG.name).join(" ");
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

/** inspect's --format is also -f (where ls has -f for --filter). */
export const INSPECT_FORMAT: FlagSpec = { name: "format", short: "f", value: "STRING", help: "a Go template ({{.Name}}, {{json .Labels}}, {{index .Labels \"k\"}} …), or json" };
const FILTER: FlagSpec = { name: "filter", short: "f", value: "KEY=VALUE", repeat: true, help: "only objects that match (repeatable)" };
const QUIET: FlagSpec = { name: "quiet", short: "q", help: "only names" };

/** The flags of every prune: --force to confirm, --all for what Docker prunes only with it. */
export const pruneFlags = (all: string): FlagSpec[] => [
  { name: "all", short: "a", help: all },
  { name: "force", short: "f", help: "do not ask for confirmation" },
];

/** Docker asks before a prune; berth, never prompting, wants --force. */
export function confirmPrune(p: ParsedArgs, cmd: string, what: string): void {
  needArgs(p, cmd, 0);
  if (!on(p, "force")) throw new Error(`WARNING! This removes ${what}: pass --force (-f) to confirm`);
}

/** The STACK column: "project/stack" of an object's owner, empty when no stack owns it. */
export async function ownerColumn(rt: Runtime, kind: ObjectKind): Promise<(name: string) => string> {
  const owned = await rt.owners.list(kind);
  return (name) => {
    const u = owned.has(name) ? parseUrn(owned.get(name)!) : undefined;
    return u ? `${u.project}/${u.stack}` : "";
  };
}

/** What the network and volume groups share: inspect, rm and prune over one kind of object. */
interface Group<Info> {
  kind: "network" | "volume";
  api: (rt: Runtime) => { inspect(name: string): Promise<Info | undefined>; remove(name: string): Promise<void>; list(): Promise<string[]> };
  /** Docker's words for a name that is not there. */
  missing: (name: string) => string;
  /** Fields inspect adds to the runtime's. */
  extra?: Record<string, unknown>;
  inUse: string;
  /** Docker prunes volumes only with --all (anonymous ones otherwise; berth has none outside a container). */
  pruneNeedsAll: boolean;
}

function groupCommands<Info extends { name: string }>(runtime: () => Runtime, g: Group<Info>, ls: Command): Command[] {
  const Kind = `${g.kind[0].toUpperCase()}${g.kind.slice(1)}`;
  return [
    ls,
    {
      name: `${g.kind} inspect`,
      usage: `${g.kind.toUpperCase()}...`,
      summary: `Everything berth knows about ${g.kind}s, as JSON.`,
      flags: [INSPECT_FORMAT, ...SCOPE_FLAGS],
      async run(p) {
        const rt = runtime();
        const names = new Names(rt, p);
        const found = [];
        for (const n of needArgs(p, `${g.kind} inspect`, 1, true)) {
          const info = await g.api(rt).inspect(await names.resolve(g.kind, n, (x) => g.api(rt).inspect(x)));
          if (!info) throw new Error(g.missing(n));
          found.push({ ...info, ...g.extra, owner: await rt.owners.ownerOf(g.kind, info.name) });
        }
        printInspected(found, str(p, "format"));
        return 0;
      },
    },
    {
      name: `${g.kind} rm`,
      aliases: [`${g.kind} remove`],
      usage: `${g.kind.toUpperCase()}...`,
      summary: `Remove ${g.kind}s (refused while ${g.inUse}, or a stack owns one, without --force).`,
      flags: [{ name: "force", short: "f", help: "remove it even though a stack owns it" }, ...SCOPE_FLAGS],
      async run(p) {
        const rt = runtime();
        const names = new Names(rt, p);
        return eachName(needArgs(p, `${g.kind} rm`, 1, true), async (given) => {
          const n = await names.resolve(g.kind, given, (x) => g.api(rt).inspect(x));
          if (!(await g.api(rt).inspect(n))) throw new Error(g.missing(given));
          await guardRemoval(rt, g.kind, n, on(p, "force"));
          await g.api(rt).remove(n);
          await rt.owners.release(g.kind, n);
          console.log(given);
        });
      },
    },
    {
      name: `${g.kind} prune`,
      summary: `Remove every ${g.pruneNeedsAll ? "named " : ""}${g.kind} nothing uses and no stack owns${g.pruneNeedsAll ? " (with --all)" : ""}.`,
      flags: pruneFlags(g.pruneNeedsAll ? `named ${g.kind}s too (without it there is nothing to prune: anonymous ones go with their container)` : "accepted for Docker's sake"),
      async run(p) {
        confirmPrune(p, `${g.kind} prune`, `all ${g.kind}s not used by at least one container and owned by no stack`);
        const rt = runtime();
        const owned = await rt.owners.list(g.kind);
        const candidates = !g.pruneNeedsAll || on(p, "all") ? await g.api(rt).list() : [];
        const gone: string[] = [];
        for (const n of candidates.filter((c) => !owned.has(c))) {
          // The runtime refuses what is in use: a prune skips it.
          if (await g.api(rt).remove(n).then(() => true, () => false)) gone.push(n);
        }
        if (gone.length > 0) console.log(`Deleted ${Kind}s:\n${gone.join("\n")}`);
        return 0;
      },
    },
  ];
}

export function networkCommands(runtime: () => Runtime): Command[] {
  const group: Group<NetworkInfo> = {
    kind: "network",
    api: (rt) => rt.networks,
    missing: (n) => `network ${n} not found`,
    inUse: "a container is attached",
    pruneNeedsAll: false,
  };
  return groupCommands(runtime, group, {
    name: "network ls",
    aliases: ["network list"],
    summary: "List networks (STACK: the project/stack that owns one).",
    flags: [FILTER, FORMAT, QUIET, { name: "no-trunc", help: "accepted for Docker's sake: names are never truncated" }],
    async run(p) {
      needArgs(p, "network ls", 0);
      const rt = runtime();
      const f = filters(list(p, "filter"), ["name", "driver", "id"], "network ls");
      const stackOfNet = await ownerColumn(rt, "network");
      const infos = (await Promise.all((await rt.networks.list()).map((n) => rt.networks.inspect(n)))).filter((i): i is NetworkInfo => !!i);
      const rows = infos
        .map((n) => ({ ID: n.name, Name: n.name, Driver: n.driver, Scope: "local", Subnet: n.subnet, Gateway: n.gateway, Bridge: n.bridge, Stack: stackOfNet(n.name) }))
        .filter((r) => (f.get("name") ?? [r.Name]).some((v) => r.Name.includes(v)))
        .filter((r) => (f.get("id") ?? [r.ID]).some((v) => r.ID.startsWith(v)))
        .filter((r) => (f.get("driver") ?? [r.Driver]).includes(r.Driver));
      if (on(p, "quiet")) rows.forEach((r) => console.log(r.Name));
      else printRows(rows, { format: str(p, "format"), columns: ["Name", "Driver", "Subnet", "Stack"], headers: { Name: "NAME", ID: "NETWORK ID", Driver: "DRIVER", Subnet: "SUBNET", Scope: "SCOPE", Stack: "STACK" } });
      return 0;
    },
  });
}

export function volumeCommands(runtime: () => Runtime): Command[] {
  const group: Group<VolumeInfo> = {
    kind: "volume",
    api: (rt) => rt.volumes,
    missing: (n) => `get ${n}: no such volume`,
    extra: { driver: "local" },
    inUse: "a container mounts it",
    pruneNeedsAll: true,
  };
  return groupCommands(runtime, group, {
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
      const infos = (await Promise.all((await rt.volumes.list()).map((n) => rt.volumes.inspect(n)))).filter((i): i is VolumeInfo => !!i);
      const rows = infos
        .map((v) => ({ Driver: "local", Name: v.name, Mountpoint: v.mountpoint, Labels: Object.entries(v.labels).map(([k, x]) => `${k}=${x}`).join(","), Stack: stackOfVolume(v.name), labels: v.labels }))
        .filter((r) => (f.get("name") ?? [r.Name]).some((v) => r.Name.includes(v)))
        .filter((r) => (f.get("label") ?? []).every((l) => labelMatches(r.labels, l)))
        .filter((r) => (f.get("driver") ?? [r.Driver]).includes(r.Driver))
        .filter((r) => (f.get("dangling") ?? []).every((d) => (d === "true" || d === "1") === !used.has(r.Name)));
      if (on(p, "quiet")) rows.forEach((r) => console.log(r.Name));
      else printRows(rows, { format: str(p, "format"), columns: ["Driver", "Name", "Stack"], headers: { Driver: "DRIVER", Name: "VOLUME NAME", Stack: "STACK", Mountpoint: "MOUNTPOINT", Labels: "LABELS" } });
      return 0;
    },
  });
}
