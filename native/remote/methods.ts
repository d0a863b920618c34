// Every Runtime method that crosses the connection, one line each: whether its result is a stream, and where its
// arguments hold paths on the caller's machine (files.ts). The type makes the table whole: a method added to
// Runtime fails the build until it has its line, and a stream method cannot be declared a plain call. The client
// (proxy) and the agent (serve) are both made from this table, so neither restates the interface.
import type { RegistryAccess, Runtime } from "../runtime";
import { slot, type FileSlot } from "./files";

type Spec<F> = F extends (...args: infer A) => infer R
  ? { stream: R extends AsyncIterable<unknown> ? true : false; files?: (args: A) => FileSlot[] }
  : never;

export type MethodTable = { [G in keyof Runtime]: { [M in keyof Runtime[G]]: Spec<Runtime[G][M]> } };

const call = { stream: false } as const;
const stream = { stream: true } as const;
const ca = (access: RegistryAccess | undefined) => (access?.ca !== undefined ? [slot(access, "ca", "file")] : []);

export const METHODS: MethodTable = {
  images: {
    importRootfs: { ...call, files: ([req]) => [slot(req, "tarball", "read")] },
    importArchive: { ...call, files: ([req]) => [slot(req, "path", "read")] },
    // The Dockerfile first: whether it travels inside the context depends on where it is.
    build: { ...call, files: ([req]) => [slot(req, "dockerfile", "dockerfile"), slot(req, "context", "context")] },
    pull: { ...call, files: ([, access]) => ca(access) },
    push: { ...call, files: ([, , access]) => ca(access) },
    resolve: { ...call, files: ([, access]) => ca(access) },
    save: { ...call, files: (args) => [slot(args, 1, "down")] },
    load: { ...call, files: (args) => [slot(args, 0, "read")] },
    tag: call,
    inspect: call,
    list: call,
    remove: call,
    pruneBuildCache: call,
    hold: call,
  },
  system: { df: call, check: call, prune: call },
  networks: { create: call, conflicts: call, inspect: call, list: call, remove: call },
  volumes: { create: call, inspect: call, list: call, remove: call },
  containers: {
    run: call,
    portTaken: call,
    problems: call,
    inspect: call,
    finishRemoval: call,
    remove: call,
    update: call,
    stop: call,
    start: call,
    kill: call,
    pause: call,
    unpause: call,
    list: call,
    exec: call,
    events: stream,
    logs: stream,
    stats: call,
    top: call,
    copy: { ...call, files: (args) => [args[1] === "to" ? slot(args, 3, "up") : slot(args, 3, "down", args[2])] },
    diff: call,
    commit: call,
  },
  registries: {
    ensure: { ...call, files: ([spec]) => (spec.tls ? [slot(spec.tls, "certificate", "kept"), slot(spec.tls, "key", "kept")] : []) },
    inspect: call,
    list: call,
    remove: call,
  },
  owners: { claim: call, release: call, ownerOf: call, list: call },
};

export interface Method {
  /** "containers.run" */
  name: string;
  stream: boolean;
  files: (args: unknown[]) => FileSlot[];
}

/** The table's entry for a method name as it crosses ("group.method"); undefined for anything else. */
export function methodOf(name: string): Method | undefined {
  const [group, method, ...rest] = name.split(".");
  if (rest.length > 0 || !Object.hasOwn(METHODS, group)) return undefined;
  const specs = METHODS[group as keyof Runtime] as Record<string, { stream: boolean; files?: (args: never) => FileSlot[] }>;
  if (!Object.hasOwn(specs, method)) return undefined;
  const spec = specs[method];
  return { name, stream: spec.stream, files: (args) => spec.files?.(args as never) ?? [] };
}

/** Every method name, "group.method". */
export const methodNames = (): string[] => Object.entries(METHODS).flatMap(([g, ms]) => Object.keys(ms).map((m) => `${g}.${m}`));

/** Calls a method of a runtime by its name. */
export function invoke(runtime: Runtime, name: string, args: unknown[]): unknown {
  const [group, method] = name.split(".");
  const target = runtime[group as keyof Runtime] as unknown as Record<string, (...a: unknown[]) => unknown>;
  return target[method](...args);
}

/** A Runtime whose every method is `call(methodName, args)` (or `stream(…)` for a stream result). */
export function runtimeOf(call: (m: Method, args: unknown[]) => unknown): Runtime {
  const runtime: Record<string, Record<string, (...a: unknown[]) => unknown>> = {};
  for (const name of methodNames()) {
    const m = methodOf(name)!;
    const [group, method] = name.split(".");
    (runtime[group] ??= {})[method] = (...args: unknown[]) => call(m, args);
  }
  return runtime as unknown as Runtime;
}
