// The networking of one container, from spec to host and back: check it (before anything is made), claim its
// addresses and ports, plug it in, configure the inside, report what drifted, and undo it all. Also keeps every
// container's /etc/hosts right as containers come and go (see hosts.ts). The container runtime calls in here.
import * as fs from "node:fs";
import * as path from "node:path";
import type { ContainerSpec, ImageInfo, PortMapping } from "../runtime";
import type { Host } from "../host/exec";
import type { Paths } from "../paths";
import { linkExists, netnsExists, netnsPath } from "../host/probe";
import { hostKeyOf, runcId, vethName } from "../names";
import { withLock, writeLinked } from "../lock";
import { isHostAddress, parseIPv4, parseSubnet } from "./cidr";
import type { Iptables, Rule } from "./iptables";
import { containerTag, portRules, validatePorts, type PortClaims } from "./portmap";
import { DEFAULT_NETWORK, type BridgeNetworks, type NetworkRecord } from "./networks";
import { networkModeConflicts } from "./options";
import { attachmentFaults, configure, MAC_ADDRESS, macFor, plug, processNetns, sameNamespace, unplug, type AttachmentRecord, type ContainerNet } from "./attach";
import { addInterface, checkInterfaces, DHCP_SCRIPT, ifnameOf, interfaceFaults, removeInterface, routesDefault } from "./pipework";
import type { DeclaredInterface } from "./types";
import { readJson } from "../json-file";
import { canonicalJson } from "../canonical-json";
import { hostsFile, parseExtraHost, parseLink, peersOf, resolvConf, type Resolvable } from "./hosts";

/** A container's networking as checked, before any address or port is claimed. */
export interface NetPlan {
  mode: ContainerNet["mode"];
  joined?: { name: string; netnsPath: string; hosts: string; resolvConf: string };
  attachments: { net: NetworkRecord | undefined; network: string; ip?: string; aliases: string[]; mac?: string }[];
  ports: PortMapping[];
}

/** What the network side needs of a container record. */
export interface NetHolder {
  spec: ContainerSpec;
  runcId?: string;
  net?: ContainerNet;
  createdAt: string;
}

/** How long a hosts pass waits for the runs and removals under way to join it (see expectPass). */
const PASS_WAIT_MS = 100;

const HOST_NAME = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/;

/** Everything the container runs with, from image and spec: Docker's -P adds each exposed port on a free port. */
function portsOf(spec: ContainerSpec, image: ImageInfo): PortMapping[] {
  const ports = [...(spec.ports ?? [])];
  if (spec.publishAll) {
    for (const exposed of image.config.exposedPorts ?? []) {
      const [port, protocol = "tcp"] = exposed.split("/");
      const p = { hostIp: "0.0.0.0", hostPort: 0, containerPort: Number(port), protocol: protocol as "tcp" | "udp" };
      if (!ports.some((q) => q.containerPort === p.containerPort && q.protocol === p.protocol)) ports.push(p);
    }
  }
  return ports;
}

export class ContainerNetworking {
  /** Containers added or removed since the last pass started, and the pass that will serve them. */
  private changed: NetHolder[] = [];
  private nextPass?: Promise<void>;
  /**
   * Containers this process is removing, their process gone: left out of every hosts file from then on, theirs not
   * rewritten. A destroy of N containers rewrote each one's file for every removal before its own.
   */
  private readonly leaving = new Set<string>();
  /** Runs and removals of this process that will ask for a pass (see expectPass), and a pass waiting for them. */
  private expected = 0;
  private quiet?: () => void;

  constructor(
    private readonly host: Host,
    private readonly paths: Paths,
    private readonly networks: BridgeNetworks,
    private readonly iptables: Iptables,
    private readonly claims: PortClaims,
  ) {}

  portTaken = (p: PortMapping, owners: string[]) => this.claims.taken(p, owners);

  /**
   * Checks the networking part of a spec against the host, refusing what Docker refuses; changes nothing. The
   * other containers' records are read only for a spec that names one (links, network mode "container:").
   */
  async plan(spec: ContainerSpec, image: ImageInfo, records: () => Promise<NetHolder[]>): Promise<NetPlan> {
    const name = spec.name;
    const refuse = (why: string): never => {
      throw new Error(`container "${name}": ${why}`);
    };
    const mode = spec.networkMode;
    const asked = spec.networks ?? (spec.network !== undefined ? [{ network: spec.network }] : []);
    const ports = portsOf(spec, image);
    const [conflict] = networkModeConflicts(mode, {
      networks: asked.length > 0, ports: ports.length > 0, links: (spec.links?.length ?? 0) > 0, interfaces: (spec.interfaces?.length ?? 0) > 0,
      hostname: spec.hostname !== undefined, dns: spec.dns !== undefined, extraHosts: spec.extraHosts !== undefined, domainname: spec.domainname !== undefined,
    });
    if (conflict) refuse(conflict.reason);
    validatePorts(name, ports);
    for (const h of spec.extraHosts ?? []) {
      const { ip, names } = parseExtraHost(h);
      if (parseIPv4(ip) === undefined || !HOST_NAME.test(names[0])) refuse(`invalid extra host "${h}": use "host:ip", e.g. "db:10.0.0.5"`);
    }
    checkInterfaces(name, spec.interfaces ?? []);
    for (const d of spec.dns ?? []) if (parseIPv4(d) === undefined) refuse(`invalid dns server "${d}": use an IPv4 address`);
    if (spec.domainname !== undefined && !HOST_NAME.test(spec.domainname)) refuse(`invalid domainname "${spec.domainname}"`);

    if (mode === "none" || mode === "host" || mode?.startsWith("container:")) {
      if (mode === "host") return { mode, attachments: [], ports: [] };
      if (mode === "none") return this.ownNamespace(name, { mode, attachments: [], ports: [] });
      const other = mode.slice("container:".length);
      const target = (await records()).find((r) => r.spec.name === other);
      if (!target) refuse(`network mode "${mode}": no container "${other}"; run it first`);
      const pid = Number(await fs.promises.readFile(this.paths.container(other).pid, "utf8").catch(() => "0"));
      const nsPath = target!.net?.netns ? netnsPath(target!.net.netns) : pid > 0 ? processNetns(pid) : undefined;
      if (!nsPath || !fs.existsSync(nsPath)) refuse(`network mode "${mode}": container "${other}" is not running`);
      if (target!.net?.mode === "container" || target!.net?.mode === "host") {
        refuse(`network mode "${mode}": container "${other}" itself shares another network namespace; name that one`);
      }
      const p = this.paths.container(other);
      return { mode: "container", joined: { name: other, netnsPath: nsPath!, hosts: p.hosts, resolvConf: p.resolvConf }, attachments: [], ports: [] };
    }
    if (mode !== undefined && mode !== "bridge") refuse(`invalid network mode "${mode}": use none, host, bridge or container:NAME`);

    const wanted = mode === "bridge" ? [{ network: DEFAULT_NETWORK }, ...asked] : asked;
    const attachments: NetPlan["attachments"] = [];
    for (const a of wanted) {
      if (attachments.some((x) => x.network === a.network)) refuse(`network "${a.network}" is given twice`);
      const net = await this.networks.record(a.network);
      if (!net && a.network !== DEFAULT_NETWORK) refuse(`network "${a.network}" not found: create it first`);
      if (a.ip !== undefined) {
        if (a.network === DEFAULT_NETWORK) refuse(`ip ${a.ip}: user specified IP address is supported on user defined networks only`);
        const ip = parseIPv4(a.ip);
        if (ip === undefined || !isHostAddress(parseSubnet(net!.subnet), ip)) {
          refuse(`Invalid address ${a.ip}: It does not belong to any of this network's subnets (network "${a.network}", ${net!.subnet})`);
        }
        if ([net!.gateway, ...Object.values(net!.auxAddresses)].includes(a.ip)) {
          refuse(`ip ${a.ip} on network "${a.network}": Address already in use (it is the gateway or an auxiliary address)`);
        }
        const holder = (await this.networks.ipam(net!).list()).find((x) => x.ip === a.ip && x.owner !== name);
        if (holder) refuse(`ip ${a.ip} on network "${a.network}": Address already in use by container "${holder.owner}"`);
      }
      if (a.mac !== undefined && !MAC_ADDRESS.test(a.mac)) refuse(`invalid mac "${a.mac}": use six hex pairs, e.g. 02:42:0a:00:00:05`);
      for (const alias of a.aliases ?? []) if (!HOST_NAME.test(alias)) refuse(`invalid alias "${alias}" on network "${a.network}"`);
      if (net?.macvlanMode === "passthru") {
        const holder = (await this.networks.ipam(net).list()).find((x) => x.owner !== name && !x.owner.startsWith("#"));
        if (holder) {
          refuse(
            `failed to create the macvlan port: invalid argument — network "${a.network}" is passthru, and container ` +
              `"${holder.owner}" already has its parent ${net.bridge}`,
          );
        }
      }
      attachments.push({ net, network: a.network, ip: a.ip, aliases: a.aliases ?? [], mac: a.mac });
    }
    if (ports.length > 0 && !attachments.some((a) => (a.net?.driver ?? "bridge") === "bridge")) {
      refuse("publishes ports but is on no bridge network: give it one (ports are forwarded to a bridge address)");
    }
    const others = spec.links?.length ? await records() : [];
    for (const link of spec.links ?? []) {
      const [other] = parseLink(link);
      const peer = others.find((r) => r.spec.name === other);
      if (!peer || !peer.net?.attachments.some((x) => attachments.some((a) => a.network === x.network))) {
        refuse(`link "${link}": no container "${other}" on a network this one joins`);
      }
    }
    return this.ownNamespace(name, { mode: attachments.length > 0 ? "networks" : "none", attachments, ports });
  }

  /**
   * Host names follow from the root and container name: refuse before making anything (whose cleanup would then
   * delete them) if something else on this host already has them.
   */
  private ownNamespace(name: string, plan: NetPlan): NetPlan {
    const netns = runcId(this.paths.root, name);
    const hostIfs = plan.attachments.map((_, i) => hostIfName(netns, i));
    if (netnsExists(netns) || hostIfs.some(linkExists)) {
      throw new Error(
        `container "${name}": network namespace ${[netns, ...hostIfs].join(" or veth ")} already exists ` +
          "on this host, but this berth root has no record of them (left when a root was wiped?); delete them if " +
          "nothing uses them",
      );
    }
    return plan;
  }

  /** Addresses and host ports for the container, recorded by the caller before anything is plugged in. */
  async claim(name: string, plan: NetPlan): Promise<ContainerNet> {
    const netns = runcId(this.paths.root, name);
    const attachments: AttachmentRecord[] = [];
    // Each address is claimed in order, so a failure leaves claims the caller's release() undoes.
    for (const [i, a] of plan.attachments.entries()) {
      const { rec: net, ip } = await this.networks.attach(name, a.net, a.ip);
      attachments.push({
        network: a.network,
        driver: net.driver,
        ifname: `eth${i}`,
        hostIf: net.driver === "bridge" ? hostIfName(netns, i) : undefined,
        device: net.bridge,
        macvlanMode: net.macvlanMode,
        ip,
        prefix: parseSubnet(net.subnet).prefix,
        gateway: net.gateway,
        mac: (a.mac ?? macFor(ip)).toLowerCase(),
        aliases: a.aliases,
        mtu: net.mtu,
        defaultRoute: false,
      });
    }
    const gw = plan.attachments.findIndex((a) => !a.net?.internal);
    if (gw >= 0) attachments[gw].defaultRoute = true;
    const ports = await this.claims.claim(name, plan.ports);
    return {
      mode: plan.mode,
      // Also for "none": a named namespace outlives the process and can take declared interfaces in place.
      netns: plan.mode === "networks" || plan.mode === "none" ? netns : undefined,
      joined: plan.joined?.name,
      attachments,
      ports,
    };
  }

  /** The namespace, its links and the port rules: made before `runc run`. */
  async plugIn(name: string, net: ContainerNet): Promise<void> {
    if (!net.netns) return;
    await plug(this.host, net.netns, net.attachments);
    const rules = this.portRules(name, net);
    if (rules.length > 0) await this.iptables.add(rules);
  }

  /** The networking with the default route where it should be: a declared interface may take it over. */
  private routed(net: ContainerNet, spec: ContainerSpec): ContainerNet {
    if (!(spec.interfaces ?? []).some(routesDefault)) return net;
    return { ...net, attachments: net.attachments.map((a) => ({ ...a, defaultRoute: false })) };
  }

  /** Whether a running container made from `from` can become `to` without a restart (only interfaces differ). */
  changeableInPlace(from: ContainerSpec, to: ContainerSpec): boolean {
    return canonicalJson({ ...from, interfaces: undefined }) === canonicalJson({ ...to, interfaces: undefined });
  }

  /** Declared interfaces, once the container's namespace exists. */
  async addInterfaces(rec: NetHolder): Promise<void> {
    const interfaces = rec.spec.interfaces ?? [];
    if (interfaces.length === 0) return;
    const dhcp = await this.dhcpScript();
    for (const i of interfaces) await addInterface(this.host, hostKeyOf(rec), rec.net!.netns!, i, dhcp);
  }

  /**
   * Under a running container: puts back missing port rules, removes declared interfaces no longer wanted or
   * broken, adds the wanted ones that are missing.
   */
  async repair(rec: NetHolder, spec: ContainerSpec): Promise<void> {
    const { net } = rec;
    if (!net?.netns) return;
    checkInterfaces(spec.name, spec.interfaces ?? []);
    await this.iptables.ensure(this.portRules(spec.name, net));
    const broken = new Set((await interfaceFaults(this.host, net.netns, rec.spec.interfaces ?? [])).map((f) => f.split(" ")[2]));
    const key = (i: DeclaredInterface) => canonicalJson(i);
    const wanted = new Set((spec.interfaces ?? []).map(key));
    const had = rec.spec.interfaces ?? [];
    const keep = had.filter((i) => wanted.has(key(i)) && !broken.has(ifnameOf(i)));
    for (const i of had.filter((x) => !keep.includes(x))) await removeInterface(this.host, hostKeyOf(rec), net.netns, i);
    const kept = new Set(keep.map(key));
    const added = (spec.interfaces ?? []).filter((x) => !kept.has(key(x)));
    const dhcp = added.length > 0 ? await this.dhcpScript() : "";
    for (const i of added) await addInterface(this.host, hostKeyOf(rec), net.netns, i, dhcp);
    // A declared gateway that went away hands the default route back to the container's network.
    const gw = this.routed(net, spec).attachments.find((a) => a.defaultRoute);
    if (gw) await this.host.run("ip", ["-n", net.netns, "route", "replace", "default", "via", gw.gateway, "dev", gw.ifname]);
  }

  /** The udhcpc script for DHCP interfaces, written once per root. */
  private async dhcpScript(): Promise<string> {
    const file = `${this.paths.root}/udhcpc.sh`;
    // Whole or not at all: another process's container may be running it already.
    if (!fs.existsSync(file)) await writeLinked(file, DHCP_SCRIPT, 0o755);
    return file;
  }

  /** Addresses and routes inside: needed only once the process starts. */
  configureInside(net: ContainerNet): Promise<void> {
    return net.netns ? configure(this.host, net.netns, net.attachments) : Promise.resolve();
  }

  /** How runc's config.json treats the network namespace. */
  namespace(net: ContainerNet | undefined, plan: NetPlan): { path?: string; host?: boolean } {
    if (net?.mode === "host") return { host: true };
    if (plan.joined) return { path: plan.joined.netnsPath };
    return { path: net?.netns && netnsPath(net.netns) };
  }

  /** /etc/hosts and resolv.conf content for a container (container mode shares the other's files instead). */
  async etcFiles(rec: NetHolder, all: NetHolder[], hostname: string): Promise<{ hosts: string; resolvConf: string }> {
    const { spec } = rec;
    if (rec.net?.mode === "host") {
      const hosts = await fs.promises.readFile("/etc/hosts", "utf8").catch(() => "127.0.0.1\tlocalhost\n");
      const extra = (spec.extraHosts ?? []).map(parseExtraHost).map((e) => `${e.ip}\t${e.names[0]}\n`);
      return { hosts: hosts + extra.join(""), resolvConf: await fs.promises.readFile("/etc/resolv.conf", "utf8").catch(() => "") };
    }
    return {
      hosts: hostsFile(resolvable(rec, hostname), all.map((r) => resolvable(r))),
      resolvConf: await resolvConf(spec),
    };
  }

  /**
   * Rewrites the hosts files of rec and of every container sharing a network with it, from the records as they are
   * when the rewrite starts: with rec when it was just made, without it when just removed. Requests made while a
   * rewrite runs or waits are served together by the next one, so containers made in parallel cost one pass over
   * their peers' files between them rather than one each. A pass holds the root's lock and reads the records under
   * it: of two berth processes making containers on one network at once, the later pass sees both records and
   * writes last (rec's own file too, which its create wrote from the records of an earlier moment).
   */
  refreshPeers(rec: NetHolder, records: () => Promise<NetHolder[]>, arrived?: () => void): Promise<void> {
    this.changed.push(rec);
    arrived?.();
    if (this.nextPass) return this.nextPass;
    const pass = this.expectedArrived().then(() => withLock(path.join(this.paths.locks, "hosts"), async () => {
      this.nextPass = undefined;
      const changed = this.changed.splice(0);
      const all = (await records()).filter((r) => !this.leaving.has(r.spec.name));
      // Newest first, as hostsFile orders them: its sort of each file's peers then finds them in order.
      const everyone = all.map((r) => resolvable(r)).sort((x, y) => (x.createdAt < y.createdAt ? 1 : -1));
      const byName = new Map(everyone.map((r) => [r.name, r]));
      const files = new Map<string, Resolvable>();
      for (const c of changed) {
        const now = byName.get(c.spec.name);
        if (now) files.set(now.name, now);
        for (const p of peersOf(now ?? resolvable(c), everyone)) files.set(p.name, p);
      }
      // Synchronous calls: a pass writes every peer's file, and fs.promises made that four thread-pool round trips
      // per file (~30× the CPU of the calls themselves).
      for (const peer of files.values()) {
        if (peer.net?.mode !== "networks") continue;
        // In place (same inode: the file is bind-mounted into the running container), and never made again: a
        // container another process removes meanwhile has no file left to update, and is no reason to fail this pass.
        let fd: number;
        try {
          fd = fs.openSync(this.paths.container(peer.name).hosts, "r+");
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
          continue;
        }
        try {
          // Written over, then cut to length: a truncation to zero first makes ext4 flush the file's pending data
          // (its auto_da_alloc for files replaced by truncation), and the next pass's truncation then waits for that
          // write to reach the disk — 20 ms a file in a pass over 100 peers.
          const text = Buffer.from(hostsFile(peer, everyone));
          fs.writeSync(fd, text, 0, text.length, 0);
          fs.ftruncateSync(fd, text.length);
        } finally {
          fs.closeSync(fd);
        }
      }
    }, { what: `the hosts files of ${this.paths.root}` }));
    // A pass that never started (the lock timed out) leaves its requests to the next one.
    pass.catch(() => this.nextPass === pass && (this.nextPass = undefined));
    return (this.nextPass = pass);
  }

  /**
   * Says that this process is about to ask for a pass for a container it is making or removing (its last steps
   * under way): a pass about to start waits for it (at most PASS_WAIT_MS), so that containers made or removed
   * together share one pass where each had one of its own (100 containers: ~N passes of ~N/2 files each). The
   * function returned says it asked, or will not.
   */
  expectPass(): () => void {
    this.expected++;
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      if (--this.expected === 0) this.quiet?.();
    };
  }

  private async expectedArrived(): Promise<void> {
    if (this.expected === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, PASS_WAIT_MS);
      this.quiet = () => (clearTimeout(timer), resolve());
    });
    this.quiet = undefined;
  }

  /**
   * Runs the removal of a container that no longer runs (see leaving), which will ask for a pass (expectPass). A
   * removal that fails leaves the container there, while a pass that ran meanwhile wrote its peers' files without
   * it: one more pass (given its record) puts it back.
   */
  async removing<T>(name: string, fn: (arrived: () => void) => Promise<T>, rec?: NetHolder, records?: () => Promise<NetHolder[]>): Promise<T> {
    this.leaving.add(name);
    const arrived = this.expectPass();
    const done = () => {
      arrived();
      this.leaving.delete(name);
    };
    try {
      return await fn(arrived);
    } catch (e) {
      done();
      if (rec?.net && records) await this.refreshPeers(rec, records).catch(() => undefined);
      throw e;
    } finally {
      done();
    }
  }

  portRules(name: string, net: ContainerNet): Rule[] {
    const target = net.attachments.find((a) => a.driver === "bridge");
    return target ? portRules(this.paths.root, name, target.ip, net.ports) : [];
  }

  /** pid: the container's init, when it runs. repairable: what repair() puts right without a restart. */
  async faults(rec: NetHolder, pid: number | undefined): Promise<{ faults: string[]; repairable: string[] }> {
    const net = rec.net;
    if (!net) return { faults: [], repairable: [] };
    const faults = await attachmentFaults(this.host, this.routed(net, rec.spec));
    // The container it joined was re-created: this one is left in a namespace nobody else uses.
    if (net.joined && pid) {
      const joined = await readJson<NetHolder>(this.paths.container(net.joined).record);
      const ns = joined?.net?.netns && netnsPath(joined.net.netns);
      if (!joined || (ns && fs.existsSync(ns) && !sameNamespace(processNetns(pid), ns))) {
        faults.push(`no longer in the network namespace of container "${net.joined}"`);
      }
    }
    const interfaces = net.netns && netnsExists(net.netns) ? await interfaceFaults(this.host, net.netns, rec.spec.interfaces ?? []) : [];
    return { faults, repairable: [...(await this.iptables.missing(this.portRules(rec.spec.name, net))), ...interfaces] };
  }

  /** Takes a container's networking off the host (port rules, interfaces), its addresses kept; skips what is gone. */
  async disconnect(name: string, net: ContainerNet | undefined): Promise<void> {
    await Promise.all([
      net
        ? this.iptables.delete(this.portRules(name, net), containerTag(this.paths.root, name))
        : this.iptables.removeTagged(containerTag(this.paths.root, name)),
      net && unplug(this.host, net),
    ]);
  }

  /**
   * Frees a container's addresses: the last step of its removal, once the rest went through. A removal that fails
   * keeps them, so the peers' files that name it again (removing) name an address no other container gets.
   */
  async release(name: string): Promise<void> {
    // Every network, not only the recorded ones: a run that failed or crashed while claiming had no record yet.
    const networks = await this.networks.records();
    for (const rec of networks) await this.networks.ipam(rec).release(name);
    await this.claims.release(name);
    if (networks.some((n) => n.network === DEFAULT_NETWORK)) await this.networks.releaseDefault();
  }
}

/** The host end of a container's i-th veth pair, from its host key (names.ts hostKeyOf). */
export const hostIfName = (key: string, i: number): string => vethName(i === 0 ? key : `${key}#${i}`);

function resolvable(r: NetHolder, hostname = r.spec.hostname ?? r.spec.name): Resolvable {
  return {
    name: r.spec.name,
    hostname,
    domainname: r.spec.domainname,
    net: r.net,
    links: r.spec.links,
    extraHosts: r.spec.extraHosts,
    createdAt: r.createdAt,
  };
}
