#!/usr/bin/env bash
# Runs the whole test suite against real services: starts a Kafka broker and
# an OpenSearch node (scripts/services.sh), runs `go test -race` on every
# package, and stops the services whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."

TW_RUN="${TW_RUN:-/tmp/trailwatch-services}"
export TW_RUN

cleanup() { bash scripts/services.sh stop >/dev/null 2>&1 || true; }
if [[ "${TW_KEEP_SERVICES:-}" != "1" ]]; then
	trap cleanup EXIT
fi

bash scripts/services.sh start
# shellcheck disable=SC1091
source "$TW_RUN/env"
export TW_TEST_KAFKA TW_TEST_OPENSEARCH TW_TEST_S3 TW_TEST_S3_ACCESS_KEY TW_TEST_S3_SECRET_KEY

go test -race -shuffle=on -timeout 20m -count=1 ${GOTESTFLAGS:-} ./... 2>&1 | tee "$TW_RUN/go-test.log"
status=${PIPESTATUS[0]}
pkgs_ok=$(grep -c '^ok ' "$TW_RUN/go-test.log" || true)
pkgs_fail=$(grep -c '^FAIL' "$TW_RUN/go-test.log" || true)
echo "packages: ${pkgs_ok} passed, ${pkgs_fail} failed"
exit "$status"
