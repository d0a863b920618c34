// Random hex for names that must not collide: temp and staging names, lock tokens, the locks directory. Read from
// the kernel's generator (/dev/urandom, as node:crypto's randomBytes reads it through getrandom), a block at a time,
// without loading node:crypto: the supervisor, which needs nothing else of it, spent ~10 ms of CPU on that at each
// start (it runs interpreted).
import * as fs from "node:fs";

const BLOCK = 256;
let pool = Buffer.alloc(0);
let used = 0;

export function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    pool = Buffer.alloc(Math.max(BLOCK, bytes));
    const fd = fs.openSync("/dev/urandom", "r");
    try {
      if (fs.readSync(fd, pool, 0, pool.length, null) !== pool.length) throw new Error("short read from /dev/urandom");
    } finally {
      fs.closeSync(fd);
    }
    used = 0;
  }
  used += bytes;
  return pool.toString("hex", used - bytes, used);
}
