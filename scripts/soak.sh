#!/usr/bin/env bash
# soak.sh {short|full|load|noindex} [extra go test -args…] — the proof harness of
# internal/soak against a real Kafka broker and OpenSearch node, with the
# real nginx, HAProxy and rsyslog from scripts/install-peers.sh.
#
# short, load and noindex use the shared services of scripts/services.sh (started
# here if not running, never stopped).
#
# full starts a Kafka/OpenSearch/S3 set of its own, under its own run
# directory and ports, passes it to the harness with -services-run (so the
# broker restart and the OpenSearch outage are injected), and stops it when
# it exits, whatever the outcome. The shared services are not touched.
# Settings of that set (defaults in brackets):
#   SOAK_RUN [/tmp/trailwatch-soak-services]   its TW_RUN
#   SOAK_KAFKA_PORT [29092]  SOAK_KAFKA_CONTROLLER_PORT [29093]
#   SOAK_OPENSEARCH_PORT [29200]  SOAK_OPENSEARCH_TRANSPORT_PORT [29300]
#   SOAK_S3_PORT [29390]
# Only one full run per machine at a time (the ports are fixed).
#
# The result table is appended to $SOAK_REPORT [/tmp/trailwatch-soak.md].
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-short}
shift || true
report=${SOAK_REPORT:-/tmp/trailwatch-soak.md}

# own_services points the service scripts at the full profile's own set.
own_services() {
	export TW_RUN=${SOAK_RUN:-/tmp/trailwatch-soak-services}
	[[ $TW_RUN == /* ]] || TW_RUN=$PWD/$TW_RUN
	if [[ $TW_RUN == /tmp/trailwatch-services ]]; then
		echo "soak.sh: SOAK_RUN must not be the shared services' run directory" >&2
		exit 2
	fi
	export TW_ENV_FILE=$TW_RUN/env
	export KAFKA_PORT=${SOAK_KAFKA_PORT:-29092}
	export KAFKA_CONTROLLER_PORT=${SOAK_KAFKA_CONTROLLER_PORT:-29093}
	export KAFKA_SASL_SSL_PORT=off
	export OPENSEARCH_PORT=${SOAK_OPENSEARCH_PORT:-29200}
	export OPENSEARCH_TRANSPORT_PORT=${SOAK_OPENSEARCH_TRANSPORT_PORT:-29300}
	export OPENSEARCH_SECURE_PORT=off
	export VGW_PORT=${SOAK_S3_PORT:-29390}
}

case $mode in
short | load | noindex)
	bash scripts/services.sh start
	# shellcheck disable=SC1091
	. "${TW_RUN:-/tmp/trailwatch-services}/env"
	;;
full)
	own_services
	stop_own() { bash scripts/services.sh stop || echo "soak.sh: stopping the soak's services in $TW_RUN failed" >&2; }
	trap stop_own EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	bash scripts/services.sh start
	# shellcheck disable=SC1091
	. "$TW_RUN/env"
	;;
esac

case $mode in
short) exec go test -tags soak -run '^TestSoak$' -count=1 -timeout 10m -v ./internal/soak/ -args -profile short -report "$report" "$@" ;;
full)
	# Not exec: the EXIT trap stops the soak's own services afterwards.
	go test -tags soak -run '^TestSoak$' -count=1 -timeout 40m -v ./internal/soak/ \
		-args -profile full -services-run "$TW_RUN" -report "$report" "$@"
	;;
load) exec go test -tags soak -run '^TestLoad$' -count=1 -timeout 40m -v ./internal/soak/ -args -report "$report" "$@" ;;
noindex) exec go test -tags soak -run '^TestLoadNoIndex$' -count=1 -timeout 10m -v ./internal/soak/ -args -report "$report" "$@" ;;
*)
	echo "usage: $0 {short|full|load|noindex} [go test -args…]" >&2
	exit 2
	;;
esac
