// A Registry runs on the host as root, its storage a volume's data: a container mounting that volume can fill
// it with symlinks to host paths. The registry must not follow them: what it writes and reads stays in the volume.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { REPO, freePort, waitFor } from "./helpers";

let root: string;
let rt: Runtime;
let canary: string;
const ctr = `brs${process.pid}`;
const volume = `brsvol${process.pid}`;
const registry = `brsreg${process.pid}`;

beforeAll(async () => {
  root = fs.mkdtempSync("/tmp/berth-test-");
  const tar = path.join(root, "busybox.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
  rt = createNativeRuntime({ root: path.join(root, "state"), runDir: path.join(root, "run") });
  await rt.images.importRootfs({ ref: "busybox:latest", tarball: tar, config: {} });
  canary = path.join(root, "canary");
  fs.mkdirSync(canary);
}, 60_000);

afterAll(async () => {
  await rt.registries.remove(registry).catch(() => undefined);
  await rt.containers.remove(ctr, { graceSeconds: 0 }).catch(() => undefined);
  await rt.volumes.remove(volume).catch(() => undefined);
  fs.rmSync(root, { recursive: true, force: true });
});

describe("a Registry's storage that a container shares", () => {
  it("is not followed through the container's symlinks: a push writes nothing outside the volume", async () => {
    const data = await rt.volumes.create({ name: volume });
    // The container plants the registry's repositories directory as a link to a host directory.
    await rt.containers.run({
      name: ctr, image: "busybox:latest", networkMode: "none", mounts: [{ volume, target: "/data" }],
      command: ["sh", "-c", `mkdir -p /data/docker/registry/v2 && ln -s ${canary} /data/docker/registry/v2/repositories && exec sleep 1000`],
    });
    const planted = path.join(data.mountpoint, "docker/registry/v2/repositories");
    await waitFor("the container's symlink", () => fs.lstatSync(planted, { throwIfNoEntry: false })?.isSymbolicLink() || undefined);

    const port = await freePort();
    await rt.registries.ensure({ name: registry, address: "127.0.0.1", port, storage: data.mountpoint });
    // Seen from the registry's own mount namespace: its storage follows no symlink, opens no device node a
    // container planted there, and honours no setuid bit.
    const { pid } = (await rt.registries.inspect(registry))!;
    const storageMount = fs.readFileSync(`/proc/${pid}/mountinfo`, "utf8").split("\n").map((l) => l.split(" ")).filter((f) => f[4] === data.mountpoint).pop();
    expect(storageMount?.[5].split(","), "the storage's mount options").toEqual(expect.arrayContaining(["nosymfollow", "nodev", "nosuid"]));
    const pushed = await rt.images.push("busybox:latest", `127.0.0.1:${port}/escape:1`).then(() => "pushed", (e: Error) => e.message);
    expect(fs.readdirSync(canary)).toEqual([]);
    // The registry refuses what it cannot store inside its volume (ELOOP on the link), saying so.
    expect(pushed).toMatch(/refused upload/);

    // Without the link, the same registry stores the push in the volume.
    fs.rmSync(planted);
    expect(await rt.images.push("busybox:latest", `127.0.0.1:${port}/escape:1`)).toMatch(/@sha256:/);
    expect(fs.existsSync(path.join(planted, "escape"))).toBe(true);
  }, 60_000);
});
