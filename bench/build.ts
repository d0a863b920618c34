// `npm run bench` (builds part): one Dockerfile built cold and with a full cache hit by berth and, when a Docker
// engine answers (started by hand), by `docker build` in the same run, as ratios (targets: cold ≤ 1.0×, cache
// hit ≤ 0.5× Docker's); and a build whose RUN keeps its downloads in a cache mount, run twice. The engine is the
// one DOCKER_HOST names, driven with BuildKit on (DOCKER_BUILDKIT=1) by $BERTH_BENCH_DOCKER, else by `docker` when
// it has BuildKit (its buildx plugin, or built in before 23), else by Debian's docker.io CLI.
// BERTH_BENCH_DOCKER_NETWORK=none for an engine started with --bridge=none (berth's RUN has its bridge anyway).
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createNativeRuntime } from "../native";
import { dockerMissing, runDocker } from "./docker";
import { sweepOrphans } from "../native/lock-dir";

const REPO = path.resolve(__dirname, "../..");
const dockerEnv = { ...process.env, DOCKER_BUILDKIT: "1" };
const NETWORK = process.env.BERTH_BENCH_DOCKER_NETWORK ?? "default";
const DEBIAN_CLI = "/usr/bin/docker";

async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, value];
}

/** The CLI's version, and whether it builds with BuildKit: since 23 only through its buildx plugin. */
function buildKit(cli: string): { version: string; ok: boolean } {
  const version = spawnSync(cli, ["version", "--format", "{{.Client.Version}}"], { encoding: "utf8" }).stdout?.trim() ?? "";
  return { version, ok: Number(version.split(".")[0]) < 23 || spawnSync(cli, ["buildx", "version"], { stdio: "ignore" }).status === 0 };
}

/** The docker CLI to build with, or why there is none. */
function dockerCli(): { cli: string } | { why: string } {
  const cli = process.env.BERTH_BENCH_DOCKER ?? "docker";
  const missing = dockerMissing(cli);
  if (missing) return { why: `${missing}; start dockerd by hand to compare` };
  const { version, ok } = buildKit(cli);
  if (ok) return { cli };
  // Without buildx, the engine's own CLI from Debian's docker.io (20.10, BuildKit built in) if it is there.
  if (!process.env.BERTH_BENCH_DOCKER && buildKit(DEBIAN_CLI).ok && !dockerMissing(DEBIAN_CLI)) return { cli: DEBIAN_CLI };
  return { why: `the docker CLI ${cli} (${version}) has no buildx plugin for BuildKit: install it, or name a CLI with BuildKit in BERTH_BENCH_DOCKER` };
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

    const docker = dockerCli();
    if ("why" in docker) rows.push(`docker build: not measured — ${docker.why}`);
    else {
      const { cli } = docker;
      try {
        const version = runDocker(cli, ["info", "--format", "{{.ServerVersion}}"]).trim();
        runDocker(cli, ["import", tar, "busybox:latest"]);
        const build = (extra: string[]) => runDocker(cli, ["build", "-q", "--network", NETWORK, ...extra, "-t", "bench-build-docker:1", ctx], dockerEnv);
        const [dCold] = await timed(() => build(["--no-cache"]));
        const [dHit] = await timed(() => build([]));
        rows.push(`build, docker build (engine ${version}, RUN network ${NETWORK}): cold ${dCold.toFixed(0)} ms, cache hit ${dHit.toFixed(0)} ms`);
        rows.push(`ratio berth/docker:                     cold ${(cold / dCold).toFixed(2)} (target ≤ 1.0), cache hit ${(hit / dHit).toFixed(2)} (target ≤ 0.5)`);
      } catch (e) {
        const hint = NETWORK === "default" ? " (an engine started with --bridge=none has no default network for RUN: set BERTH_BENCH_DOCKER_NETWORK=none)" : "";
        rows.push(`docker build: failed — ${(e as Error).message}${hint}`);
      } finally {
        for (const args of [["rmi", "-f", "bench-build-docker:1"], ["builder", "prune", "-af"]]) {
          try {
            runDocker(cli, args, dockerEnv);
          } catch {
            // nothing to remove
          }
        }
      }
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
    sweepOrphans(0);
  }
  console.log(rows.join("\n"));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
