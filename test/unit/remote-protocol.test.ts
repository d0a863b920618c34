// The remote protocol without a host: two peers over in-memory pipes (frames split at every byte boundary the
// stream happens to cut), calls in flight at once, streams both ways with cancellation and flow control,
// callbacks, values JSON alone would mangle, errors with their fields, and the hello's version check.
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { answering, Peer } from "../../native/remote/peer";
import { dataFrame, helloMismatch, jsonFrame, NotBerth, PROTOCOL_VERSION, readFrames, type Frame } from "../../native/remote/protocol";
import { methodNames, methodOf } from "../../native/remote/methods";
import { runStreams, type CommandStreams } from "../../native/host/exec";

/** A client peer and an agent peer serving `handler`, over pipes that deliver bytes in odd-sized pieces. */
function pair(handler: (method: string, args: unknown[]) => unknown) {
  const toAgent = new PassThrough();
  const toClient = new PassThrough();
  const client = new Peer(toAgent, "client");
  const agent = new Peer(toClient, "agent", handler);
  const chop = (s: PassThrough) =>
    (async function* () {
      for await (const chunk of s as AsyncIterable<Buffer>) for (let i = 0; i < chunk.length; i += 7) yield chunk.subarray(i, i + 7);
    })();
  const agentDone = agent.receive(readFrames(chop(toAgent)));
  const clientDone = client.receive(readFrames(chop(toClient)));
  return { client, agent, toAgent, toClient, agentDone, clientDone };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("remote protocol", () => {
  it("reads frames split anywhere and refuses bytes that are not berth's", async () => {
    const bytes = Buffer.concat([jsonFrame({ t: "end", ch: 3 }), dataFrame(5, Buffer.from("abc"))]);
    const frames: Frame[] = [];
    for await (const f of readFrames(Readable.from([...bytes].map((b) => Buffer.from([b]))))) frames.push(f);
    expect(frames).toEqual([{ kind: "msg", msg: { t: "end", ch: 3 } }, { kind: "data", ch: 5, data: Buffer.from("abc") }]);
    // A shell banner printed before the agent starts.
    await expect(async () => {
      for await (const _ of readFrames(Readable.from([Buffer.from("Welcome to Debian GNU/Linux!\n")]))) void _;
    }).rejects.toBeInstanceOf(NotBerth);
  });

  it("runs many calls at once, each answered by id, whatever order they finish in", async () => {
    const { client } = pair(async (m, args) => {
      await sleep(Number(args[0]));
      return `${m}:${String(args[0])}`;
    });
    const delays = [40, 5, 25, 0, 15, 30, 10];
    const results = await Promise.all(delays.map((d) => client.call("x.wait", [d])));
    expect(results).toEqual(delays.map((d) => `x.wait:${d}`));
  });

  it("carries bytes, Maps, undefined, nested objects and errors with their name and fields", async () => {
    const { client } = pair((m, args) => {
      if (m === "echo") return { args, map: new Map([["a", "urn:1"]]), bytes: Buffer.from([0, 255, 10]), nothing: undefined, when: new Date(0) };
      throw Object.assign(new Error("no such container: web"), { name: "NotFound", code: 404, detail: { kind: "container" } });
    });
    const r = (await client.call("echo", ["a", undefined, { k: [1, undefined] }])) as Record<string, unknown>;
    expect(r.args).toEqual(["a", undefined, { k: [1, undefined] }]);
    expect(r.map).toEqual(new Map([["a", "urn:1"]]));
    expect(Buffer.isBuffer(r.bytes) && [...(r.bytes as Buffer)]).toEqual([0, 255, 10]);
    expect(r.when).toBe("1970-01-01T00:00:00.000Z");
    const err = (await client.call("fail", []).catch((e: unknown) => e)) as Error & Record<string, unknown>;
    expect(err).toBeInstanceOf(Error);
    expect([err.name, err.message, err.code, err.detail]).toEqual(["NotFound", "no such container: web", 404, { kind: "container" }]);
  });

  it("invokes callbacks in order, before the result", async () => {
    const { client } = pair(async (_m, args) => {
      const [req] = args as [{ log: (line: string) => void }];
      for (let i = 0; i < 5; i++) req.log(`#${i}`);
      return "built";
    });
    const lines: string[] = [];
    expect(await client.call("images.build", [{ log: (l: string) => lines.push(l) }])).toBe("built");
    expect(lines).toEqual(["#0", "#1", "#2", "#3", "#4"]);
  });

  it("streams an argument to the callee with flow control, and a large one arrives whole", async () => {
    let produced = 0;
    const chunk = Buffer.alloc(64 << 10, 7);
    async function* source() {
      for (let i = 0; i < 160; i++) {
        produced += chunk.length;
        yield chunk;
      }
    }
    const received: number[] = [];
    const { client } = pair(async (_m, args) => {
      const [input] = args as [AsyncIterable<Buffer>];
      let n = 0;
      for await (const b of input) {
        n += b.length;
        // A slow reader: the writer may run at most a window (1 MiB) ahead of it.
        if (received.length % 16 === 0) {
          await sleep(5);
          received.push(produced - n);
        }
        received.push(0);
      }
      return n;
    });
    expect(await client.call("upload", [source()])).toBe(160 * chunk.length);
    expect(Math.max(...received)).toBeLessThanOrEqual((1 << 20) + 2 * chunk.length);
  });

  it("a stream argument the callee leaves unread is stopped at its source", async () => {
    let closed = false;
    async function* endless() {
      try {
        for (;;) yield Buffer.alloc(1024);
      } finally {
        closed = true;
      }
    }
    const { client } = pair(async (_m, args) => {
      const it = (args[0] as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      await it.next();
      return "done early";
    });
    expect(await client.call("take-one", [endless()])).toBe("done early");
    await expect.poll(() => closed, { timeout: 2000 }).toBe(true);
  });

  it("streams a result; the caller's return() cancels it at the source, even while waiting for an item", async () => {
    let cancelled = false;
    const { client } = pair(() => ({
      [Symbol.asyncIterator]() {
        let n = 0;
        return {
          // Two lines, then nothing (a followed log with no new output).
          next: () => (n < 2 ? Promise.resolve({ value: { line: n++ }, done: false }) : new Promise<never>(() => {})),
          return: () => {
            cancelled = true;
            return Promise.resolve({ value: undefined, done: true });
          },
        };
      },
    }));
    const it = client.stream("containers.logs", ["web"]);
    expect(await it.next()).toEqual({ value: { line: 0 }, done: false });
    expect(await it.next()).toEqual({ value: { line: 1 }, done: false });
    const waiting = it.next();
    await sleep(20);
    await it.return!();
    expect(await waiting).toEqual({ value: undefined, done: true });
    await expect.poll(() => cancelled, { timeout: 2000 }).toBe(true);
  });

  it("a long stream of text that is not ASCII flows to its end: credit counts the bytes the writer counted", async () => {
    const line = "容器日志：".repeat(200);
    const { client } = pair(() =>
      (async function* () {
        for (let i = 0; i < 3000; i++) yield { line, i };
      })(),
    );
    let n = 0;
    const all = (async () => {
      for await (const item of (await client.call("containers.logs", [])) as AsyncIterable<{ i: number }>) if (item.i === n) n++;
    })();
    await Promise.race([all, sleep(10_000)]);
    expect(n).toBe(3000);
  }, 15_000);

  it("a stream that fails at the source fails at the reader, with the error", async () => {
    const { client } = pair(async function* () {
      yield "one";
      throw new Error("container web is gone");
    });
    const got: unknown[] = [];
    await expect(async () => {
      for await (const v of client.stream("containers.logs", [])) got.push(v);
    }).rejects.toThrow("container web is gone");
    expect(got).toEqual(["one"]);
  });

  it("a lost connection fails every call in flight with the error naming it; the served calls run to their end", async () => {
    let finished = false;
    const { client, agent, toAgent } = pair(async () => {
      await sleep(50);
      finished = true;
      return "made";
    });
    const pending = client.call("containers.run", [{ name: "web" }]);
    await sleep(10);
    toAgent.end();
    client.fail((m, args) => new Error(`lost during ${m}(${(args[0] as { name?: string } | undefined)?.name ?? ""})`));
    await expect(pending).rejects.toThrow("lost during containers.run(web)");
    await agent.idle();
    expect(finished).toBe(true);
    await expect(client.call("x", [])).rejects.toThrow("lost during x");
  });

  it("a command's output to a callback waits while the connection is full: a caller that does not read costs bounded memory", async () => {
    const toAgent = new PassThrough();
    const toClient = new PassThrough();
    const agent = new Peer(toClient, "agent", (_m, args) => runStreams(["head", "-c", String(16 << 20), "/dev/zero"], args[0] as CommandStreams));
    void agent.receive(readFrames(toAgent));
    const client = new Peer(toAgent, "client");
    let got = 0;
    const exec = client.call("containers.exec", [{ stdout: (b: Uint8Array) => void (got += b.length) }]);
    await sleep(1000);
    // Nobody reads what the agent sends: it holds back, with a frame or two waiting, not the command's whole output.
    expect(toClient.writableLength + toClient.readableLength).toBeLessThan(4 << 20);
    void client.receive(readFrames(toClient));
    expect(await exec).toBe(0);
    expect(got).toBe(16 << 20);
  });

  it("a writer that ignores its credit is stopped with an error, its bytes dropped rather than queued", async () => {
    let input: AsyncIterator<unknown> | undefined;
    const { client, toAgent } = pair((_m, args) => {
      input = (args[0] as { stdin: AsyncIterable<unknown> }).stdin[Symbol.asyncIterator]();
      return sleep(200);
    });
    const silent: AsyncIterableIterator<Uint8Array> = {
      [Symbol.asyncIterator]: () => silent,
      next: () => new Promise(() => {}),
      return: async () => ({ value: undefined, done: true }),
    };
    const call = client.call("containers.exec", [{ stdin: silent }]);
    await sleep(20);
    // Channel 1 (the client's first): 4 MiB that no credit allowed, straight onto the connection.
    for (let i = 0; i < 64; i++) toAgent.write(dataFrame(1, Buffer.alloc(64 << 10)));
    await sleep(50);
    let read = 0;
    const err = await (async () => {
      for (let r = await input!.next(); !r.done; r = await input!.next()) read += (r.value as Buffer).length;
    })().catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/past its flow-control window/);
    expect(read).toBeLessThanOrEqual(1 << 20);
    await call;
  });

  it("a message whose special leaves point outside its value (__proto__, constructor) is refused, and no prototype changes", async () => {
    const served: unknown[] = [];
    const { client, agent } = pair((_m, args) => {
      served.push(args);
      return "served";
    });
    const shared = Object.prototype as unknown as Record<string, unknown>;
    const evil: Array<[Array<string | number>, "fn" | "in" | "bin" | "map" | "u", number]> = [
      [["__proto__", "polluted"], "fn", 1],
      [[0, "__proto__", "polluted"], "map", 0],
      [[0, "constructor", "prototype", "polluted"], "u", 0],
    ];
    const replies: unknown[] = [];
    // The agent end, sent crafted calls: each answered with an error, the handler never run.
    const agentSend = agent.send.bind(agent);
    agent.send = (msg) => {
      replies.push(msg);
      agentSend(msg);
    };
    for (const [i, s] of evil.entries()) client.send({ t: "call", id: 1000 + i, m: "x.y", a: { v: [{}], s: [s] } });
    await sleep(50);
    expect(served).toEqual([]);
    expect(replies).toEqual(evil.map((_, i) => expect.objectContaining({ t: "err", id: 1000 + i, e: expect.objectContaining({ message: expect.stringMatching(/malformed message/) }) })));
    // The client end, sent a crafted result: that call fails, the connection goes on.
    agent.send = (msg) => agentSend(msg.t === "ok" && msg.v?.v === "served" ? { ...msg, v: { v: {}, s: [evil[0]] } } : msg);
    await expect(client.call("x.y", [])).rejects.toThrow(/malformed message/);
    agent.send = agentSend;
    expect(await client.call("x.y", [])).toBe("served");
    expect([shared.polluted, Object.hasOwn(Object.prototype, "polluted")]).toEqual([undefined, false]);
  });

  it("an answering callback: the callee awaits what the caller answers (or its error); a plain one crosses fire and forget", async () => {
    const { client } = pair(async (_m, args) => {
      const [ask, told] = args as [(r: string) => Promise<unknown>, (s: string) => unknown];
      const plain = told("hi");
      const good = await ask("reg.example");
      const bad = await ask("nope").catch((e: Error) => `refused: ${e.message}`);
      return { plain: plain instanceof Promise ? "flow-control promise" : plain, good, bad };
    });
    const seen: string[] = [];
    const answer = answering(async (registry: string) => {
      if (registry === "nope") throw new Error(`no credentials for ${registry}`);
      return { username: "u", password: "p" };
    });
    expect(await client.call("build", [answer, (s: string) => (seen.push(s), "ignored")])).toEqual({
      plain: "flow-control promise", good: { username: "u", password: "p" }, bad: "refused: no credentials for nope",
    });
    expect(seen).toEqual(["hi"]);
    // The connection lost while the callee waits for an answer: its question fails, it is not left waiting.
    let asked!: Promise<unknown>;
    const { client: c2, agent: a2 } = pair((_m, args) => {
      asked = (args[0] as () => Promise<unknown>)();
      return new Promise(() => {});
    });
    void c2.call("build", [answering(() => new Promise(() => {}))]).catch(() => undefined);
    await sleep(20);
    a2.fail(() => new Error("connection lost"));
    await expect(asked).rejects.toThrow("connection lost");
  });

  it("hello: the same protocol passes, another is one error naming the host, both versions and the fix", () => {
    expect(helloMismatch({ protocol: PROTOCOL_VERSION, berth: "9.9.9" }, "ssh://h")).toBeUndefined();
    const old = helloMismatch({ protocol: PROTOCOL_VERSION - 1, berth: "0.0.1" }, "ssh://root@h2");
    expect(old).toMatch(new RegExp(`ssh://root@h2 runs berth v0\\.0\\.1 \\(agent protocol ${PROTOCOL_VERSION - 1}\\).*this berth is v.*too old.*install berth`));
  });

  it("the method table has every Runtime method, and nothing else is served", () => {
    expect(methodNames()).toContain("containers.run");
    expect(methodNames()).toContain("images.build");
    for (const bad of ["containers.constructor", "__proto__.x", "containers", "containers.run.x", "toString.call"]) expect(methodOf(bad)).toBeUndefined();
  });
});
