// The supervisor process: `node main.js ROOT`, started by its watchdog (see launch.ts). It holds the root's
// supervisor lock for its life; a second one started meanwhile finds the lock held and exits 0.
import { layout } from "../paths";
import type { Host } from "../host/exec";
import { tryLock } from "../lock";
import { listDir } from "../json-file";
import { Supervisor } from "./supervisor";
import { DEFAULT_LOG_BYTES } from "./logs";
import { ensureSupervisor, supervisorLock } from "./launch";
import { ensureLockDir } from "../lock-dir";

const TICK_MS = 200;
/** With no container left for this long it exits; the next container started brings it back. */
const IDLE_EXIT_MS = 5000;

async function main(): Promise<void> {
  const root = process.argv[2];
  if (!root) throw new Error("usage: main.js BERTH_ROOT");
  ensureLockDir(root);
  let unlock = await tryLock(supervisorLock(root));
  if (!unlock) return;
  const logBytes = Number(process.env.BERTH_LOG_MAX_BYTES) || DEFAULT_LOG_BYTES;
  const paths = layout(root, process.env.BERTH_RUN || "/run/berth");
  const host = (): Host => (require("../host/exec") as typeof import("../host/exec")).directHost;
  const supervisor = new Supervisor(paths, host, logBytes);
  const release = () => {
    unlock!();
    process.exit(0);
  };
  process.on("SIGTERM", release);
  process.on("SIGINT", release);
  // process.ppid asks the kernel at each read (getppid): /proc/self/stat, read for it before, cost ~1 ms a tick.
  const watchdog = process.ppid;
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
    if (process.ppid !== watchdog) {
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
