// What happened to containers, one line each in Docker's `docker events` form, appended to ROOT/events.log by
// the supervisor (start, die, oom, restart, health_status) and bounded like container logs.
import * as fs from "node:fs";
import * as path from "node:path";

export const eventsFile = (root: string): string => path.join(root, "events.log");

export function appendEvent(root: string, container: string, action: string, attrs: Record<string, string | number> = {}): void {
  const details = Object.entries({ ...attrs, name: container }).map(([k, v]) => `${k}=${v}`).join(", ");
  fs.appendFileSync(eventsFile(root), `${new Date().toISOString()} container ${action} ${container} (${details})\n`, { mode: 0o600 });
}
