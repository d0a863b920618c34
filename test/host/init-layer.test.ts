// berth's init layer on the real host: a container of an ordinary image starts with nothing in its upper directory
// (runc found every mount point in the layer), one layer serves every container of the root, and images whose
// /etc, /etc/hosts, /.berth or /proc are something else (symlinks to a host canary, a file) keep them: the layer
// leaves those paths out, the container still runs with berth's files, and the canary is unchanged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createNativeRuntime, type Runtime } from "../../native";
import { readTar, writeTar, type TarHeader, type TarSource } from "../../native/image/tar";
import { initLayersDir } from "../../native/snapshot/init-layer";
import { runcId } from "../../native/names";
import { clearRoot, REPO, waitFor } from "./helpers";

const tag = randomBytes(3).toString("hex");
const name = (what: string) => `ti${tag}${what}`;
let tmp: string;
let root: string;
let C: string;
let rt: Runtime;
let tarball: string;

const inside = (c: string, ...cmd: string[]): string => execFileSync("runc", ["exec", runcId(root, c), ...cmd], { encoding: "utf8" }).trim();

function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p);
    const what = st.isSymbolicLink() ? fs.readlinkSync(p) : st.isFile() ? fs.readFileSync(p, "utf8") : "dir";
    out.push(`${rel} ${what} ${st.mode.toString(8)} ${st.uid} ${st.mtimeMs} ${st.nlink}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n), `${rel}/${n}`);
  };
  walk(dir, ".");
  return out.join("\n");
}

type Extra = Partial<TarHeader> & { path: string; data?: string };

/** The busybox rootfs without the entries `drop` matches, with `extra` added (symlinks unless typed otherwise). */
async function imageWith(ref: string, drop: RegExp | undefined, extra: Extra[]) {
  async function* entries(): AsyncGenerator<TarSource> {
    for await (const e of readTar(fs.createReadStream(tarball))) {
      const chunks: Buffer[] = [];
      for await (const c of e.data) chunks.push(c);
      if (drop?.test(e.header.path.replace(/^\.\//, ""))) continue;
      const data = Buffer.concat(chunks);
      yield { header: e.header, data: () => data };
    }
    for (const { data, ...x } of extra) {
      const body = data === undefined ? undefined : Buffer.from(data);
      yield {
        header: { type: "symlink", mode: 0o777, uid: 0, gid: 0, size: body?.length ?? 0, mtime: 0, linkname: "", devmajor: 0, devminor: 0, ...x },
        data: body && (() => body),
      };
    }
  }
  const file = path.join(tmp, `${ref}.tar`);
  await new Promise((resolve, reject) => writeTar(entries()).pipe(fs.createWriteStream(file)).on("finish", resolve).on("error", reject));
  await rt.images.importRootfs({ ref, tarball: file, config: { cmd: ["sh"] } });
}

async function run(what: string, image: string) {
  const n = name(what);
  await rt.containers.run({ name: n, image, command: ["sleep", "600"], stopTimeout: 0 });
  return n;
}

const upper = (n: string) => path.join(root, "containers", n, "upper");

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-initlayer-");
  root = path.join(tmp, "root");
  C = path.join(tmp, "canary");
  fs.mkdirSync(C);
  fs.writeFileSync(path.join(C, "hosts"), "host hosts");
  fs.writeFileSync(path.join(C, "secret"), "host secret");
  tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  rt = createNativeRuntime({ root });
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
}, 60_000);

afterAll(async () => {
  await clearRoot(root);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("an ordinary image", () => {
  it("runs its containers with nothing made in their upper directories, from one layer for the root", async () => {
    const a = await run("a", "bb");
    const b = await run("b", "bb");
    expect(fs.readdirSync(upper(a))).toEqual([]);
    expect(fs.readdirSync(upper(b))).toEqual([]);
    expect(fs.readdirSync(initLayersDir(root))).toHaveLength(1);
    // berth's files are mounted where they were, and the image's /etc is still its own, attributes included.
    expect(inside(a, "cat", "/etc/hostname")).toBe(a);
    expect(inside(a, "cat", "/etc/hosts")).toBe(fs.readFileSync(path.join(root, "containers", a, "hosts"), "utf8").trim());
    expect(inside(a, "cat", "/etc/passwd")).toContain("root:x:0:0");
    expect(inside(a, "stat", "-c", "%a %u %Y", "/etc")).toBe("755 0 946684800");
    expect(inside(a, "ls", "/.berth")).toBe("busybox\nexit");
    // The exit status still lands in the container's bundle, through /.berth/exit.
    const e = name("exit");
    await rt.containers.run({ name: e, image: "bb", command: ["sh", "-c", "exit 3"], stopTimeout: 0 });
    await waitFor("the exit status", () => (fs.existsSync(path.join(root, "containers", e, "exit/code")) ? true : undefined));
    expect(fs.readFileSync(path.join(root, "containers", e, "exit/code"), "utf8")).toBe("3\n");
  });
});

describe("an image with its own mount points", () => {
  // The canary's path is known once beforeAll has run.
  const cases: Array<[string, RegExp | undefined, () => Extra[]]> = [
    ["an /etc symlink to the host canary", /^etc(\/|$)/, () => [{ path: "etc", linkname: C }]],
    ["an /etc/hosts symlink to a host file", /^etc\/hosts$/, () => [{ path: "etc/hosts", linkname: `${C}/hosts` }]],
    ["a /.berth symlink to the host canary", undefined, () => [{ path: ".berth", linkname: C }]],
    ["a /proc that is a file", /^proc(\/|$)/, () => [{ path: "proc", type: "file", mode: 0o644, data: "not proc" }]],
    ["its own /etc/hosts file", /^etc\/hosts$/, () => [{ path: "etc/hosts", type: "file", mode: 0o644, data: "1.2.3.4 image\n" }]],
  ];
  for (const [what, drop, extra] of cases) {
    it(`keeps them and changes nothing outside: ${what}`, async () => {
      const before = snapshot(C);
      const ref = `img${cases.findIndex((c) => c[0] === what)}`;
      await imageWith(ref, drop, extra());
      const n = name(ref);
      // runc may refuse such an image (a /proc that is a file); the host is unchanged either way.
      const ran = await rt.containers.run({ name: n, image: ref, command: ["sleep", "600"], stopTimeout: 0 }).then(() => true, () => false);
      if (ran) {
        expect(inside(n, "cat", "/etc/hostname")).toBe(n);
        expect(inside(n, "cat", "/etc/hosts")).toBe(fs.readFileSync(path.join(root, "containers", n, "hosts"), "utf8").trim());
      }
      expect(snapshot(C)).toBe(before);
    });
  }
});
