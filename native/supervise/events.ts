// What happened to containers, one line each in Docker's `docker events` form, appended to ROOT/events.log by
// the supervisor (start, die, oom, restart, health_status) and bounded like container logs.
import * as fs from "node:fs";
import * as path from "node:path";
import type { ContainerEvent, EventOptions } from "../runtime";
import { abortable, appendedLines } from "../streams";

export const eventsFile = (root: string): string => path.join(root, "events.log");

export function appendEvent(root: string, container: string, action: string, attrs: Record<string, string | number> = {}): void {
  const details = Object.entries({ ...attrs, name: container }).map(([k, v]) => `${k}=${v}`).join(", ");
  fs.appendFileSync(eventsFile(root), `${new Date().toISOString()} container ${action} ${container} (${details})\n`, { mode: 0o600 });
}

/** A line of events.log as an event; undefined for a line that is not one (a torn write). */
export function parseEvent(line: string): ContainerEvent | undefined {
  const m = /^(\S+) (\S+) (.+?) (\S+) \((.*)\)$/.exec(line);
  if (!m) return undefined;
  const attributes = Object.fromEntries(m[5].split(", ").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  return { time: m[1], type: m[2] as "container", action: m[3], actor: m[4], attributes };
}

/** Docker's event filters: every key given must accept the event (any of its values). */
function wanted(e: ContainerEvent, opts: EventOptions): boolean {
  const t = Date.parse(e.time);
  const f = opts.filters ?? {};
  const any = (values: string[] | undefined, test: (v: string) => boolean) => !values || values.some(test);
  return (
    (opts.since === undefined || t >= opts.since) &&
    (opts.until === undefined || t <= opts.until) &&
    any(f.container, (v) => e.actor === v) &&
    any(f.event, (v) => e.action === v || e.action.startsWith(`${v}:`)) &&
    any(f.type, (v) => e.type === v) &&
    any(f.image, (v) => e.attributes.image === v)
  );
}

/** `Containers.events` of a root: the stored events since `since`, then new ones until `until`. */
export function readEvents(root: string, opts: EventOptions = {}): AsyncIterableIterator<ContainerEvent> {
  return abortable(async function* (signal) {
    const file = eventsFile(root);
    const current = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
    // Followed from the end of the last whole line read here, so no event is seen twice or missed.
    const offset = current.lastIndexOf(10) + 1;
    const pick = (lines: string[]) => lines.map(parseEvent).filter((e): e is ContainerEvent => !!e && wanted(e, opts));
    if (opts.since !== undefined) {
      const older = fs.existsSync(`${file}.1`) ? fs.readFileSync(`${file}.1`, "utf8") : "";
      yield* pick([...older.split("\n"), ...current.subarray(0, offset).toString().split("\n")]);
    }
    for await (const lines of appendedLines(file, offset, opts.until ?? Infinity, signal)) yield* pick(lines);
  });
}
