import { z } from "zod";
import { absolutePath, replaces } from "./fields";

// ssh://[user@]host[:port]: a host name, an IPv4 address or a bracketed IPv6 one. A name never starts with '-', so
// it cannot reach ssh as an option.
const SSH_URL = /^ssh:\/\/(?:([A-Za-z_][A-Za-z0-9_.-]{0,31})@)?([A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?\/?$/;

/** The parts of a `host` value, or undefined when it is not ssh://[user@]host[:port]. */
export function parseSshUrl(url: string): { user?: string; host: string; port?: number } | undefined {
  const m = SSH_URL.exec(url);
  if (!m || (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535))) return undefined;
  return { user: m[1], host: m[2].replace(/^\[|\]$/g, ""), port: m[3] === undefined ? undefined : Number(m[3]) };
}

const sshUrl = z.string().superRefine((value, ctx) => {
  if (parseSshUrl(value)) return;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1];
  const message =
    scheme && scheme !== "ssh"
      ? `berth reaches another machine over SSH only (there is no berth daemon to dial over ${scheme}://): write ssh://[user@]host[:port], e.g. ssh://root@10.0.0.101`
      : `must be ssh://[user@]host[:port], e.g. ssh://root@10.0.0.101 or ssh://deploy@web1:2222; leave host out for this machine`;
  ctx.addIssue({ code: "custom", message });
});

// ssh -o options that would turn the session into something other than a pipe to `berth agent`, or accept any host
// key: the issue's promise is host keys checked, never silently skipped.
const REFUSED_OPTIONS: Record<string, (value: string) => string | undefined> = {
  stricthostkeychecking: (v) =>
    /^(no|off)$/i.test(v) ? "would accept any host key: add the host's key to known_hosts (check its fingerprint first), or use StrictHostKeyChecking=accept-new for a first connection" : undefined,
  userknownhostsfile: (v) => (v.trim() === "/dev/null" ? "would forget every host key, so none is ever checked: name a known_hosts file" : undefined),
  remotecommand: () => "replaces the `berth agent` command berth runs on the host",
  requesttty: (v) => (/^(yes|force)$/i.test(v) ? "would put a terminal between berth and its agent" : undefined),
  sessiontype: () => "replaces the `berth agent` session berth runs on the host",
  forkafterauthentication: () => "would detach ssh from berth",
};

const sshOption = z.string().superRefine((value, ctx) => {
  const m = /^([A-Za-z][A-Za-z0-9]*)[= ](.+)$/.exec(value);
  if (!m || /[\r\n\0]/.test(value)) {
    ctx.addIssue({ code: "custom", message: "must be an OpenSSH option as Key=Value, as after ssh -o (e.g. ConnectTimeout=5 or ProxyJump=bastion)" });
    return;
  }
  const why = REFUSED_OPTIONS[m[1].toLowerCase()]?.(m[2]);
  if (why) ctx.addIssue({ code: "custom", message: `${m[1]}=${m[2]} ${why}` });
});

const keyPath = z.string().regex(/^(~\/|\/)./, { error: "must be a path such as ~/.ssh/berth or /root/.ssh/berth" });

/**
 * A berth provider's configuration: `berth:*` stack config for the default provider, or `new berth.Provider(...)`.
 * With no `host`, it is this machine.
 */
export const ProviderArgs = z
  .strictObject({
    /**
     * The machine to manage, as `ssh://[user@]host[:port]` (Docker's `-H`/DOCKER_HOST shape); default this machine.
     * berth runs `berth agent` there over OpenSSH, with your ~/.ssh/config, agent and known_hosts. Changing it
     * replaces every resource this provider manages (they are made on the new host; the old ones are deleted on the
     * old one).
     */
    host: replaces(sshUrl.optional()),
    /** The private key ssh uses for `host` (`ssh -i`; `~` is your home directory); default ssh's own choice. */
    identityFile: keyPath.optional(),
    /** More OpenSSH options for `host`, each as after `ssh -o` ("ConnectTimeout=5", "ProxyJump=bastion"). */
    sshOptions: z.array(sshOption).optional(),
    /**
     * Where berth keeps images, volumes and container records on the host (default $BERTH_ROOT or /var/lib/berth;
     * on another host, its agent's own). Changing it replaces every resource this provider manages.
     */
    root: replaces(absolutePath.optional()),
    /**
     * Volatile host-wide state such as published-port claims (default $BERTH_RUN or /run/berth), on this machine
     * only. Changing it replaces every resource this provider manages.
     */
    runDir: replaces(absolutePath.optional()),
  })
  .superRefine((args, ctx) => {
    if (args.host !== undefined) {
      if (args.runDir !== undefined) ctx.addIssue({ code: "custom", path: ["runDir"], message: `is this machine's; on ${args.host} berth's agent uses its own (its BERTH_RUN): drop runDir` });
      return;
    }
    for (const key of ["identityFile", "sshOptions"] as const) {
      if (args[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: "only applies to another machine: set host to ssh://[user@]host[:port], or drop it" });
    }
  });
