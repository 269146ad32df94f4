#!/usr/bin/env bash
# Debian packages the tests need: nftables and conntrack (network namespaces with firewalls and
# NATs), iproute2 (ip netns, veth), chromium (the headless-browser js-libp2p peer), and npm (the
# installer for Node 22 and the js-libp2p peers). Idempotent; installs only what is missing.
set -euo pipefail

wanted=(nftables conntrack iproute2 chromium)
command -v npm >/dev/null 2>&1 || wanted+=(npm)

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system.sh: missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "setup-system.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
