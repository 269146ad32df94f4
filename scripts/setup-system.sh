#!/usr/bin/env bash
# Debian packages the tests need: nftables and conntrack (network namespaces with firewalls and
# NATs), iproute2 (ip netns, veth), chromium (the headless-browser js-libp2p peer), npm (the
# installer for Node 22 and the js-libp2p peers) and prometheus (the real server the watch tests
# start on loopback; promtool, which checks the shipped alerting rules, comes with it).
# Idempotent; installs only what is missing.
#
# Debian's prometheus package would start and enable its own service on install. The tests start
# their own prometheus with a generated config, so the packaged service must not run or come back
# at boot: the install runs under a policy-rc.d that forbids starting services, and the service is
# disabled afterwards.
set -euo pipefail

wanted=(nftables conntrack iproute2 chromium prometheus)
command -v npm >/dev/null 2>&1 || wanted+=(npm)

# The packaged prometheus service: stopped (in case something started it) and disabled, also when
# the package was installed before this script ran.
disable_packaged_prometheus() {
  dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q "install ok installed" || return 0
  if [ "$(id -u)" -ne 0 ]; then
    return 0
  fi
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  else
    if [ -x /etc/init.d/prometheus ]; then /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi
    if command -v deb-systemd-helper >/dev/null 2>&1; then
      deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then update-rc.d prometheus disable >/dev/null 2>&1 || true; fi
  fi
}

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  disable_packaged_prometheus
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system.sh: missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "setup-system.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive

# policy-rc.d exit 101 = "action forbidden": invoke-rc.d and deb-systemd-invoke start nothing.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then
  saved="$(mktemp)"
  cp -p "$policy" "$saved"
fi
restore_policy() {
  if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# setup-system.sh: no service starts while packages install\nexit 101\n' >"$policy"
chmod 755 "$policy"

apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
disable_packaged_prometheus
