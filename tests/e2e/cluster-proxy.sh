#!/usr/bin/env bash
# End-to-end test of a cluster without OpenID Connect. It signs in from the tray through headless
# Chromium, then uses kubectl through the local proxy and lamplighter-cluster-proxy. The cluster
# proxy verifies the ID token and impersonates the person towards an API server double without
# OIDC, whose RBAC table lets jane list namespaces only in the last part. The cluster proxy's
# namespace listing is checked in each namespaces.mode, then its review of a client's own
# Impersonate-* headers, rotations of the service account token and of the provider's signing
# keys.
# Usage: cluster-proxy.sh LAMPLIGHTER_BINARY CLUSTER_PROXY_BINARY
# It starts its own X server with a tray host and its own keyring session.
set -euo pipefail

lamplighter=$(realpath "$1")
cluster_proxy=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../tools/e2e-session.sh"
e2e_start_session lamplighter-cluster-proxy-e2e "$@"

lamplighter_pid=
cluster_proxy_pid=
cluster_proxy_port=
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
# The double changes one of its five namespaces every WATCH_INTERVAL seconds, in turn, so the
# namespace default changes every 2.5 s.
WATCH_INTERVAL=0.5
all_namespaces=(default kube-public kube-system team-a team-b)

# Writes the double's --rbac-file to FILE. jane's ID token has the groups developers and
# viewers, which the cluster proxy prefixes with "oidc:".
# - team-a-developers: the group oidc:developers may read pods in team-a, and nowhere else.
#   The namespace listing in test mode (verb list, resource pods) should therefore keep team-a.
# - jane-default-pod and jane-default-namespace: the rights that the checks written before this
#   table need, and no more. They are get and exec on demo-pod in default, where exec over
#   WebSocket is a get and over SPDY a create, and get and watch on the namespace default alone.
# - jane-impersonates-bob: jane may impersonate the user bob, and no one else, which the
#   client impersonation checks ask the cluster proxy to review.
# - lamplighter-cluster-proxy: the service account may list namespaces, which modes all and test
#   need, and create SubjectAccessReviews, which mode test and client impersonation need.
#   Impersonation comes from --impersonators, not from this table.
# When JANE_LISTS_NAMESPACES, the second argument, is true, jane-namespace-readers also lets jane
# list namespaces.
write_rbac_file() {
    local file=$1 jane_lists_namespaces=$2 namespace_readers=
    if [ "$jane_lists_namespaces" = true ]; then
        namespace_readers='{
      "name": "jane-namespace-readers",
      "clusterScope": true,
      "subjects": [{ "kind": "User", "name": "jane@example.test" }],
      "rules": [{ "apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"] }]
    },'
    fi
    cat >"$file" <<END
{
  "bindings": [
    $namespace_readers
    {
      "name": "team-a-developers",
      "namespaces": ["team-a"],
      "subjects": [{ "kind": "Group", "name": "oidc:developers" }],
      "rules": [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] }]
    },
    {
      "name": "jane-default-pod",
      "namespaces": ["default"],
      "subjects": [{ "kind": "User", "name": "jane@example.test" }],
      "rules": [
        { "apiGroups": [""], "resources": ["pods"], "resourceNames": ["demo-pod"], "verbs": ["get"] },
        { "apiGroups": [""], "resources": ["pods/exec"], "resourceNames": ["demo-pod"], "verbs": ["get", "create"] }
      ]
    },
    {
      "name": "jane-default-namespace",
      "clusterScope": true,
      "subjects": [{ "kind": "User", "name": "jane@example.test" }],
      "rules": [{ "apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["default"], "verbs": ["get", "watch"] }]
    },
    {
      "name": "jane-impersonates-bob",
      "clusterScope": true,
      "subjects": [{ "kind": "User", "name": "jane@example.test" }],
      "rules": [{ "apiGroups": [""], "resources": ["users"], "resourceNames": ["bob"], "verbs": ["impersonate"] }]
    },
    {
      "name": "lamplighter-cluster-proxy",
      "clusterScope": true,
      "subjects": [{ "kind": "ServiceAccount", "namespace": "lamplighter", "name": "lamplighter-cluster-proxy" }],
      "rules": [
        { "apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"] },
        { "apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"] }
      ]
    }
  ]
}
END
}

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
# free one), authorizing with the RBAC table in RBAC_FILE. The cluster proxy's service account
# may impersonate, list namespaces and create SubjectAccessReviews, and nothing else. So any other resource request that
# succeeds, an exec included, was made as the impersonated person. The double's request log
# has no impersonatedUser for upgraded requests.
start_double_without_oidc() {
    start_apiserver_double "$work" "$1" \
        --token-auth-file "$work/token-auth.csv" --impersonators "$service_account" \
        --rbac-file "$2"
}

# Signs a certificate for 127.0.0.1 with the test CA, as $TEST_PKI/NAME.crt and NAME.key.
make_loopback_certificate() {
    local name=$1
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$TEST_PKI/$name.key" 2>>"$work/logs/openssl.log"
    openssl req -new -x509 -key "$TEST_PKI/$name.key" -subj "/O=Lamplighter tests/CN=$name" \
        -CA "$TEST_PKI/ca.crt" -CAkey "$TEST_PKI/ca.key" -days 7 -sha256 \
        -addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
        -addext "extendedKeyUsage=serverAuth" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -out "$TEST_PKI/$name.crt" 2>>"$work/logs/openssl.log"
}

# Writes the cluster proxy's configuration to listen on PORT (0 picks a free one), with the
# lines given after PORT in its namespaces section. allow_client_impersonation is written only
# when the variable of that name is true, so that otherwise the default applies.
allow_client_impersonation=false
write_cluster_proxy_config() {
    local port=$1 line
    shift
    cat >"$work/cluster-proxy.yaml" <<END
listen: 127.0.0.1:$port
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
    if [ "$allow_client_impersonation" = true ]; then
        echo 'allow_client_impersonation: true' >>"$work/cluster-proxy.yaml"
    fi
    echo 'namespaces:' >>"$work/cluster-proxy.yaml"
    for line in "$@"; do
        printf '  %s\n' "$line" >>"$work/cluster-proxy.yaml"
    done
}

# Starts the cluster proxy, reads its port from its first log line and waits up to 30 s for
# /readyz to return 200. Sets cluster_proxy_pid, cluster_proxy_port, CLUSTER_PROXY_URL and
# cluster_proxy_started_at, the time of the start in seconds since the epoch.
# A restarted cluster proxy appends to the same log, so only the lines after the current end
# are read.
start_cluster_proxy() {
    local skip
    skip=0
    [ ! -e "$work/logs/cluster-proxy.log" ] || skip=$(wc -l <"$work/logs/cluster-proxy.log")
    cluster_proxy_started_at=$(date +%s)
    "$cluster_proxy" --config "$work/cluster-proxy.yaml" >>"$work/logs/cluster-proxy.log" 2>&1 &
    cluster_proxy_pid=$!

    local port=
    for _ in $(seq 1 100); do
        port=$(tail -n +"$((skip + 1))" "$work/logs/cluster-proxy.log" |
            sed -n 's/.*Cluster proxy listening on 127\.0\.0\.1:\([0-9]*\), forwarding to .*/\1/p' | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$cluster_proxy_pid" 2>/dev/null || break
        sleep 0.2
    done
    if [ -z "$port" ]; then
        echo "The cluster proxy printed no listening port within 20 s; its log:" >&2
        cat "$work/logs/cluster-proxy.log" >&2
        return 1
    fi
    cluster_proxy_port=$port
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

# Stops the running cluster proxy by its process id, waiting up to 10 s for it to end before it
# is killed, then starts it again on the same port with the namespaces lines given. Lamplighter's
# kubeconfig keeps reaching it because the port stays.
restart_cluster_proxy() {
    kill "$cluster_proxy_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$cluster_proxy_pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$cluster_proxy_pid" 2>/dev/null; then
        echo "The cluster proxy (process $cluster_proxy_pid) did not stop within 10 s of SIGTERM; killing it" >&2
        kill -KILL "$cluster_proxy_pid" 2>/dev/null || true
    fi
    wait "$cluster_proxy_pid" 2>/dev/null || true
    cluster_proxy_pid=
    write_cluster_proxy_config "$cluster_proxy_port" "$@"
    start_cluster_proxy
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

# Runs `kubectl get namespaces` through both proxies and writes the first column of its output,
# the names, to FILE, one a line. kubectl's errors go to FILE.err.
get_namespace_names() {
    local file=$1
    kube get namespaces --request-timeout=20s >"$file.out" 2>"$file.err" || true
    awk 'NR > 1 { print $1 }' "$file.out" >"$file"
}

# Succeeds when the names in FILE are exactly the names given after FILE, in any order.
names_are() {
    local file=$1 expected actual
    shift
    expected=$(printf '%s\n' "$@" | sort)
    actual=$(sort "$file")
    [ "$actual" = "$expected" ] && return 0
    echo "kubectl listed [$(echo $actual)], expected [$(echo $expected)]; its errors: $(head -c 300 "$file.err")" >&2
    return 1
}

# Succeeds when FILE lists NAME.
name_listed() {
    grep -qx -- "$2" "$1" && return 0
    echo "kubectl listed [$(echo $(cat "$1"))], without $2; its errors: $(head -c 300 "$1.err")" >&2
    return 1
}

# Succeeds when FILE does not list NAME.
name_not_listed() {
    ! grep -qx -- "$2" "$1" && return 0
    echo "kubectl listed [$(echo $(cat "$1"))], with $2" >&2
    return 1
}

# Writes the cluster proxy's own namespace listing, GET /lamplighter/namespaces through both
# proxies, to FILE. kubectl's raw paths carry the server URL's /clusters/NAME prefix.
get_namespace_listing() {
    kube get --raw /clusters/demo/lamplighter/namespaces >"$1" 2>&1 || true
}

# Succeeds when the JSON object in FILE has the "namespaces" array EXPECTED, given as JSON.
namespaces_field_is() {
    node -e '
        const [file, expected] = process.argv.slice(1);
        const text = require("fs").readFileSync(file, "utf8");
        let actual;
        try {
            actual = JSON.stringify(JSON.parse(text).namespaces);
        } catch (error) {
            console.error(`${file} contains no JSON object: ${text.slice(0, 300)}`);
            process.exit(1);
        }
        const matches = actual === JSON.stringify(JSON.parse(expected));
        if (!matches) console.error(`namespaces is ${actual}, expected ${expected}`);
        process.exit(matches ? 0 : 1);' "$1" "$2"
}

review_path=/apis/authorization.k8s.io/v1/subjectaccessreviews

# Counts the SubjectAccessReviews in the request log after line SKIP.
reviews_since() {
    tail -n +"$(($1 + 1))" "$work/logs/apiserver-requests.jsonl" |
        grep -c "\"path\":\"$review_path\"" || true
}

# Succeeds when there are at least MINIMUM SubjectAccessReviews in the request log after line
# SKIP, and the log entry of each has the value VALUE in FIELD (user, impersonatedUser or
# reviewedUser). An absent field counts as "".
reviews_all_have() {
    node -e '
        const [file, path, skip, field, value, minimum] = process.argv.slice(1);
        const reviews = require("fs").readFileSync(file, "utf8").trim().split("\n").slice(Number(skip))
            .map(JSON.parse).filter((entry) => entry.path === path);
        const others = reviews.filter((entry) => (entry[field] ?? "") !== value);
        if (reviews.length < Number(minimum)) console.error(`${reviews.length} reviews, expected at least ${minimum}`);
        for (const entry of others) console.error(`a review whose ${field} is not "${value}": ${JSON.stringify(entry)}`);
        process.exit(reviews.length >= Number(minimum) && others.length === 0 ? 0 : 1);' \
        "$work/logs/apiserver-requests.jsonl" "$review_path" "$@"
}

# Succeeds when no entry in the request log after line SKIP has USER as its impersonatedUser.
nobody_impersonated_since() {
    node -e '
        const [file, skip, user] = process.argv.slice(1);
        const entries = require("fs").readFileSync(file, "utf8").trim().split("\n").slice(Number(skip))
            .map(JSON.parse).filter((entry) => entry.impersonatedUser === user);
        for (const entry of entries) console.error(`a request as ${user}: ${JSON.stringify(entry)}`);
        process.exit(entries.length === 0 ? 0 : 1);' \
        "$work/logs/apiserver-requests.jsonl" "$1" "$2"
}

# Succeeds when the last request that the namespace service recorded has the user USER and
# every group given after USER.
service_request_names() {
    node -e '
        const [file, user, ...groups] = process.argv.slice(1);
        const fs = require("fs");
        if (!fs.existsSync(file)) { console.error("the namespace service recorded no request"); process.exit(1); }
        const requests = fs.readFileSync(file, "utf8").trim().split("\n").map(JSON.parse);
        const last = requests[requests.length - 1];
        const missing = groups.filter((group) => !(last.groups ?? []).includes(group));
        if (last.user !== user || missing.length > 0)
            console.error(`the namespace service received ${JSON.stringify(last)}, expected user ${user} and groups ${groups}`);
        process.exit(last.user === user && missing.length === 0 ? 0 : 1);' \
        "$work/namespace-service-requests.jsonl" "$@"
}

# Succeeds when FILE is a NamespaceList with a resourceVersion and every namespace of the double,
# which is how the double's list differs from the cluster proxy's own (which has no
# resourceVersion).
is_double_namespace_list() {
    node -e '
        const [file, ...names] = process.argv.slice(1);
        const text = require("fs").readFileSync(file, "utf8");
        let list;
        try { list = JSON.parse(text); } catch { console.error(`not JSON: ${text.slice(0, 300)}`); process.exit(1); }
        const listed = (list.items ?? []).map((item) => item.metadata?.name);
        const missing = names.filter((name) => !listed.includes(name));
        const ok = list.kind === "NamespaceList" && !!list.metadata?.resourceVersion && missing.length === 0;
        if (!ok) console.error(`kind ${list.kind}, resourceVersion "${list.metadata?.resourceVersion ?? ""}", names ${listed}, expected ${names}`);
        process.exit(ok ? 0 : 1);' "$1" "${all_namespaces[@]}"
}

# Runs a kubectl request through both proxies, so that Lamplighter refreshes the ID token when
# it is near expiry, then prints the stored ID token.
fresh_id_token() {
    kube get namespace default --request-timeout=20s >/dev/null 2>&1 || true
    stored_field id_token
}

# Runs COMMAND with its arguments every half second until it succeeds or TIMEOUT seconds have
# passed, and prints the seconds it took. On the timeout it fails and prints the start of the
# last attempt's error output to stderr.
seconds_until() {
    local timeout=$1 start
    shift
    start=$(date +%s.%N)
    while true; do
        if "$@" 2>"$work/attempt.err"; then
            node -e 'console.log((process.argv[2] - process.argv[1]).toFixed(1))' "$start" "$(date +%s.%N)"
            return 0
        fi
        if node -e 'process.exit(process.argv[2] - process.argv[1] > Number(process.argv[3]) ? 0 : 1)' \
            "$start" "$(date +%s.%N)" "$timeout"; then
            echo "$* still failed after $timeout s: $(head -c 500 "$work/attempt.err")" >&2
            return 1
        fi
        sleep 0.5
    done
}

# Rotates the provider's signing keys and retires the old ones, with the provider's test
# endpoint, and writes its response to FILE.
rotate_signing_keys() {
    local code
    code=$(curl -s -o "$1" -w '%{http_code}' --max-time 10 --cacert "$TEST_PKI/ca.crt" \
        -X POST "$ISSUER_URL/test/rotate-keys?retire-old=true" || true)
    [ "$code" = 200 ] && return 0
    echo "expected 200 from the provider's rotate-keys endpoint, got $code: $(head -c 300 "$1")" >&2
    return 1
}

# Succeeds when the stored ID token is signed with the key that the provider signs with since
# the rotation whose response is in FILE. Neither key id is printed.
stored_token_has_new_key() {
    stored_field id_token | node -e '
        let token = "";
        process.stdin.on("data", (chunk) => (token += chunk)).on("end", () => {
            let header;
            try {
                header = JSON.parse(Buffer.from(token.trim().split(".")[0], "base64url"));
            } catch {
                console.error("no stored ID token could be read");
                process.exit(1);
            }
            const signing = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).signingKeyIds ?? {};
            const matches = typeof header.kid === "string" && header.kid === signing[header.alg];
            if (!matches) console.error("the stored ID token is not signed with the new key");
            process.exit(matches ? 0 : 1);
        });' "$1"
}

# Runs `kubectl auth whoami -o json` through both proxies into FILE, and succeeds when it names
# jane.
whoami_names_jane() {
    kube auth whoami -o json --request-timeout=10s >"$1" 2>&1 || { head -c 300 "$1" >&2; return 1; }
    review_names_user "$1" jane@example.test
}

# Counts the lines of the cluster proxy's log after line SKIP that contain TEXT.
cluster_proxy_lines_since() {
    tail -n +"$(($1 + 1))" "$work/logs/cluster-proxy.log" | grep -cF -- "$2" || true
}

no_file_contains() { ! grep -rqsF -- "$1" "$HOME" && ! grep -qsF -- "$1" "$work"/logs/*; }

# 1. The parts: provider, a double without OIDC, the cluster proxy, tray host, Lamplighter.
make_test_pki "$work"
ID_TOKEN_TTL=20 start_oidc_provider "$work"
service_account_token=$(openssl rand -hex 32)
write_token_auth_file "$service_account_token"
write_rbac_file "$work/rbac.json" false
start_double_without_oidc 0 "$work/rbac.json"
apiserver_port=$(ready_field "$work/apiserver.ready" port)
write_service_account_token "$service_account_token"
make_loopback_certificate cluster-proxy
# Mode all until the namespace listing checks, so that the first checks do not depend on them.
write_cluster_proxy_config 0 "mode: all"
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
# Lamplighter fetches the provider's key set when it signs in, and later only for a key it lacks.
signed_in_at=$(date +%s)
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
# The service account may list namespaces but not pods.
check "service account alone gets 403 from the double" \
    request_returns 403 "$APISERVER_URL/api/v1/namespaces/default/pods" "$service_account_token"

# 6. Upgrades and streams through both proxies.
kubeconfig=$("$lamplighter" kubeconfig 2>/dev/null)
check "exec through both proxies echoes stdin" \
    bash -c "echo hello | timeout 30 kubectl --kubeconfig '$kubeconfig' exec -i demo-pod -- cat | grep -qx hello"
# jane may watch the namespace default only, which the double changes every 2.5 s. timeout ends
# the watch after 12 s, and the loop stamps each line as it arrives. The first event is the
# current object, sent at once, so only the events after it show streaming. kubectl 1.32 prints
# these rows without the name column.
timeout 12 kubectl --kubeconfig "$kubeconfig" get namespace default \
    --watch-only --output-watch-events --request-timeout=0 2>&1 |
    while IFS= read -r line; do echo "$(date +%s.%N) $line"; done >"$work/watch.txt" || true
check "watch receives two events seconds apart" node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n")
        .filter(l => / (ADDED|MODIFIED|DELETED)( |$)/.test(l)).slice(1);
    if (lines.length < 2) { console.error(`only ${lines.length} events after the first`); process.exit(1); }
    const gap = parseFloat(lines[1]) - parseFloat(lines[0]);
    if (gap < 1) { console.error(`events arrived ${gap} s apart: not streamed`); process.exit(1); }' \
    "$work/watch.txt"

# 7. Namespace listing in each namespaces.mode. jane may not list namespaces, so the cluster
# proxy returns the namespaces its mode finds for GET /api/v1/namespaces. It restarts on the
# same port for each mode.
check "cluster proxy restarts in test mode" \
    restart_cluster_proxy "mode: test" "verb: list" "resource: pods"
before=$(apiserver_requests)
get_namespace_names "$work/test-mode.txt"
# Only the group oidc:developers may read pods in team-a, so team-a shows only when the reviews
# carry jane's groups.
check "test mode: kubectl shows team-a" name_listed "$work/test-mode.txt" team-a
check "test mode: kubectl hides team-b" name_not_listed "$work/test-mode.txt" team-b
# One review of whether jane may list namespaces, then one per namespace, each a
# SubjectAccessReview that the service account makes for jane without impersonation.
review_count=$((${#all_namespaces[@]} + 1))
check "test mode: reviews name jane" reviews_all_have "$before" reviewedUser jane@example.test "$review_count"
check "test mode: reviews made by the service account" \
    reviews_all_have "$before" user "$service_account" "$review_count"
check "test mode: reviews made without impersonation" \
    reviews_all_have "$before" impersonatedUser "" "$review_count"
get_namespace_listing "$work/test-mode-listing.json"
check "test mode: listing endpoint returns team-a" namespaces_field_is "$work/test-mode-listing.json" '["team-a"]'

check "cluster proxy restarts with admin groups" \
    restart_cluster_proxy "mode: test" "verb: list" "resource: pods" 'admin_groups: ["oidc:viewers"]'
before=$(apiserver_requests)
get_namespace_names "$work/admin-mode.txt"
check "admin group: kubectl shows all namespaces" names_are "$work/admin-mode.txt" "${all_namespaces[@]}"
# The only review left is whether jane may list namespaces herself.
check "admin group: namespaces not reviewed" test "$(reviews_since "$before")" -eq 1
get_namespace_listing "$work/admin-mode-listing.json"
check "admin group: listing endpoint returns all" \
    namespaces_field_is "$work/admin-mode-listing.json" "$(node -e 'console.log(JSON.stringify(process.argv.slice(1)))' "${all_namespaces[@]}")"

check "cluster proxy restarts in mode all" restart_cluster_proxy "mode: all"
before=$(apiserver_requests)
get_namespace_names "$work/all-mode.txt"
check "mode all: kubectl shows all namespaces" names_are "$work/all-mode.txt" "${all_namespaces[@]}"
check "mode all: service account lists them itself" \
    request_logged "$before" /api/v1/namespaces "$service_account" ""

make_loopback_certificate namespace-service
node "$here/namespace-service.mjs" --cert "$TEST_PKI/namespace-service.crt" --key "$TEST_PKI/namespace-service.key" \
    --ready-file "$work/namespace-service.ready" --record-file "$work/namespace-service-requests.jsonl" \
    --grant jane@example.test=team-b >"$work/logs/namespace-service.log" 2>&1 &
namespace_service_pid=$!
test_part_pids+=("$namespace_service_pid")
wait_for_ready_file "$work/namespace-service.ready" "The namespace service" "$work/logs/namespace-service.log"
namespace_service_url=$(ready_field "$work/namespace-service.ready" url)
# The test CA, which signed the service's certificate, is not among the system's CAs.
check "cluster proxy restarts in service mode" \
    restart_cluster_proxy "mode: service" "service_url: $namespace_service_url" \
    "certificate_authority: $TEST_PKI/ca.crt"
get_namespace_names "$work/service-mode.txt"
check "service mode: kubectl shows team-b only" names_are "$work/service-mode.txt" team-b
check "service mode: service receives jane and groups" \
    service_request_names jane@example.test oidc:developers oidc:viewers
stop_test_part "$namespace_service_pid"

check "cluster proxy restarts in mode none" restart_cluster_proxy "mode: none"
get_namespace_names "$work/none-mode.txt"
check "mode none: kubectl gets the double's 403" grep -qF \
    'Error from server (Forbidden): namespaces is forbidden: User "jane@example.test" cannot list resource "namespaces" in API group "" at the cluster scope' \
    "$work/none-mode.txt.err"
check "mode none: listing endpoint gets 404" \
    request_returns 404 "$CLUSTER_PROXY_URL/lamplighter/namespaces" "$(fresh_id_token)"

# 8. Client impersonation. With allow_client_impersonation, the cluster proxy reviews a client's
# own Impersonate-* headers with SubjectAccessReviews for the person, and acts as whom they name
# when every review allows it. jane may impersonate bob and no one else. The requests go
# straight to the cluster proxy with jane's ID token, because the local proxy drops
# Impersonate-* headers.
allow_client_impersonation=true
check "cluster proxy restarts with client impersonation" \
    restart_cluster_proxy "mode: test" "verb: list" "resource: pods"
allow_client_impersonation=false
id_token=$(fresh_id_token)
before=$(apiserver_requests)
# Discovery needs only system:authenticated, which the double adds to an impersonated user.
check "impersonating bob gets 200" \
    request_returns 200 "$CLUSTER_PROXY_URL/api" "$id_token" 'Impersonate-User: bob'
check "double sees the service account impersonating bob" \
    request_logged "$before" /api "$service_account" bob
check "impersonation review names jane" reviews_all_have "$before" reviewedUser jane@example.test 1
before=$(apiserver_requests)
check "impersonating mallory gets 403" \
    request_returns 403 "$CLUSTER_PROXY_URL/api" "$id_token" 'Impersonate-User: mallory'
check "double sees no request as mallory" nobody_impersonated_since "$before" mallory
check "Impersonate-Group without a user gets 400" \
    request_returns 400 "$CLUSTER_PROXY_URL/api" "$id_token" 'Impersonate-Group: oidc:developers'

# kubectl --as sends Impersonate-User itself. Its kubeconfig points straight at the cluster
# proxy with jane's current ID token, so it is readable by its owner only and removed after use.
direct_kubeconfig=$work/jane-direct.kubeconfig
id_token=$(fresh_id_token)
(
    umask 077
    cat >"$direct_kubeconfig" <<END
apiVersion: v1
kind: Config
clusters:
- name: cluster-proxy
  cluster:
    server: $CLUSTER_PROXY_URL
    certificate-authority: $TEST_PKI/ca.crt
users:
- name: jane
  user:
    token: $id_token
contexts:
- name: jane-direct
  context:
    cluster: cluster-proxy
    user: jane
current-context: jane-direct
END
)
check "direct kubeconfig has mode 0600" test "$(stat -c %a "$direct_kubeconfig")" = 600
kubectl --kubeconfig "$direct_kubeconfig" --as=bob auth whoami -o json >"$work/whoami-as-bob.json" 2>&1 || true
check "kubectl --as=bob names bob" review_names_user "$work/whoami-as-bob.json" bob
rm -f "$direct_kubeconfig"

# Test mode for the rest, with allow_client_impersonation off again, as by default. jane's
# namespace list after the rotation below then shows that a user who may list namespaces gets
# the API server's own list.
check "cluster proxy restarts for the rest" \
    restart_cluster_proxy "mode: test" "verb: list" "resource: pods"
id_token=$(fresh_id_token)
before=$(apiserver_requests)
check "impersonation off: Impersonate-User gets 200" \
    request_returns 200 "$CLUSTER_PROXY_URL/api/v1/namespaces/default" "$id_token" 'Impersonate-User: bob'
check "impersonation off: double sees jane, not bob" \
    request_logged "$before" /api/v1/namespaces/default "$service_account" jane@example.test

# 9. The first ID token, once expired beyond the leeway, is rejected. Lamplighter has refreshed
# it by now.
expiry=$(token_expiry "$first_id_token")
wait_seconds=$((expiry + leeway_seconds + 2 - $(date +%s)))
[ "$wait_seconds" -le 0 ] || sleep "$wait_seconds"
before=$(apiserver_requests)
check "expired token gets 401 from the cluster proxy" request_returns 401 \
    "$CLUSTER_PROXY_URL/api/v1/namespaces" "$first_id_token"
check "expired token never reaches the double" test "$(apiserver_requests)" -eq "$before"

# 10. A rotated service account token is picked up without a restart of the cluster proxy. The
# double restarts on the same port and accepts only the new token, so a request succeeds only
# once the cluster proxy has read the new file. The proxy checks the file every 30 s and on
# file watch events. The restarted double also lets jane list namespaces, so the cluster
# proxy forwards her namespace list.
new_service_account_token=$(openssl rand -hex 32)
stop_test_part "$APISERVER_PID"
write_token_auth_file "$new_service_account_token"
write_rbac_file "$work/rbac-jane-lists-namespaces.json" true
start_double_without_oidc "$apiserver_port" "$work/rbac-jane-lists-namespaces.json"
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
kube get --raw /clusters/demo/api/v1/namespaces >"$work/forwarded-namespaces.json" 2>&1 || true
check "allowed user gets the double's list" is_double_namespace_list "$work/forwarded-namespaces.json"

# 11. A rotation of the provider's signing keys that retires the old key is picked up without a
# restart of the cluster proxy. Lamplighter refreshes the 20 s ID token about every 10 s, and
# the first refresh after the rotation brings a token signed with the new key. Lamplighter
# fetches the key set again at once for a key it lacks. The cluster proxy does so at most every
# 10 s because its tokens come from clients, so the rotation waits until that has passed.
rotate_after=$((signed_in_at > cluster_proxy_started_at ? signed_in_at : cluster_proxy_started_at))
rotate_after=$((rotate_after + 12))
[ "$(date +%s)" -ge "$rotate_after" ] || sleep "$((rotate_after - $(date +%s)))"
cluster_proxy_log_lines=$(wc -l <"$work/logs/cluster-proxy.log")
cluster_proxy_pid_before_keys=$cluster_proxy_pid
check "provider rotates its signing keys" rotate_signing_keys "$work/rotated-keys.json"
if refresh_seconds=$(seconds_until 40 stored_token_has_new_key "$work/rotated-keys.json"); then
    echo "# Lamplighter stored a token signed with the new key $refresh_seconds s after the rotation"
    refreshed=true
else
    refreshed=false
fi
check "token of the new key within 40 s" "$refreshed"
if whoami_seconds=$(seconds_until 30 whoami_names_jane "$work/whoami-new-key.json"); then
    echo "# kubectl auth whoami worked $whoami_seconds s after that token was stored"
    whoami_works=true
else
    whoami_works=false
fi
check "whoami works after key rotation" "$whoami_works"
check "whoami names jane after key rotation" review_names_user "$work/whoami-new-key.json" jane@example.test
check "cluster proxy PID unchanged" kill -0 "$cluster_proxy_pid_before_keys"
check "cluster proxy not started again" \
    test "$(cluster_proxy_lines_since "$cluster_proxy_log_lines" 'Cluster proxy listening')" -eq 0
check "cluster proxy fetched the key set again" \
    test "$(cluster_proxy_lines_since "$cluster_proxy_log_lines" 'Fetched the JSON Web Key Set')" -ge 1

# 12. No token is in a log or under HOME.
check "refresh token read back" test -n "$refresh_token"
check "no file holds the first ID token" no_file_contains "$first_id_token"
check "no file holds the current ID token" no_file_contains "$(stored_field id_token)"
check "no file holds the refresh token" no_file_contains "$refresh_token"
check "no file holds the current refresh token" no_file_contains "$(stored_field refresh_token)"
check "no file holds the service account token" no_file_contains "$service_account_token"
check "no file holds the new service account token" no_file_contains "$new_service_account_token"

# 13. A second rotation soon after the first. Lamplighter once rejected the refreshed token here,
# because it fetched the key set at most once a minute, dropped the rotated refresh token with
# it, and was signed out when it retried with the used one. It must keep the session, and the
# cluster proxy must accept the new key within its 10 s refetch interval.
check "provider rotates its signing keys again" rotate_signing_keys "$work/rotated-keys-again.json"
check "token of the newest key within 40 s" \
    seconds_until 40 stored_token_has_new_key "$work/rotated-keys-again.json"
check "whoami works after the second rotation" \
    seconds_until 30 whoami_names_jane "$work/whoami-newest-key.json"
check "no second browser sign-in" test "$(browser_starts)" -eq 1

finished=true
check_no_issued_secrets
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
