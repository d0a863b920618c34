// Where ext4 puts a root's per-container files. On an ext4 with no journal (this host's /), each inode allocated
// skips every inode of its block group deleted in the last ~30 s (the kernel's recently_deleted): a file costs
// O(files deleted lately in that group). A directory's files and subdirectories are allocated in its own group, so
// all of a root's containers shared one group, and an up right after a destroy scanned past every file that
// destroy removed, for each of its ~20 new ones per container. A directory flagged TOPDIR (chattr +T) has each new
// subdirectory placed as a top-level one is (Orlov: the group with the fewest directories among those with room),
// so each container's directory, and the files in it, lands in a group few files were deleted from. Placement only:
// nothing else changes; where chattr or the flag is missing (another file system) nothing happens.
import type { Host } from "./exec";

/** Directories already flagged by this process (the flag stays on the directory: once per process is plenty). */
const flagged = new Map<string, Promise<void>>();

/** Flags dir (absolute, existing) so its subdirectories spread over the file system's block groups. */
export function spreadSubdirs(host: Host, dir: string): Promise<void> {
  let done = flagged.get(dir);
  if (!done) {
    done = host.tryRun("chattr", ["+T", dir]).then(
      () => undefined,
      () => undefined,
    );
    flagged.set(dir, done);
  }
  return done;
}
