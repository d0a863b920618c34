// `berth system df` and `berth system prune [-a] [-f]`, as Docker prints them.
import * as readline from "node:readline/promises";
import type { Runtime } from "../../native/runtime";
import { needArgs, on, type Command } from "./args";
import { humanSize, table } from "./format";

export const SYSTEM_USAGE = `
  system df                     disk used by images, containers, volumes and the build cache
  system prune [-a] [-f]        remove stopped containers and unused build cache (-a: all build cache, and every image no container uses)`;

async function confirmed(all: boolean): Promise<boolean> {
  const what = ["all stopped containers", all ? "all images without at least one container associated to them" : "all dangling images", all ? "all build cache" : "unused build cache"];
  console.log(`WARNING! This will remove:\n${what.map((w) => `  - ${w}`).join("\n")}\n`);
  if (!process.stdin.isTTY) {
    console.error("error: -f (--force) must be passed in to proceed when running in non-interactive mode");
    return false;
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question("Are you sure you want to continue? [y/N] ");
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

export async function systemCommand(rt: Runtime, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const unknown = rest.find((a) => !["-a", "--all", "-f", "--force"].includes(a));
  if ((sub !== "df" && sub !== "prune") || (sub === "df" && rest.length > 0) || unknown) {
    console.error(`error: ${unknown ? `unknown flag ${unknown}` : `unknown command "system ${sub ?? ""}"`}\n\nusage:${SYSTEM_USAGE}`);
    return 2;
  }
  if (sub === "df") {
    const rows = (await rt.system.df()).map((u) => {
      const pct = u.size > 0 ? ` (${Math.round((u.reclaimable / u.size) * 100)}%)` : "";
      return [u.type, String(u.total), String(u.active), humanSize(u.size), `${humanSize(u.reclaimable)}${pct}`];
    });
    console.log(table([["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], ...rows]));
    return 0;
  }
  const all = rest.includes("-a") || rest.includes("--all");
  if (!rest.includes("-f") && !rest.includes("--force") && !(await confirmed(all))) return 1;
  const report = await rt.system.prune({ all });
  if (report.containers.length > 0) console.log(`Deleted Containers:\n${report.containers.join("\n")}\n`);
  if (report.images.length > 0) console.log(`Deleted Images:\n${report.images.map((r) => `untagged: ${r}`).join("\n")}\n`);
  if (report.buildCache.length > 0) console.log(`Deleted build cache objects:\n${report.buildCache.join("\n")}\n`);
  console.log(`Total reclaimed space: ${humanSize(report.reclaimedBytes)}`);
  return 0;
}

/** The group as the CLI's dispatch table takes it (flags declared, so help and unknown-flag errors are generated). */
export function systemCommands(runtime: () => Runtime): Command[] {
  return [
    { name: "system df", summary: "Disk used by images, containers, volumes and the build cache.", run: async (p) => (needArgs(p, "system df", 0), systemCommand(runtime(), ["df"])) },
    {
      name: "system prune",
      summary: "Remove stopped containers and the build cache (-a: and every image no container uses); what a stack owns stays.",
      flags: [
        { name: "all", short: "a", help: "also every image no container uses" },
        { name: "force", short: "f", help: "do not ask for confirmation" },
      ],
      run: async (p) => (needArgs(p, "system prune", 0), systemCommand(runtime(), ["prune", ...(on(p, "all") ? ["-a"] : []), ...(on(p, "force") ? ["-f"] : [])])),
    },
  ];
}
