// The supervisor process: `node main.js ROOT`, started by its watchdog (see launch.ts). It holds the root's
// supervisor lock for its life; a second one started meanwhile finds the lock held and exits 0.
import * as fs from "node:fs";
import { layout } from "../paths";
import { directHost } from "../host/exec";
import { tryLock } from "../lock";
import { listDir } from "../json-file";
import { Supervisor } from "./supervisor";
import { DEFAULT_LOG_BYTES } from "./logs";
import { ensureSupervisor, supervisorLock } from "./launch";
import { ensureLockDir } from "../lock-dir";

const TICK_MS = 200;
/** With no container left for this long it exits; the next container started brings it back. */
const IDLE_EXIT_MS = 5000;

/** The parent's pid now (Node's process.ppid is read once at start-up). */
function parentPid(): number {
  const stat = fs.readFileSync("/proc/self/stat", "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

async function main(): Promise<void> {
  const root = process.argv[2];
  if (!root) throw new Error("usage: main.js BERTH_ROOT");
  ensureLockDir(root);
  let unlock = await tryLock(supervisorLock(root));
  if (!unlock) return;
  const logBytes = Number(process.env.BERTH_LOG_MAX_BYTES) || DEFAULT_LOG_BYTES;
  const paths = layout(root, process.env.BERTH_RUN || "/run/berth");
  const supervisor = new Supervisor(paths, directHost, logBytes);
  const release = () => {
    unlock!();
    process.exit(0);
  };
  process.on("SIGTERM", release);
  process.on("SIGINT", release);
  const watchdog = parentPid();
  let idleSince = Date.now();
  for (;;) {
    if ((await supervisor.tick()) > 0) idleSince = Date.now();
    if (Date.now() - idleSince > IDLE_EXIT_MS) {
      unlock();
      // A container made just now found this supervisor still holding the lock and started none: stay after all,
      // unless another supervisor has taken over meanwhile.
      if ((await listDir(paths.containers)).length === 0 || !(unlock = await tryLock(supervisorLock(root)))) process.exit(0);
      idleSince = Date.now();
    }
    if (parentPid() !== watchdog) {
      // The watchdog died (we were reparented): hand over to a new pair rather than run unwatched.
      unlock();
      await ensureSupervisor(root);
      process.exit(0);
    }
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
}

main().catch((e: Error) => {
  console.error(`supervisor: ${e.stack ?? e.message}`);
  process.exit(1);
});
