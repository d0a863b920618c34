import { z } from "zod";
import { absolutePath, replaces } from "./fields";
import { parseSshUrl, sshOptionProblem } from "../../native/remote/ssh-options";

export { parseSshUrl };

const sshUrl = z.string().superRefine((value, ctx) => {
  if (parseSshUrl(value)) return;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1];
  const message =
    scheme && scheme !== "ssh"
      ? `berth reaches another machine over SSH only (there is no berth daemon to dial over ${scheme}://): write ssh://[user@]host[:port], e.g. ssh://root@10.0.0.101`
      : `must be ssh://[user@]host[:port], e.g. ssh://root@10.0.0.101 or ssh://deploy@web1:2222; leave host out for this machine`;
  ctx.addIssue({ code: "custom", message });
});

// Checked here at preview and again by the remote client: one rule, in native/remote/ssh-options.ts.
const sshOption = z.string().superRefine((value, ctx) => {
  const problem = sshOptionProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem.message });
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
