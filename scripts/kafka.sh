#!/usr/bin/env bash
# kafka.sh {start|stop|status|fetch} — a real single-node Apache Kafka broker for tests and CI.
#
# Runs Kafka in KRaft combined mode (broker + controller in one JVM) from the
# org.apache.kafka:kafka_2.13 jars on Maven Central, fetched once into
# $TW_CACHE/kafka-$KAFKA_VERSION and reused. Data, logs and the pid file live in
# $TW_RUN/kafka; "stop" removes them, so every start is a fresh, empty cluster.
#
# Environment (defaults in brackets):
#   KAFKA_VERSION [4.4.0]           KAFKA_PORT [19092]      KAFKA_CONTROLLER_PORT [19093]
#   KAFKA_SASL_SSL_PORT [19094; "" or "off": no SASL_SSL listener]
#   KAFKA_SASL_USER [trailwatch]    (its SCRAM-SHA-512 password is drawn at random)
#   KAFKA_HEAP [512m]               KAFKA_START_TIMEOUT [120] seconds
#   KAFKA_JAVA [java from JAVA_HOME or PATH; needs Java 17+]
#   TW_CACHE [~/.cache/trailwatch]  TW_RUN [/tmp/trailwatch-services]
#   TW_MAVEN_ARGS                   extra arguments for the one-time mvn fetch
#
# start waits until a real Kafka admin client lists topics through the broker,
# and exits non-zero with the log tail when that does not happen in time.
#
# Besides PLAINTEXT on KAFKA_PORT, the broker serves SASL_SSL on
# KAFKA_SASL_SSL_PORT: TLS with a server certificate for 127.0.0.1/localhost
# signed by a CA generated at start (openssl; $RUN_DIR/tls/ca.pem), and
# SCRAM-SHA-512 with one user whose credentials are written into the
# metadata log when the storage is formatted. start checks that listener with
# a real admin client too, then writes $RUN_DIR/sasl-ssl.env for tests:
#   TW_TEST_KAFKA_SASL_SSL=127.0.0.1:19094       TW_TEST_KAFKA_CA_FILE=.../ca.pem
#   TW_TEST_KAFKA_SASL_USER=trailwatch           TW_TEST_KAFKA_SASL_PASSWORD=<random>
set -euo pipefail

# shellcheck disable=SC2034 # read by lib.sh
TW_NAME=kafka.sh
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
KAFKA_SASL_SSL_PORT=${KAFKA_SASL_SSL_PORT-19094}
[[ $KAFKA_SASL_SSL_PORT == off ]] && KAFKA_SASL_SSL_PORT=
KAFKA_SASL_USER=${KAFKA_SASL_USER:-trailwatch}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
LOG4J_VERSION=${KAFKA_LOG4J_VERSION:-2.25.5}

CACHE_DIR=$TW_CACHE/kafka-$KAFKA_VERSION
RUN_DIR=$TW_RUN/kafka
PIDFILE=$RUN_DIR/kafka.pid
LOGFILE=$RUN_DIR/kafka.log
MARKER="-Dtrailwatch.service=kafka:$RUN_DIR"
TLS_DIR=$RUN_DIR/tls
SASL_ENV=$RUN_DIR/sasl-ssl.env

pick_java() {
	local java=${KAFKA_JAVA:-}
	if [[ -z $java ]]; then
		if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
			java=$JAVA_HOME/bin/java
		else
			java=$(command -v java || true)
		fi
	fi
	[[ -n $java && -x $java ]] || tw_die "no java found (set KAFKA_JAVA or JAVA_HOME; Kafka $KAFKA_VERSION needs Java 17+)"
	local major
	major=$(tw_java_major "$java")
	if [[ -z $major ]] || ((major < 17)); then
		tw_die "$java is Java '${major:-unknown}'; Kafka $KAFKA_VERSION needs Java 17+ (set KAFKA_JAVA)"
	fi
	JAVA=$java
}

fetch() {
	tw_fetch "$CACHE_DIR" "
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>"
}

# admin_list_topics SECONDS [PORT [CLIENT_PROPERTIES]] runs a real Kafka admin
# client (kafka-topics --list) against the broker's listener on PORT
# [KAFKA_PORT], with extra client settings from the file CLIENT_PROPERTIES
# (security); it succeeds once the broker answers metadata requests there.
admin_list_topics() {
	local secs=$1 port=${2:-$KAFKA_PORT} extra=${3:-}
	((secs < 5)) && secs=5
	printf 'request.timeout.ms=3000\ndefault.api.timeout.ms=%d\n' "$((secs * 1000))" >"$RUN_DIR/admin.properties"
	[[ -n $extra ]] && cat "$extra" >>"$RUN_DIR/admin.properties"
	timeout "$((secs + 10))" "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 \
		-Dlog4j2.configurationFile="$RUN_DIR/log4j2-tools.properties" \
		-cp "$CACHE_DIR/lib/*" org.apache.kafka.tools.TopicCommand \
		--bootstrap-server "127.0.0.1:$port" --command-config "$RUN_DIR/admin.properties" --list
}

# make_tls writes a fresh CA and a server certificate for 127.0.0.1 and
# localhost signed by it into $TLS_DIR. server-keystore.pem (unencrypted
# PKCS#8 key, then the certificate) is a Kafka PEM keystore.
make_tls() {
	command -v openssl >/dev/null 2>&1 || tw_die "openssl not found: needed for the SASL_SSL listener (or set KAFKA_SASL_SSL_PORT=off)"
	mkdir -p "$TLS_DIR"
	(
		cd "$TLS_DIR"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
			-subj "/CN=trailwatch test Kafka CA" -addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign
		openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 30 -extfile server.ext
		openssl pkcs8 -topk8 -nocrypt -in server.key -out server.pk8
		cat server.pk8 server.pem >server-keystore.pem
		rm -f server.csr server.ext server.key ca.key
	) >"$RUN_DIR/tls.log" 2>&1 || {
		tw_log_tail "$RUN_DIR/tls.log"
		tw_die "openssl could not make the SASL_SSL certificates"
	}
	SASL_PASSWORD=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
	# The admin client that checks the listener: SCRAM over TLS, trusting the CA.
	cat >"$RUN_DIR/sasl-client.properties" <<-EOF
		security.protocol=SASL_SSL
		sasl.mechanism=SCRAM-SHA-512
		sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_SASL_USER" password="$SASL_PASSWORD";
		ssl.truststore.type=PEM
		ssl.truststore.location=$TLS_DIR/ca.pem
	EOF
}

write_config() {
	cat >"$RUN_DIR/server.properties" <<-EOF
		# Generated by trailwatch scripts/kafka.sh: single-node KRaft test broker.
		process.roles=broker,controller
		node.id=1
		controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
		listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT${KAFKA_SASL_SSL_PORT:+,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT}
		advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT${KAFKA_SASL_SSL_PORT:+,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT}
		controller.listener.names=CONTROLLER
		inter.broker.listener.name=PLAINTEXT
		listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
		log.dirs=$RUN_DIR/data
		auto.create.topics.enable=true
		num.partitions=3
		default.replication.factor=1
		min.insync.replicas=1
		offsets.topic.replication.factor=1
		offsets.topic.num.partitions=10
		transaction.state.log.replication.factor=1
		transaction.state.log.min.isr=1
		transaction.state.log.num.partitions=5
		share.coordinator.state.topic.replication.factor=1
		share.coordinator.state.topic.min.isr=1
		group.initial.rebalance.delay.ms=0
		num.network.threads=2
		num.io.threads=4
		log.segment.bytes=16777216
	EOF
	if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
		cat >>"$RUN_DIR/server.properties" <<-EOF
			# SASL_SSL: TLS (PEM keystore) + SCRAM-SHA-512; users come from "format --add-scram".
			listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
			listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
			listener.name.sasl_ssl.ssl.keystore.type=PEM
			listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/server-keystore.pem
		EOF
	fi
	cat >"$RUN_DIR/log4j2.properties" <<-'EOF'
		# Generated by trailwatch scripts/kafka.sh: broker logs to stdout, redirected to kafka.log.
		appender.out.type=Console
		appender.out.name=STDOUT
		appender.out.layout.type=PatternLayout
		appender.out.layout.pattern=[%d] %p %m (%c)%n
		rootLogger.level=INFO
		rootLogger.appenderRef.out.ref=STDOUT
		logger.state.name=state.change.logger
		logger.state.level=WARN
		logger.authorizer.name=kafka.authorizer.logger
		logger.authorizer.level=WARN
	EOF
	cat >"$RUN_DIR/log4j2-tools.properties" <<-'EOF'
		# Generated by trailwatch scripts/kafka.sh: command-line tools log warnings to stderr.
		appender.err.type=Console
		appender.err.name=STDERR
		appender.err.target=SYSTEM_ERR
		appender.err.layout.type=PatternLayout
		appender.err.layout.pattern=[%d] %p %m (%c)%n
		rootLogger.level=WARN
		rootLogger.appenderRef.err.ref=STDERR
	EOF
}

# random_cluster_id prints a Kafka cluster id: 16 random bytes, URL-safe base64,
# unpadded. An id starting with "-" would be parsed as an option, so draw again.
random_cluster_id() {
	local id=-
	while [[ $id == -* ]]; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	done
	printf '%s' "$id"
}

start() {
	if tw_pid_alive "$PIDFILE" "$MARKER"; then
		pick_java
		if admin_list_topics 10 >/dev/null 2>&1; then
			tw_log "already running (pid $(<"$PIDFILE")) on 127.0.0.1:$KAFKA_PORT"
			return 0
		fi
		tw_log "running (pid $(<"$PIDFILE")) but not answering on 127.0.0.1:$KAFKA_PORT; restarting it"
		stop
	fi
	local t0
	t0=$(tw_now)
	pick_java
	fetch
	tw_port_open "$KAFKA_PORT" && tw_die "port 127.0.0.1:$KAFKA_PORT is already in use by another process (set KAFKA_PORT)"
	tw_port_open "$KAFKA_CONTROLLER_PORT" &&
		tw_die "controller port 127.0.0.1:$KAFKA_CONTROLLER_PORT is already in use by another process (set KAFKA_CONTROLLER_PORT)"
	[[ -n $KAFKA_SASL_SSL_PORT ]] && tw_port_open "$KAFKA_SASL_SSL_PORT" &&
		tw_die "SASL_SSL port 127.0.0.1:$KAFKA_SASL_SSL_PORT is already in use by another process (set KAFKA_SASL_SSL_PORT, or off)"

	rm -rf "$RUN_DIR"
	mkdir -p "$RUN_DIR/data"
	local scram=()
	if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
		make_tls
		scram=(--add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$SASL_PASSWORD]")
	fi
	write_config

	local cluster_id
	cluster_id=$(random_cluster_id)
	if ! "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$RUN_DIR/log4j2-tools.properties" \
		-cp "$CACHE_DIR/lib/*" kafka.tools.StorageTool format \
		--cluster-id="$cluster_id" --config "$RUN_DIR/server.properties" "${scram[@]}" >"$RUN_DIR/format.log" 2>&1; then
		tw_log_tail "$RUN_DIR/format.log"
		tw_die "kafka.tools.StorageTool could not format $RUN_DIR/data"
	fi

	# started: the listener is open and the broker says it has started.
	# shellcheck disable=SC2317 # called by tw_wait_ready
	started() { tw_port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$LOGFILE"; }
	nohup "$JAVA" "$MARKER" -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$RUN_DIR/log4j2.properties" -Dkafka.logs.dir="$RUN_DIR" \
		-cp "$CACHE_DIR/lib/*" kafka.Kafka "$RUN_DIR/server.properties" \
		</dev/null >"$LOGFILE" 2>&1 &
	echo "$!" >"$PIDFILE"
	tw_log "started pid $! (Kafka $KAFKA_VERSION, cluster id $cluster_id); waiting for 127.0.0.1:$KAFKA_PORT"
	tw_wait_exec "$PIDFILE" "$MARKER"

	# Cheap wait for the listener, then one real admin-client metadata round trip.
	local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
	tw_wait_ready Kafka start "$KAFKA_START_TIMEOUT" 0.25 started
	local left=$((deadline - SECONDS))
	if ! admin_list_topics "$left" >"$RUN_DIR/ready.log" 2>&1; then
		tw_log_tail "$RUN_DIR/ready.log"
		tw_log_tail "$LOGFILE"
		tw_stop_pid "$PIDFILE" "$MARKER" "Kafka"
		tw_die "Kafka's port is open but an admin client could not list topics through 127.0.0.1:$KAFKA_PORT"
	fi
	if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
		left=$((deadline - SECONDS))
		if ! admin_list_topics "$left" "$KAFKA_SASL_SSL_PORT" "$RUN_DIR/sasl-client.properties" >"$RUN_DIR/ready-sasl.log" 2>&1; then
			tw_log_tail "$RUN_DIR/ready-sasl.log"
			tw_log_tail "$LOGFILE"
			tw_stop_pid "$PIDFILE" "$MARKER" "Kafka"
			tw_die "an admin client could not list topics through SASL_SSL 127.0.0.1:$KAFKA_SASL_SSL_PORT"
		fi
		cat >"$SASL_ENV" <<-EOF
			# Written by trailwatch scripts/kafka.sh: the SASL_SSL listener (TLS + SCRAM-SHA-512).
			export TW_TEST_KAFKA_SASL_SSL=127.0.0.1:$KAFKA_SASL_SSL_PORT
			export TW_TEST_KAFKA_CA_FILE=$TLS_DIR/ca.pem
			export TW_TEST_KAFKA_SASL_USER=$KAFKA_SASL_USER
			export TW_TEST_KAFKA_SASL_PASSWORD=$SASL_PASSWORD
		EOF
		tw_log "SASL_SSL (SCRAM-SHA-512) on 127.0.0.1:$KAFKA_SASL_SSL_PORT; client settings in $SASL_ENV"
	fi
	tw_log "ready on 127.0.0.1:$KAFKA_PORT in $(tw_elapsed "$t0")"
}

stop() {
	tw_stop_pid "$PIDFILE" "$MARKER" "Kafka"
	rm -rf "$RUN_DIR"
}

status() { tw_status kafka "bootstrap 127.0.0.1:$KAFKA_PORT" "$PIDFILE" "$MARKER"; }

tw_main "$@"
