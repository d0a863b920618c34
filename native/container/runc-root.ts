// Where runc keeps the state of berth's containers (its --root). runc's default, /run/runc, lies wherever /run does
// (ext4 on some hosts, where each container made and deleted costs inodes made and removed on disk), so a root whose
// locks are on tmpfs (lock-dir.ts) has runc keep its containers' state beside them, in the private directory
// ROOT/locks links to; else BERTH_RUN/runc when that is on tmpfs; else runc's default. Like /run's, the state goes
// with a reboot, and with it the containers. Each record keeps the root its container was made with (runcRoot;
// absent: runc's default, where an older berth put it) and every runc call for it names that one, so containers
// are found wherever they were made.
// runc trusts its state (the pids it signals, the cgroups it removes), and a directory outside /run may be another
// user's to make first (/dev/shm is anyone's): every call checks it is this user's alone, in a directory nobody
// else can change, and refuses it otherwise, naming what to remove.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Paths } from "../paths";
import { isLocksDir, mine, onTmpfs } from "../lock-dir";
import { runcIdOf } from "../names";

/** A runc container: its id, and runc's state root it lives in (undefined: runc's default). */
export interface RuncRef {
  id: string;
  root?: string;
}

/** The runc container a record names. */
export const runcRefOf = (rec: { spec: { name: string }; runcId?: string; runcRoot?: string }): RuncRef => ({
  id: runcIdOf(rec),
  root: rec.runcRoot,
});

/** runc's command line for ref's container: its state root (checked), then args. */
export const runcArgs = (ref: RuncRef, args: string[]): string[] =>
  ref.root === undefined ? args : ["--root", checkedRuncRoot(ref.root), ...args];

/** The state root for the containers the root of paths makes now; undefined for runc's default. */
export function runcRootFor(paths: Pick<Paths, "locks" | "runDir">): string | undefined {
  // A link only when lock-dir.ts made it to a tmpfs directory, checked as the root was opened.
  const locks = fs.lstatSync(paths.locks, { throwIfNoEntry: false });
  if (locks?.isSymbolicLink()) return path.join(fs.readlinkSync(paths.locks), "runc");
  let dir = paths.runDir; // may not exist yet: the filesystem it will be made on
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return onTmpfs(dir) ? path.join(paths.runDir, "runc") : undefined;
}

/**
 * dir, made (0700) if missing, once checked to be this user's alone, in directories nobody else can change. A
 * root's locks directory above it is never made here: one renamed away by the orphan sweep (lock-dir.ts) while a
 * runc call runs must not come back empty under its name, splitting the containers' state from their records.
 * BERTH_RUN is made again (a tmpfs: gone with a reboot, as the state in it).
 */
export function checkedRuncRoot(dir: string): string {
  if (!isLocksDir(path.dirname(dir))) fs.mkdirSync(path.dirname(dir), { recursive: true });
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch {
    // there already, its parent gone, or a file or a dangling link in the way: judged below
  }
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (!st && !fs.existsSync(path.dirname(dir))) {
    throw new Error(
      `runc state directory ${dir} is gone with the directory it was in: berth's containers there cannot be reached ` +
        `(their root's locks directory was removed or moved meanwhile); run berth again, and if this stays, ` +
        `remove the containers' processes and records by hand`,
    );
  }
  if (!st || !mine(st)) {
    const what = !st ? "it cannot be made" : st.isDirectory() ? `uid ${st.uid} made it, mode ${modeOf(st)}` : "it is not a directory";
    throw new Error(
      `runc state directory ${dir} is not berth's: ${what}. runc keeps the state of berth's containers there ` +
        `(the processes it signals, the cgroups it removes): remove it (rm -r ${dir}) and run berth again`,
    );
  }
  // Every directory above it, links resolved: one another user owns, or may rename entries in, could swap the
  // state for another (a link to elsewhere put in place of a component).
  const uid = process.geteuid?.() ?? 0;
  for (let at = path.dirname(fs.realpathSync(dir)); ; at = path.dirname(at)) {
    const up = fs.lstatSync(at);
    if (!up.isDirectory() || (up.uid !== 0 && up.uid !== uid) || ((up.mode & 0o022) !== 0 && (up.mode & 0o1000) === 0)) {
      throw new Error(
        `runc state directory ${dir} is in ${at}, which others can change (uid ${up.uid}, mode ${modeOf(up)}): ` +
          `another user could swap the state of berth's containers there. Make ${at} writable by its owner only ` +
          `(chmod go-w ${at}), or set BERTH_RUN to a directory only root can write`,
      );
    }
    if (path.dirname(at) === at) return dir;
  }
}

const modeOf = (st: fs.Stats): string => (st.mode & 0o7777).toString(8);
