// The user is looked up where run looks it up: in the image's files (the overlay rootfs, as Docker reads BaseFS),
// never through the container's binds or volumes. So a check (what preview runs) and run agree both ways: a bind
// that supplies /etc/passwd does not make an unknown user pass the check, and one that hides the image's does not
// refuse a user run finds.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createNativeRuntime, type ContainerSpec, type Runtime } from "../../native";
import { supervisorPid } from "../../native/supervise/launch";
import { REPO } from "./helpers";

const tag = randomBytes(3).toString("hex");
let tmp: string;
let root: string;
let rt: Runtime;
const made: string[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync("/tmp/berth-userview-");
  root = path.join(tmp, "root");
  rt = createNativeRuntime({ root });
  const tarball = path.join(tmp, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  await rt.images.importRootfs({ ref: "bb", tarball, config: { cmd: ["sh"] } });
  // The image names no user "binduser"; this /etc (bound over the image's) names it and not root.
  fs.mkdirSync(path.join(tmp, "etc"));
  fs.writeFileSync(path.join(tmp, "etc/passwd"), "binduser:x:4321:4321::/:/bin/sh\n");
}, 60_000);

afterAll(async () => {
  for (const c of made) await rt.containers.remove(c, { graceSeconds: 0 }).catch(() => undefined);
  const pid = supervisorPid(root);
  if (pid) process.kill(pid, "SIGTERM");
  fs.rmSync(tmp, { recursive: true, force: true });
});

const spec = (what: string, user: string): ContainerSpec => {
  const name = `tu${tag}${what}`;
  made.push(name);
  return { name, image: "bb", user, command: ["true"], binds: [{ source: path.join(tmp, "etc"), target: "/etc" }], stopTimeout: 0 };
};

describe("the user at check and at run", () => {
  it("a user only a bind's /etc names is refused at check, as run refuses it", async () => {
    const s = spec("bind", "binduser");
    expect(await rt.containers.problems(s)).toEqual([{ field: "user", reason: expect.stringMatching(/unable to find user binduser/) }]);
    await expect(rt.containers.run(s)).rejects.toThrow(/unable to find user binduser/);
  });

  it("an image's user a bind hides is accepted at check, as run accepts it", async () => {
    const s = spec("hidden", "root");
    expect(await rt.containers.problems(s)).toEqual([]);
    await rt.containers.run(s);
  });
});
