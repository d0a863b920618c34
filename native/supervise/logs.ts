// A container's output goes to container.log through a descriptor its init holds (opened with O_APPEND), so
// the file can be cut under it: past the bound its content moves to container.log.1 (one older file kept, as
// Docker's json-file driver does with max-size and max-file=2) and the file is truncated in place.
import * as fs from "node:fs";

export const DEFAULT_LOG_BYTES = 10 * 1024 * 1024;

export function boundLog(file: string, maxBytes: number): void {
  const size = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  if (size <= maxBytes) return;
  fs.copyFileSync(file, `${file}.1`);
  fs.truncateSync(file, 0);
}
