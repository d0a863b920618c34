// Which host URLs and `ssh -o` options a berth host connection takes (pure: the Provider's schema checks them at
// preview, the remote client again before it runs ssh). An option may come from another resource's output, so none may run a
// command on this machine, turn host key checks off, or make the session something other than a pipe to
// `berth agent`.

/** A user or host name: never an ssh option (a leading "-"), nor anything a shell would read. */
const SSH_NAME = "[A-Za-z0-9_][A-Za-z0-9._-]*";

// ssh://[user@]host[:port]: a host name, an IPv4 address or a bracketed IPv6 one. ssh puts the host into a
// ProxyCommand of ~/.ssh/config as %h, which a shell runs.
const SSH_URL = /^ssh:\/\/(?:([A-Za-z_][A-Za-z0-9_.-]{0,31})@)?([A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?\/?$/;

/** The parts of a `host` value, or undefined when it is not ssh://[user@]host[:port]. */
export function parseSshUrl(url: string): { user?: string; host: string; port?: number } | undefined {
  const m = SSH_URL.exec(url);
  if (!m || (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535))) return undefined;
  return { user: m[1], host: m[2].replace(/^\[|\]$/g, ""), port: m[3] === undefined ? undefined : Number(m[3]) };
}

const IPV6 = "\\[[0-9a-fA-F:.]+\\]";
/** ssh builds ProxyJump's command, and a ProxyCommand of ~/.ssh/config, from these names, then runs it with a shell. */
const NAMES: Record<string, string> = {
  hostname: SSH_NAME,
  user: SSH_NAME,
  proxyjump: `(?:ssh://)?(?:${SSH_NAME}@)?(?:${SSH_NAME}|${IPV6})(?::\\d{1,5})?`,
};

const HOST_KEYS = "berth never skips host key checks: add the host's key to known_hosts (check its fingerprint first, then ssh-keyscan)";
const COMMAND = "runs a command on this machine: put it in ~/.ssh/config under a Host entry for this host (berth's ssh reads it), or use ProxyJump for a bastion";
const SESSION = "would make the session something other than a pipe to `berth agent`";
// The agent needs none; ForwardAgent would lend the remote host your ssh keys, a forward would open ports.
const FORWARD = "forwards something between the hosts that berth's session does not use: put it in ~/.ssh/config under a Host entry if you mean it";
const on = (v: string) => (/^(yes|true|ask|point-to-point|ethernet)$/i.test(v) || v.startsWith("/") || v.startsWith("$") ? FORWARD : undefined);

const REFUSED: Record<string, (value: string) => string | undefined> = {
  // ssh's own spellings: yes/no may also be true/false; accept-new takes any key it has not seen.
  stricthostkeychecking: (v) => (/^(no|off|false|accept-new)$/i.test(v) ? `would accept any host key; ${HOST_KEYS}` : undefined),
  userknownhostsfile: (v) => (v === "/dev/null" ? `would forget every host key, so none is ever checked; ${HOST_KEYS}` : undefined),
  proxycommand: () => COMMAND,
  localcommand: () => COMMAND,
  permitlocalcommand: () => COMMAND,
  knownhostscommand: () => COMMAND,
  // Each loads a shared library named by the value into ssh: code run on this machine.
  pkcs11provider: () => COMMAND,
  securitykeyprovider: () => COMMAND,
  // A control socket would send berth's session through (or lend it to) another ssh's connection.
  controlmaster: () => SESSION,
  controlpath: () => SESSION,
  remotecommand: () => `replaces the \`berth agent\` command berth runs on the host`,
  requesttty: (v) => (/^(yes|force)$/i.test(v) ? "would put a terminal between berth and its agent" : undefined),
  sessiontype: () => SESSION,
  forkafterauthentication: () => "would detach ssh from berth",
  forwardagent: on,
  forwardx11: on,
  forwardx11trusted: on,
  tunnel: on,
  localforward: () => FORWARD,
  remoteforward: () => FORWARD,
  dynamicforward: () => FORWARD,
};

/** What is wrong with one sshOptions entry ("Key=value", as after ssh -o), or undefined when berth takes it. */
export function sshOptionProblem(option: string): { hostKeys: boolean; message: string } | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+)(.*?)\s*$/.exec(option);
  if (!m || m[2] === "" || /[\0\r\n]/.test(option)) {
    return { hostKeys: false, message: "must be an OpenSSH option as Key=Value, as after ssh -o (e.g. ConnectTimeout=5 or ProxyJump=bastion)" };
  }
  const key = m[1].toLowerCase();
  const value = m[2].replace(/^"(.*)"$/, "$1");
  const said = `${m[1]}=${m[2]}`;
  if (Object.hasOwn(NAMES, key) && !new RegExp(`^${NAMES[key]}(?:,${NAMES[key]})*$`, "i").test(value)) {
    return { hostKeys: false, message: `${said}: ${m[1]} takes [user@]host[:port] names of letters, digits, '.', '_' and '-' (not first); an alias with other characters goes in ~/.ssh/config` };
  }
  const why = Object.hasOwn(REFUSED, key) ? REFUSED[key](value) : undefined;
  return why === undefined ? undefined : { hostKeys: /host key/.test(why), message: `${said} ${why}` };
}
