// `berth builder prune`, as `docker builder prune`: drops build cache entries (the layer-step cache) and RUN
// cache-mount directories — by default those no image uses ("dangling"), with `all` every one — optionally only
// those unused for a while, or only as many (oldest first) as brings the cache under a size. The blobs and layers
// nothing else keeps are then collected by the store.
import * as fs from "node:fs";
import * as path from "node:path";
import { listDir } from "../json-file";
import type { ContentStore } from "../image/store";
import type { Descriptor } from "../image/oci";
import type { BuildCachePruneOptions, BuildCachePruneResult } from "../runtime";
import { du } from "../system";
import { cacheMountDir } from "./builder";
import { removeCacheMount } from "./mounts";

interface Entry {
  what: string;
  used: number;
  size: number;
  inUse: boolean;
  /** Resolves to false when it is kept after all (a build uses it right now). */
  remove: () => Promise<boolean>;
}

export async function pruneBuildCache(store: ContentStore, o: BuildCachePruneOptions): Promise<BuildCachePruneResult> {
  const used = new Set<string>();
  for (const ref of await store.refs()) (await store.image(ref))?.config.rootfs.diff_ids.forEach((d) => used.add(d));
  const entries: Entry[] = [];
  const leases = path.join(store.paths.root, "leases");
  for (const name of (await listDir(leases)).filter((n) => n.startsWith("cache-"))) {
    const file = path.join(leases, name);
    const [lease, st] = await Promise.all([store.readLease<{ desc: Descriptor; diffId: string }>(name.replace(/\.json$/, "")), fs.promises.stat(file).catch(() => undefined)]);
    if (!lease?.data || !st) continue;
    const diffId = lease.data.diffId;
    entries.push({ what: `layer ${diffId}`, used: st.mtimeMs, size: lease.data.desc.size + (await du(store.paths.layer(diffId))), inUse: used.has(diffId), remove: () => fs.promises.rm(file, { force: true }).then(() => true) });
  }
  const mounts = cacheMountDir(store.paths.root);
  for (const name of (await listDir(mounts)).filter((n) => /^[0-9a-f]{32}$/.test(n))) {
    const dir = path.join(mounts, name);
    const idFile = `${dir}.id`;
    const st = await fs.promises.stat(idFile).catch(() => undefined);
    const id = await fs.promises.readFile(idFile, "utf8").catch(() => name);
    const size = await du(dir);
    entries.push({ what: `cache mount ${id}`, used: st?.mtimeMs ?? 0, size, inUse: false, remove: () => removeCacheMount(dir) });
  }
  const now = Date.now();
  let drop = entries.filter((e) => (o.all || !e.inUse) && (o.unusedForMs === undefined || now - e.used > o.unusedForMs));
  if (o.keepBytes !== undefined) {
    // The newest entries that fit under the bound stay.
    let kept = 0;
    const keep = new Set<Entry>();
    for (const e of [...entries].sort((a, b) => b.used - a.used)) {
      if (kept + e.size > o.keepBytes) break;
      kept += e.size;
      keep.add(e);
    }
    drop = drop.filter((e) => !keep.has(e));
  }
  const before = (await du(store.paths.blobs)) + (await du(store.paths.layers));
  let mountBytes = 0;
  const deleted: string[] = [];
  for (const e of drop) {
    if (!(await e.remove())) continue;
    if (e.what.startsWith("cache mount")) mountBytes += e.size;
    deleted.push(e.what);
  }
  await store.prune();
  const after = (await du(store.paths.blobs)) + (await du(store.paths.layers));
  return { deleted, reclaimedBytes: before - after + mountBytes };
}
