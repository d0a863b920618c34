// One container's lifecycle changes one at a time across processes: the CLI stopping or removing it and the
// supervisor restarting it. A lock is a directory (mkdir is atomic) holding its owner's pid, so a lock left by a
// process that died is taken over instead of blocking forever.
import * as fs from "node:fs";
import * as path from "node:path";

const RETRY_MS = 10;

function ownerAlive(dir: string): boolean {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, "owner"), "utf8"));
    return pid === process.pid || fs.existsSync(`/proc/${pid}`);
  } catch {
    // Being made right now (no owner file yet): treat as held.
    return true;
  }
}

/** Runs fn holding the lock `dir` (made under an existing parent). */
export async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await fs.promises.mkdir(path.dirname(dir), { recursive: true });
  let staleSince: number | undefined;
  for (;;) {
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, "owner"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if (!ownerAlive(dir)) {
        // A dead owner's lock goes once it has looked dead twice, so two waiters do not both remove it.
        if (staleSince !== undefined && Date.now() - staleSince > RETRY_MS) fs.rmSync(dir, { recursive: true, force: true });
        staleSince ??= Date.now();
      } else {
        staleSince = undefined;
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
