// A container's output goes to container.log through a descriptor its init holds (opened with O_APPEND), so
// the file can be cut under it: past the bound its content moves to container.log.1 (one older file kept, as
// Docker's json-file driver does with max-size and max-file=2) and the file is truncated in place.
// Lines carry no time of their own (nothing sits between the process and the file), so the supervisor notes,
// each tick the file has grown, "<size> <epoch ms>" in container.log.times: a line's time is that of the first
// note covering its end — at most one tick late. The notes move with the content they describe.
import * as fs from "node:fs";
import type { LogLine, LogOptions } from "../runtime";
import { abortable, appendedLines } from "../streams";

export const DEFAULT_LOG_BYTES = 10 * 1024 * 1024;

const timesOf = (file: string) => `${file}.times`;

const logSize = (file: string): number => fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;

/** Cuts the log when past the bound (`size`: its size, when the caller just read it); whether it did. */
export function boundLog(file: string, maxBytes: number, size = logSize(file)): boolean {
  if (size <= maxBytes) return false;
  fs.copyFileSync(file, `${file}.1`);
  if (fs.existsSync(timesOf(file))) fs.renameSync(timesOf(file), `${file}.1.times`);
  fs.truncateSync(file, 0);
  return true;
}

/** Notes the log's size and the time now, when it grew since `last` (the size noted before); returns the size. */
export function stampLog(file: string, last: number, size = logSize(file)): number {
  if (size > last) fs.appendFileSync(timesOf(file), `${size} ${Date.now()}\n`);
  return size;
}

/** The lines of a log file, each with the time of the first note covering it (now when not noted yet). */
export function readLogLines(file: string): LogLine[] {
  if (!fs.existsSync(file)) return [];
  const content = fs.readFileSync(file);
  const notes = (fs.existsSync(timesOf(file)) ? fs.readFileSync(timesOf(file), "utf8") : "")
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" ").map(Number) as [number, number]);
  const lines: LogLine[] = [];
  let start = 0;
  let n = 0;
  while (start < content.length) {
    const nl = content.indexOf(10, start);
    const end = nl < 0 ? content.length : nl + 1;
    while (n < notes.length && notes[n][0] < end) n++;
    const time = new Date(n < notes.length ? notes[n][1] : Date.now()).toISOString();
    lines.push({ time, text: content.subarray(start, nl < 0 ? end : nl).toString() });
    start = end;
  }
  return lines;
}

/**
 * `Containers.logs` of the log file `file` (and its older part): what `docker logs` prints, then, with follow,
 * what is written until the writer is gone, as `docker logs -f` ends when the container stops. `first` runs when
 * the stream is first read (the container's lookup) and says how to tell whether the writer still runs.
 */
export function readLogs(file: string, opts: LogOptions = {}, first: () => Promise<() => boolean>): AsyncIterableIterator<LogLine> {
  return abortable(async function* (signal) {
    const alive = await first();
    const inWindow = (l: LogLine) => {
      const t = Date.parse(l.time);
      return (opts.since === undefined || t >= opts.since) && (opts.until === undefined || t <= opts.until);
    };
    const offset = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
    const kept = [...readLogLines(`${file}.1`), ...readLogLines(file)].filter(inWindow);
    yield* kept.slice(opts.tail === undefined ? 0 : Math.max(0, kept.length - opts.tail));
    if (!opts.follow) return;
    for await (const lines of appendedLines(file, offset, opts.until ?? Infinity, signal, alive)) {
      const time = new Date().toISOString();
      yield* lines.map((text) => ({ time, text })).filter(inWindow);
    }
  });
}
