// Preview shows what up does, for lists a program computes from another resource's output (`ports`, `networks`,
// `volumes` of a Container, `users` of a Registry): unknown as a whole at preview, they preview as to be created
// (they made the check throw "ports.some is not a function"), up makes them as given, and the next preview is empty.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, berth, clearRoot, freePort, httpGet } from "./helpers";

const PROGRAM = path.join(__dirname, "fixtures/fed-lists");
const stack = `fed${process.pid}`;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-fedlists-"));
const env = { BERTH_ROOT: root, PULUMI_CONFIG_PASSPHRASE: "fedlists" };
const configFile = path.join(PROGRAM, `Pulumi.${stack}.yaml`);
const stackCli = (...args: string[]) => berth([...args, PROGRAM, "--stack", stack], env);
let port = 0;
let regPort = 0;

beforeAll(async () => {
  const tarball = path.join(root, "busybox-rootfs.tar");
  execFileSync(path.join(REPO, "scripts/busybox-rootfs.sh"), [tarball]);
  port = await freePort();
  do regPort = await freePort();
  while (regPort === port);
  const subnet = `10.${140 + (process.pid % 10)}.${process.pid % 250}.0/24`;
  const values = { tarball, port: String(port), regPort: String(regPort), subnet };
  fs.writeFileSync(configFile, `config:\n${Object.entries(values).map(([k, v]) => `  fedlists:${k}: "${v}"`).join("\n")}\n`);
}, 60_000);

afterAll(async () => {
  await stackCli("destroy", "--yes");
  await clearRoot(root);
  fs.rmSync(configFile, { force: true });
  fs.rmSync(path.join(PROGRAM, ".pulumi/stacks/fedlists", `${stack}.json`), { force: true });
  fs.rmSync(path.join(PROGRAM, ".pulumi/stacks/fedlists", `${stack}.json.bak`), { force: true });
  fs.rmSync(root, { recursive: true, force: true });
}, 120_000);

describe("lists fed whole by another resource's output", () => {
  it("preview as created, up makes them as given, and the next preview is empty", async () => {
    const preview = await stackCli("preview");
    expect(preview.code, preview.stdout + preview.stderr).toBe(0);
    expect(preview.stdout).toMatch(/\+\s+berth:index:Container\s+web\s+create/);
    expect(preview.stdout).toMatch(/\+\s+berth:index:Registry\s+reg\s+create/);

    const up = await stackCli("up", "--yes");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(await httpGet(`http://127.0.0.1:${port}/`)).toEqual({ status: 200, body: "fed\n" });
    // The registry took the user the list named: a request without credentials is refused, with them it is served.
    expect((await httpGet(`http://127.0.0.1:${regPort}/v2/`)).status).toBe(401);

    const again = await stackCli("preview", "--expect-no-changes");
    expect(again.code, again.stdout + again.stderr).toBe(0);
  }, 180_000);
});
