// Peers' hosts files rewritten by one pass (ContainerNetworking.refreshPeers), against a peer another berth process
// removes while the pass runs.
import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { layout } from "../../native/paths";
import { ContainerNetworking, type NetHolder } from "../../native/network/container-net";
import type { AttachmentRecord } from "../../native/network/attach";

const tmp = fs.mkdtempSync("/tmp/berth-test-hosts-refresh-");
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const holder = (name: string, ip: string): NetHolder => ({
  spec: { name, image: "bb" },
  net: { mode: "networks", netns: `ns-${name}`, attachments: [{ network: "n", ip, aliases: [] } as unknown as AttachmentRecord], ports: [] },
  createdAt: new Date().toISOString(),
});

describe("refreshPeers", () => {
  it("passes over a peer removed between its check and its write, and still rewrites the others", async () => {
    const paths = layout(path.join(tmp, "root"), path.join(tmp, "run"));
    const net = new ContainerNetworking(undefined as never, paths, undefined as never, undefined as never, undefined as never);
    const all = [holder("made", "10.9.0.2"), holder("gone", "10.9.0.3"), holder("stays", "10.9.0.4")];
    for (const r of all) {
      fs.mkdirSync(paths.container(r.spec.name).dir, { recursive: true });
      fs.writeFileSync(paths.container(r.spec.name).hosts, "");
    }
    await net.refreshPeers(all[0], async () => {
      // The other process's removal lands after the pass read the records, before it writes the files.
      fs.rmSync(paths.container("gone").dir, { recursive: true });
      return all;
    });
    expect(fs.readFileSync(paths.container("stays").hosts, "utf8")).toMatch(/10\.9\.0\.2\tmade/);
    // Its own file too: its create wrote it from the records of an earlier moment.
    expect(fs.readFileSync(paths.container("made").hosts, "utf8")).toMatch(/10\.9\.0\.4\tstays/);
    // Not made again in the directory being removed.
    expect(fs.existsSync(paths.container("gone").dir)).toBe(false);
  });

  it("rewrites a file in place, and a shorter one leaves nothing of the longer one behind", async () => {
    const paths = layout(path.join(tmp, "root3"), path.join(tmp, "run3"));
    const net = new ContainerNetworking(undefined as never, paths, undefined as never, undefined as never, undefined as never);
    const [a, b] = [holder("a", "10.9.0.2"), holder("b", "10.9.0.3")];
    const file = paths.container("a").hosts;
    for (const r of [a, b]) fs.mkdirSync(paths.container(r.spec.name).dir, { recursive: true });
    fs.writeFileSync(file, "10.9.0.99\tleft-over-peer\n".repeat(50));
    fs.writeFileSync(paths.container("b").hosts, "");
    const inode = fs.statSync(file).ino; // bind-mounted into the running container: must stay this inode
    await net.refreshPeers(a, async () => [a, b]);
    expect(fs.readFileSync(file, "utf8")).toBe("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.9.0.2\ta\n10.9.0.3\tb\n");
    expect(fs.statSync(file).ino).toBe(inode);
  });

  it("puts a container whose removal failed back in its peers' files, which a pass during the removal wrote without it", async () => {
    const paths = layout(path.join(tmp, "root2"), path.join(tmp, "run2"));
    const net = new ContainerNetworking(undefined as never, paths, undefined as never, undefined as never, undefined as never);
    const [stays, failing, other] = [holder("stays", "10.9.0.2"), holder("failing", "10.9.0.3"), holder("other", "10.9.0.4")];
    for (const r of [stays, failing, other]) {
      fs.mkdirSync(paths.container(r.spec.name).dir, { recursive: true });
      fs.writeFileSync(paths.container(r.spec.name).hosts, "");
    }
    const records = async () => [stays, failing, other].filter((r) => fs.existsSync(paths.container(r.spec.name).dir));
    const named = () => fs.readFileSync(paths.container("stays").hosts, "utf8");
    await net.refreshPeers(stays, records);
    expect(named()).toMatch(/10\.9\.0\.3\tfailing/);
    const removal = net.removing("failing", async () => {
      // Another container's removal passes while this one is under way, then this one fails (a busy mount).
      fs.rmSync(paths.container("other").dir, { recursive: true });
      await net.refreshPeers(other, records);
      expect(named()).not.toMatch(/failing/);
      throw new Error("umount: target is busy");
    }, failing, records);
    await expect(removal).rejects.toThrow(/busy/);
    expect(named()).toMatch(/10\.9\.0\.3\tfailing/);
    expect(named()).not.toMatch(/other/);
  });
});
