#!/usr/bin/env bash
# Set-up, then every test: engine unit tests and real-host tests (containers, namespaces, bridges, iptables).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
report=$(mktemp /tmp/berth-vitest.XXXXXX.json)
trap 'rm -f "$report"' EXIT
status=0
# The tests' own types (vitest runs them untyped): test/tsconfig.json.
npx tsc -p test || status=1
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
# The engine's unit tests on the newer Nodes users run (fetched from the npm registry, cached).
scripts/unit-newer-node.sh || status=1
# One closing line any CI can read.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$report" || true
exit $status
