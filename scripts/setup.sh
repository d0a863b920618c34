#!/usr/bin/env bash
# Installs what berth needs on a Debian 12 host, as root, and builds it. Safe to run again: it installs only what
# is missing. Called by the quickstart and test scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

# Host tools berth's native runtime drives (command → Debian package).
declare -A need=(
  [runc]=runc [iptables]=iptables [iptables-restore]=iptables [ip]=iproute2 [tar]=tar [mount]=mount
  [busybox]=busybox-static [curl]=curl
  # ext4 placement of container directories (chattr +T), the registry's private mount namespace (unshare).
  [chattr]=e2fsprogs [unshare]=util-linux
  # Images: overlay whiteout markers (xattrs) and the registry a Registry resource serves.
  [setfattr]=attr [getfattr]=attr [docker-registry]=docker-registry [start-stop-daemon]=dpkg
  # Builds: ADD unpacks bzip2, xz and zstd tars through these.
  [bzip2]=bzip2 [xz]=xz-utils [zstd]=zstd
  # Tests and the benchmark compare with these OCI tools; the registry's TLS test makes its certificate.
  [skopeo]=skopeo [umoci]=umoci [openssl]=openssl
  # The many-hosts tests and benchmark run one OpenSSH server per simulated host, each started by the test itself.
  [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The network benchmark measures berth against the CNI reference plugins (not on PATH).
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
# The quick start's base image is made from the static busybox (a dynamic one would not run in a bare rootfs).
if [ -x /bin/busybox ]; then
  linkage=$(LC_ALL=C ldd /bin/busybox 2>&1 || true)
  [[ $linkage == *"not a dynamic executable"* ]] || missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: berth needs root to install ${missing[*]}" >&2; exit 1; }
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No package's service may start during the install (openssh-server would start sshd on port 22): a
  # policy-rc.d refusing every start, unless the machine has its own already, removed afterwards.
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\n# berth setup: no service starts while packages install\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
  fi
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
  [ -z "$own_policy" ] || { rm -f /usr/sbin/policy-rc.d; trap - EXIT; }
  # Nor start at boot: the tests run their own sshd per simulated host; the system's stays off.
  if [[ " ${missing[*]} " == *" openssh-server "* ]]; then
    if command -v deb-systemd-helper >/dev/null; then deb-systemd-helper disable ssh.service ssh.socket >/dev/null 2>&1 || true; fi
    update-rc.d ssh disable >/dev/null 2>&1 || true
  fi
fi

# Node.js 20 or newer. Debian 12's own is 18: a newer one comes from the npm registry's node-linux-<arch> package,
# fetched with Debian's npm, and is linked as /usr/local/bin/node (ahead of /usr/bin on root's PATH).
node_major() { if command -v node >/dev/null 2>&1; then node -p 'process.versions.node.split(".")[0]'; else echo 0; fi; }
if [ "$(node_major)" -lt 20 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: Node.js 20 or newer is needed; run this as root to install it" >&2; exit 1; }
  case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) echo "setup: no Node.js package for $(uname -m)" >&2; exit 1 ;; esac
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing nodejs npm (to fetch Node.js 20)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
  fi
  echo "setup: installing Node.js 20 from the npm registry (node-linux-$arch)" >&2
  npm install --prefix /usr/local/lib/berth-node --no-save --no-audit --no-fund --loglevel=error "node-linux-$arch@20" >/dev/null
  mkdir -p /usr/local/bin
  ln -sf "/usr/local/lib/berth-node/node_modules/node-linux-$arch/bin/node" /usr/local/bin/node
  hash -r
  [ "$(node_major)" -ge 20 ] || { echo "setup: Node.js 20 or newer is needed (found $(node --version)); is /usr/local/bin on PATH?" >&2; exit 1; }
fi

# npm packages: install when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
