// The remote client's ssh command line, fed what an attacker would put in a Provider's host or sshOptions (a value
// that may come from another resource's output): nothing may become an ssh option, a local command, a shell
// word, or a host key check turned off. Each refusal names the field and the fix.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { RemoteError, remoteRuntime, sshArgv } from "../../native/remote/client";

const DIST = path.join(__dirname, "../../dist/native/remote");

/** An agent (over dist/, built by tsc) that answers every call with the arguments it received. */
const echoAgent = (): string[] => ["node", "-e",
  `const {Peer}=require(${JSON.stringify(`${DIST}/peer.js`)});const p=require(${JSON.stringify(`${DIST}/protocol.js`)});` +
  `process.stdout.write(p.jsonFrame(p.hello()));const peer=new Peer(process.stdout,"agent",(m,a)=>({m,a}));` +
  `(async()=>{const f=p.readFrames(process.stdin)[Symbol.asyncIterator]();await f.next();await peer.receive({[Symbol.asyncIterator]:()=>f});})();`];

const refused = (f: () => unknown): RemoteError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RemoteError);
    return e as RemoteError;
  }
  throw new Error("not refused");
};

describe("remote client", () => {
  it("a host URL that would be an ssh option or shell words is refused, naming the host and the form", () => {
    for (const url of [
      "ssh://-oProxyCommand=touch${IFS}/tmp/pwned",
      "ssh://-oProxyCommand=x@h",
      "ssh://root@-oProxyCommand=x",
      "ssh://root@h$(touch /tmp/pwned)",
      "ssh://root@h`id`",
      "ssh://ro'ot@h",
      "ssh://root@h;id",
      "ssh://root@h\nProxyCommand x",
      "ssh://root@h x",
    ]) {
      const e = refused(() => sshArgv({ url }));
      expect(e.reason).toBe("url");
      expect(e.message).toMatch(/invalid host .*ssh:\/\/\[user@\]host\[:port\].*~\/\.ssh\/config/);
    }
    for (const url of ["ssh://root@10.0.0.2", "ssh://h2.example.com:2222", "ssh://deploy_1@[fe80::1]:22", "ssh://a-b@h-1"]) {
      expect(sshArgv({ url }).length).toBeGreaterThan(3);
    }
  });

  it("sshOptions that run a command, or turn host key checks off in any spelling, are refused with the fix", () => {
    for (const o of ["ProxyCommand=touch /tmp/pwned", "proxycommand nc %h %p", "LocalCommand=id", "PermitLocalCommand=yes", "KnownHostsCommand=/bin/true", "PKCS11Provider=/tmp/evil.so", "SecurityKeyProvider=/tmp/evil.so"]) {
      expect(refused(() => sshArgv({ url: "ssh://h", sshOptions: [o] })).message).toMatch(/runs a command on this machine.*~\/\.ssh\/config/);
    }
    for (const o of ["ControlMaster=auto", "ControlPath=/tmp/someone-elses.sock"]) {
      expect(refused(() => sshArgv({ url: "ssh://h", sshOptions: [o] })).message).toMatch(/something other than a pipe to `berth agent`/);
    }
    for (const o of ["StrictHostKeyChecking=no", "StrictHostKeyChecking=false", "StrictHostKeyChecking off", 'StrictHostKeyChecking="no"', "stricthostkeychecking=accept-new", "UserKnownHostsFile=/dev/null"]) {
      const e = refused(() => sshArgv({ url: "ssh://h", sshOptions: [o] }));
      expect([e.reason, e.message]).toEqual(["host-key", expect.stringMatching(/sshOptions entry .* refused: .*; berth never skips host key checks/)]);
    }
    for (const o of ["RemoteCommand=sh", "RequestTTY=force", "ConnectTimeout=5\nProxyCommand=x", "-oProxyCommand=x", "Hostname=h$(id)", "User=-x", "ProxyJump=j;id", "ProxyJump=a@j1,b@`id`"]) {
      expect(refused(() => sshArgv({ url: "ssh://h", sshOptions: [o] })).message).toMatch(/sshOptions entry/);
    }
    for (const o of ["ForwardAgent=yes", "ForwardAgent=/tmp/agent.sock", "ForwardX11=yes", "LocalForward=0.0.0.0:8080 127.0.0.1:22", "RemoteForward 9000 localhost:22", "DynamicForward=1080", "Tunnel=point-to-point"]) {
      expect(refused(() => sshArgv({ url: "ssh://h", sshOptions: [o] })).message).toMatch(/forwards something .*~\/\.ssh\/config/);
    }
    const ok = ["ForwardAgent=no", "Tunnel=no", "StrictHostKeyChecking=yes", "ConnectTimeout=5", "ProxyJump=admin@bastion:2222,j2", "User=deploy", "UserKnownHostsFile=/tmp/kh"];
    expect(sshArgv({ url: "ssh://h", sshOptions: ok })).toEqual(expect.arrayContaining(ok));
  });

  it("the remote command: a root with spaces, quotes and shell syntax reaches berth as one argument", () => {
    const root = `/srv/my berth/it's "x"; $(touch /tmp/pwned) \`id\` *`;
    const argv = sshArgv({ url: "ssh://h", root });
    expect(argv.slice(-3, -1)).toEqual(["--", "h"]);
    // What sshd does with it: the user's shell runs the string; a stand-in berth prints the arguments it gets.
    const out = execFileSync("sh", ["-c", `berth() { printf '%s\\n' "$@"; }; ${argv.at(-1)!}`], { encoding: "utf8" });
    expect(out).toBe(`agent\n--root\n${root}\n`);
  });

  it("a registry call without credentials carries the caller's docker login, as docker -H does, not the remote's", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-dockercfg-"));
    const saved = process.env.DOCKER_CONFIG;
    process.env.DOCKER_CONFIG = dir;
    const rt = remoteRuntime({ url: "ssh://root@h", command: echoAgent() });
    try {
      fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ auths: { "reg.example:5000": { auth: Buffer.from("ci:s3cret").toString("base64") } } }));
      const sent = (r: unknown) => (r as { a: unknown[] }).a;
      const auth = { username: "ci", password: "s3cret" };
      expect(sent(await rt.images.resolve("reg.example:5000/app:1"))).toEqual(["reg.example:5000/app:1", { auth }]);
      expect(sent(await rt.images.pull("reg.example:5000/app:1", { insecure: true }, "app:1"))).toEqual(["reg.example:5000/app:1", { insecure: true, auth }, "app:1"]);
      expect(sent(await rt.images.push("app:1", "reg.example:5000/app:2"))).toEqual(["app:1", "reg.example:5000/app:2", { auth }]);
      // Credentials given, or another registry: left as they are.
      const given = { auth: { username: "u", password: "p" } };
      expect(sent(await rt.images.pull("reg.example:5000/app:1", given))).toEqual(["reg.example:5000/app:1", given]);
      expect(sent(await rt.images.resolve("other.example/app:1"))).toEqual(["other.example/app:1"]);
    } finally {
      await rt.close();
      process.env.DOCKER_CONFIG = saved;
      if (saved === undefined) delete process.env.DOCKER_CONFIG;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
