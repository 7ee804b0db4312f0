#!/usr/bin/env bash
# The desktop mode of tests/bench/run: the tray's memory and the credential plugin's speed,
# each next to a peer in the same run. Usage: desktop.sh BUILD_DIR (a Release build with the
# lamplighter and lamplighter-bench-qt-tray targets). It runs again under its own X server with a
# tray host and in its own keyring session, starts the OpenID provider and the API server double
# on loopback, and signs in as the demo user through headless Chromium.
set -euo pipefail

build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
lamplighter=$build/app/lamplighter
qt_tray=$build/tests/bench/lamplighter-bench-qt-tray

source "$repo/tests/tools/e2e-session.sh"
e2e_start_session lamplighter-bench-desktop "$@"

# How long each program sits idle before its memory is read, and how many calls are timed.
idle_seconds=15
calls=50

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    stop_test_parts
    if [ "${bench_ok:-0}" = 1 ]; then
        rm -rf "$work"
    else
        echo "tests/bench/run desktop: the logs are in $work" >&2
    fi
}
trap cleanup EXIT

fail() {
    echo "tests/bench/run desktop: $*" >&2
    exit 1
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# Prints a process's resident memory by kind, from /proc/PID/status: anonymous (heap and
# stacks), file-backed (libraries) and shared memory, in MiB.
rss_parts() {
    awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } /^RssShmem:/ { s = $2 }
        END { printf "anonymous %.1f, files %.1f, shared %.1f MiB", a / 1024, f / 1024, s / 1024 }' \
        "/proc/$1/status"
}
# Keeps the largest resident mappings of a process in FILE, for a closer look.
largest_mappings() {
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = $6 } /^Rss:/ { rss[name] += $2 }
        END { for (n in rss) printf "%8d KiB %s\n", rss[n], n }' "/proc/$1/smaps" |
        sort -rn | head -n 25 >"$2"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
now_ns() { date +%s%N; }

trayer --edge bottom --align right --widthtype request --height 32 >/dev/null 2>&1 &
pids+=($!)
export BROWSER_COMMAND="[node, $repo/tests/fixtures/browser-login.mjs]"
# Tokens that stay valid for the whole run, so every credential call finds a cached one.
export ID_TOKEN_TTL=900
start_test_parts "$work"

"$lamplighter" --config "$LAMPLIGHTER_CONFIG" >"$work/logs/lamplighter.log" 2>&1 &
tray_pid=$!
pids+=($tray_pid)
for _ in $(seq 1 100); do
    "$lamplighter" status 2>/dev/null | grep '^Proxy: *https://' >/dev/null && break
    sleep 0.2
done
"$lamplighter" status 2>/dev/null | grep '^Proxy: *https://' >/dev/null ||
    fail "Lamplighter did not start its proxy within 20 s; see $work/logs/lamplighter.log"
"$lamplighter" login >"$work/logs/login.out" 2>&1 ||
    fail "signing in failed; see $work/logs/login.out"

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
sleep "$idle_seconds"
tray_kib=$(rss_kib "$tray_pid")
tray_parts=$(rss_parts "$tray_pid")
largest_mappings "$tray_pid" "${LAMPLIGHTER_BENCH_MAPPINGS:-/dev/null}"

"$qt_tray" >"$work/logs/qt-tray.log" 2>&1 &
qt_tray_pid=$!
pids+=($qt_tray_pid)
sleep "$idle_seconds"
kill -0 "$qt_tray_pid" 2>/dev/null || fail "the minimal Qt tray program exited; see $work/logs/qt-tray.log"
qt_tray_kib=$(rss_kib "$qt_tray_pid")
qt_tray_parts=$(rss_parts "$qt_tray_pid")

echo "tray_idle_rss_mib: $(mib "$tray_kib") (signed in, proxy running, no window open; $tray_parts)"
echo "qt_tray_idle_rss_mib: $(mib "$qt_tray_kib") ($qt_tray_parts)"
echo "tray_idle_rss_ratio_vs_qt_tray: $(ratio "$tray_kib" "$qt_tray_kib") (target <= 1.5)"

credential() { "$lamplighter" --config "$LAMPLIGHTER_CONFIG" credential --cluster demo; }
credential >"$work/credential.json" 2>"$work/logs/credential.err" ||
    fail "lamplighter credential failed; see $work/logs/credential.err"
grep -q '"kind": *"ExecCredential"' "$work/credential.json" ||
    fail "lamplighter credential printed no ExecCredential"
kubeconfig=$("$lamplighter" kubeconfig 2>/dev/null)
kubectl config view --kubeconfig "$kubeconfig" >/dev/null ||
    fail "kubectl config view failed on $kubeconfig"

start=$(now_ns)
for _ in $(seq 1 "$calls"); do credential >/dev/null 2>>"$work/logs/credential.err"; done
credential_ns=$(($(now_ns) - start))
start=$(now_ns)
for _ in $(seq 1 "$calls"); do kubectl config view --kubeconfig "$kubeconfig" >/dev/null; done
kubectl_ns=$(($(now_ns) - start))

echo "credential_warm_ms_per_call: $(awk -v n="$credential_ns" -v c="$calls" 'BEGIN { printf "%.1f", n / c / 1e6 }') ($calls calls, cached token, tray running)"
echo "kubectl_config_view_ms_per_call: $(awk -v n="$kubectl_ns" -v c="$calls" 'BEGIN { printf "%.1f", n / c / 1e6 }')"
echo "credential_warm_ratio_vs_kubectl_config_view: $(ratio "$credential_ns" "$kubectl_ns") (target <= 0.5)"
bench_ok=1
