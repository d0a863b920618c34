// Dockerfile builds on a busybox-static base, with RUN in real runc containers: every instruction's effect on the
// image, the layer cache (a second build runs nothing), multi-stage COPY --from, ONBUILD, and bad input.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as http from "node:http";
import { createHash } from "node:crypto";
import { readTar } from "../../native/image/tar";
import * as path from "node:path";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createNativeRuntime, realHost } from "../../native";
import { layout } from "../../native/paths";
import { ContentStore } from "../../native/image/store";
import { Builder, cacheMountDir, type BuildRequest } from "../../native/build/builder";
import { pruneBuildCache } from "../../native/build/prune";
import { bridgeStepNetworks } from "../../native/build/network";
import { Sandbox } from "../../native/build/sandbox";
import { BridgeNetworks } from "../../native/network/networks";
import { Iptables } from "../../native/network/iptables";
import { REPO, httpGet, waitFor } from "./helpers";

let root: string;
let store: ContentStore;
let builder: Builder;
/** A builder whose RUN steps get berth's default bridge network (as the runtime's does). */
let netBuilder: Builder;
let bridges: BridgeNetworks;
let server: http.Server;
let serverUrl: string;

beforeAll(async () => {
  root = fs.mkdtempSync("/tmp/berth-test-");
  const tar = path.join(root, "busybox.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tar]);
  store = new ContentStore(realHost, layout(path.join(root, "state"), path.join(root, "run")), async () => []);
  await store.importRootfs({ ref: "busybox:latest", tarball: tar, config: { cmd: ["sh"] } });
  builder = new Builder(realHost, store);
  bridges = new BridgeNetworks(realHost, store.paths, new Iptables(realHost));
  netBuilder = new Builder(realHost, store, { networks: bridgeStepNetworks(realHost, bridges) });
  server = http.createServer((req, res) => res.end(`fetched ${req.url}`));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  serverUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server?.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A context directory with these files. */
function context(name: string, files: Record<string, string>): string {
  const dir = path.join(root, name);
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

/** A file's content in the built image, read through its layers as overlay would. */
function readInImage(layers: string[], file: string): string | undefined {
  for (const dir of store.layerDirs({ layers })) {
    const p = path.join(dir, file);
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (st) return st.isCharacterDevice() ? undefined : fs.readFileSync(p, "utf8");
  }
  return undefined;
}

const build = (req: Partial<BuildRequest> & { context: string }) => builder.build({ tags: ["built:latest"], ...req });

describe("builder", () => {
  it("applies every instruction with Docker's semantics", async () => {
    const tarDir = path.join(root, "tarsrc");
    fs.mkdirSync(path.join(tarDir, "pkg"), { recursive: true });
    fs.writeFileSync(path.join(tarDir, "pkg/inside.txt"), "from the tar");
    const ctx = context("all", {
      "Dockerfile": [
        "# syntax=docker/dockerfile:1",
        "ARG BASE=busybox",
        "FROM ${BASE} AS main",
        "MAINTAINER someone@example.com",
        "ARG GREETING=hello",
        "ENV APP_HOME=/app PATH_EXTRA=\"with space\"",
        "ENV LEGACY value with spaces",
        "LABEL org.example.name=\"berth test\" version=1",
        "WORKDIR $APP_HOME",
        "WORKDIR sub",
        "RUN echo \"$GREETING from $(pwd)\" > greeting && \\",
        "    id -u > uid-at-build",
        "RUN [\"/bin/sh\", \"-c\", \"echo exec form > exec.txt\"]",
        "COPY --chown=1000:1000 files/ /data/",
        "COPY one.txt ./renamed.txt",
        "ADD pkg.tar.gz /opt/",
        `ADD ${"${URL}"}/remote.txt /opt/`,
        "USER nobody",
        "RUN id -u > /tmp/uid-as-user",
        "USER root",
        "EXPOSE 8080 53/udp",
        "VOLUME [\"/data\"]",
        "STOPSIGNAL SIGINT",
        "SHELL [\"/bin/sh\", \"-ec\"]",
        "HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD wget -q -O- http://127.0.0.1/ || exit 1",
        "ONBUILD RUN echo triggered > /onbuild.txt",
        "ENTRYPOINT [\"/bin/echo\"]",
        "CMD hello world",
      ].join("\n"),
      "files/a.txt": "a",
      "files/nested/b.txt": "b",
      "one.txt": "one",
      "ignored.txt": "no",
      ".dockerignore": "ignored.txt\n",
    });
    execFileSync("tar", ["-czf", path.join(ctx, "pkg.tar.gz"), "-C", tarDir, "pkg"]);
    fs.writeFileSync(path.join(ctx, "Dockerfile"), fs.readFileSync(path.join(ctx, "Dockerfile"), "utf8").replace("ARG GREETING", `ARG URL=${serverUrl}\nARG GREETING`));
    const { info, ran, cached } = await build({ context: ctx, buildArgs: { GREETING: "hi" } });
    expect(cached).toEqual([]);
    expect(ran.length).toBe(9);
    const img = (await store.image(info.id))!;
    const c = img.config.config;
    expect(img.config.author).toBe("someone@example.com");
    expect(c.Env).toContain("APP_HOME=/app");
    expect(c.Env).toContain("PATH_EXTRA=with space");
    expect(c.Env).toContain("LEGACY=value with spaces");
    expect(c.Env?.some((e) => e.startsWith("GREETING"))).toBe(false);
    expect(c.Labels).toEqual({ "org.example.name": "berth test", version: "1" });
    expect(c.WorkingDir).toBe("/app/sub");
    expect(c.User).toBe("root");
    expect(c.ExposedPorts).toEqual({ "8080/tcp": {}, "53/udp": {} });
    expect(c.Volumes).toEqual({ "/data": {} });
    expect(c.StopSignal).toBe("SIGINT");
    expect(c.Shell).toEqual(["/bin/sh", "-ec"]);
    expect(c.Healthcheck).toEqual({ Test: ["CMD-SHELL", "wget -q -O- http://127.0.0.1/ || exit 1"], Interval: 5e9, Timeout: 2e9, Retries: 4 });
    expect(c.OnBuild).toEqual(["RUN echo triggered > /onbuild.txt"]);
    expect(c.Entrypoint).toEqual(["/bin/echo"]);
    expect(c.Cmd).toEqual(["/bin/sh", "-ec", "hello world"]);
    const layers = info.layers;
    expect(readInImage(layers, "app/sub/greeting")).toBe("hi from /app/sub\n");
    expect(readInImage(layers, "app/sub/uid-at-build")).toBe("0\n");
    expect(readInImage(layers, "app/sub/exec.txt")).toBe("exec form\n");
    expect(readInImage(layers, "data/a.txt")).toBe("a");
    expect(readInImage(layers, "data/nested/b.txt")).toBe("b");
    expect(readInImage(layers, "app/sub/renamed.txt")).toBe("one");
    expect(readInImage(layers, "opt/pkg/inside.txt")).toBe("from the tar");
    expect(readInImage(layers, "opt/remote.txt")).toBe("fetched /remote.txt");
    expect(readInImage(layers, "tmp/uid-as-user")).toBe("65534\n");
    const copied = store.layerDirs({ layers }).map((d) => path.join(d, "data/a.txt")).find((p) => fs.existsSync(p))!;
    expect([fs.statSync(copied).uid, fs.statSync(copied).gid]).toEqual([1000, 1000]);
    expect(readInImage(layers, "ignored.txt")).toBeUndefined();
    expect(store.layerDirs({ layers }).some((d) => fs.existsSync(path.join(d, "data/ignored.txt")))).toBe(false);

    // Nothing changed: no instruction runs, and the image is the same.
    const again = await build({ context: ctx, buildArgs: { GREETING: "hi" } });
    expect(again.ran).toEqual([]);
    expect(again.cached).toHaveLength(9);
    expect(again.info.id).toBe(info.id);

    // One file changed: its COPY and every layer step after it run again, those before do not.
    fs.writeFileSync(path.join(ctx, "one.txt"), "changed");
    const third = await build({ context: ctx, buildArgs: { GREETING: "hi" } });
    expect(third.cached).toHaveLength(5);
    expect(third.ran[0]).toMatch(/^Dockerfile:\d+ COPY one.txt/);
    expect(readInImage(third.info.layers, "app/sub/renamed.txt")).toBe("changed");

    // An ONBUILD trigger runs when the image is used as a base.
    const child = context("child", { Dockerfile: "FROM built:latest\nRUN cat /onbuild.txt > /seen.txt\n" });
    const kid = await builder.build({ context: child, tags: ["child:1"] });
    expect(readInImage(kid.info.layers, "seen.txt")).toBe("triggered\n");
    expect((await store.image("child:1"))!.config.config.OnBuild).toBeUndefined();

    // noCache runs everything again.
    const fresh = await build({ context: ctx, buildArgs: { GREETING: "hi" }, noCache: true });
    expect(fresh.cached).toEqual([]);
  });

  it("builds multi-stage with COPY --from, a target stage, whiteouts from RUN rm, and FROM scratch", async () => {
    const ctx = context("multi", {
      Dockerfile: [
        "FROM busybox AS builder",
        "RUN mkdir -p /out && echo compiled > /out/app && rm /etc/group",
        "FROM scratch AS final",
        "COPY --from=builder /out/app /app",
        "COPY --from=0 /bin/busybox /bin/busybox",
        "CMD [\"/bin/busybox\", \"cat\", \"/app\"]",
        "FROM builder AS debug",
        "RUN echo debug > /debug",
      ].join("\n"),
    });
    const { info } = await build({ context: ctx, target: "final" });
    expect(info.layers).toHaveLength(2);
    expect(readInImage(info.layers, "app")).toBe("compiled\n");
    expect(readInImage(info.layers, "etc/passwd")).toBeUndefined();
    const builderStage = await build({ context: ctx, target: "debug", tags: ["dbg:1"] });
    expect(readInImage(builderStage.info.layers, "etc/group")).toBeUndefined();
    expect(readInImage(builderStage.info.layers, "etc/passwd")).toContain("root");
  });

  it("runs heredocs as BuildKit does: a shell script, a #! script, bodies for the shell, COPY files (quoted: not expanded)", async () => {
    const ctx = context("heredoc", {
      Dockerfile: [
        "FROM busybox",
        "ARG WHO=world",
        "RUN <<EOF",
        'echo "hello $WHO" > /a.txt',
        "EOF",
        "RUN <<EOF",
        "#!/bin/sh",
        "echo script $0 > /b.txt",
        "EOF",
        "RUN cat <<A > /c.txt && cat <<-'B' > /d.txt",
        "one $WHO",
        "A",
        "\ttwo $WHO",
        "\tB",
        "COPY <<X <<'Y' /docs/",
        'x="$WHO"',
        "X",
        "y=$WHO",
        "Y",
      ].join("\n"),
    });
    const { info } = await build({ context: ctx });
    expect(readInImage(info.layers, "a.txt")).toBe("hello world\n");
    expect(readInImage(info.layers, "b.txt")).toBe("script /dev/pipes/EOF\n");
    expect(readInImage(info.layers, "c.txt")).toBe("one world\n");
    expect(readInImage(info.layers, "d.txt")).toBe("two $WHO\n");
    expect(readInImage(info.layers, "docs/X")).toBe('x="world"\n');
    expect(readInImage(info.layers, "docs/Y")).toBe("y=$WHO\n");
    const x = store.layerDirs({ layers: info.layers }).map((d) => path.join(d, "docs/X")).find((p) => fs.existsSync(p))!;
    expect(fs.statSync(x).mode & 0o7777).toBe(0o664);
  });

  it("mounts caches kept between builds, secrets kept out of layers and keys, binds of the context and of a stage, tmpfs", async () => {
    const ctx = context("mounts", {
      Dockerfile: [
        "FROM busybox AS builder",
        "RUN mkdir /out && echo compiled > /out/app",
        "FROM busybox",
        "RUN --mount=type=cache,target=/cache,id=c1 sh -c 'echo x >> /cache/log; wc -l < /cache/log > /count'",
        "RUN --mount=type=secret,id=tok,required --mount=type=secret,id=tok,env=TOK \\",
        "    sh -c 'wc -c < /run/secrets/tok > /secret-len; echo ${#TOK} > /env-len; stat -c %a /run/secrets/tok > /secret-mode'",
        "RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent",
        "RUN --mount=type=bind,source=data,target=/mnt sh -c 'cat /mnt/x.txt > /fromctx; ls /mnt > /listing'",
        "RUN --mount=type=bind,from=builder,source=/out,target=/o,rw sh -c 'cat /o/app > /fromstage; echo w > /o/new'",
        "RUN --mount=type=tmpfs,target=/scratch sh -c 'echo a > /scratch/f && grep -q \" /scratch tmpfs\" /proc/mounts && echo tmpfs > /tmpfs-ok'",
      ].join("\n"),
      "data/x.txt": "from the context",
      "data/hidden.txt": "ignored",
      ".dockerignore": "data/hidden.txt\n",
    });
    const secrets = { tok: "s3cret-value" };
    const first = await build({ context: ctx, secrets });
    const layers = first.info.layers;
    expect(readInImage(layers, "count")).toBe("1\n");
    expect(readInImage(layers, "secret-len")).toBe("12\n");
    expect(readInImage(layers, "env-len")).toBe("12\n");
    expect(readInImage(layers, "secret-mode")).toBe("400\n");
    expect(readInImage(layers, "fromctx")).toBe("from the context");
    expect(readInImage(layers, "listing")).toBe("x.txt\n");
    expect(readInImage(layers, "fromstage")).toBe("compiled\n");
    expect(readInImage(layers, "tmpfs-ok")).toBe("tmpfs\n");
    // Mount points are not in the layers, nor is anything written through a mount.
    for (const p of ["cache", "run/secrets", "run", "mnt", "o", "scratch"]) expect(store.layerDirs({ layers }).some((d) => fs.existsSync(path.join(d, p))), p).toBe(false);
    // The secret is in no layer, blob, cache record or image config.
    const grep = spawnSync("grep", ["-rl", "s3cret-value", path.join(root, "state")], { encoding: "utf8" });
        expect([grep.status, grep.stdout]).toEqual([1, ""]);

    // A step's directory (its runc bundle, holding a secret's env=) is root's alone.
    const box = await Sandbox.open(realHost, store.paths.ingest, []);
    try {
      expect(fs.statSync(box.dir).mode & 0o777).toBe(0o700);
    } finally {
      await box.discard();
    }

    // The cache mount keeps its content: a rebuild that runs the step again sees the first run's line.
    const again = await build({ context: ctx, secrets: { tok: "s3cret-value" }, noCache: true });
    expect(readInImage(again.info.layers, "count")).toBe("2\n");
    // Another secret value is no cache miss (Docker's rule: secrets are not part of the key).
    const other = await build({ context: ctx, secrets: { tok: "s3cret-value" } });
    expect(other.ran).toEqual([]);
    await expect(build({ context: ctx })).rejects.toThrow(/Dockerfile:5: RUN --mount=type=secret,id=tok: no build secret "tok" was given/);
  });

  it("copies a tree of many files (placed several at once) whole, each file with its own content, mode and time", async () => {
    const files: Record<string, string> = { Dockerfile: "FROM busybox\nCOPY tree/ /deep/\n" };
    for (const dir of ["tree", "tree/a", "tree/a/b", "tree/c"]) for (let i = 0; i < 12; i++) files[`${dir}/f${i}`] = `${dir} ${i}\n`.repeat(i * 500 + 1);
    const ctx = context("manyfiles", files);
    fs.chmodSync(path.join(ctx, "tree/a/b/f7"), 0o750);
    fs.utimesSync(path.join(ctx, "tree/c/f3"), 1_000_000_000, 1_000_000_000);
    const { info } = await build({ context: ctx });
    for (const [rel, content] of Object.entries(files)) if (rel !== "Dockerfile") expect(readInImage(info.layers, rel.replace(/^tree/, "deep")), rel).toBe(content);
    const layer = store.paths.layer(info.layers.at(-1)!);
    expect(fs.statSync(path.join(layer, "deep/a/b/f7")).mode & 0o777).toBe(0o750);
    expect(fs.statSync(path.join(layer, "deep/c/f3")).mtimeMs).toBe(1_000_000_000_000);
  });

  it("copies with --parents, --exclude, quoted flag values, and ADD unpacks bzip2 and xz tars (not other xz files)", async () => {
    const ctx = context("copyflags", {
      Dockerfile: [
        "FROM busybox",
        "COPY --parents a/x.txt b/c/y.txt /p/",
        "COPY --parents ./src/./pkg/z.txt /q/",
        "COPY --exclude=*.md --exclude=sub/skip docs /docs/",
        'COPY --chown="1:2" a/x.txt /owned',
        "ADD t.tar.bz2 /bz/",
        "ADD t.tar.xz /xz/",
        "ADD plain.xz /raw/",
      ].join("\n"),
      "a/x.txt": "x",
      "b/c/y.txt": "y",
      "src/pkg/z.txt": "z",
      "docs/keep.txt": "keep",
      "docs/readme.md": "md",
      "docs/sub/skip": "skip",
      "docs/sub/other": "other",
    });
    const tarSrc = path.join(root, "tarsrc2");
    fs.mkdirSync(path.join(tarSrc, "in"), { recursive: true });
    fs.writeFileSync(path.join(tarSrc, "in/f.txt"), "packed");
    execFileSync("tar", ["-cjf", path.join(ctx, "t.tar.bz2"), "-C", tarSrc, "in"]);
    execFileSync("tar", ["-cJf", path.join(ctx, "t.tar.xz"), "-C", tarSrc, "in"]);
    execFileSync("sh", ["-c", `printf 'not a tar' | xz > ${path.join(ctx, "plain.xz")}`]);
    const { info } = await build({ context: ctx });
    const l = info.layers;
    expect([readInImage(l, "p/a/x.txt"), readInImage(l, "p/b/c/y.txt"), readInImage(l, "q/pkg/z.txt")]).toEqual(["x", "y", "z"]);
    expect(readInImage(l, "q/src")).toBeUndefined();
    expect([readInImage(l, "docs/keep.txt"), readInImage(l, "docs/sub/other")]).toEqual(["keep", "other"]);
    expect([readInImage(l, "docs/readme.md"), readInImage(l, "docs/sub/skip")]).toEqual([undefined, undefined]);
    const owned = store.layerDirs({ layers: l }).map((d) => path.join(d, "owned")).find((p) => fs.existsSync(p))!;
    expect([fs.statSync(owned).uid, fs.statSync(owned).gid]).toEqual([1, 2]);
    expect([readInImage(l, "bz/in/f.txt"), readInImage(l, "xz/in/f.txt")]).toEqual(["packed", "packed"]);
    expect(store.layerDirs({ layers: l }).some((d) => fs.existsSync(path.join(d, "raw/plain.xz")))).toBe(true);
  });

  it("reports progress as BuildKit's plain output: numbered steps, the RUN's output, CACHED, durations", async () => {
    const ctx = context("progress", {
      Dockerfile: "FROM busybox AS base\nENV A=1\nRUN echo hello; echo there >&2\nFROM base AS final\nCOPY f /f\n",
      f: "f",
    });
    const lines: string[] = [];
    await build({ context: ctx, log: (l) => lines.push(l) });
    expect(lines[0]).toBe("#1 [base 1/2] FROM busybox");
    expect(lines).toContain("#2 [base 2/2] RUN echo hello; echo there >&2");
    expect(lines.filter((l) => /^#2 \d+\.\d{3} (hello|there)$/.test(l))).toHaveLength(2);
    expect(lines.some((l) => /^#2 DONE \d+\.\ds$/.test(l))).toBe(true);
    expect(lines).toContain("#4 [final 2/2] COPY f /f");
    expect(lines).toContain("#5 exporting to image");
    expect(lines).toContain("#5 naming to built:latest done");
    const again: string[] = [];
    await build({ context: ctx, log: (l) => again.push(l) });
    expect(again).toEqual(expect.arrayContaining(["#2 CACHED", "#4 CACHED"]));
    expect(again.some((l) => /^#2 \d+\.\d{3} hello$/.test(l))).toBe(false);
  });

  it("has BuildKit's platform ARGs, takes FROM --platform of this host, and checks ADD --checksum", async () => {
    const ok = context("platform", {
      Dockerfile: `FROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nRUN echo "$TARGETARCH" > /arch\nADD --checksum=sha256:${createHash("sha256").update("fetched /r.txt").digest("hex")} ${serverUrl}/r.txt /r.txt\n`,
    });
    const { info } = await build({ context: ok });
    expect(readInImage(info.layers, "arch")).toBe(`${process.arch === "x64" ? "amd64" : process.arch}\n`);
    expect(readInImage(info.layers, "r.txt")).toBe("fetched /r.txt");
    const foreign = context("platform-bad", { Dockerfile: "FROM --platform=linux/s390x busybox\n" });
    await expect(build({ context: foreign })).rejects.toThrow("Dockerfile:1: FROM --platform=linux/s390x: berth builds for this host's platform only");
    const pinned = context("checksum-bad", { Dockerfile: `FROM busybox\nADD --checksum=sha256:${"0".repeat(64)} ${serverUrl}/r.txt /r.txt\n` });
    await expect(build({ context: pinned })).rejects.toThrow(/Dockerfile:2: ADD --checksum: .* has digest sha256:[0-9a-f]{64}, not sha256:0{64}/);
  });

  it("builds over two steps that changed nothing (one layer twice: overlayfs takes each directory once)", async () => {
    const ctx = context("samelayer", { Dockerfile: "FROM busybox\nRUN true\nRUN true\nRUN echo after > /after\nRUN rm -rf /etc && mkdir /etc && echo x > /etc/only\n" });
    const { info } = await build({ context: ctx });
    expect(info.layers[1]).toBe(info.layers[2]);
    expect(readInImage(info.layers, "after")).toBe("after\n");
    // The last layer's blob (an uncompressed tar: its digest is its diff id) marks /etc opaque, as its directory does.
    const img = (await store.image(info.id))!;
    const blob = img.manifest.layers.at(-1)!;
    expect(blob).toMatchObject({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: info.layers.at(-1) });
    const names: string[] = [];
    for await (const e of readTar(fs.createReadStream(store.blobPath(blob.digest)))) names.push(e.header.path);
    expect(names).toEqual(expect.arrayContaining(["etc/.wh..wh..opq", "etc/only"]));
  });

  it("refuses bad RUN flags with the line", async () => {
    const cases: Array<[string, RegExp]> = [
      ["RUN --network=host true", /Dockerfile:2: RUN --network=host is not allowed/],
      ["RUN --mount=type=ssh true", /Dockerfile:2: RUN --mount=type=ssh: type=ssh is not supported/],
      ["RUN --mount=type=cache true", /Dockerfile:2: RUN --mount=type=cache: a cache mount needs target=PATH/],
      ["RUN --mount=type=cache,target=/c,sharing=sometimes true", /sharing=sometimes must be shared, private or locked/],
      ["RUN --mount=type=bind,target=/c,colour=red true", /unknown option "colour" for a bind mount/],
      ["RUN --mount=type=bind,source=nothere,target=/c true", /file not found in build context/],
      ["RUN --mount=type=bind,source=../..,target=/c true", /forbidden path outside the build context: \.\.\/\.\./],
    ];
    for (const [line, message] of cases) {
      const ctx = context(`badrun-${line.replace(/\W+/g, "-")}`, { Dockerfile: `FROM busybox\n${line}` });
      await expect(build({ context: ctx }), line).rejects.toThrow(message);
    }
  });

  it("gives RUN Docker's default network (berth's bridge with NAT), and none with --network=none", async () => {
    const ns = "btbldsrv";
    const www = path.join(root, "www");
    fs.mkdirSync(www, { recursive: true });
    fs.writeFileSync(path.join(www, "pkg.txt"), "a package");
    const ip = (args: string) => execFileSync("ip", args.split(" "));
    // A "package mirror" in a namespace of this test, reached from the host through a veth pair (TEST-NET-2, which the host must not route but by default).
    expect(execFileSync("ip", ["route", "show", "match", "198.51.100.2"], { encoding: "utf8" }).trim()).toMatch(/^(default [^\n]*)?$/);
    ip(`netns add ${ns}`);
    let server: ReturnType<typeof spawn> | undefined;
    try {
      ip(`link add btbldh type veth peer name btblds netns ${ns}`);
      ip("addr add 198.51.100.1/30 dev btbldh");
      ip("link set btbldh up");
      ip(`-n ${ns} addr add 198.51.100.2/30 dev btblds`);
      ip(`-n ${ns} link set btblds up`);
      server = spawn("ip", ["netns", "exec", ns, "busybox", "httpd", "-f", "-p", "198.51.100.2:8080", "-h", www], { stdio: "ignore" });
      for (let i = 0; !(await httpGet("http://198.51.100.2:8080/pkg.txt").catch(() => undefined)); i++) {
        if (i > 200) throw new Error("the mirror in its namespace did not start");
        await new Promise((r) => setTimeout(r, 10));
      }
      const ctx = context("network", {
        Dockerfile: [
          "FROM busybox",
          "RUN wget -q -O /got http://198.51.100.2:8080/pkg.txt",
          "RUN --network=none sh -c 'if wget -q -T 2 -O /x http://198.51.100.2:8080/pkg.txt; then exit 1; fi; grep -c : /proc/net/dev > /none'",
        ].join("\n"),
      });
      // What builds killed midway left (their process gone): an address on the default network and a namespace —
      // as an older berth named them, and as one whose pid this process has now (another start time) did.
      for (const [owner, id] of [["#build-999999999-dead01", "dead01"], [`#build-${process.pid}.1-dead02`, "dead02"]]) {
        await bridges.ipam(await bridges.ensureDefault()).allocate(owner);
        ip(`netns add berth-build-${id}`);
      }
      const { info } = await netBuilder.build({ context: ctx, tags: ["net:1"] });
      expect(readInImage(info.layers, "got")).toBe("a package");
      expect(readInImage(info.layers, "none")).toBe("1\n");
      for (const p of ["etc/resolv.conf", "etc/hosts"]) {
        const inBase = store.layerDirs({ layers: [info.layers[0]] }).some((d) => fs.existsSync(path.join(d, p)));
        if (!inBase) expect(readInImage(info.layers, p), p).toBeUndefined();
      }
      // The step's namespace and address are gone, and with them the default network no container uses.
      expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toMatch(/berth-build-/);
      // (The killed build's leftovers too: they held the default network up.)
      expect(fs.existsSync(store.paths.network("bridge").record)).toBe(false);
    } finally {
      server?.kill();
      for (const id of ["dead01", "dead02"]) spawnSync("ip", ["netns", "del", `berth-build-${id}`]);
      execFileSync("ip", ["link", "del", "btbldh"], { stdio: "ignore" });
      ip(`netns del ${ns}`);
    }
  });

  const bad: Array<[string, string, RegExp]> = [
    ["a COPY source outside the context", "FROM busybox\nCOPY ../secret /x", /Dockerfile:2: COPY failed: forbidden path outside the build context: ..\/secret/],
    ["a missing COPY source", "FROM busybox\nCOPY nothere /x", /Dockerfile:2: COPY failed: file not found in build context or excluded by \.dockerignore: nothere/],
    ["a missing stage", "FROM busybox\nCOPY --from=nostage /a /b", /Dockerfile:2: COPY --from=nostage: no earlier stage and no image/],
    ["a missing base image", "FROM nosuchbase:1\nRUN true", /Dockerfile:1: FROM nosuchbase:1: base image not found in berth's store/],
    ["a failing RUN", "FROM busybox\n\nRUN echo oops >&2; exit 3", /Dockerfile:3: RUN echo oops >&2; exit 3 failed with exit code 3:\noops/],
    // RUN steps run under Docker's default seccomp profile, as BuildKit's.
    ["a RUN making a user namespace", "FROM busybox\nRUN unshare -U true", /Dockerfile:2: RUN unshare -U true failed with exit code 1:\n.*Operation not permitted/],
    ["an unknown instruction", "FROM busybox\nFETCH x", /Dockerfile:2: unknown instruction: FETCH/],
    ["a bad expansion", "FROM busybox\nENV A=${B", /Dockerfile:2: ENV failed to process "\$\{B": syntax error: missing '}'/],
    ["a bad COPY --exclude pattern", "FROM busybox\nCOPY --exclude=[ . /x", /Dockerfile:2: COPY --exclude: syntax error in pattern/],
    ["a bad HEALTHCHECK option", "FROM busybox\nHEALTHCHECK --interval=soon CMD true", /Dockerfile:2: HEALTHCHECK --interval=soon is not a duration/],
  ];
  for (const [what, dockerfile, message] of bad) {
    it(`refuses ${what} with the line`, async () => {
      const ctx = context(`bad-${what.replace(/\W+/g, "-")}`, { Dockerfile: dockerfile });
      await expect(build({ context: ctx, tags: ["bad:1"] })).rejects.toThrow(message);
      expect(await store.inspect("bad:1")).toBeUndefined();
    });
  }

  it("refuses an unknown target stage", async () => {
    const ctx = context("target", { Dockerfile: "FROM busybox AS a\nRUN true" });
    await expect(build({ context: ctx, target: "b" })).rejects.toThrow('target stage "b" could not be found in Dockerfile (stages: a)');
  });
});

describe("cache mounts while builds run", () => {
  it("gives a second private user a directory of its own, staged and gone after", async () => {
    const file = (letter: string) =>
      `FROM busybox\nRUN --mount=type=cache,target=/c,id=priv,sharing=private sh -c 'echo ${letter} > /c/who; sleep 1; cat /c/who > /out'\n`;
    const [a, b] = await Promise.all(["A", "B"].map((l) => build({ context: context(`private-${l}`, { Dockerfile: file(l) }), tags: [`private-${l.toLowerCase()}:1`], noCache: true })));
    expect([readInImage(a.info.layers, "out"), readInImage(b.info.layers, "out")]).toEqual(["A\n", "B\n"]);
    expect(fs.readdirSync(store.paths.ingest).filter((n) => n.startsWith("cache-"))).toEqual([]);
  });


  it("leaves a cache mount a running step uses, and takes it once the build is done", async () => {
    const ctx = context("busycache", {
      Dockerfile: "FROM busybox\nRUN --mount=type=cache,target=/cache,id=busy sh -c 'echo x > /cache/mark; sleep 2; test -f /cache/mark'\n",
    });
    const dir = path.join(cacheMountDir(store.paths.root), createHash("sha256").update("busy").digest("hex").slice(0, 32));
    const running = build({ context: ctx, noCache: true });
    await waitFor("the step to write into its cache", () => (fs.existsSync(path.join(dir, "mark")) ? true : undefined), 30_000, 10);
    expect((await pruneBuildCache(store, { all: true })).deleted).not.toContain("cache mount busy");
    // The step still found its file.
    await running;
    expect((await pruneBuildCache(store, { all: true })).deleted).toContain("cache mount busy");
    expect(fs.existsSync(dir)).toBe(false);
  });

  it("is pruned by `system prune` as by `docker system prune`: an unused cache mount goes, one a running step uses stays", async () => {
    const rt = createNativeRuntime({ root: store.paths.root, runDir: path.join(root, "run") });
    const dirOf = (id: string) => path.join(cacheMountDir(store.paths.root), createHash("sha256").update(id).digest("hex").slice(0, 32));
    await build({ context: context("oldcache", { Dockerfile: "FROM busybox\nRUN --mount=type=cache,target=/cache,id=old touch /cache/old\n" }), noCache: true });
    expect(fs.existsSync(path.join(dirOf("old"), "old"))).toBe(true);
    const running = build({
      context: context("sysbusy", { Dockerfile: "FROM busybox\nRUN --mount=type=cache,target=/cache,id=sysbusy sh -c 'echo x > /cache/mark; sleep 2; test -f /cache/mark'\n" }),
      noCache: true,
    });
    await waitFor("the step to write into its cache", () => (fs.existsSync(path.join(dirOf("sysbusy"), "mark")) ? true : undefined), 30_000, 10);
    const during = await rt.system.prune();
    expect(during.buildCache).toContain("cache mount old");
    expect(during.buildCache).not.toContain("cache mount sysbusy");
    expect(fs.existsSync(dirOf("old"))).toBe(false);
    await running;
    expect((await rt.system.prune()).buildCache).toContain("cache mount sysbusy");
    expect(fs.existsSync(dirOf("sysbusy"))).toBe(false);
  });
});
