#!/usr/bin/env bash
# versitygw.sh {start|stop|status|fetch} — a real S3-compatible server (Versity's S3
# gateway, posix backend) for the ingest/s3 tests.
#
# fetch builds versitygw once with `go install` into $TW_CACHE/bin (a few minutes the
# first time, nothing afterwards). start runs it on 127.0.0.1:$VGW_PORT with a fresh
# posix root under $TW_RUN/versitygw and writes an env file for tests to source:
#
#   . "$TW_RUN/versitygw.env"
#   TW_TEST_S3=http://127.0.0.1:19390
#   TW_TEST_S3_ACCESS_KEY=... TW_TEST_S3_SECRET_KEY=...
#
# start is idempotent; stop stops it and removes its data and the env file.
#
# Environment (defaults in brackets):
#   VGW_VERSION [latest]   VGW_PORT [19390; 19300 is OpenSearch's transport port]   VGW_START_TIMEOUT [30] seconds
#   VGW_ACCESS_KEY [trailwatch]   VGW_SECRET_KEY [trailwatch-secret]
#   TW_CACHE [~/.cache/trailwatch]   TW_RUN [/tmp/trailwatch-services]
set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh
TW_NAME=versitygw.sh
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

VGW_VERSION=${VGW_VERSION:-latest}
VGW_PORT=${VGW_PORT:-19390}
VGW_START_TIMEOUT=${VGW_START_TIMEOUT:-30}
VGW_ACCESS_KEY=${VGW_ACCESS_KEY:-trailwatch}
VGW_SECRET_KEY=${VGW_SECRET_KEY:-trailwatch-secret}

BIN=$TW_CACHE/bin/versitygw
RUN_DIR=$TW_RUN/versitygw
PIDFILE=$RUN_DIR/versitygw.pid
LOGFILE=$RUN_DIR/versitygw.log
ENV_FILE=$TW_RUN/versitygw.env
# The posix root is unique to this run directory, so it marks our process.
MARKER=$RUN_DIR/root

fetch() {
	[[ -x $BIN ]] && return 0
	command -v go >/dev/null 2>&1 || tw_die "go not found: needed once to build versitygw into $TW_CACHE/bin"
	mkdir -p "$TW_CACHE/bin"
	tw_log "building versitygw@$VGW_VERSION into $TW_CACHE/bin (once; takes a few minutes)"
	# Outside any module, so the repository's go.mod is neither read nor touched.
	(cd / && GOBIN=$TW_CACHE/bin GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION") ||
		tw_die "go install github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION failed"
}

write_env() {
	cat >"$ENV_FILE.tmp" <<-EOF
		# Written by trailwatch scripts/versitygw.sh; removed by "versitygw.sh stop".
		export TW_TEST_S3=http://127.0.0.1:$VGW_PORT
		export TW_TEST_S3_ACCESS_KEY=$VGW_ACCESS_KEY
		export TW_TEST_S3_SECRET_KEY=$VGW_SECRET_KEY
	EOF
	mv "$ENV_FILE.tmp" "$ENV_FILE"
}

start() {
	mkdir -p "$TW_RUN"
	if tw_pid_alive "$PIDFILE" "$MARKER" && tw_port_open "$VGW_PORT"; then
		write_env
		tw_log "already running (pid $(<"$PIDFILE")) on 127.0.0.1:$VGW_PORT"
		return 0
	fi
	stop_process
	fetch
	tw_port_open "$VGW_PORT" && tw_die "port 127.0.0.1:$VGW_PORT is already in use by another process (set VGW_PORT)"
	local t0
	t0=$(tw_now)
	rm -rf "$RUN_DIR"
	mkdir -p "$RUN_DIR/root" "$RUN_DIR/sidecar"
	# --sidecar keeps object metadata (etags) in files: tmpfs and some
	# overlay file systems refuse user extended attributes.
	ROOT_ACCESS_KEY_ID=$VGW_ACCESS_KEY ROOT_SECRET_ACCESS_KEY=$VGW_SECRET_KEY \
		nohup "$BIN" --port "127.0.0.1:$VGW_PORT" --quiet \
		posix --sidecar "$RUN_DIR/sidecar" "$RUN_DIR/root" </dev/null >"$LOGFILE" 2>&1 &
	echo "$!" >"$PIDFILE"
	tw_log "started pid $!; waiting for 127.0.0.1:$VGW_PORT"
	tw_wait_exec "$PIDFILE" "$MARKER"
	tw_wait_ready versitygw "listen on 127.0.0.1:$VGW_PORT" "$VGW_START_TIMEOUT" 0.1 tw_port_open "$VGW_PORT"
	write_env
	tw_log "ready on 127.0.0.1:$VGW_PORT in $(tw_elapsed "$t0"); env file: $ENV_FILE"
}

stop_process() {
	tw_stop_pid "$PIDFILE" "$MARKER" "versitygw"
}

stop() {
	rm -f "$ENV_FILE"
	stop_process
	rm -rf "$RUN_DIR"
}

status() {
	if tw_pid_alive "$PIDFILE" "$MARKER" && tw_port_open "$VGW_PORT"; then
		tw_log "running (pid $(<"$PIDFILE")) on 127.0.0.1:$VGW_PORT"
		return 0
	fi
	tw_log "not running"
	return 1
}

tw_main "$@"
