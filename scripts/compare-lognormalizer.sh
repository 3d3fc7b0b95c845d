#!/usr/bin/env bash
# Compares `trailwatch parse --source nginx` with liblognorm's lognormalizer
# (the engine behind rsyslog's mmnormalize) on the same nginx combined log.
#
#   scripts/compare-lognormalizer.sh [LINES]      (default 1000000)
#
# Generates LINES deterministic nginx combined lines, builds trailwatch into a
# temp dir, checks that both tools parse every line, then times each one
# reading the file and writing JSON to /dev/null, with hyperfine if present
# (else wall clock, best of RUNS). Prints lines/s for each and the ratio, by
# wall time and by CPU time (user+sys): on a shared, loaded machine the CPU
# time is the steadier measure of the work each tool does per line.
# lognormalizer is single-threaded, so trailwatch is timed with GOMAXPROCS=1
# for the ratio, and with all cores for reference.
#
# Env: RUNS (default 5), KEEP=1 keeps the temp dir.
# Needs: go, python3, lognormalizer (apt-get install -y liblognorm-utils);
# hyperfine optional (apt-get install -y hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${1:-1000000}
RUNS=${RUNS:-5}
die() {
	echo "compare-lognormalizer: $*" >&2
	exit 1
}
[[ $LINES =~ ^[1-9][0-9]*$ ]] || die "LINES must be a positive integer, got '$LINES'"
command -v lognormalizer >/dev/null || die "lognormalizer not found: apt-get install -y liblognorm-utils"
command -v python3 >/dev/null || die "python3 not found"

tmp=$(mktemp -d /tmp/tw-compare.XXXXXX)
if [[ ${KEEP:-} == 1 ]]; then
	echo "keeping $tmp"
else
	trap 'rm -rf "$tmp"' EXIT
fi

# The log: IPv4 clients (the rule below is ipv4-only), users or "-", API
# paths with query strings, some empty referers, a handful of user agents.
python3 - "$LINES" >"$tmp/access.log" <<'PY'
import random, sys, datetime as dt
n = int(sys.argv[1])
rnd = random.Random(42)
t0 = dt.datetime(2026, 11, 20, 9, 0, 0)
users = ["alice", "bob", "carol", "svc-billing", "-", "-", "-"]
methods = ["GET"] * 6 + ["POST", "PUT", "DELETE"]
paths = ["/api/v1/orders", "/api/v1/orders/{id}", "/api/v1/customers/{id}?expand=addresses",
         "/api/v1/catalog?page={n}&size=50", "/healthz", "/api/v2/search?q=shoes&sort=price"]
statuses = [200] * 12 + [201, 204, 301, 400, 401, 403, 404, 429, 500, 502]
agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
          "okhttp/4.12.0", "python-requests/2.32.3", "Go-http-client/2.0", "curl/8.11.1"]
refs = ["-", "-", "", "https://shop.example.com/cart"]
w = sys.stdout.write
for i in range(n):
    t = t0 + dt.timedelta(milliseconds=i * 7)
    ip = f"{rnd.choice((10, 172, 192, 203))}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
    p = rnd.choice(paths).replace("{id}", str(rnd.randrange(1, 99999))).replace("{n}", str(rnd.randrange(1, 40)))
    w(f'{ip} - {rnd.choice(users)} [{t.strftime("%d/%b/%Y:%H:%M:%S")} +0000] '
      f'"{rnd.choice(methods)} {p} HTTP/1.1" {rnd.choice(statuses)} {rnd.randrange(0, 20000)} '
      f'"{rnd.choice(refs)}" "{rnd.choice(agents)}"\n')
PY

# liblognorm v2 rulebase for nginx's default "combined" log_format:
# $remote_addr - $remote_user [$time_local] "$request" $status
# $body_bytes_sent "$http_referer" "$http_user_agent"
cat >"$tmp/nginx.rb" <<'RB'
version=2
rule=nginx,access:%client_ip:ipv4% - %user:word% [%time:char-to:]%] "%method:word% %url:word% HTTP/%http_version:char-to:"%" %status:number% %bytes:number% %referrer:op-quoted-string% %user_agent:op-quoted-string%
RB

go build -o "$tmp/trailwatch" ./cmd/trailwatch
tw="$tmp/trailwatch"
size=$(wc -c <"$tmp/access.log")
echo "input: $LINES lines, $((size / 1048576)) MiB ($tmp/access.log)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), $(lognormalizer -V 2>&1 | head -n1)"

# Both must parse every line, or the timing compares different work.
twsum=$("$tw" parse --source nginx -q <"$tmp/access.log" 2>&1 >/dev/null | tail -n1)
lnsum=$(lognormalizer -r "$tmp/nginx.rb" -e json -H -U <"$tmp/access.log" 2>&1 >/dev/null | tail -n1)
echo "trailwatch:    $twsum"
echo "lognormalizer: $lnsum"
[[ $twsum == *", 0 unparseable"* ]] || die "trailwatch did not parse every line"
[[ $lnsum == *", 0 unparsed"* ]] || die "lognormalizer did not parse every line"

cmd_ln="lognormalizer -r $tmp/nginx.rb -e json <$tmp/access.log >/dev/null"
cmd_tw1="GOMAXPROCS=1 $tw parse --source nginx -q <$tmp/access.log >/dev/null 2>&1"
cmd_twn="$tw parse --source nginx -q <$tmp/access.log >/dev/null 2>&1"

# per command, in the order given: "wall_seconds cpu_seconds"
declare -a secs
if command -v hyperfine >/dev/null; then
	hyperfine --shell=bash --warmup 1 --runs "$RUNS" --export-json "$tmp/hf.json" \
		-n lognormalizer "$cmd_ln" -n "trailwatch GOMAXPROCS=1" "$cmd_tw1" -n "trailwatch all cores" "$cmd_twn" >&2
	mapfile -t secs < <(python3 -c 'import json,sys; [print(r["mean"], r["user"] + r["system"]) for r in json.load(open(sys.argv[1]))["results"]]' "$tmp/hf.json")
	how="hyperfine, mean of $RUNS runs after 1 warmup"
else
	best() { # "wall cpu" seconds of the fastest of RUNS runs
		python3 - "$1" "$RUNS" <<'PY'
import os, subprocess, sys, time
best = None
for _ in range(int(sys.argv[2])):
    c0, t0 = os.times(), time.perf_counter()
    subprocess.run(["bash", "-c", sys.argv[1]], check=True)
    t1, c1 = time.perf_counter(), os.times()
    run = (t1 - t0, (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system))
    best = run if best is None or run[0] < best[0] else best
print(*best)
PY
	}
	secs=("$(best "$cmd_ln")" "$(best "$cmd_tw1")" "$(best "$cmd_twn")")
	how="best of $RUNS runs"
fi

python3 - "$LINES" "$how" "${secs[@]}" <<'PY'
import sys
n, how = int(sys.argv[1]), sys.argv[2]
(lw, lc), (w1, c1), (wn, cn) = [tuple(map(float, a.split())) for a in sys.argv[3:6]]
print(f"\nresults ({how}); load average now {open('/proc/loadavg').read().split()[0]}:")
print(f"  {'':32s} {'wall':>8s} {'lines/s':>10s} {'cpu':>8s} {'lines/cpu-s':>12s}")
for name, w, c in (("lognormalizer -e json", lw, lc), ("trailwatch parse, GOMAXPROCS=1", w1, c1),
                   ("trailwatch parse, all cores", wn, cn)):
    print(f"  {name:32s} {w:7.3f}s {n / w / 1e3:9.0f}k {c:7.3f}s {n / c / 1e3:11.0f}k")
print(f"  ratio trailwatch(GOMAXPROCS=1) / lognormalizer: {lw / w1:.2f}x by wall time, {lc / c1:.2f}x by CPU time")
PY
