#!/usr/bin/env bash
# Installs what berth needs on a Debian 12 host, as root, and builds it. Safe to run again: it installs only what
# is missing. Called by the quickstart and test scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

# Host tools berth's native runtime drives (command → Debian package).
declare -A need=(
  [runc]=runc [iptables]=iptables [iptables-restore]=iptables [ip]=iproute2 [tar]=tar [mount]=mount
  [busybox]=busybox-static [curl]=curl
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

command -v node >/dev/null 2>&1 || { echo "setup: Node.js 20 or newer is needed (node not found)" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "setup: Node.js 20 or newer is needed (found $(node --version))" >&2; exit 1; }

# npm packages: install when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
