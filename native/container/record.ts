// What berth knows about a container, in root/containers/<name>/container.json. It is written before any host
// object is made, so remove() can always find and undo what a crashed run() left behind.
import type { ContainerSpec, Healthcheck } from "../runtime";
import type { Bind } from "./spec";
import type { Paths } from "../paths";
import type { ContainerNet } from "../network/attach";
import { listDir, readJson, writeJson } from "../json-file";

export interface ContainerRecord {
  spec: ContainerSpec;
  /** Its runc id (names.ts runcId); absent when made before the root was part of it (runcIdOf). */
  runcId?: string;
  imageId: string;
  /** Diff ids of the image layers the rootfs is built on; the image store keeps them while the container exists. */
  layers: string[];
  /** Its networking as made: namespace, interfaces and addresses, published ports. */
  net?: ContainerNet;
  /** Volumes, bind mounts and anonymous volumes as mounted (what volumesFrom copies). */
  dataMounts?: Bind[];
  /** The effective health check: the container's, else the image's. */
  healthcheck?: Healthcheck;
  createdAt: string;
}

export class ContainerRecords {
  constructor(private readonly paths: Paths) {}

  read(name: string): Promise<ContainerRecord | undefined> {
    return readJson<ContainerRecord>(this.paths.container(name).record);
  }

  write(rec: ContainerRecord): Promise<void> {
    return writeJson(this.paths.container(rec.spec.name).record, rec);
  }

  async list(): Promise<ContainerRecord[]> {
    const recs = await Promise.all((await listDir(this.paths.containers)).map((n) => this.read(n)));
    return recs.filter((r): r is ContainerRecord => r !== undefined);
  }
}
