#!/usr/bin/env bash
# The soak of tests/bench/run soak. Lamplighter's local proxy (lamplighter-bench-proxy) carries
# WATCHES open watch streams and a steady rate of GET requests for SECONDS. The script prints
# the failures the client counted and how much the proxy's resident memory grew after the warm-up.
#
# Usage: tests/bench/soak.sh BUILD_DIR [--seconds N] [--watches N] [--rate N] [--warmup N]
#                                      [--valgrind]
# With --valgrind the proxy runs under valgrind's memcheck, which reports leaks when the proxy
# ends. The load is then lighter by default (100 watches, 20 requests per second), because every
# instruction runs many times slower under memcheck. Called by tests/bench/run, which builds BUILD_DIR.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
program=tests/bench/soak.sh
fail() {
    echo "$program: $*" >&2
    exit 1
}
[ $# -ge 1 ] || fail "usage: $program BUILD_DIR [--seconds N] [--watches N] [--rate N] [--warmup N] [--valgrind]"
build=$1
shift

seconds=60
warmup=10
watches=
rate=
valgrind=
# The upstream sends every watch one event this often, so the watches carry data throughout.
event_seconds=5
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --watches) watches=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --valgrind) valgrind=1; shift ;;
        *) fail "unknown option $1." ;;
    esac
done
watches=${watches:-$([ -n "$valgrind" ] && echo 100 || echo 1000)}
rate=${rate:-$([ -n "$valgrind" ] && echo 20 || echo 200)}
for value in "$seconds" "$watches" "$rate" "$warmup"; do
    [[ "$value" =~ ^[0-9]+$ ]] || fail "\"$value\" is not a whole number."
done
[ "$seconds" -gt "$warmup" ] || fail "--seconds ($seconds) must be longer than --warmup ($warmup)."
[ "$seconds" -ge $((event_seconds * 3)) ] || fail "--seconds must be at least $((event_seconds * 3))."
if [ -n "$valgrind" ]; then
    command -v valgrind >/dev/null || fail "--valgrind needs valgrind. Install the valgrind package."
fi

bench_proxy="$build/tests/bench/lamplighter-bench-proxy"
[ -x "$bench_proxy" ] || fail "$bench_proxy is missing. Run: cmake --build $build --target lamplighter-bench-proxy"

# Each watch takes two sockets in the proxy and one in the client.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((watches * 2 + 256)) ]; then
    ulimit -n $((watches * 2 + 256)) || fail "cannot raise the open file limit to $((watches * 2 + 256))."
fi

work=$(mktemp -d /tmp/lamplighter-soak.XXXXXX)
pids=()
cleanup() {
    local status=$? pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" = 0 ]; then
        rm -rf "$work"
    else
        echo "$program: logs kept in $work" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to LIMIT seconds for FILE to be non-empty.
wait_for_file() {
    local file=$1 what=$2 limit=$3 attempt
    for attempt in $(seq $((limit * 10))); do
        [ -s "$file" ] && return 0
        sleep 0.1
    done
    fail "$what did not start within $limit s. See the logs in $work."
}
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

sh "$repo/tests/fixtures/make-test-pki.sh" "$work/pki" >/dev/null
# The tokens are random for each run and reach the processes through the environment only.
session_key=$(openssl rand -hex 32)
id_token=$(openssl rand -hex 48)

SOAK_ID_TOKEN=$id_token node "$here/soak-upstream.mjs" "$work/pki/apiserver.crt" \
    "$work/pki/apiserver.key" "$work/upstream.port" "$event_seconds" $((seconds * 4 + 600)) \
    >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_for_file "$work/upstream.port" "the upstream (soak-upstream.mjs)" 10

proxy_command=("$bench_proxy")
startup_limit=10
if [ -n "$valgrind" ]; then
    proxy_command=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
                   --errors-for-leak-kinds=definite,indirect --log-file="$work/valgrind.log"
                   "$bench_proxy")
    startup_limit=120
fi
LAMPLIGHTER_BENCH_SESSION_KEY=$session_key LAMPLIGHTER_BENCH_ID_TOKEN=$id_token \
    "${proxy_command[@]}" --upstream "https://127.0.0.1:$(cat "$work/upstream.port")" \
    --ca "$work/pki/ca.crt" --port-file "$work/proxy.port" \
    --certificate-file "$work/proxy.crt" >"$work/proxy.log" 2>&1 &
proxy_pid=$!
pids+=($proxy_pid)
wait_for_file "$work/proxy.port" "lamplighter-bench-proxy" "$startup_limit"

SOAK_AUTHORIZATION="Bearer $session_key" node "$here/soak-client.mjs" \
    "https://127.0.0.1:$(cat "$work/proxy.port")/clusters/bench" "$work/proxy.crt" \
    "$watches" "$rate" "$warmup" "$seconds" "$event_seconds" >"$work/client.out" 2>"$work/client.log" &
client_pid=$!
pids+=($client_pid)

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "load: $watches watches (an event every $event_seconds s) and $rate GET requests per second for $seconds s"
# The RSS is read at the end of the warm-up and at the end of the load.
while ! grep -qs '^warm$' "$work/client.out"; do
    kill -0 "$client_pid" 2>/dev/null ||
        fail "soak-client.mjs ended before its warm-up did. See $work/client.log."
    sleep 0.2
done
rss_warm=$(rss_kib "$proxy_pid")
wait "$client_pid" || fail "soak-client.mjs failed. See $work/client.log."
rss_end=$(rss_kib "$proxy_pid")
summary=$(grep '^{' "$work/client.out") || fail "soak-client.mjs printed no counts. See $work/client.out."
count() { node -e 'const s = JSON.parse(process.argv[1]); console.log(s[process.argv[2]]);' "$summary" "$1"; }

errors=0
for name in watchOpenFailures watchesEndedEarly watchErrors watchesStalled requestFailures requestsDropped; do
    errors=$((errors + $(count "$name")))
done
echo "soak_watches_open: $(count watchesOpened) of $watches"
echo "soak_requests: $(count requests)"
echo "soak_watch_events: $(count events)"
for name in watchOpenFailures watchesEndedEarly watchErrors watchesStalled requestFailures requestsDropped; do
    echo "soak_$(echo "$name" | sed -E 's/([A-Z])/_\L\1/g'): $(count "$name")"
done
echo "soak_errors: $errors (target 0)"
if [ "$errors" -gt 0 ]; then
    echo "soak_failure_samples: $(node -e 'console.log(JSON.parse(process.argv[1]).failureSamples.join("; "))' "$summary")"
fi

if [ -z "$valgrind" ]; then
    echo "soak_rss_after_warmup_mib: $(mib "$rss_warm")"
    echo "soak_rss_end_mib: $(mib "$rss_end")"
    echo "soak_rss_growth_percent: $(awk -v a="$rss_warm" -v b="$rss_end" 'BEGIN { printf "%.1f", (b - a) * 100 / a }') (target < 5)"
    exit 0
fi

# memcheck writes its leak report when the proxy ends, which SIGTERM makes it do normally.
kill -TERM "$proxy_pid"
wait "$proxy_pid" || true
grep -q 'ERROR SUMMARY' "$work/valgrind.log" || fail "valgrind wrote no summary. See $work/valgrind.log."
lost() { awk -v kind="$1 lost:" 'index($0, kind) { gsub(",", "", $4); print $4; found = 1; exit } END { if (!found) print 0 }' "$work/valgrind.log"; }
echo "soak_valgrind_definitely_lost_bytes: $(lost definitely) (target 0)"
echo "soak_valgrind_indirectly_lost_bytes: $(lost indirectly) (target 0)"
echo "soak_valgrind_errors: $(awk '/ERROR SUMMARY/ { print $4; exit }' "$work/valgrind.log") (target 0)"
