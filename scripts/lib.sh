# shellcheck shell=bash
# Shared helpers for kafka.sh, opensearch.sh and services.sh. Sourced, never run.
#
# Layout:
#   $TW_CACHE (default ~/.cache/trailwatch)   jars fetched from Maven Central, kept between runs
#   $TW_RUN   (default /tmp/trailwatch-services)  pid files, logs, data; removed by "stop"

TW_CACHE=${TW_CACHE:-${HOME:-/root}/.cache/trailwatch}
TW_RUN=${TW_RUN:-/tmp/trailwatch-services}
# Relative paths would break once a JVM resolves them; anchor them at the caller's cwd.
[[ $TW_CACHE == /* ]] || TW_CACHE=$PWD/$TW_CACHE
[[ $TW_RUN == /* ]] || TW_RUN=$PWD/$TW_RUN
TW_MAVEN_DEPENDENCY_PLUGIN=${TW_MAVEN_DEPENDENCY_PLUGIN:-org.apache.maven.plugins:maven-dependency-plugin:3.8.1}

tw_log() { printf '%s: %s\n' "$TW_NAME" "$*" >&2; }

tw_die() {
	printf '%s: error: %s\n' "$TW_NAME" "$*" >&2
	exit 1
}

# tw_now prints the current time in milliseconds.
tw_now() { date +%s%3N; }

# tw_elapsed START_MS prints the seconds since START_MS, e.g. "7.3s".
tw_elapsed() {
	local ms=$(($(tw_now) - $1))
	printf '%d.%ds' "$((ms / 1000))" "$(((ms % 1000) / 100))"
}

# tw_java_major JAVA prints the major version of the given java binary (17, 21, 25...).
tw_java_major() {
	"$1" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1
}

# tw_port_open PORT succeeds when something accepts TCP connections on 127.0.0.1:PORT.
tw_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# tw_pid_alive PIDFILE MARKER succeeds when PIDFILE names a live process whose
# command line contains MARKER (guards against a recycled pid).
# /proc/PID/cmdline reads empty for an instant while a process execs (the
# shell into nohup, nohup into the service) and for good once it is a
# zombie: an empty read is retried for half a second before it counts.
tw_pid_alive() {
	local pidfile=$1 marker=$2 pid cmd="" i
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	for ((i = 0; i < 10; i++)); do
		[[ -r /proc/$pid/cmdline ]] || return 1
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
		[[ -n $cmd ]] && break
		sleep 0.05
	done
	[[ $cmd == *"$marker"* ]]
}

# tw_wait_exec PIDFILE MARKER waits until the process just started in the
# background shows MARKER in its command line, or is gone: until the forked
# shell has exec'd the program, the pid looks like another process and
# tw_pid_alive would call a healthy start dead. On a loaded machine the fork
# can wait seconds for a CPU, so the wait is bounded at 60 s, not at a guess
# of how long an exec takes.
tw_wait_exec() {
	local pid i
	[[ -f $1 ]] || return 0
	pid=$(<"$1")
	for ((i = 0; i < 600; i++)); do
		tw_pid_alive "$1" "$2" && return 0
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 0 # the caller's own liveness check reports a real failure
}

# tw_wait_ready WHAT READY TIMEOUT INTERVAL CMD... polls CMD every INTERVAL
# seconds until it succeeds, for the process the caller just started
# ($PIDFILE, $MARKER, logging to $LOGFILE). If the process exits, or CMD
# still fails after TIMEOUT seconds, it prints the log's tail, stops what is
# left and dies: "WHAT exited during startup" or "WHAT did not READY within".
# shellcheck disable=SC2153 # PIDFILE, MARKER and LOGFILE are the caller's
tw_wait_ready() {
	local what=$1 ready=$2 timeout=$3 interval=$4
	shift 4
	local deadline=$((SECONDS + timeout))
	until "$@"; do
		if ! tw_pid_alive "$PIDFILE" "$MARKER"; then
			tw_log_tail "$LOGFILE"
			rm -f "$PIDFILE"
			tw_die "$what exited during startup (log: $LOGFILE)"
		fi
		if ((SECONDS >= deadline)); then
			tw_log_tail "$LOGFILE"
			tw_stop_pid "$PIDFILE" "$MARKER" "$what"
			tw_die "$what did not $ready within ${timeout}s (log: $LOGFILE)"
		fi
		sleep "$interval"
	done
}

# tw_stop_pid PIDFILE MARKER WHAT sends SIGTERM, waits up to 30 s, then SIGKILL.
tw_stop_pid() {
	local pidfile=$1 marker=$2 what=$3 pid i
	if ! tw_pid_alive "$pidfile" "$marker"; then
		rm -f "$pidfile"
		return 0
	fi
	pid=$(<"$pidfile")
	tw_log "stopping $what (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		tw_log "$what (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	kill -0 "$pid" 2>/dev/null && tw_die "$what (pid $pid) is still running after SIGKILL"
	rm -f "$pidfile"
}

# tw_log_tail FILE prints the last lines of a log to stderr, for failure reports.
tw_log_tail() {
	local file=$1
	if [[ -s $file ]]; then
		printf '%s: ---- last 40 lines of %s ----\n' "$TW_NAME" "$file" >&2
		tail -n 40 "$file" | cut -c1-400 >&2
		printf '%s: ---- end of %s ----\n' "$TW_NAME" "$file" >&2
	else
		printf '%s: (log %s is empty or missing)\n' "$TW_NAME" "$file" >&2
	fi
}

# tw_fetch DIR DEPENDENCIES_XML makes DIR/lib hold the runtime jars of the given
# Maven <dependency> elements. Maven runs only when DIR/.complete is missing, so a
# second run takes no network. Concurrent callers on the same DIR are serialised.
tw_fetch() {
	local dir=$1 deps=$2
	[[ -f $dir/.complete ]] && return 0
	command -v mvn >/dev/null 2>&1 || tw_die "mvn not found: Maven is needed once to fetch jars into $dir"
	command -v flock >/dev/null 2>&1 || tw_die "flock not found (util-linux)"
	mkdir -p "$dir"
	local rc=0
	(
		flock 9
		[[ -f $dir/.complete ]] && exit 0
		cat >"$dir/pom.xml" <<-EOF
			<?xml version="1.0" encoding="UTF-8"?>
			<!-- Generated by trailwatch scripts/lib.sh: the jars a test service needs. -->
			<project xmlns="http://maven.apache.org/POM/4.0.0">
			  <modelVersion>4.0.0</modelVersion>
			  <groupId>io.trailwatch.services</groupId>
			  <artifactId>$(basename "$dir")</artifactId>
			  <version>0</version>
			  <packaging>pom</packaging>
			  <dependencies>
			$deps
			  </dependencies>
			</project>
		EOF
		rm -rf "$dir/lib.tmp"
		tw_log "fetching jars into $dir (Maven Central, once)"
		# shellcheck disable=SC2086 # TW_MAVEN_ARGS is a list of extra mvn arguments
		if ! mvn -B -q -f "$dir/pom.xml" ${TW_MAVEN_ARGS:-} \
			"$TW_MAVEN_DEPENDENCY_PLUGIN:copy-dependencies" \
			-DoutputDirectory="$dir/lib.tmp" -DincludeScope=runtime >"$dir/mvn.log" 2>&1; then
			grep -E 'ERROR|Could not' "$dir/mvn.log" | head -n 20 | cut -c1-400 >&2 || true
			exit 1
		fi
		rm -rf "${dir:?}/lib"
		mv "$dir/lib.tmp" "$dir/lib"
		touch "$dir/.complete"
	) 9>"$dir.lock" || rc=$?
	((rc == 0)) || tw_die "Maven could not fetch the jars for $(basename "$dir") (full log: $dir/mvn.log)"
}

# tw_status NAME WHERE PIDFILE MARKER prints whether a service is running
# (exit 0) or not (exit 3).
tw_status() {
	if tw_pid_alive "$3" "$4"; then
		echo "$1: running, pid $(<"$3"), $2"
		return 0
	fi
	echo "$1: not running"
	return 3
}

# tw_main VERB runs the calling service script's start, stop, status or
# fetch function.
tw_main() {
	case ${1:-} in
	start | stop | status | fetch) "$1" ;;
	*)
		echo "usage: $0 {start|stop|status|fetch}" >&2
		exit 2
		;;
	esac
}
