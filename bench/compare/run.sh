#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: atoauth next to @atproto/oauth-client-node against one local official
# PDS. Installs the Node side (pinned in package.json) and the PDS harness, builds release
# binaries, runs both clients one after the other.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bash "$repo/interop/pds/setup.sh"
if [ ! -d "$here/node_modules/@atproto/oauth-client-node" ]; then
  (cd "$here" && npm install --ignore-scripts --no-package-lock --no-audit --no-fund)
fi
cd "$repo"
cargo build --release -p atoauth-testkit --bins
"$repo/target/release/compare" --out "$repo/BENCHMARKS.md" "$@"
