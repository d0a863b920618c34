// berth's own iptables chains, hooked once from the built-in chains. Every rule carries a unique
// `-m comment --comment berth:…` tag: that tag is how a rule is found again, checked and deleted, whatever form
// iptables-save prints it in. Changes are computed against a fresh iptables-save and applied in one
// `iptables-restore --noflush` per call (one nft transaction per table).
import type { Host } from "../host/exec";
import { HostCommandError } from "../host/exec";
import { KeyedMutex } from "../mutex";

export type Table = "filter" | "nat";

export const Chain = {
  /** filter: accepts traffic in and out of berth bridges (FORWARD's policy may be DROP). */
  forward: "BERTH-FORWARD",
  /** nat: masquerading. */
  postrouting: "BERTH-POSTROUTING",
  /** nat: published ports, for packets to a local address, arriving (PREROUTING) or locally sent (OUTPUT). */
  dnat: "BERTH-DNAT",
} as const;

export interface Rule {
  table: Table;
  chain: (typeof Chain)[keyof typeof Chain];
  args: string[];
  /** Unique among berth's rules, "berth:<owner>:<what>"; at most 256 characters. */
  tag: string;
  /** The tag an older berth gave this rule: a rule carrying it and matching exactly is this one (and is re-tagged). */
  formerTag?: string;
}

const LOCAL = ["-m", "addrtype", "--dst-type", "LOCAL"];

const BASE: { table: Table; chain: string; hooks: { from: string; match: string[] }[] }[] = [
  { table: "filter", chain: Chain.forward, hooks: [{ from: "FORWARD", match: [] }] },
  { table: "nat", chain: Chain.postrouting, hooks: [{ from: "POSTROUTING", match: [] }] },
  {
    table: "nat",
    chain: Chain.dnat,
    hooks: [
      { from: "PREROUTING", match: LOCAL },
      { from: "OUTPUT", match: LOCAL },
    ],
  },
];

const HOOK_TAG = "berth:hook:";
const comment = (tag: string): string[] => ["-m", "comment", "--comment", tag];
const ruleLine = (op: "-A" | "-D", r: Rule): string => [op, r.chain, ...r.args, ...comment(r.tag)].join(" ");

function byTable(rules: Rule[], op: "-A" | "-D"): Record<Table, string[]> {
  const lines: Record<Table, string[]> = { filter: [], nat: [] };
  for (const r of rules) lines[r.table].push(ruleLine(op, r));
  return lines;
}
const hookTag = (from: string, chain: string): string => `${HOOK_TAG}${from}:${chain}`;
const isBerthChain = (chain: string): boolean => chain.startsWith("BERTH-");

interface SavedRule {
  table: Table;
  chain: string;
  /** The rule as iptables-save printed it, after "-A ". */
  spec: string;
  tag?: string;
}

interface Saved {
  chains: Record<Table, Set<string>>;
  rules: SavedRule[];
  tags: Set<string>;
}

function parseSave(text: string): Saved {
  const saved: Saved = { chains: { filter: new Set(), nat: new Set() }, rules: [], tags: new Set() };
  let table: Table | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) {
      const name = line.slice(1).trim();
      table = name === "filter" || name === "nat" ? name : undefined;
    } else if (!table) {
      continue;
    } else if (line.startsWith(":")) {
      saved.chains[table].add(line.slice(1).split(" ")[0]);
    } else if (line.startsWith("-A ")) {
      const spec = line.slice(3);
      const tag = /--comment "?(berth:[^"\s]+)"?/.exec(spec)?.[1];
      saved.rules.push({ table, chain: spec.split(" ")[0], spec, tag });
      if (tag) saved.tags.add(tag);
    }
  }
  return saved;
}

function restoreScript(lines: Record<Table, string[]>): string {
  return (["filter", "nat"] as const)
    .filter((t) => lines[t].length > 0)
    .map((t) => `*${t}\n${lines[t].join("\n")}\nCOMMIT\n`)
    .join("");
}

/** Whether a saved rule is the wanted one: the same chain and the same words apart from the comment, in any order. */
function sameRule(saved: SavedRule, r: Rule): boolean {
  const tags = [r.tag, saved.tag ?? r.tag];
  const ignored = new Set(["-m", "comment", "--comment", ...tags, ...tags.map((t) => `"${t}"`)]);
  const words = (ws: string[]) => ws.filter((w) => !ignored.has(w)).sort().join(" ");
  return saved.chain === r.chain && words(saved.spec.split(" ").slice(1)) === words(r.args);
}

/** The saved rule that is r under the tag an older berth gave it. */
const formerly = (saved: Saved, r: Rule): SavedRule | undefined =>
  r.formerTag === undefined ? undefined : saved.rules.find((x) => x.tag === r.formerTag && sameRule(x, r));

function ensureLines(saved: Saved, rules: Rule[]): Record<Table, string[]> {
  const lines: Record<Table, string[]> = { filter: [], nat: [] };
  for (const base of BASE) {
    if (!saved.chains[base.table].has(base.chain)) lines[base.table].push(`-N ${base.chain}`);
    for (const h of base.hooks) {
      const tag = hookTag(h.from, base.chain);
      if (saved.tags.has(tag)) continue;
      lines[base.table].push(["-I", h.from, "1", ...h.match, ...comment(tag), "-j", base.chain].join(" "));
    }
  }
  for (const r of rules) {
    const found = saved.rules.find((x) => x.tag === r.tag);
    // A rule changed by hand keeps its tag: it is replaced by the one berth wants.
    if (found && !sameRule(found, r)) lines[r.table].push(`-D ${found.spec}`);
    const old = found ? undefined : formerly(saved, r);
    if (old) lines[r.table].push(`-D ${old.spec}`);
    if (!found || !sameRule(found, r)) lines[r.table].push(ruleLine("-A", r));
  }
  return lines;
}

/**
 * What removeTagged deletes, from a saved ruleset: the rules under any of the prefixes (or these rules under their
 * former tags); and when that leaves berth's chains empty and `dropChains`, the hooks and chains too.
 */
function removeLines(saved: Saved, prefixes: string[], formerOf: Rule[], dropChains = true): Record<Table, string[]> {
  const lines: Record<Table, string[]> = { filter: [], nat: [] };
  const former = new Set(formerOf.map((r) => formerly(saved, r)));
  const doomed = saved.rules.filter((r) => prefixes.some((p) => r.tag?.startsWith(p)) || former.has(r));
  const left = saved.rules.filter((r) => isBerthChain(r.chain) && !doomed.includes(r));
  for (const r of doomed) lines[r.table].push(`-D ${r.spec}`);
  if (left.length === 0 && dropChains) {
    for (const r of saved.rules) {
      if (r.tag?.startsWith(HOOK_TAG) && !doomed.includes(r)) lines[r.table].push(`-D ${r.spec}`);
    }
    for (const t of ["filter", "nat"] as const) {
      for (const c of saved.chains[t]) if (isBerthChain(c)) lines[t].push(`-X ${c}`);
    }
  }
  return lines;
}

/** What a caller of a batch asked for: rules to add, or rules to delete (all its rules are under `prefix`). */
type Ask = { add: Rule[] } | { delete: Rule[]; prefix: string };

/**
 * The lines that do what every ask of a failed batch wanted, from one saved ruleset (as ensure and removeTagged).
 * Adds and deletes are not ordered here: one batch never holds an add and a delete under one container's prefix,
 * since a container's rules are added (run) and deleted (removal) only under that container's lock, one at a time.
 */
function repairLines(saved: Saved, asks: Ask[]): Record<Table, string[]> {
  const adds = asks.flatMap((a) => ("add" in a ? a.add : []));
  const deletes = asks.flatMap((a) => ("delete" in a ? [a] : []));
  const lines = adds.length > 0 ? ensureLines(saved, adds) : { filter: [], nat: [] };
  if (deletes.length === 0) return lines;
  // Rules added keep berth's chains in use.
  const gone = removeLines(saved, deletes.map((d) => d.prefix), deletes.flatMap((d) => d.delete), adds.length === 0);
  return { filter: [...gone.filter, ...lines.filter], nat: [...gone.nat, ...lines.nat] };
}

/** The lines of callers served by one iptables-restore, and what each asked for. */
interface Batch {
  lines: Record<Table, string[]>;
  asks: Ask[];
  /** The asks it applied (all, none, or — a rule to add that iptables refuses — the deletes). */
  applied: Promise<Set<Ask>>;
}

const ATTEMPTS = 3;

export class Iptables {
  // In-process changes are serialized; across processes a change computed from a stale view fails as a whole
  // (e.g. "-N" of a chain that now exists) and is recomputed.
  private readonly mutex = new KeyedMutex();

  constructor(private readonly host: Host) {}

  /** Adds whichever of berth's chains, hooks and the given rules are missing. */
  ensure(rules: Rule[]): Promise<void> {
    return this.apply((saved) => ensureLines(saved, rules));
  }

  /** Makes the rules tagged under tagPrefix exactly these: adds the missing ones, deletes the others. */
  sync(tagPrefix: string, rules: Rule[]): Promise<void> {
    const wanted = new Set(rules.map((r) => r.tag));
    return this.apply((saved) => {
      const lines = ensureLines(saved, rules);
      for (const r of saved.rules) {
        if (r.tag?.startsWith(tagPrefix) && !wanted.has(r.tag)) lines[r.table].push(`-D ${r.spec}`);
      }
      return lines;
    });
  }

  /**
   * Deletes every rule whose tag starts with tagPrefix. When that leaves berth's chains empty (the last network
   * is gone), the hooks and chains go too, so nothing named berth stays in iptables.
   */
  removeTagged(tagPrefix: string, formerOf: Rule[] = []): Promise<void> {
    return this.apply((saved) => removeLines(saved, [tagPrefix], formerOf));
  }

  /**
   * Appends rules known to be absent (a container's new port rules) without first reading the ruleset; if that
   * fails — a chain is missing, a rule is there after all — falls back to ensure().
   */
  async add(rules: Rule[]): Promise<void> {
    if (!(await this.restoreJoined(byTable(rules, "-A"), { add: rules }))) await this.ensure(rules);
  }

  /**
   * Deletes rules known to be present in one go; if some are not, falls back to removeTagged(tagPrefix), which
   * also takes those rules under their former tags.
   */
  async delete(rules: Rule[], tagPrefix: string): Promise<void> {
    if (!(await this.restoreJoined(byTable(rules, "-D"), { delete: rules, prefix: tagPrefix }))) await this.removeTagged(tagPrefix, rules);
  }

  /** What is missing on the host for these rules to work: berth's chains, their hooks, the rules themselves. */
  async missing(rules: Rule[]): Promise<string[]> {
    if (rules.length === 0) return [];
    const saved = parseSave(await this.host.run("iptables-save", []));
    const faults: string[] = [];
    for (const base of BASE.filter((b) => rules.some((r) => r.chain === b.chain))) {
      if (!saved.chains[base.table].has(base.chain)) {
        faults.push(`iptables chain ${base.table}/${base.chain} is missing`);
      }
      for (const h of base.hooks) {
        if (!saved.tags.has(hookTag(h.from, base.chain))) {
          faults.push(`iptables jump ${base.table}/${h.from} -> ${base.chain} is missing`);
        }
      }
    }
    for (const r of rules) {
      const found = saved.rules.find((x) => x.tag === r.tag) ?? formerly(saved, r);
      if (!found) faults.push(`iptables rule ${r.table}/${r.chain} ${r.tag} is missing`);
      else if (!sameRule(found, r)) faults.push(`iptables rule ${r.table}/${r.chain} ${r.tag} was changed: ${found.spec}`);
    }
    return faults;
  }

  private apply(plan: (saved: Saved) => Record<Table, string[]>): Promise<void> {
    return this.mutex.run("iptables", async () => {
      for (let attempt = 1; ; attempt++) {
        const lines = plan(parseSave(await this.host.run("iptables-save", [])));
        if (await this.restore(lines, attempt === ATTEMPTS)) return;
      }
    });
  }

  /** The adds and deletes asked for while the restore before them waits or runs: the next restore applies them all. */
  private joining?: Batch;

  /**
   * Applies lines in the one iptables-restore of everything added and deleted meanwhile (100 containers made at
   * once ran 100, one after another); resolves to whether this caller's were applied, else it falls back on its
   * own (ensure, removeTagged). A batch that fails applies nothing, and one bad line fails it (a rule deleted by
   * hand, or every rule by a firewall reload): then one iptables-save serves what every caller asked, in one more
   * restore, rather than each caller paying its own save and restore.
   */
  private restoreJoined(lines: Record<Table, string[]>, ask: Ask): Promise<boolean> {
    if (lines.filter.length + lines.nat.length === 0) return Promise.resolve(true);
    let batch = this.joining;
    if (!batch) {
      const made: Batch = { lines: { filter: [], nat: [] }, asks: [], applied: Promise.resolve(new Set()) };
      batch = this.joining = made;
      made.applied = this.mutex.run("iptables", async () => {
        // From here on, what is asked for goes to the next restore.
        if (this.joining === made) this.joining = undefined;
        const all = new Set(made.asks);
        if (await this.restore(made.lines)) return all;
        // A caller alone falls back as it would have; so does every caller when the repair cannot read the ruleset.
        if (made.asks.length === 1) return new Set();
        const saved = await this.host.run("iptables-save", []).catch(() => undefined);
        if (saved === undefined) return new Set();
        if (await this.restore(repairLines(parseSave(saved), made.asks))) return all;
        // A rule to add that iptables refuses fails the repair too; the deletes (read off the saved rules) are
        // repaired without the adds, whose callers each fall back alone.
        const deletes = made.asks.filter((a) => "delete" in a);
        const repaired = deletes.length > 0 && deletes.length < made.asks.length && (await this.restore(repairLines(parseSave(saved), deletes)));
        return new Set(repaired ? deletes : []);
      });
    }
    for (const t of ["filter", "nat"] as const) batch.lines[t].push(...lines[t]);
    batch.asks.push(ask);
    return batch.applied.then((applied) => applied.has(ask));
  }

  /** One iptables-restore; false if it failed (nothing of a failed table is applied), or throws when told to. */
  private async restore(lines: Record<Table, string[]>, throwOnFailure = false): Promise<boolean> {
    const input = restoreScript(lines);
    if (!input) return true;
    const args = ["-w", "--noflush"];
    const result = await this.host.tryRun("iptables-restore", args, { input });
    if (result.code === 0) return true;
    if (throwOnFailure) {
      throw new HostCommandError(`iptables-restore ${args.join(" ")} <<< ${JSON.stringify(input)}`, result);
    }
    return false;
  }
}
