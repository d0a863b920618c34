// `npm run bench` (images part): a full-cache-hit rebuild, push (and a re-push of the unchanged image) and pull of a ~100 MB image through a local
// registry served by berth, against `skopeo copy` of the same image in the same run, as ratios; and the pull against
// `docker pull` from the same registry when a Docker engine answers.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createNativeRuntime } from "../native";
import { freePort } from "../native/network/portmap";
import { dockerMissing, runDocker } from "./docker";
import { sweepOrphans } from "../native/lock-dir";

const REPO = path.resolve(__dirname, "../..");
const FILES = 100;
const FILE_MB = 1;

async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, value];
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-images-"));
  const rt = createNativeRuntime({ root: path.join(root, "a"), runDir: path.join(root, "run") });
  const other = createNativeRuntime({ root: path.join(root, "b"), runDir: path.join(root, "run") });
  const rows: string[] = [];
  const port = await freePort("127.0.0.1");
  const name = `berth-bench-reg-${port}`;
  try {
    const tar = path.join(root, "busybox.tar");
    execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
    await rt.images.importRootfs({ ref: "busybox:latest", tarball: tar, config: {} });
    const ctx = path.join(root, "ctx");
    fs.mkdirSync(path.join(ctx, "data"), { recursive: true });
    // Random bytes: gzip cannot shrink them, so ~100 MB really crosses the wire.
    for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(ctx, "data", `f${i}`), randomBytes(FILE_MB << 20));
    fs.writeFileSync(path.join(ctx, "Dockerfile"), "FROM busybox\nCOPY data/ /data/\nRUN ls /data | wc -l > /count\nCMD [\"cat\", \"/count\"]\n");

    const registry = `127.0.0.1:${port}`;
    const volume = await rt.volumes.create({ name });
    await rt.registries.ensure({ name, address: "127.0.0.1", port, storage: volume.mountpoint });

    const ref = `${registry}/bench-berth:1`;
    const [cold] = await timed(() => rt.images.build({ ref, context: ctx }));
    const [warm, hit] = await timed(() => rt.images.build({ ref, context: ctx }));
    if (hit.ran.length > 0) throw new Error(`the cache-hit rebuild ran ${hit.ran.join(", ")}`);
    const mb = (hit.info.size / 1e6).toFixed(0);
    rows.push(`build, ${mb} MB image, cold:              ${cold.toFixed(0)} ms`);
    rows.push(`rebuild, nothing changed (cache hit):   ${warm.toFixed(0)} ms  (ratio rebuild/cold ${(warm / cold).toFixed(3)})`);

    const saved = path.join(root, "saved.tar");
    await rt.images.save([ref], saved);
    const [berthPush] = await timed(() => rt.images.push(ref, ref));
    const [skopeoPush] = await timed(() =>
      execFileSync("skopeo", ["copy", "-q", "--dest-tls-verify=false", `oci-archive:${saved}`, `docker://${registry}/bench-skopeo:1`]),
    );
    rows.push(`push to a local registry:     berth ${berthPush.toFixed(0)} ms, skopeo copy ${skopeoPush.toFixed(0)} ms  (ratio berth/skopeo ${(berthPush / skopeoPush).toFixed(2)})`);
    // Nothing changed: the registry has every blob, which berth must see without compressing the layers again.
    const [rePush] = await timed(() => rt.images.push(ref, ref));
    rows.push(`push again, image unchanged:  berth ${rePush.toFixed(0)} ms`);
    const [berthPull] = await timed(() => other.images.pull(ref));
    const [skopeoPull] = await timed(() =>
      execFileSync("skopeo", ["copy", "-q", "--src-tls-verify=false", `docker://${registry}/bench-skopeo:1`, `oci:${path.join(root, "skopeo-oci")}:1`]),
    );
    rows.push(`pull from a local registry:   berth ${berthPull.toFixed(0)} ms (unpacked, ready to run), skopeo copy ${skopeoPull.toFixed(0)} ms (blobs only)  (ratio berth/skopeo ${(berthPull / skopeoPull).toFixed(2)})`);
    const noDocker = dockerMissing();
    if (noDocker) rows.push(`docker pull: ${noDocker}; the Docker ratio is skipped (start dockerd to compare)`);
    else {
      try {
        // Docker takes a registry on 127.0.0.0/8 without TLS, as berth's pull does here.
        const [dockerPull] = await timed(() => runDocker("docker", ["pull", "-q", ref]));
        rows.push(`docker pull, same image and registry: ${dockerPull.toFixed(0)} ms  (ratio berth/docker ${(berthPull / dockerPull).toFixed(2)}; target ≤ 1.0)`);
      } catch (e) {
        rows.push(`docker pull: failed — ${(e as Error).message}`);
      } finally {
        spawnSync("docker", ["rmi", "-f", ref], { stdio: "ignore" });
      }
    }
  } finally {
    await rt.registries.remove(name);
    fs.rmSync(root, { recursive: true, force: true });
    sweepOrphans(0);
  }
  console.log(rows.join("\n"));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
