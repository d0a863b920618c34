// `berth system df` and `berth system prune`: what a root holds on disk, and removing what nothing uses — Docker's
// two commands over berth's store, containers and volumes.
import * as fs from "node:fs";
import * as path from "node:path";
import type { BuildCachePruneOptions, BuildCachePruneResult, DiskUsage, HostCheck, Owners, PruneReport, SystemUsage } from "./runtime";
import type { RuncContainers } from "./container/containers";
import { checkHost } from "./host/check";
import type { Paths } from "./paths";
import type { ContentStore } from "./image/store";
import type { ContainerRecords } from "./container/record";
import { listDir } from "./json-file";
import { shouldRestart } from "./supervise/supervisor";
import { stoppedByUser } from "./supervise/state";

/** Bytes under a path (files' sizes; a file's own size), 0 when it does not exist. */
export async function du(p: string): Promise<number> {
  const st = await fs.promises.lstat(p).catch(() => undefined);
  if (!st?.isDirectory()) return st?.size ?? 0;
  let n = 0;
  for (const e of await listDir(p)) n += await du(path.join(p, e));
  return n;
}

export class NativeSystem implements SystemUsage {
  constructor(
    private readonly paths: Paths,
    private readonly store: ContentStore,
    private readonly records: ContainerRecords,
    private readonly containers: RuncContainers,
    /** What a stack owns is never pruned behind its back. */
    private readonly owners: Owners,
    /** `builder prune`: the build cache's entries and RUN cache mounts (a running build's stay). */
    private readonly pruneBuildCache: (opts: BuildCachePruneOptions) => Promise<BuildCachePruneResult>,
  ) {}

  check(): Promise<HostCheck[]> {
    return checkHost(this.paths.root);
  }

  async df(): Promise<DiskUsage[]> {
    const recs = await this.records.list();
    const images = await this.store.usage(new Set(recs.map((r) => r.imageId)));
    const ctrs = await Promise.all(
      recs.map(async (r) => ({
        running: (await this.containers.inspect(r.spec.name))?.status === "running",
        size: await du(this.paths.container(r.spec.name).upper),
      })),
    );
    const mounted = new Set(recs.flatMap((r) => r.dataMounts?.map((m) => m.source) ?? []));
    const vols = await Promise.all(
      (await listDir(this.paths.volumes)).map(async (v) => {
        const data = this.paths.volume(v).data;
        return { active: mounted.has(data), size: await du(data) };
      }),
    );
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const ids = (xs: Array<{ id: string }>) => new Set(xs.map((i) => i.id)).size;
    return [
      // As Docker counts them: by id, however many names each has.
      { type: "Images", total: ids(images.images), active: ids(images.images.filter((i) => i.inUse)), size: images.bytes - images.cache.bytes, reclaimable: images.reclaimable },
      { type: "Containers", total: ctrs.length, active: ctrs.filter((c) => c.running).length, size: sum(ctrs.map((c) => c.size)), reclaimable: sum(ctrs.filter((c) => !c.running).map((c) => c.size)) },
      { type: "Local Volumes", total: vols.length, active: vols.filter((v) => v.active).length, size: sum(vols.map((v) => v.size)), reclaimable: sum(vols.filter((v) => !v.active).map((v) => v.size)) },
      { type: "Build Cache", total: images.cache.entries, active: 0, size: images.cache.bytes, reclaimable: images.cache.reclaimable },
    ];
  }

  async prune(opts: { all?: boolean } = {}): Promise<PruneReport> {
    const containers: string[] = [];
    for (const r of await this.records.list()) {
      const name = r.spec.name;
      // Its owner is asked once its record is seen: a stack records its claim before making the container, so
      // one made meanwhile by another process is never taken for nobody's. Judged again under the container's
      // lock: one being made (its record written, not running yet) looks stopped until its maker lets go.
      const unowned = async () => (await this.owners.ownerOf("container", name)) === undefined && (await this.prunable(name));
      if ((await unowned()) && (await this.containers.removeIf(name, unowned))) containers.push(name);
    }
    const usedIds = async () => {
      const ids = new Set((await this.records.list()).map((r) => r.imageId));
      for (const ref of (await this.owners.list("image")).keys()) {
        const owned = await this.store.inspect(ref);
        if (owned) ids.add(owned.id);
      }
      return ids;
    };
    const { refs, bytes } = await this.store.pruneUnused({ all: opts.all, usedIds });
    // Then the build cache, as Docker's `system prune` does it: what `builder prune` (`-a`: `builder prune -a`) takes.
    const cache = await this.pruneBuildCache({ all: opts.all });
    return { containers, images: refs, buildCache: cache.deleted, reclaimedBytes: bytes + cache.reclaimedBytes };
  }

  /**
   * Stopped, and not waiting for its restart policy to start it again (Docker keeps those): what the supervisor
   * decides, also for an exit it has not seen yet.
   */
  private async prunable(name: string): Promise<boolean> {
    const info = await this.containers.inspect(name);
    if (!info || info.status === "running") return false;
    const { exitCode = 0, restartCount = 0 } = info.state ?? {};
    return !shouldRestart(info.spec?.restart, exitCode, restartCount, stoppedByUser(this.paths.container(name).dir));
  }
}
