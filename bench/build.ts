// `npm run bench` (builds part): one Dockerfile built cold and with a full cache hit by berth and, when a Docker
// engine answers (started by hand), by `docker build` in the same run, as ratios (targets: cold ≤ 1.0×, cache
// hit ≤ 0.5× Docker's); and a build whose RUN keeps its downloads in a cache mount, run twice. The engine is the
// one DOCKER_HOST names, driven by $BERTH_BENCH_DOCKER (default "docker") with BuildKit on (DOCKER_BUILDKIT=1);
// BERTH_BENCH_DOCKER_NETWORK=none for an engine started with --bridge=none (berth's RUN has its bridge anyway).
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createNativeRuntime } from "../native";

const REPO = path.resolve(__dirname, "../..");
const DOCKER = process.env.BERTH_BENCH_DOCKER ?? "docker";
const dockerEnv = { ...process.env, DOCKER_BUILDKIT: "1" };

async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, value];
}

/** Whether a Docker engine answers, and why not. */
function dockerEngine(): string | undefined {
  const r = spawnSync(DOCKER, ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8", timeout: 10_000 });
  if (r.error) return `no docker CLI ${DOCKER} (${(r.error as NodeJS.ErrnoException).code})`;
  if (r.status !== 0) return `no Docker engine answers (${(r.stderr || r.stdout).trim().split("\n")[0]})`;
  return undefined;
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-bench-build-"));
  const rows: string[] = [];
  try {
    const rt = createNativeRuntime({ root: path.join(root, "state"), runDir: path.join(root, "run") });
    const tar = path.join(root, "busybox.tar");
    execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
    await rt.images.importRootfs({ ref: "busybox:latest", tarball: tar, config: {} });
    const ctx = path.join(root, "ctx");
    fs.mkdirSync(path.join(ctx, "src"), { recursive: true });
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(ctx, "src", `f${i}`), randomBytes(100 << 10));
    fs.writeFileSync(
      path.join(ctx, "Dockerfile"),
      [
        "FROM busybox",
        "ENV APP=/app",
        "WORKDIR /app",
        "COPY src/ ./src/",
        "RUN for f in src/*; do md5sum $f; done > sums && mkdir -p bin && cp /bin/busybox bin/tool",
        "COPY src/f1 ./one",
        'CMD ["sh"]',
      ].join("\n"),
    );
    // Cold: a fresh cache (noCache runs every step and refreshes the cache); then nothing changed.
    const [cold] = await timed(() => rt.images.build({ ref: "bench-build:1", context: ctx, noCache: true }));
    const [hit, again] = await timed(() => rt.images.build({ ref: "bench-build:1", context: ctx }));
    if (again.ran.length > 0) throw new Error(`the cache-hit rebuild ran ${again.ran.join(", ")}`);
    // In process, as `berth up` builds (the docker CLI below is a process per build).
    rows.push(`build (20 MB context, 5 steps), berth:  cold ${cold.toFixed(0)} ms, cache hit ${hit.toFixed(0)} ms`);

    const absent = dockerEngine();
    if (absent) rows.push(`docker build: not measured — ${absent}; start dockerd by hand to compare`);
    else {
      const version = execFileSync(DOCKER, ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8" }).trim();
      execFileSync(DOCKER, ["import", tar, "busybox:latest"], { stdio: "ignore" });
      const docker = (extra: string[]) => execFileSync(DOCKER, ["build", "-q", "--network", process.env.BERTH_BENCH_DOCKER_NETWORK ?? "default", ...extra, "-t", "bench-build-docker:1", ctx], { stdio: "ignore", env: dockerEnv });
      const [dCold] = await timed(() => docker(["--no-cache"]));
      const [dHit] = await timed(() => docker([]));
      rows.push(`build, docker build (engine ${version}, RUN network ${process.env.BERTH_BENCH_DOCKER_NETWORK ?? "default"}): cold ${dCold.toFixed(0)} ms, cache hit ${dHit.toFixed(0)} ms`);
      rows.push(`ratio berth/docker:                     cold ${(cold / dCold).toFixed(2)} (target ≤ 1.0), cache hit ${(hit / dHit).toFixed(2)} (target ≤ 0.5)`);
      spawnSync(DOCKER, ["rmi", "-f", "bench-build-docker:1"], { stdio: "ignore" });
      spawnSync(DOCKER, ["builder", "prune", "-af"], { stdio: "ignore", env: dockerEnv });
    }

    // A RUN that "downloads" (1 s, 30 MB) unless its cache mount has it: the second run (the step re-run) reuses it.
    const mctx = path.join(root, "mctx");
    fs.mkdirSync(mctx);
    fs.writeFileSync(
      path.join(mctx, "Dockerfile"),
      "FROM busybox\nRUN --mount=type=cache,target=/var/cache/pkgs sh -c 'test -f /var/cache/pkgs/pkg || sleep 1; test -f /var/cache/pkgs/pkg || dd if=/dev/urandom of=/var/cache/pkgs/pkg bs=1M count=30 2>/dev/null; md5sum /var/cache/pkgs/pkg > /installed'\n",
    );
    const [m1] = await timed(() => rt.images.build({ ref: "bench-mount:1", context: mctx, noCache: true }));
    const [m2] = await timed(() => rt.images.build({ ref: "bench-mount:1", context: mctx, noCache: true }));
    rows.push(`RUN with a cache mount, step re-run:    first ${m1.toFixed(0)} ms, second ${m2.toFixed(0)} ms  (ratio ${(m2 / m1).toFixed(2)})`);
    await rt.images.pruneBuildCache({ all: true });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  console.log(rows.join("\n"));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
