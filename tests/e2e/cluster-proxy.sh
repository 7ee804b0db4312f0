#!/usr/bin/env bash
# End-to-end test of a cluster without OpenID Connect. It signs in from the tray through headless
# Chromium, then uses kubectl through the local proxy and lamplighter-cluster-proxy. The cluster
# proxy verifies the ID token and impersonates the person towards an API server double without
# OIDC.
# Usage: cluster-proxy.sh LAMPLIGHTER_BINARY CLUSTER_PROXY_BINARY
# It starts its own X server with a tray host and its own keyring session.
set -euo pipefail

lamplighter=$(realpath "$1")
cluster_proxy=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)

if [ -z "${LAMPLIGHTER_E2E_INSIDE:-}" ]; then
    work=$(mktemp -d /tmp/lamplighter-cluster-proxy-e2e.XXXXXX)
    mkdir -p "$work/home"
    export LAMPLIGHTER_E2E_INSIDE=1 LAMPLIGHTER_E2E_WORK=$work HOME_FOR_KEYRING=$work/home
    exec xvfb-run --auto-servernum --server-args="-screen 0 1024x768x24" \
        "$here/../tools/with-keyring" "$0" "$@"
fi

work=$LAMPLIGHTER_E2E_WORK
export HOME=$work/home XDG_RUNTIME_DIR=$work/run KUBECACHEDIR=$work/kube-cache
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export BROWSER_COUNT_FILE=$work/browser-starts LAMPLIGHTER_TEST_ARTIFACTS=$work/artifacts
: >"$BROWSER_COUNT_FILE"
source "$here/../tools/test-parts.sh"

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

lamplighter_pid=
cluster_proxy_pid=
finished=false
cleanup() {
    [ -z "$lamplighter_pid" ] || kill "$lamplighter_pid" 2>/dev/null || true
    [ -z "$cluster_proxy_pid" ] || kill "$cluster_proxy_pid" 2>/dev/null || true
    [ -z "${trayer_pid:-}" ] || kill "$trayer_pid" 2>/dev/null || true
    stop_test_parts
    # Keep the logs of a failed or aborted run, and leave nothing behind after a passed run.
    if [ "$finished" = true ] && [ "$failures" -eq 0 ]; then
        rm -rf "$work"
    else
        echo "Logs and artifacts are in $work"
    fi
}
trap cleanup EXIT

service_account=system:serviceaccount:lamplighter:lamplighter-cluster-proxy
service_account_groups=system:serviceaccounts,system:serviceaccounts:lamplighter
# The cluster proxy's leeway for exp, in seconds. It is short so that the expired token check
# waits little.
leeway_seconds=5

# Writes the double's --token-auth-file with one record per token given, all for the cluster
# proxy's service account.
write_token_auth_file() {
    local token
    : >"$work/token-auth.csv"
    for token in "$@"; do
        printf '%s,%s,cluster-proxy-uid,"%s"\n' "$token" "$service_account" "$service_account_groups" \
            >>"$work/token-auth.csv"
    done
}

# Replaces the service account token file in one rename, as the kubelet swaps projected files.
write_service_account_token() {
    mkdir -p "$work/service-account"
    printf '%s\n' "$1" >"$work/service-account/.token.new"
    mv "$work/service-account/.token.new" "$work/service-account/token"
}

# Starts the double without any --oidc-* flag, so it rejects every ID token, on PORT (0 picks a
# free one). The cluster proxy's service account may impersonate and, as in the deployed role,
# do nothing else: --deny-user rejects its own resource requests. So a resource request that
# succeeds, an exec included, was made as the impersonated person. The double's request log
# has no impersonatedUser for upgraded requests.
start_double_without_oidc() {
    start_apiserver_double "$work" "$1" \
        --token-auth-file "$work/token-auth.csv" --impersonators "$service_account" \
        --deny-user "$service_account"
}

# Signs a certificate for 127.0.0.1 with the test CA for the cluster proxy's listener.
make_cluster_proxy_certificate() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$TEST_PKI/cluster-proxy.key" 2>"$work/logs/openssl.log"
    openssl req -new -x509 -key "$TEST_PKI/cluster-proxy.key" -subj "/O=Lamplighter tests/CN=cluster-proxy" \
        -CA "$TEST_PKI/ca.crt" -CAkey "$TEST_PKI/ca.key" -days 7 -sha256 \
        -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
        -addext "extendedKeyUsage=serverAuth" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -out "$TEST_PKI/cluster-proxy.crt" 2>>"$work/logs/openssl.log"
}

write_cluster_proxy_config() {
    cat >"$work/cluster-proxy.yaml" <<END
listen: 127.0.0.1:0
tls:
  certificate: $TEST_PKI/cluster-proxy.crt
  key: $TEST_PKI/cluster-proxy.key
issuer:
  url: $ISSUER_URL
  client_id: lamplighter
  certificate_authority: $TEST_PKI/ca.crt
  leeway_seconds: $leeway_seconds
claims:
  username: email
  groups: groups
  groups_prefix: "oidc:"
api_server:
  url: $APISERVER_URL
  certificate_authority: $TEST_PKI/ca.crt
  token_file: $work/service-account/token
END
}

# Starts the cluster proxy, reads its port from its first log line and waits up to 30 s for
# /readyz to return 200. Sets cluster_proxy_pid and CLUSTER_PROXY_URL.
start_cluster_proxy() {
    "$cluster_proxy" --config "$work/cluster-proxy.yaml" >>"$work/logs/cluster-proxy.log" 2>&1 &
    cluster_proxy_pid=$!
    local port=
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*Cluster proxy listening on 127\.0\.0\.1:\([0-9]*\), forwarding to .*/\1/p' \
            "$work/logs/cluster-proxy.log" | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$cluster_proxy_pid" 2>/dev/null || break
        sleep 0.2
    done
    if [ -z "$port" ]; then
        echo "The cluster proxy printed no listening port within 20 s; its log:" >&2
        cat "$work/logs/cluster-proxy.log" >&2
        return 1
    fi
    CLUSTER_PROXY_URL=https://127.0.0.1:$port
    local code=
    for _ in $(seq 1 150); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$TEST_PKI/ca.crt" \
            "$CLUSTER_PROXY_URL/readyz" || true)
        [ "$code" = 200 ] && return 0
        sleep 0.2
    done
    echo "The cluster proxy's /readyz returned $code, not 200, for 30 s; its log ends with:" >&2
    tail -n 20 "$work/logs/cluster-proxy.log" >&2
    return 1
}

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
    echo "\`lamplighter status\` reported no running proxy within 20 s; Lamplighter's log ends with:" >&2
    tail -n 20 "$work/logs/lamplighter.log" >&2
    return 1
}

browser_starts() { wc -l <"$BROWSER_COUNT_FILE"; }
# The double creates its request log with the first request.
apiserver_requests() {
    if [ -e "$work/logs/apiserver-requests.jsonl" ]; then
        wc -l <"$work/logs/apiserver-requests.jsonl"
    else
        echo 0
    fi
}
kube() { kubectl --kubeconfig "$("$lamplighter" kubeconfig 2>/dev/null)" "$@"; }

# Reads the stored tokens back through the Secret Service, as any keychain client would.
# QtKeychain files each entry under the attributes server (the service) and user (the key), and
# stores binary secrets base64-encoded.
stored_field() {
    secret-tool lookup server lamplighter user "tokens $ISSUER_URL lamplighter" 2>/dev/null |
        base64 -d | node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s)[process.argv[1]]))' "$1"
}

# Sends GET URL with TOKEN as the bearer token and the extra header lines given after it, and
# prints the status code. The response body goes to $work/response.txt. The headers reach curl
# on stdin, so no token shows in the process list.
request_status() {
    local url=$1 token=$2
    shift 2
    { printf 'Authorization: Bearer %s\n' "$token"; printf '%s\n' "$@"; } |
        curl -s -o "$work/response.txt" -w '%{http_code}' --max-time 10 --cacert "$TEST_PKI/ca.crt" \
            -H @- "$url" || true
}

# Succeeds when request_status with the same arguments returns EXPECTED, and prints the response
# otherwise.
request_returns() {
    local expected=$1
    shift
    local code
    code=$(request_status "$@")
    [ "$code" = "$expected" ] && return 0
    echo "expected $expected from $1, got $code: $(head -c 300 "$work/response.txt")" >&2
    return 1
}

# Waits up to 5 s for an entry in the request log after line SKIP for PATH (without the query)
# whose user and impersonatedUser are USER and IMPERSONATED ("" for none), and status is 2xx.
# The double writes an entry when the response closes, which may be after the client returns.
request_logged() {
    local skip=$1 path=$2 user=$3 impersonated=$4 verbose=false
    for attempt in $(seq 1 25); do
        [ "$attempt" -lt 25 ] || verbose=true
        node -e '
            const [file, skip, path, user, impersonated, verbose] = process.argv.slice(1);
            const entries = require("fs").readFileSync(file, "utf8").trim().split("\n").slice(Number(skip)).map(JSON.parse);
            const found = entries.some((entry) => entry.path === path && entry.user === user &&
                (entry.impersonatedUser ?? "") === impersonated && entry.status >= 200 && entry.status < 300);
            if (!found && verbose === "true") {
                console.error(`no entry for ${path} by ${user} as "${impersonated}" with status 2xx among:`);
                for (const entry of entries) console.error(JSON.stringify(entry));
            }
            process.exit(found ? 0 : 1);' \
            "$work/logs/apiserver-requests.jsonl" "$skip" "$path" "$user" "$impersonated" "$verbose" && return 0
        sleep 0.2
    done
    return 1
}

# Succeeds when the SelfSubjectReview in FILE (kubectl auth whoami -o json) names USER.
review_names_user() {
    node -e '
        const review = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const name = review.status?.userInfo?.username;
        if (name !== process.argv[2]) console.error(`the review names "${name}", expected "${process.argv[2]}"`);
        process.exit(name === process.argv[2] ? 0 : 1);' "$1" "$2"
}

# Succeeds when the SelfSubjectReview in FILE lists every group given after FILE.
review_lists_groups() {
    node -e '
        const review = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const groups = review.status?.userInfo?.groups ?? [];
        const missing = process.argv.slice(2).filter((group) => !groups.includes(group));
        if (missing.length > 0) console.error(`the review lists ${JSON.stringify(groups)}, without ${missing}`);
        process.exit(missing.length === 0 ? 0 : 1);' "$@"
}

# Prints TOKEN with its payload's claims changed as in the JSON object PATCH and its signature
# kept, so the signature no longer matches.
tamper_token() {
    node -e '
        const [header, payload, signature] = process.argv[1].split(".");
        const claims = { ...JSON.parse(Buffer.from(payload, "base64url")), ...JSON.parse(process.argv[2]) };
        console.log([header, Buffer.from(JSON.stringify(claims)).toString("base64url"), signature].join("."));' \
        "$1" "$2"
}

# Prints an RS256 ID token for jane from another issuer, signed with a key generated here. The claims
# are otherwise valid for the configured client.
# NOTE: the configured issuer never published this key, so the cluster proxy may reject the
# token for its key before it compares iss. The iss check alone is covered by unit tests only.
other_issuer_token() {
    node -e '
        const crypto = require("crypto");
        const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
        const now = Math.floor(Date.now() / 1000);
        const encode = (object) => Buffer.from(JSON.stringify(object)).toString("base64url");
        const header = encode({ alg: "RS256", typ: "JWT", kid: "other-issuer-key" });
        const payload = encode({ iss: "https://127.0.0.1:9/other-issuer", aud: "lamplighter", azp: "lamplighter",
            sub: "jane", email: "jane@example.test", groups: ["developers"], iat: now, exp: now + 300 });
        const signature = crypto.sign("sha256", Buffer.from(`${header}.${payload}`), privateKey).toString("base64url");
        console.log(`${header}.${payload}.${signature}`);'
}

# Prints the exp claim of an ID token.
token_expiry() {
    node -e 'console.log(JSON.parse(Buffer.from(process.argv[1].split(".")[1], "base64url")).exp)' "$1"
}

# Waits up to TIMEOUT seconds for a request through both proxies to succeed, and prints the
# seconds it took.
seconds_until_requests_work() {
    local timeout=$1 start
    start=$(date +%s.%N)
    while true; do
        if kube get namespace default --output name --request-timeout=5s >/dev/null 2>>"$work/rotation.txt"; then
            node -e 'console.log((process.argv[2] - process.argv[1]).toFixed(1))' "$start" "$(date +%s.%N)"
            return 0
        fi
        if node -e 'process.exit(process.argv[2] - process.argv[1] > Number(process.argv[3]) ? 0 : 1)' \
            "$start" "$(date +%s.%N)" "$timeout"; then
            echo "requests through both proxies still failed after $timeout s" >&2
            return 1
        fi
        sleep 0.5
    done
}

no_file_contains() { ! grep -rqsF -- "$1" "$HOME" && ! grep -qsF -- "$1" "$work"/logs/*; }

# 1. The parts: provider, a double without OIDC, the cluster proxy, tray host, Lamplighter.
make_test_pki "$work"
ID_TOKEN_TTL=20 start_oidc_provider "$work"
service_account_token=$(openssl rand -hex 32)
write_token_auth_file "$service_account_token"
start_double_without_oidc 0
apiserver_port=$(ready_field "$work/apiserver.ready" port)
write_service_account_token "$service_account_token"
make_cluster_proxy_certificate
write_cluster_proxy_config
check "cluster proxy reports ready" start_cluster_proxy
[ -n "${CLUSTER_PROXY_URL:-}" ] || exit 1

BROWSER_COMMAND="[$here/counting-browser]" write_lamplighter_config "$work" "$CLUSTER_PROXY_URL" impersonation
export ISSUER_URL APISERVER_URL LAMPLIGHTER_CONFIG TEST_PKI
trayer --edge bottom --align right --widthtype request --height 32 --transparent false \
    >"$work/logs/trayer.log" 2>&1 &
trayer_pid=$!
sleep 1
start_lamplighter

# 2. Sign in through headless Chromium.
check "login through the browser" "$lamplighter" login
check "browser opened once" test "$(browser_starts)" -eq 1
first_id_token=$(stored_field id_token)
refresh_token=$(stored_field refresh_token)

# 3. kubectl through both proxies, as jane.
before=$(apiserver_requests)
kube auth whoami -o json >"$work/whoami.json" 2>&1 || true
check "whoami names jane" review_names_user "$work/whoami.json" jane@example.test
check "whoami lists the prefixed groups" review_lists_groups "$work/whoami.json" oidc:developers oidc:viewers
check "whoami lists system:authenticated" review_lists_groups "$work/whoami.json" system:authenticated
check "double sees the service account impersonating jane" \
    request_logged "$before" /apis/authentication.k8s.io/v1/selfsubjectreviews "$service_account" jane@example.test
check "namespaces listed" \
    bash -c "$(declare -f kube); lamplighter='$lamplighter'; kube get namespaces | grep -q team-a"
# The cluster proxy's own who-am-I path; kubectl sends raw paths without the server URL's
# /clusters/NAME prefix, so the path carries it.
kube get --raw /clusters/demo/lamplighter/whoami >"$work/whoami-endpoint.json" 2>&1 || true
check "who-am-I endpoint names jane" review_names_user "$work/whoami-endpoint.json" jane@example.test

# 4. Impersonation that the client asks for never reaches the double. The local proxy already
# drops every Impersonate-* header from kubectl, and the cluster proxy drops them again, so the
# double authenticates jane and returns 200. Neither proxy rejects such a request.
kube --as=system:admin --as-group=system:masters auth whoami -o json >"$work/whoami-as-admin.json" 2>&1 || true
check "kubectl --as still shows jane" review_names_user "$work/whoami-as-admin.json" jane@example.test
# The same headers sent with the ID token straight to the cluster proxy test its own drop.
id_token=$(stored_field id_token)
before=$(apiserver_requests)
code=$(request_status "$CLUSTER_PROXY_URL/api/v1/namespaces/default" "$id_token" \
    'Impersonate-User: system:admin' 'Impersonate-Group: system:masters' 'Impersonate-Uid: 0')
check "forged Impersonate-User to the cluster proxy gets 200" test "$code" = 200
check "double sees jane, not system:admin" \
    request_logged "$before" /api/v1/namespaces/default "$service_account" jane@example.test

# 5. Tokens that the cluster proxy must reject never reach the double.
before=$(apiserver_requests)
check "tampered token gets 401 from the cluster proxy" request_returns 401 \
    "$CLUSTER_PROXY_URL/api/v1/namespaces" "$(tamper_token "$id_token" '{"email":"admin@example.test"}')"
check "token of another issuer gets 401 from the cluster proxy" request_returns 401 \
    "$CLUSTER_PROXY_URL/api/v1/namespaces" "$(other_issuer_token)"
check "rejected tokens never reach the double" test "$(apiserver_requests)" -eq "$before"
before=$(apiserver_requests)
check "ID token straight to the double gets 401" request_returns 401 "$APISERVER_URL/api/v1/namespaces" "$id_token"
check "service account alone gets 403 from the double" \
    request_returns 403 "$APISERVER_URL/api/v1/namespaces" "$service_account_token"

# 6. Upgrades and streams through both proxies.
kubeconfig=$("$lamplighter" kubeconfig 2>/dev/null)
check "exec through both proxies echoes stdin" \
    bash -c "echo hello | timeout 30 kubectl --kubeconfig '$kubeconfig' exec -i demo-pod -- cat | grep -qx hello"
# timeout ends the watch after 7 s, and the loop stamps each line as it arrives.
timeout 7 kubectl --kubeconfig "$kubeconfig" get namespaces \
    --watch-only --output-watch-events --request-timeout=0 2>&1 |
    while IFS= read -r line; do echo "$(date +%s.%N) $line"; done >"$work/watch.txt" || true
check "watch receives two events seconds apart" node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n")
        .filter(l => / (ADDED|MODIFIED|DELETED) /.test(l));
    if (lines.length < 2) { console.error(`only ${lines.length} events`); process.exit(1); }
    const gap = parseFloat(lines[1]) - parseFloat(lines[0]);
    if (gap < 1) { console.error(`events arrived ${gap} s apart: not streamed`); process.exit(1); }' \
    "$work/watch.txt"

# 7. The first ID token, once expired beyond the leeway, is rejected. Lamplighter has refreshed
# it by now.
expiry=$(token_expiry "$first_id_token")
wait_seconds=$((expiry + leeway_seconds + 2 - $(date +%s)))
[ "$wait_seconds" -le 0 ] || sleep "$wait_seconds"
before=$(apiserver_requests)
check "expired token gets 401 from the cluster proxy" request_returns 401 \
    "$CLUSTER_PROXY_URL/api/v1/namespaces" "$first_id_token"
check "expired token never reaches the double" test "$(apiserver_requests)" -eq "$before"

# 8. A rotated service account token is picked up without a restart of the cluster proxy. The
# double restarts on the same port and accepts only the new token, so a request succeeds only
# once the cluster proxy has read the new file. The proxy checks the file every 30 s and on
# file watch events.
new_service_account_token=$(openssl rand -hex 32)
stop_test_part "$APISERVER_PID"
write_token_auth_file "$new_service_account_token"
start_double_without_oidc "$apiserver_port"
check "old service account token gets 401 from the double" \
    request_returns 401 "$APISERVER_URL/api/v1/namespaces" "$service_account_token"
write_service_account_token "$new_service_account_token"
if rotation_seconds=$(seconds_until_requests_work 35); then
    echo "# requests worked again $rotation_seconds s after the token file was replaced"
    rotation_done=true
else
    rotation_done=false
fi
check "rotated token used within 35 s" "$rotation_done"
check "cluster proxy not restarted" kill -0 "$cluster_proxy_pid"
curl -s --max-time 10 --cacert "$TEST_PKI/ca.crt" "$CLUSTER_PROXY_URL/metrics" >"$work/metrics.txt" || true
check "metrics count forwarded responses" grep -Eq '^lamplighter_cluster_proxy_responses_total\{code="200"\} [1-9]' "$work/metrics.txt"
check "metrics count rejected tokens" grep -Eq '^lamplighter_cluster_proxy_responses_total\{code="401"\} [1-9]' "$work/metrics.txt"
check "metrics count cache hits" grep -Eq '^lamplighter_cluster_proxy_token_cache_lookups_total\{result="hit"\} [1-9]' "$work/metrics.txt"
check "cluster proxy logs the rotation" grep -q 'Read the rotated service account token' "$work/logs/cluster-proxy.log"
before=$(apiserver_requests)
check "namespaces listed after rotation" \
    bash -c "$(declare -f kube); lamplighter='$lamplighter'; kube get namespaces | grep -q team-b"
check "double sees the service account after rotation" \
    request_logged "$before" /api/v1/namespaces "$service_account" jane@example.test

# 9. No token is in a log or under HOME.
check "refresh token read back" test -n "$refresh_token"
check "no file holds the first ID token" no_file_contains "$first_id_token"
check "no file holds the current ID token" no_file_contains "$(stored_field id_token)"
check "no file holds the refresh token" no_file_contains "$refresh_token"
check "no file holds the current refresh token" no_file_contains "$(stored_field refresh_token)"
check "no file holds the service account token" no_file_contains "$service_account_token"
check "no file holds the new service account token" no_file_contains "$new_service_account_token"

finished=true
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
