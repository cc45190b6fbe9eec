#!/usr/bin/env bash
# The browser benchmark: atoauth-browser next to @atproto/oauth-client-browser (pinned in
# package.json, bundled with esbuild), in the same Chromium against the same official PDS.
# Builds both pages (atoauth-browser with the wasm-release profile), then rewrites the browser
# section of BENCHMARKS.md.   bash bench/compare-browser/run.sh [--runs N]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bash "$repo/interop/pds/setup.sh"
if [ ! -d "$here/node_modules/@atproto/oauth-client-browser" ]; then
  (cd "$here" && npm install --no-package-lock --no-audit --no-fund)
fi
"$here/node_modules/.bin/esbuild" "$here/ts/app.js" --bundle --minify --format=esm \
  --platform=browser --target=es2022 --outfile="$here/ts/dist/app.js"
cd "$repo"
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld \
  cargo build -p atoauth-browser --profile wasm-release --target wasm32-unknown-unknown \
  -Zbuild-std=std,panic_abort --target-dir target/wasm
wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$here/ours/pkg" \
  target/wasm/wasm32-unknown-unknown/wasm-release/atoauth_browser.wasm
cargo build --release -p atoauth-cli -p atoauth-testkit --bin atoauth --bin compare-browser
"$repo/target/release/compare-browser" --out "$repo/BENCHMARKS.md" "$@"
