#!/usr/bin/env bash
# Debian packages the fault lab (p2pdiag/lab, tests/lab, `p2pdiag lab`) needs:
#   iproute2      ip netns, veth, bridge
#   nftables      the routers' NAT and firewall rules
#   conntrack     `conntrack -F` after a router's rules change
#   coturn        the lab's STUN/TURN server (turnserver) and turnutils_natdiscovery
#   iputils-ping  ping between lab hosts
#   procps        sysctl inside each namespace
#
# Idempotent and non-interactive: does nothing when every package is installed;
# otherwise (as root) apt-get update + apt-get install -y of the missing ones, without
# recommended packages. Debian's coturn package ships a service, but with no systemd on
# these machines it never starts: the lab runs `turnserver -c FILE` itself, inside a
# network namespace.
#
# stdout: nothing. stderr: apt's output. Exit status non-zero on failure.
set -euo pipefail

wanted=(iproute2 nftables conntrack coturn iputils-ping procps)

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
  echo "setup-lab.sh: missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
echo "setup-lab.sh: installing ${missing[*]}" >&2
# wait for a concurrent apt/dpkg run (another setup script) instead of failing on its lock
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >&2
echo "setup-lab.sh: installed in $(( $(date +%s) - start )) s" >&2

for exe in ip nft conntrack turnserver turnutils_natdiscovery ping sysctl tc; do
  if ! command -v "$exe" >/dev/null 2>&1; then
    echo "setup-lab.sh: $exe missing after apt-get install ${missing[*]}" >&2
    exit 1
  fi
done
