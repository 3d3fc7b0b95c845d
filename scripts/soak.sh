#!/usr/bin/env bash
# soak.sh {short|full|load} [extra go test -args…] — the proof harness of
# internal/soak against the real Kafka broker and OpenSearch node that
# scripts/services.sh starts (started here if not running), with the real
# nginx, HAProxy and rsyslog from scripts/install-peers.sh.
# The result table is appended to $SOAK_REPORT [/tmp/trailwatch-soak.md].
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-short}
shift || true
bash scripts/services.sh start
# shellcheck disable=SC1091
. "${TW_RUN:-/tmp/trailwatch-services}/env"
report=${SOAK_REPORT:-/tmp/trailwatch-soak.md}
case $mode in
short) exec go test -tags soak -run '^TestSoak$' -count=1 -timeout 10m -v ./internal/soak/ -args -profile short -report "$report" "$@" ;;
full) exec go test -tags soak -run '^TestSoak$' -count=1 -timeout 40m -v ./internal/soak/ -args -profile full -report "$report" "$@" ;;
load) exec go test -tags soak -run '^TestLoad$' -count=1 -timeout 40m -v ./internal/soak/ -args -report "$report" "$@" ;;
*)
	echo "usage: $0 {short|full|load} [go test -args…]" >&2
	exit 2
	;;
esac
