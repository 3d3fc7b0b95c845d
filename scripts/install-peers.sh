#!/usr/bin/env bash
# Installs the real peer programs the tests drive (Debian packages): web
# servers and proxies whose real log output the normalizers are tested on,
# syslog daemons, load tools. Only what is missing is installed; services
# are not left running (tests start their own instances on loopback).
set -euo pipefail
want=(nginx apache2 haproxy caddy rsyslog)
missing=()
for p in "${want[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	echo "install-peers.sh: all present (${want[*]})"
	exit 0
fi
echo "install-peers.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the packages' own services from starting on install.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for s in nginx apache2 haproxy caddy rsyslog; do
	(service "$s" stop || systemctl stop "$s") >/dev/null 2>&1 || true
done
echo "install-peers.sh: done"
