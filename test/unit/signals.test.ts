// Signals as Docker's daemon takes them for `kill` and stopSignal: names with or without SIG in any case, numbers
// Linux has; everything else refused in Docker's words.
import { describe, expect, it } from "vitest";
import { parseSignal, signalNumber } from "../../native/container/signals";

describe("signals", () => {
  it("takes names with or without SIG, any case, Docker's aliases and real-time offsets", () => {
    expect(["KILL", "SIGKILL", "sigkill", "Kill", "9"].map(signalNumber)).toEqual([9, 9, 9, 9, 9]);
    expect(["HUP", "SIGTERM", "USR2", "IOT", "CLD", "POLL", "SIGSYS"].map(signalNumber)).toEqual([1, 15, 12, 6, 17, 29, 31]);
    expect(["RTMIN", "SIGRTMIN+1", "rtmin+15", "RTMAX-14", "RTMAX", "34", "64"].map(signalNumber)).toEqual([34, 35, 49, 50, 64, 34, 64]);
  });

  it("refuses what Linux has no signal for", () => {
    for (const bad of ["BOGUS", "SIGBOGUS", "", "SIG", "0", "32", "33", "65", "-9", "9.0", " 9", "RTMIN+16", "RTMAX-15", "RTMIN-1", "RTMAX+1", "constructor", "toString"]) {
      expect(signalNumber(bad), bad).toBeUndefined();
    }
    expect(() => parseSignal("BOGUS")).toThrow(/^Invalid signal: BOGUS \(use a name such as KILL/);
    expect(parseSignal("sighup")).toBe(1);
  });
});
