// The supervisor process: `node main.js ROOT`. Started detached by the runtime when a container starts and none
// runs for that root; a second one started meanwhile sees the first in supervisor.pid and exits.
import * as fs from "node:fs";
import { layout } from "../paths";
import { realHost } from "../host/exec";
import { Supervisor } from "./supervisor";
import { DEFAULT_LOG_BYTES } from "./logs";
import { supervisorPidFile, supervisorRunning } from "./launch";

const TICK_MS = 200;
/** With no container left for this long it exits; the next container started brings it back. */
const IDLE_EXIT_MS = 5000;

function claim(root: string): boolean {
  const file = supervisorPidFile(root);
  if (supervisorRunning(root)) return false;
  fs.rmSync(file, { force: true });
  try {
    fs.writeFileSync(file, String(process.pid), { flag: "wx" });
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const root = process.argv[2];
  if (!root) throw new Error("usage: main.js BERTH_ROOT");
  if (!claim(root)) return;
  const logBytes = Number(process.env.BERTH_LOG_MAX_BYTES) || DEFAULT_LOG_BYTES;
  const supervisor = new Supervisor(layout(root, process.env.BERTH_RUN ?? "/run/berth"), realHost, logBytes);
  const release = () => {
    const file = supervisorPidFile(root);
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === String(process.pid)) fs.rmSync(file);
    process.exit(0);
  };
  process.on("SIGTERM", release);
  process.on("SIGINT", release);
  let idleSince = Date.now();
  for (;;) {
    if ((await supervisor.tick()) > 0) idleSince = Date.now();
    if (Date.now() - idleSince > IDLE_EXIT_MS) release();
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
}

main().catch((e: Error) => {
  console.error(`supervisor: ${e.stack ?? e.message}`);
  process.exit(1);
});
