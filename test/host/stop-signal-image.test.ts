// An image's STOPSIGNAL is what stop sends when the container names no stopSignal (Docker merges it at create);
// the container's own wins. `berth build` records it in the image config and `berth image inspect` shows it; one
// Linux has not (the image is untrusted) is refused before the container is made.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import type { Runtime } from "../../native";
import { execFileSync } from "node:child_process";
import { berth, busyboxRoot, waitFor } from "./helpers";

const tag = randomBytes(3).toString("hex");
let tmp: string;
let root: string;
let rt: Runtime;
let remove: () => Promise<void>;

beforeAll(async () => {
  ({ tmp, root, rt, remove } = await busyboxRoot("berth-stopsig-"));
  for (const [dir, signal] of [["usr1", "SIGUSR1"], ["bogus", "SIGBOGUS"]]) {
    fs.mkdirSync(path.join(tmp, dir));
    fs.writeFileSync(path.join(tmp, dir, "Dockerfile"), `FROM bb\nSTOPSIGNAL ${signal}\n`);
    const built = await berth(["build", "-q", "-t", `stopsig-${dir}`, path.join(tmp, dir)], { BERTH_ROOT: root });
    expect(built.code, built.stdout + built.stderr).toBe(0);
  }
}, 120_000);

afterAll(() => remove(), 60_000);

/** Runs a container of the USR1 image that writes which signal it got to a host file, stops it, returns that. */
async function stopped(what: string, stopSignal?: string): Promise<string> {
  const name = `ts${tag}${what}`;
  const out = path.join(tmp, `out-${what}`);
  fs.mkdirSync(out);
  const script = `for s in USR1 USR2 TERM; do trap "echo $s > /out/got; exit 0" $s; done; touch /out/ready; while :; do sleep 0.05; done`;
  await rt.containers.run({ name, image: "stopsig-usr1", command: ["sh", "-c", script], binds: [{ source: out, target: "/out" }], stopTimeout: 10, ...(stopSignal ? { stopSignal } : {}) });
  await waitFor("the trap set", () => fs.existsSync(path.join(out, "ready")) || undefined);
  await rt.containers.stop(name);
  return fs.readFileSync(path.join(out, "got"), "utf8").trim();
}

describe("an image's STOPSIGNAL", () => {
  it("is recorded by berth build and shown by image inspect", async () => {
    const shown = await berth(["image", "inspect", "stopsig-usr1"], { BERTH_ROOT: root });
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)[0].config.stopSignal).toBe("SIGUSR1");
  });

  it("is what stop sends when the container names none", async () => {
    expect(await stopped("img")).toBe("USR1");
  }, 60_000);

  it("gives way to the container's own stopSignal", async () => {
    expect(await stopped("own", "SIGUSR2")).toBe("USR2");
  }, 60_000);

  it("is the container's own in an image committed from it", async () => {
    const name = `ts${tag}commit`;
    await rt.containers.run({ name, image: "stopsig-usr1", command: ["sleep", "600"], stopSignal: "SIGUSR2", stopTimeout: 0 });
    expect((await rt.containers.commit(name, "stopsig-committed")).config.stopSignal).toBe("SIGUSR2");
    await rt.containers.remove(name, { graceSeconds: 0 });
  }, 60_000);

  it("is refused at check and at run when Linux has no such signal, unless the container names its own", async () => {
    const name = `ts${tag}bogus`;
    const spec = { name, image: "stopsig-bogus", command: ["true"] };
    expect(await rt.containers.problems(spec)).toEqual([{ field: "image", reason: expect.stringContaining('STOPSIGNAL "SIGBOGUS", which is no Linux signal') }]);
    await expect(rt.containers.run(spec)).rejects.toThrow(/STOPSIGNAL "SIGBOGUS"/);
    expect(await rt.containers.inspect(name)).toBeUndefined();
    expect(await rt.containers.problems({ ...spec, stopSignal: "SIGTERM" })).toEqual([]);
  });

  // Docker's config has StopSignal as a string; a crafted archive's may hold anything JSON does.
  it("is refused at check naming the container and the image when it is no string", async () => {
    const dir = path.join(tmp, "nonstring");
    fs.mkdirSync(dir);
    await rt.images.save(["stopsig-usr1"], path.join(tmp, "usr1.tar"));
    execFileSync("tar", ["-C", dir, "-xf", path.join(tmp, "usr1.tar")]);
    // Read as a docker save archive (manifest.json), whose config is then the crafted file.
    for (const f of ["index.json", "oci-layout"]) fs.rmSync(path.join(dir, f), { force: true });
    const docker = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
    const config = JSON.parse(fs.readFileSync(path.join(dir, docker[0].Config), "utf8"));
    for (const [i, value] of [true, {}, 1e21].entries()) {
      const image = `stopsig-crafted${i}`;
      fs.writeFileSync(path.join(dir, "crafted.json"), JSON.stringify({ ...config, config: { ...config.config, StopSignal: value } }));
      fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify([{ ...docker[0], Config: "crafted.json", RepoTags: [`${image}:latest`] }]));
      execFileSync("tar", ["-C", dir, "-cf", path.join(tmp, `${image}.tar`), "."]);
      await rt.images.load(path.join(tmp, `${image}.tar`));
      const spec = { name: `ts${tag}crafted`, image, command: ["true"] };
      expect(await rt.containers.problems(spec)).toEqual([{ field: "image", reason: expect.stringMatching(new RegExp(`^image ${image}:latest has STOPSIGNAL .*, which is no Linux signal`)) }]);
      await expect(rt.containers.run(spec)).rejects.toThrow(`container "${spec.name}": image: image ${image}:latest has STOPSIGNAL`);
      expect(await rt.containers.inspect(spec.name)).toBeUndefined();
    }
  }, 60_000);
});
