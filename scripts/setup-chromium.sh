#!/usr/bin/env bash
# Install Debian's chromium (the headless browser that runs the js-libp2p
# browser peer, interop/js/browser-peer.mjs, through playwright-core) and print
# the path of its executable.
#
# Idempotent and non-interactive: does nothing when the package is installed;
# otherwise (as root) apt-get update + apt-get install -y chromium, without
# recommended packages (fonts, upower, ... are not needed headless). Never
# downloads a browser any other way (no `playwright install`).
#
# stdout: exactly one line, the executable's path (/usr/bin/chromium).
# stderr: apt's output and the browser version. Exit status non-zero on failure.
set -euo pipefail

exe=/usr/bin/chromium

installed() {
  dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" && [[ -x "$exe" ]]
}

if ! installed; then
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "setup-chromium.sh: the Debian package chromium is not installed and this is not root" \
         "(run as root, or: apt-get install chromium)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  start=$(date +%s)
  echo "setup-chromium.sh: installing chromium" >&2
  # wait for a concurrent apt/dpkg run instead of failing on its lock
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium >&2
  echo "setup-chromium.sh: installed in $(( $(date +%s) - start )) s" >&2
  if ! installed; then
    echo "setup-chromium.sh: $exe missing after apt-get install chromium" >&2
    exit 1
  fi
fi

# the Debian launcher script prints a harmless shell warning on some /dev/shm setups
version="$("$exe" --version 2>/dev/null || true)"
case "$version" in
  Chromium*) echo "setup-chromium.sh: $version" >&2 ;;
  *) echo "setup-chromium.sh: $exe --version gave: $version" >&2; exit 1 ;;
esac

echo "$exe"
