#!/usr/bin/env bash
# Before npm pack/publish: the package ships dist/, so build it — but only when a source is newer than the last
# build (tsc rewrites every output, so one of them dates the build).
set -euo pipefail
cd "$(dirname "$0")/.."
built=dist/sdk/index.js
if [ ! -f "$built" ] || [ -n "$(find sdk provider native tsconfig.json -newer "$built" \( -name '*.ts' -o -name tsconfig.json \) -print -quit)" ]; then
  npx tsc -p tsconfig.json
fi
