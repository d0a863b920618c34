// What a check is told the program declared before it (the engine's `declared`, a view of the run's claims rather
// than a copy per check): the claims made before the check started, also while it waits for the host and other
// registrations claim meanwhile.
import { describe, expect, it } from "vitest";
import { KindProvider } from "../../provider/resources/kind";
import type { CheckRequest, CheckResponse, Provider } from "../../provider/resources/provider";
import { emptyDeployment } from "../../provider/state/checkpoint";
import { TYPE, fakeKind, thing, urn, world } from "./fake-world";

/** Records what each check was told, when it started and after it waited for `gate` (only the gated name waits). */
class Recording extends KindProvider<Record<string, unknown>, Record<string, unknown>> {
  seen = new Map<string, { before: string[]; after: string[]; holder?: string; other?: boolean }>();
  gate?: Promise<void>;

  override async check(req: CheckRequest): Promise<CheckResponse> {
    const declared = req.declared!;
    const before = [...declared.keys()];
    if (req.name === "waits") await this.gate;
    this.seen.set(req.name, { before, after: [...declared.keys()], holder: declared.get("port 1")?.urn, other: declared.has("port 4") });
    return super.check(req);
  }
}

describe("declared", () => {
  it("is what was claimed before the check started, also after it waited", async () => {
    const provider = new Recording(TYPE, fakeKind(new Map(), []) as never);
    const w = world({ providers: new Map<string, Provider>([[TYPE, provider]]) });
    const run = w.run(emptyDeployment());
    await run.register(thing("a", { port: 1 }));
    await run.register(thing("b", { port: 2 }));
    let open!: () => void;
    provider.gate = new Promise((r) => (open = r));
    const waiting = run.register(thing("waits", { port: 3 }));
    await run.register(thing("d", { port: 4 }));
    open();
    await waiting;
    expect(provider.seen.get("waits")).toEqual({ before: ["port 1", "port 2"], after: ["port 1", "port 2"], holder: urn("a"), other: false });
    expect(provider.seen.get("d")!.before).toEqual(["port 1", "port 2"]);
    await run.register(thing("e", {}));
    expect(provider.seen.get("e")!.before).toEqual(["port 1", "port 2", "port 4", "port 3"]);
  });

  it("is not scanned for a new resource's first check (a first preview of N resources would be N²)", async () => {
    let scans = 0;
    class Counting extends Map<string, { urn: string; inputs: Record<string, unknown> }> {
      override entries() {
        scans++;
        return super.entries();
      }
      override values() {
        scans++;
        return super.values();
      }
      override [Symbol.iterator]() {
        scans++;
        return super[Symbol.iterator]();
      }
    }
    const declared = new Counting(Array.from({ length: 100 }, (_, i) => [`port ${i}`, { urn: urn(`t${i}`), inputs: { port: i } }]));
    const kind = { ...fakeKind(new Map(), []), prepare: async (inputs: Record<string, unknown>) => ({ inputs, failures: [] }) };
    const provider = new KindProvider(TYPE, kind as never);
    const checked = await provider.check({ urn: urn("new"), name: "new", news: { port: 200 }, randomSeed: "s", declared });
    expect(checked.failures).toEqual([]);
    expect(scans).toBe(0);
  });
});
