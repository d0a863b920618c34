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
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
fi

command -v node >/dev/null 2>&1 || { echo "setup: Node.js 20 or newer is needed (node not found)" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "setup: Node.js 20 or newer is needed (found $(node --version))" >&2; exit 1; }

# npm packages: install when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
