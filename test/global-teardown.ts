// After every test file: the tmpfs locks directories of the roots tests made and removed (native/lock-dir.ts),
// which berth itself sweeps only when a later root is made.
import { sweepOrphans } from "../native/lock-dir";

export function teardown(): void {
  sweepOrphans(0);
}
