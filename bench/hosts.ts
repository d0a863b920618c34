// `npm run bench` (many hosts), on simulated hosts (test/host/sim-hosts.ts: a network and mount namespace each,
// its own sshd and berth root, reached over OpenSSH): a container created on a remote host vs on this machine,
// per container, the connection's set-up apart (bench/remote.ts's remoteBench, over real SSH here); and
// `berth up` of 20 containers on this machine, on one remote host, and split over two. Target: remote ≤ 1.2×
// local per container.
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { remoteBench } from "./remote";
import { stopSupervisor } from "../test/host/helpers";
import { makeSimHosts, REPO, type SimHost } from "../test/host/sim-hosts";

const FLEET = path.join(REPO, "bench/fleet");
const ROUNDS = 3;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** `berth up` of the fleet program, `count` containers round-robin over the hosts (none: this machine, in
 * `local`), then its destroy; the up's ms. */
function fleetUp(stack: string, hosts: SimHost[], count: number, rootfs: string, backend: string, local: string): number {
  const providers = hosts.map((h) => ({ host: h.url, identityFile: h.target.identityFile, sshOptions: h.target.sshOptions, root: h.root }));
  fs.writeFileSync(path.join(FLEET, `Pulumi.${stack}.yaml`), `config:\n  fleet:count: "${count}"\n  fleet:rootfs: ${JSON.stringify(rootfs)}\n` +
    (hosts.length > 0 ? `  fleet:hosts: ${JSON.stringify(JSON.stringify(providers))}\n` : ""));
  const env = { ...process.env, BERTH_ROOT: path.join(local, "root"), BERTH_RUN: path.join(local, "run") };
  const cli = (cmd: string) => spawnSync(path.join(REPO, "bin/berth"), [cmd, FLEET, "--stack", stack, "--backend", backend, "--yes"], { encoding: "utf8", env });
  try {
    const start = process.hrtime.bigint();
    const up = cli("up");
    const took = Number(process.hrtime.bigint() - start) / 1e6;
    const down = cli("destroy");
    if (up.status !== 0 || down.status !== 0) throw new Error(`berth up/destroy of ${stack} failed:\n${up.stdout}${up.stderr}${down.stdout}${down.stderr}`);
    return took;
  } finally {
    fs.rmSync(path.join(FLEET, `Pulumi.${stack}.yaml`), { force: true });
  }
}

async function main(): Promise<void> {
  const sim = await makeSimHosts(2);
  const local = path.join(sim.dir, "local");
  const rows: string[] = [];
  try {
    const rootfs = path.join(sim.dir, "busybox-rootfs.tar");
    execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [rootfs]);
    const [h1, h2] = sim.hosts;
    rows.push(...(await remoteBench(h1.target, rootfs)));

    // Each way ROUNDS times, taking turns (this machine is shared, and has 2 cores), the median reported.
    const backend = `file://${fs.mkdtempSync(path.join(sim.dir, "state-"))}`;
    const ways: Array<[string, SimHost[]]> = [["on this machine", []], ["on one remote host", [h1]], ["split over two remote hosts", [h1, h2]]];
    const ups = ways.map(() => [] as number[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [k, [, hosts]] of ways.entries()) ups[k].push(fleetUp(`benchhosts${k}`, hosts, 20, rootfs, backend, local));
    }
    const [here, ...there] = ups.map(median);
    rows.push(`berth up, 20 containers ${ways[0][0]}: ${here.toFixed(0)} ms (median of ${ROUNDS})`);
    for (const [k, t] of there.entries()) rows.push(`berth up, 20 containers ${ways[k + 1][0]}: ${t.toFixed(0)} ms (ratio to this machine ${(t / here).toFixed(2)})`);
  } finally {
    try {
      stopSupervisor(path.join(local, "root"));
    } finally {
      await sim.cleanup();
    }
  }
  console.log(rows.join("\n"));
}

void main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
