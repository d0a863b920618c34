#!/usr/bin/env bash
# A long fuzz run of berth's tar reader and layer unpacker (CI runs a short one): ./scripts/fuzz-tar.sh [ITERATIONS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export BERTH_FUZZ_ITERATIONS=${1:-20000}
[ -n "${2:-}" ] && export BERTH_FUZZ_SEED=$2
exec npx vitest run test/host/tar-fuzz.test.ts
