// Starting the supervisor of a berth root on demand, detached from the caller (it outlives `berth up`), with
// V8 kept small: the supervisor holds a few kilobytes per container.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export const supervisorPidFile = (root: string): string => path.join(path.resolve(root), "supervisor.pid");
const MAIN = "supervise/main.js";

/** The compiled entry point, also when the runtime itself runs from TypeScript sources (tests). */
function mainScript(): string {
  return __filename.endsWith(".js")
    ? path.join(__dirname, "main.js")
    : path.resolve(__dirname, "../../dist/native/supervise/main.js");
}

export function supervisorPid(root: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(supervisorPidFile(root), "utf8"));
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return cmdline.some((a) => a.endsWith(MAIN)) && cmdline.includes(path.resolve(root)) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export const supervisorRunning = (root: string): boolean => supervisorPid(root) !== undefined;

export async function ensureSupervisor(root: string): Promise<void> {
  if (supervisorRunning(root)) return;
  const script = mainScript();
  if (!fs.existsSync(script)) throw new Error(`the supervisor ${script} is not built: run npm run build`);
  await fs.promises.mkdir(root, { recursive: true });
  const log = fs.openSync(path.join(root, "supervisor.log"), "a", 0o600);
  // Interpreted only (--jitless): a tick is a few file reads, and the JIT's code space would cost more memory.
  const flags = ["--jitless", "--max-old-space-size=32", "--max-semi-space-size=1"];
  const child = spawn(process.execPath, [...flags, script, path.resolve(root)], {
    detached: true,
    stdio: ["ignore", log, log],
  });
  fs.closeSync(log);
  child.unref();
}
