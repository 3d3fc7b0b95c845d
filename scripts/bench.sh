#!/usr/bin/env bash
# Runs the hot-path benchmarks and prints a short report with the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCHTIME="${BENCHTIME:-1s}"
out="${BENCH_OUT:-/tmp/trailwatch-bench.txt}"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
GOMAXPROCS=1 go test -run '^$' -bench . -benchmem -benchtime "$BENCHTIME" -cpu 1 ./normalize/... ./detect/... ./ingest/... ./outputs/file/... ./internal/kafka/ | tee "$out"
# The detect stage's handlers in process (no broker): CPU per event of a full poll.
GOMAXPROCS=1 go test -run '^$' -bench 'RecentIDs|DetectHandle|DetectRepartition' -benchmem -benchtime "$BENCHTIME" -cpu 1 ./internal/stages/ | tee -a "$out"
echo
echo "report (targets from the issues):"
awk '/^Benchmark/ { name=$1; for (i=2;i<=NF;i++) if ($(i+1) ~ /\/s$/ && $(i+1) != "MB/s") printf "  %-60s %14s %s\n", name, $i, $(i+1) }' "$out"
