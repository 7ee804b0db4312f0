#!/usr/bin/env bash
# End-to-end test of the main job: sign in from the tray through headless Chromium, then use
# kubectl through the local proxy, across token expiry and a restart of Lamplighter.
# Usage: sign-in-and-serve-kubectl.sh LAMPLIGHTER_BINARY
# It starts its own X server with a tray host and its own keyring session.
set -euo pipefail

lamplighter=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../tools/e2e-session.sh"
e2e_start_session lamplighter-e2e "$@"

lamplighter_pid=
port_forward_pid=
cleanup() {
    [ -z "$lamplighter_pid" ] || kill "$lamplighter_pid" 2>/dev/null || true
    [ -z "$port_forward_pid" ] || kill "$port_forward_pid" 2>/dev/null || true
    [ -z "${trayer_pid:-}" ] || kill "$trayer_pid" 2>/dev/null || true
    stop_test_parts
    # Keep the logs of a failed run; a passed run leaves nothing behind.
    if [ "${failures:-1}" -eq 0 ]; then
        rm -rf "$work"
    else
        echo "Logs and artifacts are in $work"
    fi
}
trap cleanup EXIT

start_lamplighter() {
    "$lamplighter" >>"$work/logs/lamplighter.log" 2>&1 &
    lamplighter_pid=$!
    for _ in $(seq 1 100); do
        if "$lamplighter" status >"$work/status.txt" 2>&1 && grep -q '^Proxy: *https://' "$work/status.txt" &&
            ! grep -q 'starting' "$work/status.txt"; then
            return 0
        fi
        sleep 0.2
    done
    echo "Lamplighter did not answer \`lamplighter status\` within 20 s:" >&2
    tail -n 20 "$work/logs/lamplighter.log" >&2
    return 1
}

stop_lamplighter() {
    kill "$lamplighter_pid"
    wait "$lamplighter_pid" 2>/dev/null || true
    lamplighter_pid=
}

browser_starts() { wc -l <"$BROWSER_COUNT_FILE"; }
apiserver_requests() { wc -l <"$work/logs/apiserver-requests.jsonl"; }
kube() { kubectl --kubeconfig "$("$lamplighter" kubeconfig 2>/dev/null)" "$@"; }

# Waits up to 5 s for a request log entry after line SKIP that records an accepted upgrade of
# demo-pod's SUBRESOURCE over UPGRADE (websocket or SPDY/3.1) with PROTOCOL. The double logs an
# upgraded request when its connection closes, which may be after kubectl exits.
upgrade_logged() {
    local skip=$1 subresource=$2 upgrade=$3 protocol=$4
    for _ in $(seq 1 25); do
        node -e '
            const [file, skip, path, upgrade, protocol] = process.argv.slice(1);
            const entries = require("fs").readFileSync(file, "utf8").trim().split("\n").slice(Number(skip)).map(JSON.parse);
            const found = entries.some((entry) => entry.path === path && entry.status === 101 &&
                entry.upgrade === upgrade && entry.protocol === protocol);
            process.exit(found ? 0 : 1);' \
            "$work/logs/apiserver-requests.jsonl" "$skip" "/api/v1/namespaces/default/pods/demo-pod/$subresource" \
            "$upgrade" "$protocol" && return 0
        sleep 0.2
    done
    echo "no accepted $upgrade upgrade with $protocol to $subresource in the double's request log" >&2
    return 1
}

# Starts `kubectl port-forward pod/demo-pod 0:8080` through the proxy, with the environment
# assignments given as arguments. Local port 0 lets kubectl pick a free port, which it prints.
# Sets port_forward_pid and port_forward_port, or returns 1 when no port appears within 15 s.
start_port_forward() {
    local output=$1
    shift
    : >"$output"
    env "$@" kubectl --kubeconfig "$("$lamplighter" kubeconfig 2>/dev/null)" \
        port-forward pod/demo-pod 0:8080 >"$output" 2>&1 &
    port_forward_pid=$!
    for _ in $(seq 1 75); do
        port_forward_port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) -> 8080$/\1/p' "$output")
        [ -z "$port_forward_port" ] || return 0
        kill -0 "$port_forward_pid" 2>/dev/null || break
        sleep 0.2
    done
    echo "kubectl port-forward printed no local port within 15 s:" >&2
    cat "$output" >&2
    return 1
}

stop_port_forward() {
    kill "$port_forward_pid" 2>/dev/null || true
    wait "$port_forward_pid" 2>/dev/null || true
    port_forward_pid=
}

# Sends 64 KiB of random bytes to 127.0.0.1:PORT, half-closes, and succeeds when the same bytes
# come back within 10 s.
echo_through() {
    node -e '
        const payload = require("crypto").randomBytes(65536);
        const socket = require("net").connect({ host: "127.0.0.1", port: Number(process.argv[1]) }, () => socket.end(payload));
        const chunks = [];
        socket.on("data", (chunk) => chunks.push(chunk));
        socket.on("end", () => {
            const echoed = Buffer.concat(chunks);
            if (!echoed.equals(payload)) {
                console.error(`the ${echoed.length} bytes that came back differ from the ${payload.length} sent`);
            }
            process.exit(echoed.equals(payload) ? 0 : 1);
        });
        socket.on("error", (error) => { console.error(`echo through port ${process.argv[1]}: ${error.message}`); process.exit(1); });
        setTimeout(() => { console.error("no complete echo within 10 s"); process.exit(1); }, 10000);' "$1"
}

# Forwards a local port to demo-pod's port 8080 with the environment assignments given after
# NAME, sends bytes through it and stops kubectl again.
port_forward_echoes() {
    local name=$1
    shift
    start_port_forward "$work/port-forward-$name.txt" "$@" || { stop_port_forward; return 1; }
    local status=0
    echo_through "$port_forward_port" || status=1
    stop_port_forward
    return "$status"
}

# Reads the stored tokens back through the Secret Service, as any keychain client would.
# QtKeychain files each entry under the attributes server (the service) and user (the key), and
# stores binary secrets base64-encoded.
stored_tokens() { secret-tool search --all --unlock server lamplighter 2>&1; }
stored_field() {
    secret-tool lookup server lamplighter user "tokens $ISSUER_URL lamplighter" 2>/dev/null |
        base64 -d | node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s)[process.argv[1]]))' "$1"
}

# 1. The parts: provider, double, tray host, Lamplighter.
BROWSER_COMMAND="[$here/counting-browser]" ID_TOKEN_TTL=20 start_test_parts "$work"
trayer --edge bottom --align right --widthtype request --height 32 --transparent false \
    >"$work/logs/trayer.log" 2>&1 &
trayer_pid=$!
sleep 1
start_lamplighter
check "tray starts signed out" grep -q 'signed out' "$work/status.txt"

# 2. Sign in through headless Chromium.
check "login through the browser" "$lamplighter" login
check "browser opened once" test "$(browser_starts)" -eq 1

# 3. kubectl through the proxy.
check "whoami names the provider's user" \
    bash -c "$(declare -f kube); lamplighter='$lamplighter'; kube auth whoami | grep -q 'jane@example.test'"
check "namespaces listed" \
    bash -c "$(declare -f kube); lamplighter='$lamplighter'; kube get namespaces | grep -q team-a"
before=$(apiserver_requests)
check "exec through the proxy echoes stdin" \
    bash -c "$(declare -f kube); lamplighter='$lamplighter'; echo hello | kube exec -i demo-pod -- cat | grep -qx hello"
check "exec went over WebSocket" upgrade_logged "$before" exec websocket v5.channel.k8s.io
before=$(apiserver_requests)
check "exec over SPDY echoes stdin" \
    bash -c "$(declare -f kube); lamplighter='$lamplighter'; export KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false;
        echo hello | kube exec -i demo-pod -- cat | grep -qx hello"
check "exec went over SPDY" upgrade_logged "$before" exec SPDY/3.1 v5.channel.k8s.io
before=$(apiserver_requests)
check "port-forward over SPDY echoes bytes" port_forward_echoes spdy KUBECTL_PORT_FORWARD_WEBSOCKETS=false
check "port-forward went over SPDY" upgrade_logged "$before" portforward SPDY/3.1 portforward.k8s.io
# kubectl 1.31 and later first try SPDY inside WebSocket messages, and fall back to plain SPDY
# when that upgrade fails, so only the request log shows which one carried the bytes.
before=$(apiserver_requests)
check "port-forward over WebSocket echoes bytes" port_forward_echoes websocket
check "port-forward went over the WebSocket tunnel" \
    upgrade_logged "$before" portforward websocket SPDY/3.1+portforward.k8s.io
# timeout ends the watch after 7 s; the loop stamps each line as it arrives.
timeout 7 kubectl --kubeconfig "$("$lamplighter" kubeconfig 2>/dev/null)" get namespaces \
    --watch-only --output-watch-events --request-timeout=0 2>&1 |
    while IFS= read -r line; do echo "$(date +%s.%N) $line"; done >"$work/watch.txt" || true
check "watch receives two events seconds apart" node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n")
        .filter(l => / (ADDED|MODIFIED|DELETED) /.test(l));
    if (lines.length < 2) { console.error(`only ${lines.length} events`); process.exit(1); }
    const gap = parseFloat(lines[1]) - parseFloat(lines[0]);
    if (gap < 1) { console.error(`events arrived ${gap} s apart: not streamed`); process.exit(1); }' \
    "$work/watch.txt"

# 4. The tokens are in the keyring and nowhere under HOME.
check "keyring holds the tokens" bash -c "$(declare -f stored_tokens); stored_tokens | grep -q 'attribute.user = tokens'"
refresh_token=$(stored_field refresh_token)
id_token=$(stored_field id_token)
check "refresh token read back" test -n "$refresh_token"
no_file_contains() { ! grep -rqsF -- "$1" "$HOME" && ! grep -qsF -- "$1" "$work"/logs/*; }
check "no file holds the refresh token" no_file_contains "$refresh_token"
check "no file holds the ID token" no_file_contains "$id_token"

# 5. After the ID token expires, kubectl keeps working without the browser.
sleep 25
check "whoami after expiry" \
    bash -c "$(declare -f kube); lamplighter='$lamplighter'; kube auth whoami | grep -q 'jane@example.test'"
check "refresh token rotated in the keyring" test "$(stored_field refresh_token)" != "$refresh_token"
check "no second browser sign-in" test "$(browser_starts)" -eq 1

# 6. A restart keeps the session.
stop_lamplighter
start_lamplighter
check "signed in after restart" grep -q 'signed in' "$work/status.txt"
check "namespaces after restart" \
    bash -c "$(declare -f kube); lamplighter='$lamplighter'; kube get namespaces | grep -q team-b"
check "no browser after restart" test "$(browser_starts)" -eq 1

# 7. A wrong session key is refused by the proxy and never reaches the double.
kubeconfig=$("$lamplighter" kubeconfig 2>/dev/null)
sed 's/^\( *token:\).*/\1 wrong-session-key/' "$kubeconfig" >"$work/wrong-key.kubeconfig"
before=$(apiserver_requests)
kubectl --kubeconfig "$work/wrong-key.kubeconfig" get namespaces >"$work/wrong-key.txt" 2>&1 || true
check "wrong session key gets 401" grep -q 'You must be logged in to the server' "$work/wrong-key.txt"
check "wrong session key never reaches the double" test "$(apiserver_requests)" -eq "$before"

# 8. With the provider gone, an expired ID token is explained and never sent to the cluster.
kill "${test_part_pids[0]}"
sleep 22
before=$(apiserver_requests)
kube auth whoami >"$work/expired.txt" 2>&1 || true
check "expired token explained" grep -q "Lamplighter's ID token" "$work/expired.txt"
check "expired token never reaches the double" test "$(apiserver_requests)" -eq "$before"

check_no_issued_secrets
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
