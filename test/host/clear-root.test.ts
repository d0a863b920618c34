// clearRoot (helpers.ts), the teardown every test's berth root gets before its directory is removed: what a run
// interrupted before its destroy (or a destroy that failed) left under the root — a running container on a
// network with a volume, and a registry — is removed through berth, so nothing stays on the host once the root's
// directory, the only way to find it, is gone.
import { afterAll, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createNativeRuntime } from "../../native";
import { supervisorPid } from "../../native/supervise/launch";
import { QUICKSTART, clearRoot, ensureQuickstartRootfs, freePort, stackObjects, waitFor } from "./helpers";

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "berth-clear-root-"));
const root = path.join(scratch, "root");
const tag = `btclr${process.pid}`;
/** Not gone nor a zombie (the registry's daemon may be this process's child, not reaped yet). */
const running = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
afterAll(async () => {
  await clearRoot(root);
  fs.rmSync(scratch, { recursive: true, force: true });
});

it("removes every container, network, volume and registry of a root, and stops its supervisor", async () => {
  ensureQuickstartRootfs();
  const rt = createNativeRuntime({ root });
  const image = await rt.images.importRootfs({ ref: `${tag}:1`, tarball: path.join(QUICKSTART, "busybox-rootfs.tar"), config: { cmd: ["sh"], env: ["PATH=/bin"] } });
  const net = await rt.networks.create({ name: `${tag}-n`, subnet: `10.${150 + (process.pid % 40)}.94.0/24`, nat: false });
  const vol = await rt.volumes.create({ name: `${tag}-v` });
  await rt.containers.run({ name: `${tag}-c`, image: image.id, command: ["sh", "-c", "exec sleep 600"], networks: [{ network: net.name }], mounts: [{ volume: vol.name, target: "/data" }] });
  const reg = await rt.registries.ensure({ name: `${tag}-r`, address: "127.0.0.1", port: await freePort(), storage: vol.mountpoint });
  // Owned by a stack, as a stack's are (the CLI's rm refuses those without --force).
  for (const [kind, name] of [["container", `${tag}-c`], ["network", net.name], ["volume", vol.name], ["registry", `${tag}-r`]] as const) {
    await rt.owners.claim(kind, name, `urn:pulumi:t::p::berth:index:${kind}::${name}`);
  }
  const ours = () => stackObjects({ resources: [{ outputs: { name: `${tag}-c` } }, { outputs: { ...net } }] }, root);
  expect(ours().netns.length + ours().links.length + ours().iptables.length + ours().runc.length).toBeGreaterThan(3);
  await waitFor("the supervisor", () => supervisorPid(root), 10_000, 20);

  await clearRoot(root);
  expect(ours()).toEqual({ netns: [], links: [], mounts: [], iptables: [], runc: [] });
  expect([await rt.containers.list(), await rt.networks.list(), await rt.volumes.list(), await rt.registries.list()]).toEqual([[], [], [], []]);
  expect(running(reg.pid!)).toBe(false);
  expect(supervisorPid(root)).toBeUndefined();
}, 60_000);
