// The Docker engine the rows comparing berth with it use (start `dockerd` by hand to get them), and the docker
// CLI that drives it.
import { spawnSync } from "node:child_process";

/** Why no Docker engine answers through this CLI (no CLI, no daemon), or undefined when one does. */
export function dockerMissing(cli = "docker"): string | undefined {
  const r = spawnSync(cli, ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8", timeout: 10_000 });
  if (r.error) return `no docker CLI ${cli} (${(r.error as NodeJS.ErrnoException).code})`;
  if (r.status !== 0) return `no Docker engine answers ${cli} (${(r.stderr || r.stdout).trim().split("\n")[0]})`;
  return undefined;
}

export const dockerAvailable = (): boolean => dockerMissing() === undefined;

/** Runs a docker command to its end; a failure says what docker printed last. */
export function runDocker(cli: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cli, args, { encoding: "utf8", env, maxBuffer: 64 << 20 });
  if (r.status === 0) return r.stdout;
  const said = `${r.stderr ?? ""}`.trim().split("\n").slice(-3).join(" / ") || r.error?.message || `exit ${r.status}`;
  throw new Error(`\`${cli} ${args.join(" ")}\` failed: ${said}`);
}
