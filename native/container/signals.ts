// Pure: Linux signals as Docker takes them (moby's signal.ParseSignal + ValidSignalForPlatform): a name with or
// without SIG, any case, or its number. One list for the stopSignal schema and for `kill`, so both refuse the same things.

/** x86_64/arm64 numbers, with the aliases Docker knows (IOT, CLD, POLL). */
const NAMES: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12,
  PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22,
  URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};
const RTMIN = 34;
const RTMAX = 64;

/** The signal's number, or undefined when Linux has no such signal (0, 32, 33 and >64 included, as in Docker). */
export function signalNumber(raw: string): number | undefined {
  // An image config's StopSignal is untrusted JSON, stored before it was checked to be a string.
  if (typeof raw !== "string") return undefined;
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    return (n >= 1 && n <= 31) || (n >= RTMIN && n <= RTMAX) ? n : undefined;
  }
  const name = raw.toUpperCase().replace(/^SIG/, "");
  if (Object.hasOwn(NAMES, name)) return NAMES[name];
  // Docker's map holds RTMIN, RTMIN+1…+15, RTMAX-14…-1, RTMAX.
  const rt = /^RT(MIN|MAX)(?:([+-])(\d{1,2}))?$/.exec(name);
  if (!rt) return undefined;
  const offset = rt[2] ? Number(rt[3]) : 0;
  if (rt[1] === "MIN" && (rt[2] ?? "+") === "+" && offset <= 15) return RTMIN + offset;
  if (rt[1] === "MAX" && (rt[2] ?? "-") === "-" && offset <= 14) return RTMAX - offset;
  return undefined;
}

/** The number to hand runc (which knows no RTMIN+n nor Docker's aliases by name), or Docker's refusal. */
export function parseSignal(raw: string): number {
  const n = signalNumber(raw);
  if (n === undefined) {
    throw new Error(`Invalid signal: ${raw} (use a name such as KILL, SIGTERM or HUP, or a number such as 9 or 15)`);
  }
  return n;
}
