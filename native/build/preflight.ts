// Pure: no host access (the provider imports it; the caller reads the Dockerfile). What a build would refuse that
// reading the Dockerfile shows, found before anything is built (a preview's check): a base image or `COPY --from`
// source that is neither an earlier stage nor an image berth can get, and a COPY/ADD source above the context. Words
// holding a variable are left to the build, which expands them.
import * as path from "node:path";
import { parseDockerfile, type Instruction } from "./dockerfile";

/** The words of a COPY/ADD: its sources, then its destination. */
const copyWords = (ins: Instruction): string[] => (ins.json ? ins.args : ins.args.join(" ").trim().split(/\s+/));

/**
 * Problems of a Dockerfile's text, each "Dockerfile:LINE: …" as the build words them. `lookup` says whether an
 * image ref is in berth's store or otherwise obtainable (declared earlier in the program, on a registry).
 */
export async function dockerfileProblems(text: string, label: string, lookup: (ref: string) => Promise<boolean>): Promise<string[]> {
  const { instructions } = parseDockerfile(text, label);
  // Asked once per ref: the answer may take a registry round trip, and stages often share a base.
  const asked = new Map<string, Promise<boolean>>();
  const known = (ref: string) => asked.get(ref) ?? asked.set(ref, lookup(ref)).get(ref)!;
  const problems: string[] = [];
  const stages: string[] = [];
  const fail = (ins: Instruction, message: string) => problems.push(`${label}:${ins.line}: ${ins.name} ${message}`);
  const isStage = (name: string) => stages.includes(name.toLowerCase()) || (/^\d+$/.test(name) && Number(name) < stages.length);
  for (const ins of instructions) {
    if (ins.name === "FROM") {
      const [ref, as, name] = ins.args.join(" ").trim().split(/\s+/);
      if (!ref.includes("$") && ref.toLowerCase() !== "scratch" && !isStage(ref) && !(await known(ref))) {
        fail(ins, `${ref}: base image not found in berth's store or its registry — build or import it first (there is no default registry)`);
      }
      stages.push(as?.toLowerCase() === "as" && name ? name.toLowerCase() : `#${stages.length}`);
      continue;
    }
    if (ins.name !== "COPY" && ins.name !== "ADD") continue;
    const from = ins.flags.from;
    if (from !== undefined) {
      if (!from.includes("$") && !isStage(from) && !(await known(from))) {
        fail(ins, `--from=${from}: no earlier stage and no image in berth's store has that name`);
      }
      continue;
    }
    for (const src of copyWords(ins).slice(0, -1)) {
      if (src.includes("$") || src.startsWith("<<") || /^[a-z]+:\/\//i.test(src)) continue;
      const clean = path.posix.normalize(src.replace(/^\/+/, ""));
      if (clean === ".." || clean.startsWith("../")) fail(ins, `failed: forbidden path outside the build context: ${src}`);
    }
  }
  return problems;
}
