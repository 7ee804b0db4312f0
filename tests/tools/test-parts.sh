# Starts Lamplighter's test parts on loopback; sourced by the end-to-end tests and the demo.
#
# After `start_test_parts WORK_DIR`, these are set:
#   ISSUER_URL      https://127.0.0.1:PORT of the OpenID provider (oidc-provider)
#   APISERVER_URL   https://127.0.0.1:PORT of the Kubernetes API server double
#   LAMPLIGHTER_CONFIG  a configuration file for Lamplighter pointing at both
#   TEST_PKI        the folder with the test CA (ca.crt) and server certificates
# Every process started here is stopped by stop_test_parts, which callers run on EXIT.
# A test that needs other parts (a double without OIDC, say) calls make_test_pki,
# start_oidc_provider, start_apiserver_double and write_lamplighter_config itself.
#
# Settings, from the environment:
#   ID_TOKEN_TTL      ID token lifetime in seconds (default 30)
#   WATCH_INTERVAL    seconds between the double's watch events (default 2)
#   BROWSER_COMMAND   YAML list for login.browser (default: the system browser)
#   ISSUED_SECRETS_FILE  where the provider records every secret it issues (default: nowhere)

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

# Starts the OpenID provider and sets ISSUER_URL. TEST_PKI must exist.
start_oidc_provider() {
    local work=$1
    node "$fixtures_dir/oidc-provider/server.mjs" --port 0 \
        --cert "$TEST_PKI/provider.crt" --key "$TEST_PKI/provider.key" \
        --id-token-ttl "${ID_TOKEN_TTL:-30}" --ready-file "$work/provider.ready" \
        ${ISSUED_SECRETS_FILE:+--issued-secrets-file "$ISSUED_SECRETS_FILE"} \
        >"$work/logs/provider.out" 2>"$work/logs/provider.log" &
    test_part_pids+=($!)
    wait_for_ready_file "$work/provider.ready" "The OpenID provider" "$work/logs/provider.log"
    ISSUER_URL=$(ready_field "$work/provider.ready" issuer)
}

# Starts the API server double on PORT (0 picks a free one) with the authentication flags given
# after PORT, and sets APISERVER_URL and APISERVER_PID. Without --oidc-* flags the double is a
# cluster that rejects every ID token. Its requests are logged to
# WORK/logs/apiserver-requests.jsonl, which a restarted double appends to. TEST_PKI must exist.
start_apiserver_double() {
    local work=$1 port=$2
    shift 2
    rm -f "$work/apiserver.ready"
    node "$fixtures_dir/apiserver-double/server.mjs" --port "$port" \
        --tls-cert-file "$TEST_PKI/apiserver.crt" --tls-private-key-file "$TEST_PKI/apiserver.key" \
        "$@" \
        --watch-interval "${WATCH_INTERVAL:-2}" --request-log "$work/logs/apiserver-requests.jsonl" \
        --ready-file "$work/apiserver.ready" \
        >>"$work/logs/apiserver.out" 2>>"$work/logs/apiserver.log" &
    APISERVER_PID=$!
    test_part_pids+=($APISERVER_PID)
    wait_for_ready_file "$work/apiserver.ready" "The API server double" "$work/logs/apiserver.log"
    APISERVER_URL=$(ready_field "$work/apiserver.ready" server)
}

# Writes WORK/config.yaml, a Lamplighter configuration with one cluster "demo" at SERVER, whose
# clusters[].mode is MODE (default oidc), and sets LAMPLIGHTER_CONFIG.
write_lamplighter_config() {
    local work=$1 server=$2 mode=${3:-oidc}
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
  server: $server
  certificate_authority: $TEST_PKI/ca.crt
  mode: $mode
login:
  timeout_seconds: 120
END
    if [ -n "${BROWSER_COMMAND:-}" ]; then
        printf '  browser: %s\n' "$BROWSER_COMMAND" >>"$LAMPLIGHTER_CONFIG"
    fi
}

# Creates the test PKI and the work folder's logs folder, and sets TEST_PKI.
make_test_pki() {
    local work=$1
    mkdir -p "$work/logs"
    TEST_PKI=$work/pki
    "$fixtures_dir/make-test-pki.sh" "$TEST_PKI"
}

start_test_parts() {
    local work=$1
    make_test_pki "$work"
    start_oidc_provider "$work"
    start_apiserver_double "$work" 0 \
        --oidc-issuer-url "$ISSUER_URL" --oidc-client-id lamplighter \
        --oidc-username-claim email --oidc-groups-claim groups --oidc-ca-file "$TEST_PKI/ca.crt"
    write_lamplighter_config "$work" "$APISERVER_URL"
    export ISSUER_URL APISERVER_URL LAMPLIGHTER_CONFIG TEST_PKI
}

# Stops one process that a function here started, by its process id.
stop_test_part() {
    local stopped=$1 pid remaining=()
    kill "$stopped" 2>/dev/null || true
    wait "$stopped" 2>/dev/null || true
    for pid in "${test_part_pids[@]}"; do
        [ "$pid" = "$stopped" ] || remaining+=("$pid")
    done
    test_part_pids=("${remaining[@]}")
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
