// Named volumes: root/volumes/<name>/_data, bind-mounted into containers, with labels in volume.json beside it.
// A volume on a host directory (device) has _data as a symlink to it, so removing the volume keeps that data.
import * as fs from "node:fs";
import * as path from "node:path";
import type { VolumeInfo, VolumeSpec, Volumes } from "../runtime";
import type { Paths } from "../paths";
import { checkName } from "../names";
import { listDir, readJson, writeJson } from "../json-file";
import { withLock } from "../lock";

/**
 * Runs fn holding the root's volumes lock: held while a volume is made or removed, and while a container records
 * the volumes it mounts.
 */
export const withVolumesLock = <T>(paths: Paths, fn: () => Promise<T>): Promise<T> =>
  withLock(path.join(paths.locks, "volumes"), fn, { what: `the volumes of ${paths.root}` });

interface VolumeRecord {
  name: string;
  labels: Record<string, string>;
  device?: string;
}

export class DirVolumes implements Volumes {
  constructor(
    private readonly paths: Paths,
    /** Names of the containers that mount a volume. */
    private readonly mountedBy: (volume: string) => Promise<string[]>,
  ) {}

  async create(spec: VolumeSpec): Promise<VolumeInfo> {
    checkName("volume", spec.name);
    // Two processes making one volume on a device would both replace its link; a removal would cut through a make.
    return withVolumesLock(this.paths, () => this.make(spec));
  }

  private async make(spec: VolumeSpec): Promise<VolumeInfo> {
    const p = this.paths.volume(spec.name);
    if (spec.device) {
      if (!fs.statSync(spec.device, { throwIfNoEntry: false })?.isDirectory()) {
        throw new Error(`volume "${spec.name}": device ${spec.device} is not a directory on this host: create it first`);
      }
      await fs.promises.mkdir(p.dir, { recursive: true });
      const linked = fs.lstatSync(p.data, { throwIfNoEntry: false })?.isSymbolicLink() ? fs.readlinkSync(p.data) : undefined;
      if (linked !== spec.device) {
        await fs.promises.rm(p.data, { force: true });
        await fs.promises.symlink(spec.device, p.data);
      }
    } else {
      await fs.promises.mkdir(p.data, { recursive: true });
    }
    await writeJson(p.record, { name: spec.name, labels: spec.labels ?? {}, device: spec.device } satisfies VolumeRecord);
    return this.describe(spec.name, spec.labels ?? {});
  }

  async inspect(name: string): Promise<VolumeInfo | undefined> {
    checkName("volume", name);
    const rec = await readJson<VolumeRecord>(this.paths.volume(name).record);
    return rec && this.describe(name, rec.labels);
  }

  async list(): Promise<string[]> {
    const names = await listDir(this.paths.volumes);
    return names.filter((n) => fs.existsSync(this.paths.volume(n).record));
  }

  async remove(name: string): Promise<void> {
    checkName("volume", name);
    // Under the lock a container being made takes while it records its mounts.
    await withVolumesLock(this.paths, async () => {
      const users = await this.mountedBy(name);
      if (users.length > 0) {
        throw new Error(`volume "${name}" is in use by container(s) ${users.join(", ")}: remove them first`);
      }
      await fs.promises.rm(this.paths.volume(name).dir, { recursive: true, force: true });
    });
  }

  private describe(name: string, labels: Record<string, string>): VolumeInfo {
    const mountpoint = this.paths.volume(name).data;
    const faults = fs.existsSync(mountpoint) ? [] : [`data directory ${mountpoint} is missing`];
    return { name, mountpoint, labels, faults };
  }
}
