// Resolves an image's USER ("name", "uid", "name:group", "uid:gid") against the container's own /etc files.
import * as path from "node:path";
import { lstatBelow, readSmallFile, resolveInRoot } from "../confine";

/** An /etc file of the container's, or undefined when it has none. */
type ReadEtc = (file: string) => Promise<string | undefined>;

/** The rootfs's /etc file, its symlinks followed inside the rootfs only. */
const inRootfs = (rootfs: string): ReadEtc => async (file) => {
  const host = await resolveInRoot(rootfs, file);
  const seen = lstatBelow(rootfs, path.relative(rootfs, host));
  return seen && readSmallFile(host, seen);
};

/** The line of the /etc file whose first field is name. */
async function lookup(read: ReadEtc, file: string, name: string): Promise<string[] | undefined> {
  return ((await read(file)) ?? "")
    .split("\n")
    .map((l) => l.split(":"))
    .find((f) => f[0] === name);
}

export function resolveUser(user: string | undefined, rootfs: string): Promise<{ uid: number; gid: number }> {
  return resolveUserWith(user, inRootfs(rootfs));
}

/** As resolveUser, the /etc files read by `read` (the image's layers before anything is mounted: a check). */
export async function resolveUserWith(user: string | undefined, read: ReadEtc): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(":", 2);
  let uid: number;
  let gid = 0;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
  } else {
    const entry = await lookup(read, "/etc/passwd", u);
    if (!entry) throw new Error(`unable to find user ${u}: no matching entries in the image's /etc/passwd`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) {
      gid = Number(g);
    } else {
      const entry = await lookup(read, "/etc/group", g);
      if (!entry) throw new Error(`unable to find group ${g}: no matching entries in the image's /etc/group`);
      gid = Number(entry[2]);
    }
  }
  return { uid, gid };
}
