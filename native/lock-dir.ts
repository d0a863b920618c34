// Where a root's locks live (native/lock.ts). Taking a lock makes two files and removes them; on an ext4 with no
// journal every inode removed makes each new one cost a scan past it for minutes after, so a root made now keeps
// its locks on tmpfs: ROOT/locks is a symlink to a private directory in /dev/shm. Locks need not outlive a reboot.
// /dev/shm is anyone's to write in: the directory is named at random, made 0700 by this user (the sticky bit keeps
// anyone else from renaming or removing it), and every process that opens the root checks that what the link
// names is still that before anything is written through it. After a reboot it is made again under the same
// name, so all processes agree on it; if another user has taken that name meanwhile, the root is refused, naming
// the directory to remove. A root whose locks directory is a real directory (made before, or where /dev/shm is
// no tmpfs) keeps it.
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";

const SHM = "/dev/shm";
const PREFIX = "berth-locks-";
const TMPFS_MAGIC = 0x01021994;
/** The file in a locks directory naming its root, so that one whose root is gone can be removed. */
const ROOT_FILE = ".root";
/** A locks directory untouched for this long may be an orphan (one being made is younger). */
const ORPHAN_AGE_MS = 60_000;

const mine = (st: fs.Stats): boolean => st.isDirectory() && st.uid === process.geteuid?.() && (st.mode & 0o077) === 0;

function onTmpfs(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Makes ROOT/locks a link to a fresh directory in /dev/shm when the root has none yet, and checks the one it
 * names. Synchronous: it runs once per process and root, where the root is opened.
 */
export function ensureLockDir(dir: string): void {
  // Absolute, as the sweep of orphans reads it back from anywhere.
  const root = path.resolve(dir);
  const link = path.join(root, "locks");
  if (!fs.lstatSync(link, { throwIfNoEntry: false })) {
    if (!onTmpfs(SHM)) return; // made on disk by the first lock taken
    const target = fresh(root);
    try {
      fs.symlinkSync(target, link);
      sweepOrphans();
    } catch (e) {
      fs.rmSync(target, { recursive: true, force: true });
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      // Another process linked its own first: that one is checked below.
    }
  }
  if (!fs.lstatSync(link).isSymbolicLink()) return;
  const target = fs.readlinkSync(link);
  try {
    fs.mkdirSync(target, { mode: 0o700 }); // gone with a reboot: made again, under the name every process reads
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const st = fs.lstatSync(target);
  if (!mine(st)) {
    throw new Error(
      `berth root ${root}: its locks directory ${target} (${link} links to it) is not berth's: ` +
        `${st.isDirectory() ? `uid ${st.uid} made it, mode ${(st.mode & 0o777).toString(8)}` : "it is not a directory"}. ` +
        `Remove it (rm -r ${target}) and run berth again`,
    );
  }
  // Made again after a reboot, or by a process killed before it wrote it: the sweep keeps a directory that says
  // nothing of its root.
  const named = path.join(target, ROOT_FILE);
  if (!fs.existsSync(named)) fs.writeFileSync(named, root);
}

/** A new private directory in /dev/shm, under a name nobody holds. */
function fresh(root: string): string {
  for (;;) {
    const target = path.join(SHM, `${PREFIX}${randomBytes(8).toString("hex")}`);
    try {
      fs.mkdirSync(target, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw e;
    }
    fs.writeFileSync(path.join(target, ROOT_FILE), root);
    return target;
  }
}

/**
 * Removes this user's locks directories whose roots are gone (or link elsewhere now), once untouched for minAgeMs:
 * by default long enough that one being made is never taken. Tests and benches pass 0 once their roots are removed.
 */
export function sweepOrphans(minAgeMs = ORPHAN_AGE_MS): void {
  const now = Date.now();
  for (const name of fs.readdirSync(SHM)) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(SHM, name);
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st || !mine(st) || now - st.mtimeMs < minAgeMs) continue;
    let root: string;
    try {
      root = fs.readFileSync(path.join(dir, ROOT_FILE), "utf8");
    } catch {
      continue; // its maker was killed before it said (see ensureLockDir): a few bytes left rather than a live one
    }
    if (readlink(path.join(root, "locks")) !== dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function readlink(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}
