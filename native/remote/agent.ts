// `berth agent`: serves this host's native runtime on stdin/stdout, for a berth client at the other end of an SSH
// session (the way `docker system dial-stdio` does): no daemon, no port. stdout carries frames alone; anything
// else printed goes to stderr, which ssh shows the client. When the connection drops, the calls already running
// finish (each create is an idempotent ensure, so the host stays whole and the next run re-issues what the
// engine had pending), then the agent exits.
import { Writable } from "node:stream";
import { createNativeRuntime, rootOf } from "../index";
import { BERTH_VERSION, hello, helloMismatch, jsonFrame, NotBerth, readFrames } from "./protocol";
import { Peer } from "./peer";
import { invoke, methodOf } from "./methods";
import { sweepKept, sweepStaging, withFiles } from "./files";

/**
 * The options of `berth agent` when argv (after "agent") is what a berth client sends — nothing, `--root DIR` or
 * `--root=DIR` — and berth runs as root; otherwise undefined, and the CLI answers (help, a usage error, "berth
 * needs root"). bin/berth asks this first, so the agent loads only the runtime and the protocol, not the CLI.
 */
export function agentOptions(argv: string[]): { root?: string } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  if (argv.length === 0) return {};
  if (argv.length === 1 && argv[0].startsWith("--root=") && argv[0].length > 7) return { root: argv[0].slice(7) };
  if (argv.length === 2 && argv[0] === "--root" && argv[1] !== "" && !argv[1].startsWith("-")) return { root: argv[1] };
  return undefined;
}

export async function serveAgent(opts: { root?: string }): Promise<number> {
  if (process.stdin.isTTY) {
    console.error("berth agent speaks berth's protocol on stdin/stdout to a berth client that started it over ssh; it is not run by hand (see README \"Many hosts\")");
    return 2;
  }
  const stdout = process.stdout;
  const writeFrame = stdout.write.bind(stdout) as (chunk: Buffer) => boolean;
  const frames = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (writeFrame(chunk)) done();
      else stdout.once("drain", () => done());
    },
  });
  // Nothing but frames may reach stdout: console.log or a stray write anywhere in the runtime would corrupt them.
  stdout.write = process.stderr.write.bind(process.stderr) as typeof stdout.write;
  for (const level of ["log", "info", "debug"] as const) console[level] = console.error;
  // ssh ends a session without a pty by closing its pipes; a hang-up signal must not cut a call short either.
  process.on("SIGHUP", () => {});

  const root = rootOf(opts.root);
  const runtime = createNativeRuntime({ root });
  // Registry TLS files kept for registries removed or changed since, once past their grace (files.ts sweepKept).
  const sweep = async () => {
    const infos = await Promise.all((await runtime.registries.list()).map((n) => runtime.registries.inspect(n)));
    const inUse = new Set(infos.flatMap((i) => (i?.spec?.tls ? [i.spec.tls.certificate, i.spec.tls.key] : [])));
    await sweepKept(root, inUse);
  };
  const sweepQuietly = () => sweep().catch((e: Error) => console.error(`berth agent: removing unused registry TLS files: ${e.message}`));
  await sweepStaging(root);
  await sweepQuietly();
  const peer = new Peer(frames, "agent", async (method, args) => {
    const m = methodOf(method);
    if (!m) throw new Error(`berth agent v${BERTH_VERSION} has no method "${method}"`);
    if (m.stream) return invoke(runtime, method, args);
    try {
      return await withFiles(root, m.files(args), async () => invoke(runtime, method, args));
    } finally {
      if (method === "registries.remove" || method === "registries.ensure") await sweepQuietly();
    }
  });
  stdout.on("error", () => peer.fail(() => new Error("connection lost")));
  frames.write(jsonFrame(hello()));

  const input = readFrames(process.stdin)[Symbol.asyncIterator]();
  try {
    const first = await input.next();
    if (first.done) return 0;
    if (first.value.kind !== "msg" || first.value.msg.t !== "hello") throw new NotBerth(Buffer.alloc(0));
    const mismatch = helloMismatch(first.value.msg, "the client");
    if (mismatch) {
      console.error(`berth agent: ${mismatch}`);
      return 1;
    }
    await peer.receive({ [Symbol.asyncIterator]: () => input });
  } catch (e) {
    console.error(`berth agent: ${e instanceof NotBerth ? "the client does not speak berth's protocol" : (e as Error).message}`);
  }
  peer.fail(() => new Error("connection lost"));
  await peer.idle();
  return 0;
}
