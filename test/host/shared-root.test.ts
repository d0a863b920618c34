// Many berth processes on one root at once, as teams sharing /var/lib/berth do: three stacks' `berth up` (an
// imported, a built and a pulled image, all three also declaring one shared image name), two processes importing
// and removing images (each removal collects garbage), one pulling from a local Registry and removing, and day-2
// commands — all at the same time. Then: no name lost, no damaged store, no port claim stolen, every container
// running and answering; `system df` and `system prune -a` (build cache included) keep what containers use;
// `up --replace` of a named Image keeps the name; destroying everything at once leaves no image, blob or layer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync, spawn } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { supervisorPid } from "../../native/supervise/launch";
import { REPO, berth, clearRoot, freePort, httpGet, waitFor, type CliResult } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/shared-root");
const STACKS = [
  { tag: "a", source: "rootfs" },
  { tag: "b", source: "build" },
  { tag: "c", source: "pull" },
] as const;
const IMPORTERS = 2;
const IMPORTS = 8;
const PULLS = 4;
const run = `${process.pid}`;
const stackName = (tag: string) => `stress${run}${tag}`;

let tmp: string;
let root: string;
let runDir: string;
let env: NodeJS.ProcessEnv;
let rt: Runtime;
let pullRef: string;
const ports = new Map<string, number[]>();

const stackCli = (tag: string, ...args: string[]) => berth([...args, PROGRAM, "--stack", stackName(tag)], env);
const configFile = (tag: string) => path.join(PROGRAM, `Pulumi.${stackName(tag)}.yaml`);

/** A node process on the runtime of the shared root; resolves to what it printed last (JSON). */
function worker(body: string): Promise<unknown> {
  const script = `const { createNativeRuntime } = require(${JSON.stringify(path.join(REPO, "dist/native/index.js"))});
const rt = createNativeRuntime({ root: ${JSON.stringify(root)}, runDir: ${JSON.stringify(runDir)} });
(async () => { ${body} })().then((r) => console.log(JSON.stringify(r)), (e) => { console.error(e.stack); process.exit(1); });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  return new Promise((resolve, reject) =>
    child.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").at(-1)!)) : reject(new Error(`worker failed: ${err}`)))),
  );
}

/** Imports IMPORTS images of one small unique layer each, removing every second one after its successor came. */
const importer = (w: number) =>
  worker(`const kept = [], removed = [];
  for (let i = 0; i < ${IMPORTS}; i++) {
    const ref = "berth-stress-imp-${w}-" + i + ":latest";
    await rt.images.importRootfs({ ref, tarball: ${JSON.stringify(tmp)} + "/layers/${w}-" + i + ".tar", config: { cmd: ["sh"] } });
    if (i % 2 === 1) { const gone = "berth-stress-imp-${w}-" + (i - 1) + ":latest"; await rt.images.remove(gone); removed.push(gone); kept.push(ref); }
  }
  return { kept, removed };`) as Promise<{ kept: string[]; removed: string[] }>;

const puller = () =>
  worker(`const kept = [], removed = [];
  for (let i = 0; i < ${PULLS}; i++) {
    const ref = "berth-stress-pulled-" + i + ":latest";
    await rt.images.pull(${JSON.stringify(pullRef)}, {}, ref);
    if (i % 2 === 1) { await rt.images.remove("berth-stress-pulled-" + (i - 1) + ":latest"); removed.push("berth-stress-pulled-" + (i - 1) + ":latest"); kept.push(ref); }
  }
  return { kept, removed };`) as Promise<{ kept: string[]; removed: string[] }>;

const removeAll = (refs: string[]) => worker(`for (const r of ${JSON.stringify(refs)}) await rt.images.remove(r); return null;`);

/** Day-2 commands while the stacks come up: each must answer (the containers may not all exist yet). */
async function day2(until: Promise<unknown>): Promise<CliResult[]> {
  const results: CliResult[] = [];
  let done = false;
  void until.finally(() => (done = true));
  for (let i = 0; i < 4 && !done; i++) {
    for (const args of [["ps", "-a"], ["system", "df"], ["inspect", `bts${"a"}w0`]]) results.push({ ...(await berth(args, env)), stdout: args.join(" ") });
  }
  return results;
}

const digestsIn = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-stress-");
  root = path.join(tmp, "root");
  runDir = path.join(tmp, "run");
  env = { BERTH_ROOT: root, BERTH_RUN: runDir };
  rt = createNativeRuntime({ root, runDir });
  const tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  // One small layer of its own per import, so that removals have blobs and layers to collect.
  fs.mkdirSync(path.join(tmp, "layers/src"), { recursive: true });
  for (let w = 0; w < IMPORTERS; w++) {
    for (let i = 0; i < IMPORTS; i++) {
      fs.writeFileSync(path.join(tmp, "layers/src/id"), `${w}-${i}-${run}\n`);
      execFileSync("tar", ["-cf", path.join(tmp, `layers/${w}-${i}.tar`), "-C", path.join(tmp, "layers/src"), "id"]);
    }
  }
  await rt.images.importRootfs({ ref: "berth-stress-base:latest", tarball, config: { cmd: ["sh"], env: ["PATH=/bin"] } });
  fs.mkdirSync(path.join(tmp, "ctx"));
  fs.writeFileSync(path.join(tmp, "ctx/Dockerfile"), `FROM berth-stress-base:latest\nRUN echo built-${run} > /built.txt\n`);
  const regPort = await freePort();
  fs.mkdirSync(path.join(tmp, "regdata"));
  await rt.registries.ensure({ name: `berth-stress-reg${run}`, address: "127.0.0.1", port: regPort, storage: path.join(tmp, "regdata") });
  pullRef = `127.0.0.1:${regPort}/stress:1`;
  await rt.images.push("berth-stress-base:latest", pullRef);
  for (const [n, s] of STACKS.entries()) {
    ports.set(s.tag, [await freePort(), await freePort()]);
    const config = {
      tag: s.tag,
      source: s.source,
      tarball,
      context: path.join(tmp, "ctx"),
      pullRef,
      subnet: `10.251.${n + 1}.0/24`,
      port0: String(ports.get(s.tag)![0]),
      port1: String(ports.get(s.tag)![1]),
    };
    fs.writeFileSync(configFile(s.tag), `config:\n${Object.entries(config).map(([k, v]) => `  sharedroot:${k}: "${v}"`).join("\n")}\n`);
  }
}, 60_000);

afterAll(async () => {
  for (const s of STACKS) await stackCli(s.tag, "destroy", "--yes").catch(() => undefined);
  await clearRoot(root);
  for (const s of STACKS) {
    fs.rmSync(configFile(s.tag), { force: true });
    for (const ext of [".json", ".json.bak"]) fs.rmSync(path.join(PROGRAM, ".pulumi/stacks/sharedroot", `${stackName(s.tag)}${ext}`), { force: true });
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}, 120_000);

describe("one root, many berth processes", () => {
  let imported: Array<{ kept: string[]; removed: string[] }>;
  let pulled: { kept: string[]; removed: string[] };
  let supervisor: number;
  let watchdog: number;

  it("brings up 3 stacks while 2 processes import and remove, 1 pulls and removes, and day-2 commands run", async () => {
    const t = Date.now();
    const ups = Promise.all(STACKS.map((s) => stackCli(s.tag, "up", "--yes")));
    const others = Promise.all([Promise.all(Array.from({ length: IMPORTERS }, (_, w) => importer(w))), puller()]);
    const day2Results = day2(Promise.all([ups, others]));
    const upResults = await ups;
    [imported, pulled] = await others;
    for (const [i, r] of upResults.entries()) expect(r.code, `${STACKS[i].tag}: ${r.stdout}${r.stderr}`).toBe(0);
    supervisor = supervisorPid(root)!;
    watchdog = Number(fs.readFileSync(`/proc/${supervisor}/stat`, "utf8").split(") ")[1].split(" ")[1]);
    expect(fs.readFileSync(`/proc/${watchdog}/cmdline`, "utf8")).toContain("berth-watchdog");
    for (const r of await day2Results) expect(r.code, `${r.stdout}: ${r.stderr}`).toBeLessThanOrEqual(1);
    console.log(`3 ups, ${IMPORTERS * IMPORTS} imports, ${PULLS} pulls, ${(await day2Results).length} day-2 commands at once: ${Date.now() - t} ms`);
  }, 180_000);

  it("lost no name and damaged nothing: every image reads whole", async () => {
    for (const r of [...imported, pulled]) {
      for (const ref of r.kept) expect(await rt.images.inspect(ref), ref).toBeDefined();
      for (const ref of r.removed) expect(await rt.images.inspect(ref), ref).toBeUndefined();
    }
    expect(await rt.images.inspect("berth-stress-shared")).toBeDefined();
    const index = JSON.parse(fs.readFileSync(path.join(root, "index.json"), "utf8")) as { manifests: Array<{ annotations: Record<string, string> }> };
    expect(index.manifests.length).toBe(IMPORTERS * (IMPORTS / 2) + PULLS / 2 + 1 + 1 + STACKS.length);
    for (const m of index.manifests) {
      const info = await rt.images.inspect(m.annotations["org.opencontainers.image.ref.name"]);
      for (const l of info!.layers) expect(fs.existsSync(path.join(root, "layers", l.slice(7))), `${info!.ref} ${l}`).toBe(true);
    }
  });

  it("stole no claim: every container runs and answers on its own port", async () => {
    for (const s of STACKS) {
      for (const [i, port] of ports.get(s.tag)!.entries()) {
        expect((await rt.containers.inspect(`bts${s.tag}w${i}`))?.status).toBe("running");
        expect((await httpGet(`http://127.0.0.1:${port}/`)).body.trim()).toBe(`${s.tag}-${i}`);
        const claim = JSON.parse(fs.readFileSync(path.join(runDir, "ports", `tcp-${port}-127.0.0.1`), "utf8"));
        expect(claim).toEqual({ root, container: `bts${s.tag}w${i}` });
      }
    }
  });

  it("system df counts the images containers use, and prune -a removes only the others", async () => {
    // By id: the shared image, the base, what was pulled of it and stack c's are one image; a's and b's are theirs.
    const df = await berth(["system", "df"], env);
    expect(df.stdout).toMatch(new RegExp(`^Images\\s+${IMPORTERS * (IMPORTS / 2) + 3}\\s+3\\s`, "m"));
    expect(df.stdout).toMatch(new RegExp(`^Containers\\s+${STACKS.length * 2}\\s+${STACKS.length * 2}\\s`, "m"));
    expect(df.stdout).toMatch(/^Build Cache\s+1\s+0\s+[1-9]/m);
    const prune = await berth(["system", "prune", "-a", "-f"], env);
    expect(prune.code, prune.stderr).toBe(0);
    for (const ref of imported.flatMap((r) => r.kept)) expect(prune.stdout).toContain(`untagged: ${ref}`);
    expect(prune.stdout.match(/untagged:/g)).toHaveLength(IMPORTERS * (IMPORTS / 2));
    expect(prune.stdout).not.toContain("Deleted Containers");
    expect(digestsIn(path.join(root, "leases")).filter((l) => l.startsWith("cache-"))).toEqual([]);
    for (const ref of [...STACKS.map((s) => `berth-stress-${s.tag}`), "berth-stress-shared", ...pulled.kept]) expect(await rt.images.inspect(ref), ref).toBeDefined();
    for (const s of STACKS) expect((await httpGet(`http://127.0.0.1:${ports.get(s.tag)![0]}/`)).body.trim()).toBe(`${s.tag}-0`);
  });

  it("keeps a named Image's name through `up --replace`", async () => {
    const urn = `urn:pulumi:${stackName("a")}::sharedroot::berth:index:Image::own`;
    const before = (await rt.images.inspect("berth-stress-a"))!;
    const up = await stackCli("a", "up", "--yes", "--replace", urn);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect((await rt.images.inspect("berth-stress-a"))?.id).toBe(before.id);
    const refresh = await stackCli("a", "refresh", "--yes");
    expect(refresh.code, refresh.stdout).toBe(0);
    const preview = await stackCli("a", "preview", "--expect-no-changes");
    expect(preview.code, preview.stdout).toBe(0);
  }, 60_000);

  it("destroys everything at once, keeping a shared name while a stack holds it, and leaves no image or layer", async () => {
    const [a, b] = await Promise.all([
      stackCli("a", "destroy", "--yes"),
      stackCli("b", "destroy", "--yes"),
      ...imported.map((r) => removeAll(r.kept)),
      removeAll(pulled.kept),
    ]);
    expect(a.code, a.stdout + a.stderr).toBe(0);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    // Stack c still declares it.
    expect(await rt.images.inspect("berth-stress-shared")).toBeDefined();
    const c = await stackCli("c", "destroy", "--yes");
    expect(c.code, c.stdout + c.stderr).toBe(0);
    await rt.images.remove("berth-stress-base");
    expect(JSON.parse(fs.readFileSync(path.join(root, "index.json"), "utf8")).manifests).toEqual([]);
    // The build cache went with the prune above, so nothing is left at all.
    expect([...digestsIn(path.join(root, "layers")), ...digestsIn(path.join(root, "blobs/sha256")), ...digestsIn(path.join(root, "leases"))]).toEqual([]);
    expect(digestsIn(path.join(root, "ingest")).filter((n) => !n.startsWith("."))).toEqual([]);
    const df = await berth(["system", "df"], env);
    expect(df.stdout).toMatch(/^Images\s+0\s+0\s+0B\s+0B$/m);
    expect(df.stdout).toMatch(/^Build Cache\s+0\s+0\s+0B\s+0B$/m);
  }, 120_000);

  it("lets the supervisor and its watchdog go once no container is left", async () => {
    const pair = [watchdog, supervisor];
    await waitFor("the supervisor and its watchdog to exit", () => (pair.some((p) => fs.existsSync(`/proc/${p}`)) ? undefined : true), 15_000, 100);
    expect(supervisorPid(root)).toBeUndefined();
  }, 20_000);
});
