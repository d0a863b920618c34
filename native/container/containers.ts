// Containers: run = image → overlay rootfs → netns/veth/address → published ports → config.json → runc run. A
// record is written before anything else, and removal is derived from the container's name and that record with
// every step tolerating its object being gone — so remove() also repairs a half-made container and
// run() cleans up after its own failures.
import * as fs from "node:fs";
import * as path from "node:path";
import type { ContainerInfo, ContainerRuntimeSpec, ContainerSpec, Containers, ContainerStatus, EventOptions, ExecOptions, ImageInfo, InputProblem, LogOptions, PortMapping } from "../runtime";
import type { Host } from "../host/exec";
import type { Paths } from "../paths";
import type { ContentStore } from "../image/store";
import type { ContainerNetworking, NetPlan } from "../network/container-net";
import { isMounted } from "../host/probe";
import { checkName, runcId } from "../names";
import { KeyedMutex } from "../mutex";
import { listDir, writeJson } from "../json-file";
import { canonicalJson } from "../canonical-json";
import { prepare, mount, unmount } from "../snapshot/overlay";
import { spreadSubdirs } from "../host/spread";
import { initLayer } from "../snapshot/init-layer";
import { ContainerRecords, type ContainerRecord } from "./record";
import { mergeEnv, processArgs, runtimeSpec, type Bind } from "./spec";
import { resolveUser, resolveUserWith } from "./user";
import { writeEtcFiles } from "./etc";
import { Runc } from "./runc";
import { checkedRuncRoot, runcRefOf, runcRootFor, type RuncRef } from "./runc-root";
import { checkExecutable, executableProblem, readTextIn } from "./executable";
import { ContainerVerbs, DEFAULT_GRACE_SECONDS, recordedStopSignal, stopInit } from "./lifecycle";
import { hostLimitProblems } from "./limits";
import { signalNumber } from "./signals";
import { applyOptions, deviceProblems } from "./options";
import { makeDataMounts, planDataMounts, type DataMounts } from "../volume/mounts";
import { exitCode, exitedAt, initArgs, initBinds, resetExit } from "../supervise/init";
import { lockPath, markStopped, readState, stopMarker } from "../supervise/state";
import { withLock } from "../lock";
import { withVolumesLock } from "../volume/volumes";
import { oomKills } from "../supervise/cgroup";
import { commitContainer, type CommitOptions } from "./commit";
import { appendEvent } from "../supervise/events";

export interface ContainerDeps {
  host: Host;
  paths: Paths;
  images: ContentStore;
  net: ContainerNetworking;
  records: ContainerRecords;
  /** Makes sure the supervisor runs (restart policies, exit codes, health, log bounds). */
  supervise: () => Promise<void>;
}

/** A validated spec, with what it resolved to. */
interface Plan {
  image: ImageInfo;
  net: NetPlan;
  hostname: string;
  data: DataMounts;
  /** Namespace type → a path to join, or "host". */
  shared: Record<string, string>;
  /** The container's command; args is it under berth's init. */
  command: string[];
  args: string[];
  env: string[];
  cwd: string;
  /** runc's state root for it (runc-root.ts), checked; undefined: runc's default. */
  runcRoot?: string;
}

/** Waits for every step, then rethrows the first failure: cleanup must not race a step still under way. */
async function allSettled(steps: unknown[]): Promise<void> {
  const failed = (await Promise.allSettled(steps)).find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

export class RuncContainers implements Containers {
  private readonly mutex = new KeyedMutex();
  private readonly runc: Runc;
  private readonly verbs: ContainerVerbs;

  constructor(private readonly d: ContainerDeps) {
    this.runc = new Runc(d.host);
    this.verbs = new ContainerVerbs(this.runc, d.host, d.paths, d.records, d.supervise, (layers) =>
      d.images.layerDirs({ layers }),
    );
  }

  stop = (name: string, opts?: { graceSeconds?: number }) => this.mutex.run(name, () => this.verbs.stop(name, opts));
  start = (name: string) => this.mutex.run(name, () => this.verbs.start(name));
  kill = (name: string, signal?: string) => this.verbs.kill(name, signal);
  pause = (name: string) => this.verbs.pause(name);
  unpause = (name: string) => this.verbs.unpause(name);
  list = () => this.verbs.list();
  exec = (name: string, command: string[], opts?: ExecOptions) => this.verbs.exec(name, command, opts);
  logs = (name: string, opts?: LogOptions) => this.verbs.logs(name, opts);
  events = (opts?: EventOptions) => this.verbs.events(opts);
  stats = (name: string) => this.verbs.stats(name);
  top = (name: string, psOptions?: string[]) => this.verbs.top(name, psOptions);
  diff = (name: string) => this.verbs.diff(name);
  copy = (name: string, direction: "from" | "to", containerPath: string, hostPath: string) =>
    this.verbs.copy(name, direction, containerPath, hostPath);
  commit = (name: string, ref: string, opts?: CommitOptions) =>
    this.mutex.run(name, async () => {
      checkName("container", name);
      const rec = await this.d.records.read(name);
      if (!rec) throw new Error(`No such container: ${name}`);
      return this.d.images.leased(() => commitContainer({ host: this.d.host, paths: this.d.paths, store: this.d.images, runc: this.runc }, rec, ref, opts));
    });
  update = (name: string, change: Pick<ContainerRuntimeSpec, "limits" | "restart" | "stopTimeout">) =>
    this.mutex.run(name, () => this.verbs.update(name, change));

  async run(spec: ContainerSpec): Promise<ContainerInfo> {
    checkName("container", spec.name);
    // Another berth process making, replacing or removing the same container waits for this one.
    return this.mutex.run(spec.name, () => this.exclusive(spec.name, async () => {
      const existing = await this.d.records.read(spec.name);
      if (existing) {
        const { info, repairable } = await this.examine(existing);
        const same = canonicalJson(existing.spec) === canonicalJson(spec);
        const otherFaults = info.faults.length - repairable;
        if (this.d.net.changeableInPlace(existing.spec, spec) && info.status === "running" && otherFaults === 0) {
          // Port rules and declared interfaces are put back or changed under the running process; anything else
          // means re-creating it.
          if (same && repairable === 0) return info;
          await this.d.net.repair(existing, spec);
          await this.d.records.write({ ...existing, spec });
          return this.describe({ ...existing, spec });
        }
        // Replaced as `berth stop` would stop it: its own stop timeout.
        const grace = existing.spec.stopTimeout ?? DEFAULT_GRACE_SECONDS;
        // Refused before the old one goes, so a bad spec leaves it running. (The network is planned after the
        // teardown: the old container still holds its namespace and addresses.)
        const local = await this.plan(spec);
        await this.undo(spec.name, info.status === "running" ? grace : 0);
        return this.create(spec, local);
      }
      // A removal killed after deleting the record left its directory (the stop marker) and its addresses: finished
      // first, so the new container inherits neither.
      await this.undo(spec.name, 0);
      return this.create(spec);
    }));
  }

  async inspect(name: string): Promise<ContainerInfo | undefined> {
    checkName("container", name);
    const rec = await this.d.records.read(name);
    return rec && this.describe(rec);
  }

  async remove(name: string, opts: { graceSeconds?: number } = {}): Promise<void> {
    checkName("container", name);
    await this.mutex.run(name, () => this.teardown(name, opts.graceSeconds ?? DEFAULT_GRACE_SECONDS));
  }

  /**
   * Removes the container when `still()` holds once its lock is taken: what was judged from outside the lock (say,
   * stopped) may be a container another process is making right then. Resolves to whether it was removed.
   */
  async removeIf(name: string, still: () => Promise<boolean>): Promise<boolean> {
    checkName("container", name);
    return this.mutex.run(name, () => this.exclusive(name, async () => {
      if (!(await still())) return false;
      await this.undo(name, 0);
      return true;
    }));
  }

  finishRemoval = (name: string): Promise<boolean> =>
    this.removeIf(name, async () => fs.existsSync(this.d.paths.container(name).dir) && !(await this.d.records.read(name)));

  portTaken = (p: PortMapping, owners: string[]) => this.d.net.portTaken(p, owners);

  /**
   * What run would refuse of the fields given: limits and devices this host lacks, and (given a name and a stored
   * image) a command missing from the image and the container's mounts, named by the field that gave it. Read
   * only; volumes that do not exist yet are taken as empty.
   */
  async problems(spec: Partial<ContainerSpec>): Promise<InputProblem[]> {
    const image = spec.name !== undefined && spec.image !== undefined ? await this.d.images.inspect(spec.image) : undefined;
    const host = [...hostLimitProblems(spec.limits), ...deviceProblems(spec.devices), ...(image ? stopSignalProblems(spec, image) : [])];
    if (!image) return host;
    const full = spec as ContainerSpec;
    const field = spec.entrypoint?.length ? "entrypoint" : spec.command?.length ? "command" : "image";
    let command: string[];
    try {
      command = processArgs(full.name, image.config, full);
    } catch (e) {
      return [...host, { field, reason: (e as Error).message }];
    }
    const mounts = [
      ...(spec.mounts ?? []).map((m) => ({ source: this.d.paths.volume(m.volume).data, destination: m.target })),
      ...(spec.binds ?? []).map((b) => ({ source: b.source, destination: b.target })),
    ];
    const env = mergeEnv(full.name, spec.hostname ?? full.name, image.config.env, spec.env);
    const view = { layers: this.d.images.layerDirs(image), mounts };
    const problem = await executableProblem(view, command[0], env);
    // The user (or the image's), looked up as run looks it up: in the image's own /etc files, never through a bind
    // or volume (run reads the bare rootfs, as Docker reads BaseFS), so check and run agree.
    const imageOnly = { layers: view.layers, mounts: [] };
    const user = await resolveUserWith(spec.user ?? image.config.user, (f) => readTextIn(imageOnly, f)).then(() => undefined, (e: Error) => e.message);
    return [...host, ...(problem ? [{ field, reason: problem }] : []), ...(user ? [{ field: spec.user !== undefined ? "user" : "image", reason: user }] : [])];
  }

  /** Checks the spec against the image, volumes and host, before anything is made (the network: create()). */
  private async plan(spec: ContainerSpec): Promise<Omit<Plan, "net">> {
    const { images } = this.d;
    const name = spec.name;
    const image = await images.inspect(spec.image);
    if (!image) {
      throw new Error(`image "${spec.image}" not found: import it first, or name an image ref or id the store has`);
    }
    const command = processArgs(name, image.config, spec);
    const problems = [...hostLimitProblems(spec.limits), ...deviceProblems(spec.devices), ...stopSignalProblems(spec, image)];
    if (problems.length > 0) {
      throw new Error(`container "${name}": ${problems.map((f) => `${f.field}: ${f.reason}`).join("; ")}`);
    }
    const hostname = spec.hostname ?? name;
    if (hostname.length === 0 || hostname.length > 63) {
      throw new Error(`invalid hostname "${hostname}" for container "${name}": use 1-63 characters`);
    }
    return {
      image,
      hostname,
      data: await planDataMounts(spec, image, this.d.paths.container(name), this.volumeBinds(spec), this.d.records, images.layerDirs(image)),
      shared: await this.sharedNamespaces(spec),
      command,
      args: initArgs(command),
      env: mergeEnv(name, hostname, image.config.env, spec.env),
      cwd: spec.workdir ?? image.config.workdir ?? "/",
      runcRoot: this.runcRoot(),
    };
  }

  private async create(spec: ContainerSpec, planned?: Omit<Plan, "net">): Promise<ContainerInfo> {
    const { host, paths, images } = this.d;
    const local = planned ?? (await this.plan(spec));
    const plan: Plan = { ...local, net: await this.d.net.plan(spec, local.image, () => this.d.records.list()) };
    const { image, hostname } = plan;
    const name = spec.name;
    const id = runcId(paths.root, name);
    const ref: RuncRef = { id, root: plan.runcRoot };
    const p = paths.container(name);
    const rec: ContainerRecord = {
      spec,
      runcId: id,
      runcRoot: plan.runcRoot,
      imageId: image.id,
      layers: image.layers,
      dataMounts: plan.data.binds,
      healthcheck: spec.healthcheck?.test[0] === "NONE" ? undefined : (spec.healthcheck ?? image.config.healthcheck),
      stopSignal: spec.stopSignal ?? image.config.stopSignal,
      createdAt: new Date().toISOString(),
    };
    let supervised: Promise<void> | undefined;
    try {
      fs.mkdirSync(paths.containers, { recursive: true });
      await spreadSubdirs(host, paths.containers);
      fs.mkdirSync(p.dir, { recursive: true });
      // The record, which GC reads, is written under the image store's lock once the image's layers are known to be
      // there: from then on GC keeps them and the init layer over them. The volumes it mounts are checked again
      // under the lock their removal takes, which reads the records too (a container mounting no volume need not
      // wait for it: that lock is root-wide).
      const volumes = plan.data.binds.filter((b) => b.source.startsWith(`${paths.volumes}/`));
      const record = async () => {
        const written = await images.withLayers(image.layers, async () => {
          const gone = volumes.find((b) => !fs.existsSync(b.source));
          if (gone) throw new Error(`volume ${path.basename(path.dirname(gone.source))} was removed while container "${name}" was being made`);
          await this.d.records.write(rec);
        });
        if (!written) throw new Error(`image "${spec.image}" was removed while container "${name}" was being made`);
      };
      await (volumes.length > 0 ? withVolumesLock(paths, record) : record());
      // A supervisor (a node process, 0.1–0.4 s to start here) starts while the container is made: started after
      // `runc run`, it kept every container of the first wave waiting for it at its end. It leaves a container
      // alone until it first runs. Awaited at the end, also on failure: no start outlives this call.
      supervised = this.d.supervise();
      supervised.catch(() => {});
      rec.net = await this.d.net.claim(name, plan.net);
      await this.d.records.write(rec);
      const etc = this.d.net.etcFiles(rec, await this.d.records.list(), hostname).then((files) =>
        writeEtcFiles(p, hostname, files, plan.net.joined),
      );
      await allSettled([
        this.rootfsLowers(image).then((lowers) => prepare(lowers, p)).then((m) => mount(host, m)),
        etc,
        this.d.net.plugIn(name, rec.net).then(() => this.d.net.configureInside(rec.net!)),
      ]);
      await makeDataMounts(host, plan.data, p.rootfs);
      await checkExecutable({ layers: [p.rootfs], mounts: plan.data.binds }, plan.command[0], plan.env, images.layerDirs(image));
      const namespace = this.d.net.namespace(rec.net, plan.net);
      const user = await resolveUser(spec.user ?? image.config.user, p.rootfs);
      await resetExit(p.dir, user);
      const base = runtimeSpec({
        ...plan,
        user,
        netnsPath: namespace.path,
        hostNetwork: namespace.host,
        domainname: spec.domainname,
        // berth's own binds last: runc makes mounts in this order, so they cover whatever a data mount landed on
        // (another container sharing a volume can swap a target for a link into /.berth after the plan's check).
        binds: [...(await etc), ...plan.data.binds, ...initBinds(p.dir)],
      });
      const config = applyOptions(base, spec, plan.shared, `/${id}`);
      await writeJson(p.config, config);
      appendEvent(paths.root, name, "create", { image: spec.image });
      // From here it will ask for a hosts pass soon: one about to start waits for it.
      const arrived = this.d.net.expectPass();
      try {
        await this.runc.run(ref, p.dir, p.log, p.pid);
        await Promise.all([this.d.net.addInterfaces(rec), this.d.net.refreshPeers(rec, () => this.d.records.list(), arrived)]);
      } finally {
        arrived();
      }
      const pid = Number(fs.readFileSync(p.pid, "utf8"));
      await supervised;
      return { ...this.netInfo(rec), name, id, status: "running", pid, imageId: image.id, faults: [] };
    } catch (e) {
      await supervised?.catch(() => {});
      await this.undo(name, 0).catch((cleanup: Error) => {
        (e as Error).message += ` (cleaning up afterwards failed too: ${cleanup.message})`;
      });
      throw e;
    }
  }

  /** The overlay's lower directories: berth's init layer (the mount points runc needs) over the image's layers. */
  private async rootfsLowers(image: ImageInfo): Promise<string[]> {
    const layers = this.d.images.layerDirs(image);
    const init = await initLayer(this.d.paths.root, layers);
    return init ? [init, ...layers] : layers;
  }

  private netInfo(rec: ContainerRecord): Pick<ContainerInfo, "ip" | "ips" | "ports"> {
    const attachments = rec.net?.attachments ?? [];
    return {
      ip: attachments[0]?.ip,
      ips: Object.fromEntries(attachments.map((a) => [a.network, a.ip])),
      ports: rec.net?.ports ?? [],
    };
  }

  /** pid / ipc "container:NAME" join that running container's namespace; "host" leaves the namespace out. */
  private async sharedNamespaces(spec: ContainerSpec): Promise<Record<string, string>> {
    const shared: Record<string, string> = {};
    for (const type of ["pid", "ipc", "uts"] as const) {
      const mode = spec[type];
      if (!mode) continue;
      if (mode === "host") {
        shared[type] = "host";
        continue;
      }
      const other = mode.slice("container:".length);
      const otherRec = await this.d.records.read(other);
      const state = otherRec && (await this.runc.state(runcRefOf(otherRec)));
      if (!state || state.status !== "running") {
        throw new Error(`container "${spec.name}": ${type} "${mode}": No such container: ${other} (it must be running)`);
      }
      shared[type] = `/proc/${state.pid}/ns/${type}`;
    }
    return shared;
  }

  /** The state root runc is to keep a container made now in: a squatted one is refused before anything is made. */
  private runcRoot(): string | undefined {
    const dir = runcRootFor(this.d.paths);
    return dir === undefined ? undefined : checkedRuncRoot(dir);
  }

  private volumeBinds(spec: ContainerSpec): Bind[] {
    return (spec.mounts ?? []).map((m) => {
      checkName("volume", m.volume);
      const data = this.d.paths.volume(m.volume).data;
      if (!fs.existsSync(data)) {
        throw new Error(
          `volume "${m.volume}" not found (mounted at ${m.target} in container "${spec.name}"): create it first`,
        );
      }
      if (!m.target.startsWith("/")) {
        throw new Error(`invalid mount target "${m.target}" in container "${spec.name}": it must be an absolute path`);
      }
      return { source: data, destination: m.target, readOnly: m.readOnly };
    });
  }

  private async describe(rec: ContainerRecord): Promise<ContainerInfo> {
    return (await this.examine(rec)).info;
  }

  /** The container's info, and how many of its faults are missing port rules (the one repairable in place). */
  private async examine(rec: ContainerRecord): Promise<{ info: ContainerInfo; repairable: number }> {
    const name = rec.spec.name;
    const ref = runcRefOf(rec);
    const id = ref.id;
    const state = await this.runc.state(ref);
    const status: ContainerStatus = !state
      ? "missing"
      : state.status === "running" || state.status === "paused"
        ? "running"
        : "stopped";
    const faults: string[] = [];
    if (!state) faults.push(`runc container ${id} is missing`);
    else if (state.status === "created") faults.push(`runc container ${id} was created but never started`);
    const rootfs = this.d.paths.container(name).rootfs;
    if (!(await isMounted(rootfs))) faults.push(`rootfs ${rootfs} is not mounted`);
    const pid = status === "running" ? state?.pid : undefined;
    const net = await this.d.net.faults(rec, pid);
    faults.push(...net.faults, ...net.repairable);
    const bundle = this.d.paths.container(name).dir;
    let supervised = await readState(bundle);
    if (state?.status === "stopped" && (!supervised || supervised.status === "running")) {
      // No supervisor has recorded this exit yet (it is down, or between two looks): say what it will record.
      const oomKilled = oomKills(`/${id}`) > 0;
      supervised = { restartCount: 0, ...supervised, status: "exited", pid: undefined, exitCode: exitCode(bundle), oomKilled, finishedAt: exitedAt(bundle) };
    }
    const paused = state?.status === "paused";
    const info = {
      ...this.netInfo(rec),
      ...{ name, id, status, pid, imageId: rec.imageId, faults, state: supervised, paused, spec: rec.spec, createdAt: rec.createdAt },
    };
    return { info, repairable: net.repairable.length };
  }

  /** Runs fn holding the lock every process changing this container takes (run, stop, removal, a restart). */
  private exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return withLock(lockPath(this.d.paths.container(name).dir), fn, { what: `container ${name}` });
  }

  private teardown(name: string, graceSeconds: number): Promise<void> {
    return this.exclusive(name, () => this.undo(name, graceSeconds));
  }

  /** Undoes everything a container has on the host, in reverse order of making; each step skips what is gone. */
  private async undo(name: string, graceSeconds: number): Promise<void> {
    if (fs.existsSync(this.d.paths.container(name).dir)) await this.dismantle(name, graceSeconds);
  }

  private async dismantle(name: string, graceSeconds: number): Promise<void> {
    const { host, paths } = this.d;
    const p = paths.container(name);
    const rec = await this.d.records.read(name);
    // No record: nothing was made yet (it is written first), so only the id and state root this root gives it now
    // can be there.
    const ref = rec ? runcRefOf(rec) : { id: runcId(paths.root, name), root: runcRootFor(paths) };
    const found = await this.runc.state(ref);
    // A runc container of this id made from another berth root is not ours to stop.
    if (found?.bundle === p.dir) {
      await markStopped(p.dir, true);
      await stopInit(this.runc, ref, recordedStopSignal(rec), graceSeconds, found);
      await this.runc.delete(ref);
      if (found.status === "running") appendEvent(paths.root, name, "stop");
    }
    await this.d.net.removing(name, async (arrived) => {
      await allSettled([this.d.net.disconnect(name, rec?.net), unmount(host, p.rootfs)]);
      // Its files, then its record, then its addresses: a removal failing on the way (a file that cannot be removed)
      // leaves the container with its record and addresses, to be removed again; none freed while a record names it.
      // Its stop marker stays with the record: the supervisor does not start again a container half removed.
      // The supervisor may be writing the state of the container it just saw exit: retry what it adds meanwhile.
      const kept = [p.record, stopMarker(p.dir)];
      const files = (await listDir(p.dir)).map((f) => path.join(p.dir, f)).filter((f) => !kept.includes(f));
      for (const f of files) await fs.promises.rm(f, { recursive: true, force: true, maxRetries: 5 });
      await fs.promises.rm(p.record, { force: true });
      await this.d.net.release(name);
      await fs.promises.rm(p.dir, { recursive: true, force: true, maxRetries: 5 });
      if (rec) appendEvent(paths.root, name, "destroy", { image: rec.spec.image });
      if (rec?.net) await this.d.net.refreshPeers(rec, () => this.d.records.list(), arrived);
    }, rec, () => this.d.records.list());
    // The container may have been the last user of a removed image's layers.
    if (rec && !(await this.d.images.inspect(rec.imageId))) await this.d.images.prune();
  }
}

/**
 * The image's STOPSIGNAL, when the container names none, is what stop will send (Docker's merge at create): one
 * Linux has not is refused before anything is made, as Docker refuses it, not found out at the first stop.
 */
function stopSignalProblems(spec: Partial<ContainerSpec>, image: ImageInfo): InputProblem[] {
  const s = image.config.stopSignal;
  if (spec.stopSignal !== undefined || s === undefined || signalNumber(s) !== undefined) return [];
  return [{ field: "image", reason: `image ${image.ref} has STOPSIGNAL ${JSON.stringify(s)}, which is no Linux signal: set the container's stopSignal (e.g. "SIGTERM")` }];
}
