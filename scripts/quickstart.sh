#!/usr/bin/env bash
# Set-up, then deploy examples/quickstart on this host and say how to reach it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/busybox-rootfs.sh examples/quickstart/busybox-rootfs.tar
bin/berth up examples/quickstart --yes
echo
echo "The quick start is running: curl http://127.0.0.1:8080/"
echo "Tear it down with: bin/berth destroy examples/quickstart --yes"
