#!/usr/bin/env bash
# Runs every Fuzz target briefly (FUZZTIME, default 10s each; FUZZMINTIME,
# default 5s, bounds the minimisation of each new input, which otherwise may
# stall a target whose reference decoder is slow to refuse some inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-10s}"
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
	pkg="./$(dirname "${f#./}")"
	grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r fn; do
		echo "== $pkg $fn"
		go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINTIME:-5s}" "$pkg"
	done
done
