#!/usr/bin/env bash
# services.sh {start|stop|status|fetch} — the real Kafka and OpenSearch that integration tests use.
#
# start fetches both (once, sequentially, so two Maven runs never share the local
# repository at the same time), starts both in parallel, and writes an env file
# for tests to source:
#
#   . "${TW_RUN:-/tmp/trailwatch-services}/env"   # exports the two variables below
#   TW_TEST_KAFKA=127.0.0.1:19092
#   TW_TEST_OPENSEARCH=http://127.0.0.1:19200
#   TW_TEST_KAFKA_SASL_SSL=127.0.0.1:19094   (and the CA file, user, password: see kafka.sh)
#   TW_TEST_OPENSEARCH_TLS=https://127.0.0.1:19201   (a second, secured node: TLS + basic
#                       auth, with its CA file, user, password: see opensearch-secure.sh;
#                       OPENSEARCH_SECURE_PORT=off leaves it out)
#
# start is idempotent: a service that is already up and healthy is left alone.
# stop stops both and removes the env file. Settings: see kafka.sh and opensearch.sh;
# TW_ENV_FILE [$TW_RUN/env] names the env file.
set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh
TW_NAME=services.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$SCRIPT_DIR/lib.sh"
export TW_CACHE TW_RUN

ENV_FILE=${TW_ENV_FILE:-$TW_RUN/env}
KAFKA_PORT=${KAFKA_PORT:-19092}
OPENSEARCH_PORT=${OPENSEARCH_PORT:-19200}
export KAFKA_PORT OPENSEARCH_PORT

# run_both ACTION runs "kafka.sh ACTION", "opensearch.sh ACTION" and
# "opensearch-secure.sh ACTION" in parallel and fails, naming each service that
# failed, if any does.
run_both() {
	local action=$1 kpid opid failed=()
	"$SCRIPT_DIR/kafka.sh" "$action" &
	kpid=$!
	"$SCRIPT_DIR/opensearch.sh" "$action" &
	opid=$!
	# The secured OpenSearch node joins every action (opensearch-secure.sh);
	# OPENSEARCH_SECURE_PORT=off skips its start, never its stop.
	local spid=""
	if [[ $action == stop || ${OPENSEARCH_SECURE_PORT:-} != off ]]; then
		"$SCRIPT_DIR/opensearch-secure.sh" "$action" &
		spid=$!
	fi
	wait "$kpid" || failed+=(kafka)
	wait "$opid" || failed+=(opensearch)
	[[ -z $spid ]] || wait "$spid" || failed+=(opensearch-secure)
	((${#failed[@]} == 0)) || tw_die "$action failed for: ${failed[*]} (see the lines above)"
}

start() {
	local t0
	t0=$(tw_now)
	mkdir -p "$TW_RUN"
	"$SCRIPT_DIR/kafka.sh" fetch || tw_die "fetching Kafka failed"
	"$SCRIPT_DIR/opensearch.sh" fetch || tw_die "fetching OpenSearch failed"
	if [[ ${OPENSEARCH_SECURE_PORT:-} != off ]]; then
		"$SCRIPT_DIR/opensearch-secure.sh" fetch || tw_die "fetching the secured OpenSearch failed"
	fi
	"$SCRIPT_DIR/versitygw.sh" fetch || tw_die "building versitygw failed"
	run_both start
	"$SCRIPT_DIR/versitygw.sh" start || tw_die "starting versitygw failed"
	mkdir -p "$(dirname "$ENV_FILE")"
	cat >"$ENV_FILE.tmp" <<-EOF
		# Written by trailwatch scripts/services.sh; removed by "services.sh stop".
		export TW_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
		export TW_TEST_OPENSEARCH=http://127.0.0.1:$OPENSEARCH_PORT
	EOF
	cat "$TW_RUN/versitygw.env" >>"$ENV_FILE.tmp"
	# Kafka's SASL_SSL listener (absent when KAFKA_SASL_SSL_PORT=off, or when
	# a broker started before kafka.sh had it is still running).
	if [[ -f $TW_RUN/kafka/sasl-ssl.env ]]; then
		cat "$TW_RUN/kafka/sasl-ssl.env" >>"$ENV_FILE.tmp"
	fi
	# The secured OpenSearch node (absent when OPENSEARCH_SECURE_PORT=off).
	if [[ -f $TW_RUN/opensearch-secure.env ]]; then
		cat "$TW_RUN/opensearch-secure.env" >>"$ENV_FILE.tmp"
	fi
	mv "$ENV_FILE.tmp" "$ENV_FILE"
	tw_log "both services ready in $(tw_elapsed "$t0"); env file: $ENV_FILE"
}

stop() {
	rm -f "$ENV_FILE"
	"$SCRIPT_DIR/versitygw.sh" stop || true
	run_both stop
}

status() {
	local rc=0
	"$SCRIPT_DIR/kafka.sh" status || rc=$?
	"$SCRIPT_DIR/opensearch.sh" status || rc=$?
	if [[ ${OPENSEARCH_SECURE_PORT:-} != off ]]; then
		"$SCRIPT_DIR/opensearch-secure.sh" status || rc=$?
	fi
	"$SCRIPT_DIR/versitygw.sh" status || rc=$?
	return "$rc"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
fetch)
	"$SCRIPT_DIR/kafka.sh" fetch
	"$SCRIPT_DIR/opensearch.sh" fetch
	if [[ ${OPENSEARCH_SECURE_PORT:-} != off ]]; then
		"$SCRIPT_DIR/opensearch-secure.sh" fetch
	fi
	"$SCRIPT_DIR/versitygw.sh" fetch
	;;
*)
	echo "usage: $0 {start|stop|status|fetch}" >&2
	exit 2
	;;
esac
