#!/usr/bin/env bash
# Checks lamplighter-headlamp-window against an HTTPS page on loopback: it loads the launch URL
# from LAMPLIGHTER_HEADLAMP_URL when --ca-file names the page's certificate, rejects the page
# when it names another one, and never writes the URL's ticket to its log.
# Usage: headlamp-window-check.sh LAMPLIGHTER_HEADLAMP_WINDOW
set -euo pipefail

window=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/lamplighter-headlamp-window.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

export QT_QPA_PLATFORM=offscreen QTWEBENGINE_DISABLE_SANDBOX=1
export QTWEBENGINE_CHROMIUM_FLAGS=--disable-gpu XDG_RUNTIME_DIR=$work/run
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
"$here/../fixtures/make-test-pki.sh" "$work/pki"
node "$here/headlamp-test-page.mjs" "$work/page.ready" "$work/pki/apiserver.crt" \
    "$work/pki/apiserver.key" >"$work/page.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    [ -s "$work/page.ready" ] && break
    sleep 0.1
done
page_url=$(cat "$work/page.ready")
ticket=ticket-$RANDOM$RANDOM$RANDOM

# Runs the window trusting CA_FILE until its log contains PATTERN (60 s at most), then stops it.
# Its log is left in LOG.
run_window() {
    local ca_file=$1 pattern=$2 log=$3 pid
    LAMPLIGHTER_HEADLAMP_URL="${page_url}?ticket=$ticket" "$window" --ca-file "$ca_file" \
        >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        grep -q "$pattern" "$log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

checks=0
failures=0
check() {
    local name=$1
    shift
    checks=$((checks + 1))
    if "$@"; then
        echo "ok - $name"
    else
        echo "not ok - $name"
        failures=$((failures + 1))
    fi
}

run_window "$work/pki/apiserver.crt" "Loaded " "$work/trusted.log"
check "page with the trusted certificate loads" grep -q "^Loaded ${page_url}\$" "$work/trusted.log"
check "ticket stays out of the log" bash -c "! grep -q '$ticket' '$work/trusted.log'"

run_window "$work/pki/ca.crt" "Failed to load" "$work/untrusted.log"
check "other certificate is rejected" grep -q "Rejected the certificate of 127.0.0.1" \
    "$work/untrusted.log"
check "rejected page does not load" bash -c "! grep -q '^Loaded ' '$work/untrusted.log'"
check "ticket stays out of the rejection log" bash -c "! grep -q '$ticket' '$work/untrusted.log'"

if [ "$failures" -ne 0 ]; then
    echo "--- trusted run:"; grep -v '^ *\*' "$work/trusted.log" | tail -n 20
    echo "--- untrusted run:"; grep -v '^ *\*' "$work/untrusted.log" | tail -n 20
fi
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
