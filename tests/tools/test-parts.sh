# Starts Lamplighter's test parts on loopback; sourced by the end-to-end tests and the demo.
#
# After `start_test_parts WORK_DIR`, these are set:
#   ISSUER_URL      https://127.0.0.1:PORT of the OpenID provider (oidc-provider)
#   APISERVER_URL   https://127.0.0.1:PORT of the Kubernetes API server double
#   LAMPLIGHTER_CONFIG  a configuration file for Lamplighter pointing at both
#   TEST_PKI        the folder with the test CA (ca.crt) and server certificates
# Every process started here is stopped by stop_test_parts, which callers run on EXIT.
#
# Settings, from the environment:
#   ID_TOKEN_TTL      ID token lifetime in seconds (default 30)
#   WATCH_INTERVAL    seconds between the double's watch events (default 2)
#   BROWSER_COMMAND   YAML list for login.browser (default: the system browser)

tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fixtures_dir=$tests_dir/fixtures
test_part_pids=()

# Waits up to 30 s for a ready file that a test part writes once it listens.
wait_for_ready_file() {
    local file=$1 name=$2 log=$3
    for _ in $(seq 1 300); do
        if [ -s "$file" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "$name did not start within 30 s; its log ($log) ends with:" >&2
    tail -n 20 "$log" >&2 || true
    return 1
}

# Reads one field of the JSON object in a ready file.
ready_field() {
    node -e 'const o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(o[process.argv[2]])' "$1" "$2"
}

start_test_parts() {
    local work=$1
    mkdir -p "$work/logs"
    TEST_PKI=$work/pki
    "$fixtures_dir/make-test-pki.sh" "$TEST_PKI"

    node "$fixtures_dir/oidc-provider/server.mjs" --port 0 \
        --cert "$TEST_PKI/provider.crt" --key "$TEST_PKI/provider.key" \
        --id-token-ttl "${ID_TOKEN_TTL:-30}" --ready-file "$work/provider.ready" \
        >"$work/logs/provider.out" 2>"$work/logs/provider.log" &
    test_part_pids+=($!)
    wait_for_ready_file "$work/provider.ready" "The OpenID provider" "$work/logs/provider.log"
    ISSUER_URL=$(ready_field "$work/provider.ready" issuer)

    node "$fixtures_dir/apiserver-double/server.mjs" --port 0 \
        --tls-cert-file "$TEST_PKI/apiserver.crt" --tls-private-key-file "$TEST_PKI/apiserver.key" \
        --oidc-issuer-url "$ISSUER_URL" --oidc-client-id lamplighter \
        --oidc-username-claim email --oidc-groups-claim groups --oidc-ca-file "$TEST_PKI/ca.crt" \
        --watch-interval "${WATCH_INTERVAL:-2}" --request-log "$work/logs/apiserver-requests.jsonl" \
        --ready-file "$work/apiserver.ready" \
        >"$work/logs/apiserver.out" 2>"$work/logs/apiserver.log" &
    test_part_pids+=($!)
    wait_for_ready_file "$work/apiserver.ready" "The API server double" "$work/logs/apiserver.log"
    APISERVER_URL=$(ready_field "$work/apiserver.ready" server)

    LAMPLIGHTER_CONFIG=$work/config.yaml
    cat >"$LAMPLIGHTER_CONFIG" <<END
# Written by tests/tools/test-parts.sh for a demo or a test on loopback.
oidc:
  issuer: $ISSUER_URL
  client_id: lamplighter
  scopes: openid email profile groups offline_access
  ca_file: $TEST_PKI/ca.crt
  claims:
    sub: email
    groups: groups
clusters:
- name: demo
  server: $APISERVER_URL
  certificate_authority: $TEST_PKI/ca.crt
login:
  timeout_seconds: 120
END
    if [ -n "${BROWSER_COMMAND:-}" ]; then
        printf '  browser: %s\n' "$BROWSER_COMMAND" >>"$LAMPLIGHTER_CONFIG"
    fi
    export ISSUER_URL APISERVER_URL LAMPLIGHTER_CONFIG TEST_PKI
}

stop_test_parts() {
    local pid
    for pid in "${test_part_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${test_part_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    test_part_pids=()
}
