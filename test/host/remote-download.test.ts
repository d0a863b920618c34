// What a remote host sends back (save, cp out of a container) lands on the caller's machine: a container's tar is
// hostile. Through the client's own receiving end (files.ts receiveFiles), as root as berth runs: a setuid-root
// file arrives without its setuid bit, and a device node, a hardlink to a file of the caller's, or a path climbing
// out refuse the whole download and leave nothing behind. (Symlinks written through: remote-agent.test.ts.)
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { receiveFiles } from "../../native/remote/files";
import { writeTar, type TarHeader, type TarSource } from "../../native/image/tar";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-download-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const entry = (h: Partial<TarHeader> & { path: string }, data?: string): TarSource => ({
  header: { type: "file", mode: 0o644, uid: 0, gid: 0, size: data?.length ?? 0, mtime: 0, linkname: "", devmajor: 0, devminor: 0, ...h },
  data: data === undefined ? undefined : () => Buffer.from(data),
});

const download = (dest: string, entries: TarSource[]) => receiveFiles("containers.copy", "ssh://root@h2", [dest], [writeTar(entries)]);

describe("remote downloads on the caller's machine", () => {
  it("a setuid-root file arrives without setuid; a device node, a hardlink out or a climbing path is refused, nothing left", async () => {
    const dest = path.join(tmp, "got");
    await download(dest, [entry({ path: "out", type: "dir", mode: 0o755 }), entry({ path: "out/sh", mode: 0o4755 }, "#!/bin/sh\n"), entry({ path: "out/g", mode: 0o2755 }, "x")]);
    expect(fs.statSync(path.join(dest, "sh")).mode & 0o7777).toBe(0o755);
    expect(fs.statSync(path.join(dest, "g")).mode & 0o7777).toBe(0o755);

    const secret = path.join(tmp, "secret");
    fs.writeFileSync(secret, "caller's own");
    for (const [bad, why] of [
      [entry({ path: "out/mem", type: "char", mode: 0o666, devmajor: 1, devminor: 1 }), /device nodes are not allowed/],
      [entry({ path: "out/pw", type: "hardlink", linkname: secret }), /hardlink target .* is outside the root/],
      [entry({ path: "out/../../escaped" }, "bad"), /climbs out/],
    ] as const) {
      const to = path.join(tmp, `bad-${bad.header.type}`);
      await expect(download(to, [entry({ path: "out", type: "dir", mode: 0o755 }), bad])).rejects.toThrow(why);
      expect(fs.existsSync(to)).toBe(false);
    }
    expect(fs.readdirSync(tmp).sort()).toEqual(["got", "secret"]);
    expect(fs.readFileSync(secret, "utf8")).toBe("caller's own");
  });
});
