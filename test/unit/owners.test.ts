import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { OwnerFiles } from "../../native/owners";

describe("owner records", () => {
  const roots: string[] = [];
  afterEach(() => roots.splice(0).forEach((r) => fs.rmSync(r, { recursive: true, force: true })));
  const owners = () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "berth-owners-"));
    roots.push(root);
    return { root, o: new OwnerFiles(root) };
  };

  it("lists an object whose name looks like a temp file (prune must not take it)", async () => {
    const { o } = owners();
    await o.claim("image", "web.tmp-1:latest", "urn:pulumi:dev::p::berth:index:Image::web");
    await o.claim("network", "a/b", "urn:n");
    expect([...(await o.list("image")).keys()]).toEqual(["web.tmp-1:latest"]);
    expect(await o.list("network")).toEqual(new Map([["a/b", "urn:n"]]));
  });

  it("keeps '.' and '..' inside the kind's directory", async () => {
    const { root, o } = owners();
    await o.claim("volume", "..", "urn:dots");
    await o.claim("volume", ".", "urn:dot");
    expect(fs.readdirSync(path.join(root, "owners")).sort()).toEqual(["volume"]);
    expect(await o.ownerOf("volume", "..")).toBe("urn:dots");
    expect(await o.list("volume")).toEqual(new Map([["..", "urn:dots"], [".", "urn:dot"]]));
    await o.release("volume", "..");
    expect(await o.ownerOf("volume", "..")).toBeUndefined();
  });
});
