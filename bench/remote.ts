// `node dist/bench/remote.js [ssh://HOST --identity FILE --ssh-option K=V…]`: a container created through the
// remote runtime against one created by the local runtime, per container (median of N run + inspect), with the
// connection's set-up (ssh, agent start, hello) reported apart. Without a host, the agent runs here as ssh would
// start it (`berth agent` on a pipe), which measures berth's own share; with one, over OpenSSH to that host
// (`remoteBench(target)` is what the simulated hosts' bench calls).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createNativeRuntime, type Runtime } from "../native";
import { remoteRuntime, type RemoteTarget } from "../native/remote/client";
import { supervisorPid } from "../native/supervise/launch";

const REPO = path.resolve(__dirname, "../..");
const COUNT = 20;

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Median ms to run one container (seen running), over COUNT, local and remote taking turns so that the load of
 * a busy machine falls on both alike; every container removed after.
 */
async function perContainer(runtimes: Runtime[], rootfs: string): Promise<number[]> {
  const image = "bench-remote:1";
  const times = runtimes.map(() => [] as number[]);
  const made = runtimes.map(() => [] as string[]);
  try {
    for (const rt of runtimes) await rt.images.importRootfs({ ref: image, tarball: rootfs, config: { cmd: ["sh"], env: ["PATH=/bin"] } });
    for (let i = 0; i < COUNT; i++) {
      // Who goes first alternates too: a container's start spills over onto the next one's.
      for (const k of runtimes.map((_, j) => (j + i) % runtimes.length)) {
        const rt = runtimes[k];
        const name = `bench-remote-${k}-${i}`;
        made[k].push(name);
        const start = process.hrtime.bigint();
        await rt.containers.run({ name, image, command: ["sleep", "3600"], stopTimeout: 0 });
        times[k].push(ms(start));
      }
    }
  } finally {
    for (const [k, rt] of runtimes.entries()) {
      for (const name of made[k]) await rt.containers.remove(name, { graceSeconds: 0 }).catch(() => undefined);
      await rt.images.remove(image).catch(() => undefined);
    }
  }
  return times.map(median);
}

export async function remoteBench(target: RemoteTarget, rootfs: string): Promise<string[]> {
  const local = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-local-"));
  const remote = remoteRuntime(target);
  try {
    const start = process.hrtime.bigint();
    await remote.volumes.list();
    const setup = ms(start);
    const trips: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t = process.hrtime.bigint();
      await remote.volumes.inspect("bench-remote-none");
      trips.push(ms(t));
    }
    const [here, there] = await perContainer([createNativeRuntime({ root: path.join(local, "root"), runDir: path.join(local, "run") }), remote], rootfs);
    return [
      `remote runtime (${target.command ? "berth agent on a pipe, no ssh" : target.url}): connection set-up ${setup.toFixed(0)} ms, a call's round trip ${median(trips).toFixed(2)} ms (median of 50)`,
      `container run, per container (median of ${COUNT}): local ${here.toFixed(0)} ms, remote ${there.toFixed(0)} ms (ratio ${(there / here).toFixed(2)}; target ≤ 1.2)`,
    ];
  } finally {
    await remote.close();
    const pid = supervisorPid(path.join(local, "root"));
    if (pid) process.kill(pid, "SIGTERM");
    fs.rmSync(local, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-remote-"));
  const rootfs = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [rootfs]);
  const flag = (name: string) => argv.flatMap((a, i) => (a === name ? [argv[i + 1]] : []));
  const url = argv.find((a) => a.startsWith("ssh://"));
  const remoteRoot = path.join(tmp, "remote");
  const target: RemoteTarget = url
    ? { url, identityFile: flag("--identity")[0], sshOptions: flag("--ssh-option") }
    : { url: "ssh://bench", command: ["env", `BERTH_RUN=${remoteRoot}/run`, path.join(REPO, "bin/berth"), "agent", "--root", `${remoteRoot}/root`] };
  try {
    console.log((await remoteBench(target, rootfs)).join("\n"));
  } finally {
    const pid = supervisorPid(`${remoteRoot}/root`);
    if (pid) process.kill(pid, "SIGTERM");
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
