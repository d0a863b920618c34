// Resolves an image's USER ("name", "uid", "name:group", "uid:gid") against the container's own /etc files.
import * as fs from "node:fs";
import { resolveInRoot } from "../confine";

/** The line of the rootfs's /etc file (its symlinks followed inside the rootfs only) whose first field is name. */
async function lookup(rootfs: string, file: string, name: string): Promise<string[] | undefined> {
  const host = await resolveInRoot(rootfs, file);
  // Only a regular file: a FIFO planted there would block the read forever.
  if (!(await fs.promises.lstat(host).catch(() => undefined))?.isFile()) return undefined;
  const text = await fs.promises.readFile(host, "utf8").catch(() => "");
  return text
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[0] === name);
}

export async function resolveUser(user: string | undefined, rootfs: string): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(":", 2);
  let uid: number;
  let gid = 0;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
  } else {
    const entry = await lookup(rootfs, "/etc/passwd", u);
    if (!entry) throw new Error(`unable to find user ${u}: no matching entries in the image's /etc/passwd`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) {
      gid = Number(g);
    } else {
      const entry = await lookup(rootfs, "/etc/group", g);
      if (!entry) throw new Error(`unable to find group ${g}: no matching entries in the image's /etc/group`);
      gid = Number(entry[2]);
    }
  }
  return { uid, gid };
}
