// Where a root's locks live (native/lock.ts). Taking a lock makes two files and removes them; on an ext4 with no
// journal every inode removed makes each new one cost a scan past it for minutes after, so a root made now keeps
// its locks on tmpfs: ROOT/locks is a symlink to a private directory in /dev/shm. Locks need not outlive a reboot.
// /dev/shm is anyone's to write in: the directory is named at random, made 0700 by this user (the sticky bit keeps
// anyone else from renaming or removing it), and every process that opens the root checks that what the link
// names is still that before anything is written through it. After a reboot it is made again under the same
// name, so all processes agree on it; if another user has taken that name meanwhile, the root is refused, naming
// the directory to remove. A missing directory is no proof of a reboot: a process with another /dev/shm (systemd
// PrivateDevices, a container with ROOT bind-mounted) would make its own and see none of the others' locks, so
// the boot it was made in is kept in ROOT (BOOT_FILE) and a missing one in the same boot refuses the root. A root
// whose locks directory is a real directory (made before, or where /dev/shm is no tmpfs) keeps it.
import * as fs from "node:fs";
import * as path from "node:path";
import { randomHex } from "./random";
import { deadOwner } from "./lock";
import { readText, writeFileAtomic } from "./json-file";

const SHM = "/dev/shm";
const PREFIX = "berth-locks-";
const TMPFS_MAGIC = 0x01021994;
/**
 * The file in a locks directory naming its root, so that one whose root is gone can be removed, and the mount
 * namespace it was named from: only a sweep that sees the same mounts can tell the root is gone.
 */
const ROOT_FILE = ".root";
/** The file in ROOT holding the boot id (/proc/sys/kernel/random/boot_id) its locks directory was made in. */
export const BOOT_FILE = "locks.boot";
/** A locks directory untouched for this long may be an orphan (one being made is younger). */
const ORPHAN_AGE_MS = 60_000;

/** Whether st is a directory this user made for itself alone. */
export const mine = (st: fs.Stats): boolean => st.isDirectory() && st.uid === process.geteuid?.() && (st.mode & 0o077) === 0;

/** Whether dir is a root's locks directory in /dev/shm (made and checked here only). */
export const isLocksDir = (dir: string): boolean => path.dirname(dir) === SHM && path.basename(dir).startsWith(PREFIX);

export function onTmpfs(dir: string): boolean {
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
      writeFileAtomic(path.join(root, BOOT_FILE), bootId());
      fs.symlinkSync(target, link);
    } catch (e) {
      fs.rmSync(target, { recursive: true, force: true });
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      // Another process linked its own first: that one is checked below.
    }
    try {
      sweepOrphans();
    } catch {
      // Orphans cost a few bytes of memory, not this root's opening: the next new root sweeps again.
    }
  }
  if (!fs.lstatSync(link).isSymbolicLink()) return;
  const target = fs.readlinkSync(link);
  if (!fs.lstatSync(target, { throwIfNoEntry: false })) remake(root, target);
  const st = fs.lstatSync(target);
  if (!mine(st)) {
    throw new Error(
      `berth root ${root}: its locks directory ${target} (${link} links to it) is not berth's: ` +
        `${st.isDirectory() ? `uid ${st.uid} made it, mode ${(st.mode & 0o777).toString(8)}` : "it is not a directory"}. ` +
        `Remove it (rm -r ${target}) and run berth again`,
    );
  }
  // Made again after a reboot, the root moved, or a rewrite cut short: the sweep removes a directory whose root
  // does not link back to it.
  const named = path.join(target, ROOT_FILE);
  const says = rootRecord(root);
  if (readText(named) !== says) writeFileAtomic(named, says);
}

/** Makes the missing locks directory again, after a reboot only: in the boot it was made in, /dev/shm is another. */
function remake(root: string, target: string): void {
  const boot = bootId();
  const recorded = readText(path.join(root, BOOT_FILE))?.trim();
  if (recorded === boot) {
    throw new Error(
      `berth root ${root}: its locks directory ${target} (${path.join(root, "locks")} links to it) is missing, ` +
        `though this machine has not rebooted since it was made (boot id ${boot}, in ${path.join(root, BOOT_FILE)}): ` +
        `this process's /dev/shm is not the one the root's other processes use, and its locks would not be theirs. ` +
        `Run berth with the host's /dev/shm (no systemd PrivateDevices=; in a container, bind-mount the host's ` +
        `/dev/shm), or, if no other berth process uses this root, remove ${path.join(root, BOOT_FILE)} and run again`,
    );
  }
  try {
    fs.mkdirSync(target, { mode: 0o700 }); // under the name every process reads
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  writeFileAtomic(path.join(root, BOOT_FILE), boot);
}

const bootId = (): string => fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();

let mountNs: string | undefined;
const mountNamespace = (): string => (mountNs ??= fs.readlinkSync("/proc/self/ns/mnt"));
/** What `.root` says for root: its path, then this process's mount namespace on a line of its own. */
const rootRecord = (root: string): string => `${root}\n${mountNamespace()}`;

/** A new private directory in /dev/shm, under a name nobody holds. */
function fresh(root: string): string {
  for (;;) {
    const target = path.join(SHM, `${PREFIX}${randomHex(8)}`);
    try {
      fs.mkdirSync(target, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw e;
    }
    fs.writeFileSync(path.join(target, ROOT_FILE), rootRecord(root));
    return target;
  }
}

/**
 * Removes this user's locks directories whose roots are gone (or link elsewhere now), once untouched for minAgeMs:
 * by default long enough that one being made is never taken. Tests and benches pass 0 once their roots are removed.
 * Only what this process can judge goes: a directory named from another mount namespace (its root may be there,
 * unseen here), one whose `.root` says no absolute path (a write cut short), and one holding a lock stay.
 */
export function sweepOrphans(minAgeMs = ORPHAN_AGE_MS): void {
  const now = Date.now();
  for (const name of fs.readdirSync(SHM)) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(SHM, name);
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st || !mine(st) || now - st.mtimeMs < minAgeMs || !orphan(dir)) continue;
    // Judged again away from its name, where no lock can be taken any more: one taken before the rename is seen
    // now, and one being taken through the old name fails rather than landing in a directory about to go.
    const away = path.join(SHM, `${PREFIX}${randomHex(8)}`);
    try {
      fs.renameSync(dir, away);
    } catch {
      continue; // another sweep took it
    }
    if (orphan(away, dir) && !holdsLock(away)) fs.rmSync(away, { recursive: true, force: true });
    else {
      try {
        fs.renameSync(away, dir);
      } catch {
        // kept under the new name, judged again by the next sweep
      }
    }
  }
}

/** Whether dir (named `as`) says it belongs to a root this process sees and that root does not link to it. */
function orphan(dir: string, as = dir): boolean {
  const text = readText(path.join(dir, ROOT_FILE));
  const cut = text?.lastIndexOf("\n") ?? -1;
  if (text === undefined || cut < 0) return false; // killed before it said, or a record of old: kept
  const [root, ns] = [text.slice(0, cut), text.slice(cut + 1)];
  return path.isAbsolute(root) && ns === mountNamespace() && readlink(path.join(root, "locks")) !== as;
}

/**
 * Whether a lock may be held in dir: any entry of a subdirectory, or a file there not starting with a dot, unless
 * it names an owner that is gone (a supervisor or a berth killed while holding it). A container's runc state
 * (runc/<id>, container/runc-root.ts) is such an entry: its directory stays while runc has the container.
 */
function holdsLock(dir: string): boolean {
  return fs.readdirSync(dir, { withFileTypes: true }).some((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return fs.readdirSync(p).some((n) => !deadOwner(path.join(p, n)));
    return !e.name.startsWith(".") && !deadOwner(p);
  });
}

function readlink(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}
