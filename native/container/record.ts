// What berth knows about a container, in root/containers/<name>/container.json. It is written before any host
// object is made, so remove() can always find and undo what a crashed run() left behind.
import type { ContainerSpec, Healthcheck } from "../runtime";
import type { Bind } from "./spec";
import type { Paths } from "../paths";
import type { ContainerNet } from "../network/attach";
import * as fs from "node:fs";
import { listDir, readJson, writeJson } from "../json-file";

export interface ContainerRecord {
  spec: ContainerSpec;
  /** Its runc id (names.ts runcId); absent when made before the root was part of it (runcIdOf). */
  runcId?: string;
  /** runc's state root it was made in (runc-root.ts); absent: runc's default, where an older berth made it. */
  runcRoot?: string;
  imageId: string;
  /** Diff ids of the image layers the rootfs is built on; the image store keeps them while the container exists. */
  layers: string[];
  /** Its networking as made: namespace, interfaces and addresses, published ports. */
  net?: ContainerNet;
  /** Volumes, bind mounts and anonymous volumes as mounted (what volumesFrom copies). */
  dataMounts?: Bind[];
  /** The effective health check: the container's, else the image's. */
  healthcheck?: Healthcheck;
  /** The effective stop signal: the container's, else the image's STOPSIGNAL (absent in records made before). */
  stopSignal?: string;
  createdAt: string;
}

/** What changes whenever a record file is replaced (records are renamed into place: a new inode each time). */
function stampOf(file: string): string | undefined {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch (e) {
    if (["ENOENT", "ENOTDIR"].includes((e as NodeJS.ErrnoException).code ?? "")) return undefined;
    throw e;
  }
}

export class ContainerRecords {
  /**
   * Records as last read, by name, with the file's stamp then: a run of N containers lists the records a few times
   * per container (network plan, hosts files), and parsing every record each time made a run O(N²). A stat tells
   * whether this or another process replaced a record since.
   */
  private readonly cache = new Map<string, { stamp: string; rec: ContainerRecord }>();

  constructor(private readonly paths: Paths) {}

  async read(name: string): Promise<ContainerRecord | undefined> {
    const file = this.paths.container(name).record;
    // Taken before the read: a write in between leaves a stale stamp, so the next read reads again.
    const stamp = stampOf(file);
    const hit = this.cache.get(name);
    if (stamp === undefined || hit?.stamp !== stamp) this.cache.delete(name);
    else return hit.rec;
    const rec = stamp === undefined ? undefined : await readJson<ContainerRecord>(file);
    if (rec) this.cache.set(name, { stamp: stamp!, rec });
    return rec;
  }

  async write(rec: ContainerRecord): Promise<void> {
    this.cache.delete(rec.spec.name);
    await writeJson(this.paths.container(rec.spec.name).record, rec);
  }

  /** Forgets the records of containers no longer there: a process may run for days while containers come and go. */
  forgetAllBut(present: ReadonlySet<string>): void {
    for (const name of this.cache.keys()) if (!present.has(name)) this.cache.delete(name);
  }

  async list(): Promise<ContainerRecord[]> {
    const names = await listDir(this.paths.containers);
    this.forgetAllBut(new Set(names));
    const recs = await Promise.all(names.map((n) => this.read(n)));
    return recs.filter((r): r is ContainerRecord => r !== undefined);
  }
}
