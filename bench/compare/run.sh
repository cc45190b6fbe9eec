#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: atoauth next to @atproto/oauth-client-node against one local official
# PDS (compare), then `atoauth serve` next to a TypeScript BFF (compare-bff; needs wrk, and
# PostgreSQL and Redis for the store rows). Installs the Node side (pinned in package.json) and
# the PDS harness, builds release binaries, runs each side one after the other.
#   bash bench/compare/run.sh [--seconds S]     (both)
#   BENCH=bff bash bench/compare/run.sh          (only the BFF section)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bash "$repo/interop/pds/setup.sh"
if [ ! -d "$here/node_modules/@atproto/oauth-client-node" ] || [ ! -d "$here/node_modules/express" ]; then
  (cd "$here" && npm install --ignore-scripts --no-package-lock --no-audit --no-fund)
fi
cd "$repo"
cargo build --release -p atoauth-cli -p atoauth-testkit --bins
if [ "${BENCH:-all}" != bff ]; then
  "$repo/target/release/compare" --out "$repo/BENCHMARKS.md" "$@"
fi
"$repo/target/release/compare-bff" --out "$repo/BENCHMARKS.md"
