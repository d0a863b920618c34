// `berth host check [ssh://…]`: what a machine lacks for berth, each finding with its fix — the address, the SSH
// connection (reachable, host key known, signed in), berth there and its protocol, then what its agent reports of
// the host (root, tools, kernel). Changes nothing.
import type { HostCheck } from "../../native/runtime";
import { checkProviderConfig, type ProviderConfig } from "../resources";
import { openRuntime, THIS_MACHINE } from "../runtimes";
import { list, str, UsageError, type Command, type FlagSpec } from "./args";

/** The day-2 commands' -H/--host (before the command, as Docker's global flag, or after it). */
export const HOST_FLAG: FlagSpec = { name: "host", short: "H", value: "ssh://[user@]host[:port]", help: "act on that machine over SSH (default $BERTH_HOST, else this one)" };

/** A remote runtime's failure kinds (native/remote's RemoteError.reason) as the stage of the check that failed. */
const STAGE: Record<string, string> = {
  url: "address",
  unreachable: "reachable",
  auth: "signed in",
  "host-key": "host key",
  missing: "berth",
  version: "berth version",
  protocol: "berth protocol",
  lost: "connection",
};

const MARK: Record<HostCheck["level"], string> = { ok: "ok  ", warn: "warn", error: "FAIL" };

function lines(checks: HostCheck[]): string[] {
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks.map((c) => `  ${MARK[c.level]}  ${c.name.padEnd(width)}  ${c.detail}${c.fix ? `\n        ${" ".repeat(width)}  fix: ${c.fix}` : ""}`);
}

/**
 * Another machine as the CLI reaches it: the address, and the key and ssh options from the flags given, else from
 * $BERTH_IDENTITY_FILE and $BERTH_SSH_OPTIONS (a JSON list, or one option) — the stack config keys' names — else
 * what ~/.ssh/config says.
 */
function checkSsh(given: { host: string; identityFile?: string; sshOptions?: string[] }) {
  const identityFile = given.identityFile ?? (process.env.BERTH_IDENTITY_FILE || undefined);
  const sshOptions = given.sshOptions ?? (process.env.BERTH_SSH_OPTIONS || undefined);
  const inputs = { host: given.host, ...(identityFile ? { identityFile } : {}), ...(sshOptions ? { sshOptions } : {}) };
  return checkProviderConfig(inputs);
}

/** The configuration of a day-2 command's `--host`/$BERTH_HOST (`from` names where it came from); a bad one is a usage error. */
export function sshConfig(host: string, from: string): ProviderConfig {
  const { config, failures } = checkSsh({ host });
  if (failures.length > 0) throw new UsageError(`${from} ${host}: ${failures.map((f) => (f.property === "host" ? f.reason : `${f.property}: ${f.reason}`)).join("; ")}`, "");
  return config;
}

/** `berth host check`; `chosen` is the machine `berth -H URL` named, if any. */
export const hostCommand = (chosen: () => string | undefined): Command => ({
  name: "host check",
  usage: "[ssh://[user@]host[:port]]",
  summary: "Report what a machine (default -H or $BERTH_HOST, else this one) lacks for berth, with the fix for each.",
  flags: [
    { name: "identity-file", short: "i", value: "FILE", help: "the private key for ssh (as ssh -i)" },
    { name: "ssh-option", short: "o", value: "KEY=VALUE", repeat: true, help: "an OpenSSH option (as ssh -o; repeatable)" },
  ],
  async run(p) {
    if (p.args.length > 1) throw new UsageError(`host check takes one address, got ${p.args.length}`, "See 'berth host check --help'.");
    const host = p.args[0] ?? chosen() ?? (process.env.BERTH_HOST || undefined);
    const options = list(p, "ssh-option");
    if (!host && (str(p, "identity-file") !== undefined || options.length > 0)) {
      throw new UsageError("-i and -o are for a remote host: give its ssh://[user@]host[:port]", "See 'berth host check --help'.");
    }
    const inputs = { host, identityFile: str(p, "identity-file"), sshOptions: options.length > 0 ? options : undefined };
    console.log(host ?? THIS_MACHINE);
    const { config, failures } = host ? checkSsh(inputs) : { config: {}, failures: [] };
    if (failures.length > 0) {
      for (const f of failures) console.log(`  FAIL  ${f.property === "host" ? "address" : f.property}  ${f.reason}`);
      return 1;
    }
    const rt = openRuntime(config);
    try {
      const checks = await rt.system.check();
      // A remote runtime answering at all means ssh connected, the host key was known, and berth there speaks
      // this berth's protocol.
      const connection: HostCheck[] = host ? [{ name: "connection", level: "ok", detail: "reachable, host key known, signed in; berth answers in this berth's protocol" }] : [];
      const all = [...connection, ...checks];
      for (const line of lines(all)) console.log(line);
      const failed = all.filter((c) => c.level === "error").length;
      const where = host ? "there" : "here";
      console.log(failed === 0 ? `\nberth can run ${where}.` : `\n${failed} problem${failed === 1 ? "" : "s"}: berth cannot run ${where} until fixed.`);
      return failed === 0 ? 0 : 1;
    } catch (err) {
      const e = err as Error & { reason?: string };
      const stage = (e.reason && STAGE[e.reason]) ?? "connection";
      console.log(`  FAIL  ${stage}  ${e.message}`);
      return 1;
    } finally {
      await rt.close();
    }
  },
});
