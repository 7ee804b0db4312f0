#!/usr/bin/env bash
# Test of `lamplighter credential`, kubectl's exec credential plugin, against the real OpenID
# provider, gnome-keyring, headless Chromium and kubectl: errors before sign-in, sign-in with
# --login, KUBERNETES_EXEC_INFO, and many parallel calls with a stale ID token that must cause
# exactly one refresh at the provider, first with no Lamplighter running and then through the
# running one.
# Usage: credential-plugin.sh LAMPLIGHTER_BINARY
# It starts its own X server and its own keyring session.
set -euo pipefail

lamplighter=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../tools/e2e-session.sh"
e2e_start_session lamplighter-credential "$@"
# The ExecCredentials that `lamplighter credential` prints carry the ID token by design, and so do
# the token lists this test extracts from them.
E2E_TOKEN_OUTPUTS="out/*.out out/*.token out/*.tokens"

tray_pid=
cleanup() {
    [ -z "$tray_pid" ] || kill -CONT "$tray_pid" 2>/dev/null || true
    [ -z "$tray_pid" ] || kill "$tray_pid" 2>/dev/null || true
    stop_test_parts
    # Keep the logs of a failed run; a passed run leaves nothing behind.
    if [ "${failures:-1}" -eq 0 ]; then
        rm -rf "$work"
    else
        echo "Logs and artifacts are in $work"
    fi
}
trap cleanup EXIT

# The number of parallel calls in each run with a stale ID token.
parallel_calls=50

exec_info_v1='{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true}}'
exec_info_v1beta1='{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":true}}'
exec_info_not_interactive='{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'
exec_info_v1alpha1='{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1alpha1","spec":{"interactive":true}}'

browser_starts() { wc -l <"$BROWSER_COUNT_FILE"; }
# The provider logs one line per successful token request, naming its grant type.
refresh_grants() { grep -c 'token: refresh_token grant succeeded' "$work/logs/provider.log" || true; }
grant_errors() { grep -c 'grant.error' "$work/logs/provider.log" || true; }

# Runs `lamplighter credential --cluster demo` with the arguments given; its stdout goes to
# $work/out/NAME.out, its stderr to NAME.err, its exit status to NAME.status.
run_credential() {
    local name=$1
    shift
    mkdir -p "$work/out"
    local status=0
    "$lamplighter" credential --cluster demo "$@" >"$work/out/$name.out" 2>"$work/out/$name.err" ||
        status=$?
    echo "$status" >"$work/out/$name.status"
}
exit_status() { cat "$work/out/$1.status"; }
stdout_empty() { test ! -s "$work/out/$1.out"; }
stderr_has() { grep -qF -- "$2" "$work/out/$1.err"; }

# Prints FIELD of the ExecCredential in FILE: apiVersion, kind, token or expirationTimestamp.
# Fails when the file is not one ExecCredential with a token and an RFC 3339 UTC expiry.
credential_field() {
    node -e '
        const [file, field] = process.argv.slice(1);
        const text = require("fs").readFileSync(file, "utf8");
        const credential = JSON.parse(text);
        const status = credential.status ?? {};
        if (credential.kind !== "ExecCredential") throw new Error(`kind is ${credential.kind}`);
        if (!status.token) throw new Error("status.token is missing");
        if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(status.expirationTimestamp ?? "")) {
            throw new Error(`status.expirationTimestamp "${status.expirationTimestamp}" is not RFC 3339 UTC`);
        }
        console.log(field in status ? status[field] : credential[field]);' "$1" "$2"
}

# Prints the claim NAME of the ID token in an ExecCredential FILE.
token_claim() {
    credential_field "$1" token | node -e '
        let s = ""; process.stdin.on("data", (d) => s += d).on("end", () => {
            const payload = JSON.parse(Buffer.from(s.trim().split(".")[1], "base64url"));
            console.log(payload[process.argv[1]]);
        });' "$2"
}

# Succeeds when the expirationTimestamp of the ExecCredential in FILE equals the ID token's exp.
expiry_matches_token() {
    test "$(date -u -d "$(credential_field "$1" expirationTimestamp)" +%s)" = "$(token_claim "$1" exp)"
}

# Reads a field of the stored tokens back through the Secret Service. QtKeychain files each entry
# under the attributes server (the service) and user (the key), and stores it base64-encoded.
stored_field() {
    secret-tool lookup server lamplighter user "tokens $ISSUER_URL lamplighter" 2>/dev/null |
        base64 -d | node -e 'let s = ""; process.stdin.on("data", d => s += d).on("end", () => console.log(JSON.parse(s)[process.argv[1]]))' "$1"
}

# Sleeps until less than 10 s of the ID token in the ExecCredential FILE are left, so that the
# next call refreshes it. The provider's ID tokens live 60 s, see start_test_parts below.
wait_until_stale() {
    local expires
    expires=$(date -u -d "$(credential_field "$1" expirationTimestamp)" +%s)
    local wait=$((expires - 9 - $(date +%s)))
    [ "$wait" -le 0 ] || sleep "$wait"
}

# Starts COUNT calls at once under NAME-1 ... NAME-COUNT with the arguments after COUNT, in the
# background. wait_for_parallel waits for them.
start_parallel() {
    local name=$1 count=$2
    shift 2
    parallel_pids=()
    for i in $(seq 1 "$count"); do
        run_credential "$name-$i" "$@" &
        parallel_pids+=($!)
    done
}
wait_for_parallel() {
    local pid
    for pid in "${parallel_pids[@]}"; do
        wait "$pid"
    done
}

# Succeeds when all calls NAME-1 ... NAME-COUNT exited 0 and printed the same token, which it
# writes to $work/out/NAME.token.
all_succeeded_with_one_token() {
    local name=$1 count=$2 i
    for i in $(seq 1 "$count"); do
        if [ "$(exit_status "$name-$i")" != 0 ]; then
            echo "call $name-$i exited $(exit_status "$name-$i"): $(cat "$work/out/$name-$i.err")" >&2
            return 1
        fi
        credential_field "$work/out/$name-$i.out" token >>"$work/out/$name.tokens"
    done
    local distinct
    distinct=$(sort -u "$work/out/$name.tokens" | wc -l)
    if [ "$distinct" -ne 1 ]; then
        echo "the $count calls printed $distinct different tokens" >&2
        return 1
    fi
    sort -u "$work/out/$name.tokens" >"$work/out/$name.token"
}

# Writes a kubeconfig whose user runs `lamplighter credential` with the exec apiVersion and
# interactiveMode given, and the extra plugin arguments after them.
write_exec_kubeconfig() {
    local file=$1 api_version=$2 interactive_mode=$3
    shift 3
    local args="credential, --cluster, demo"
    local extra
    for extra in "$@"; do
        args="$args, $extra"
    done
    cat >"$file" <<END
apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster:
    server: $APISERVER_URL
    certificate-authority: $TEST_PKI/ca.crt
users:
- name: jane-lamplighter
  user:
    exec:
      apiVersion: $api_version
      command: $lamplighter
      args: [$args]
      interactiveMode: $interactive_mode
      provideClusterInfo: false
contexts:
- name: demo
  context:
    cluster: demo
    user: jane-lamplighter
current-context: demo
END
}

whoami_through_plugin() {
    kubectl --kubeconfig "$1" auth whoami >"$work/out/whoami.txt" 2>&1 &&
        grep -q 'jane@example.test' "$work/out/whoami.txt"
}

# 1. The parts. ID tokens live 60 s, so one that has less than 15 s left is refreshed first. The
# running Lamplighter's next scheduled refresh then comes 45 s after the one that the parallel
# calls share, which leaves them that long to finish before it would be counted too.
BROWSER_COMMAND="[$here/counting-browser]" ID_TOKEN_TTL=60 start_test_parts "$work"
export LAMPLIGHTER_CONFIG

# 2. Before sign-in: errors, and no browser.
mkdir -p "$work/out"
"$lamplighter" credential --cluster nope >"$work/out/unknown.out" 2>"$work/out/unknown.err" &&
    echo 0 >"$work/out/unknown.status" || echo $? >"$work/out/unknown.status"
check "unknown cluster exits 2" test "$(exit_status unknown)" -eq 2
check "unknown cluster is named" stderr_has unknown 'The cluster "nope" is not in the configuration'
check "unknown cluster lists the configured ones" stderr_has unknown 'Its clusters are: demo.'
check "unknown cluster prints no credential" stdout_empty unknown

run_credential signed-out
check "signed out without --login exits 1" test "$(exit_status signed-out)" -eq 1
check "signed out says to run lamplighter login" stderr_has signed-out 'Run `lamplighter login`'
check "signed out mentions --login" stderr_has signed-out 'pass --login'
check "signed out prints no credential" stdout_empty signed-out

KUBERNETES_EXEC_INFO=$exec_info_not_interactive run_credential not-interactive --login
check "not interactive with --login exits 1" test "$(exit_status not-interactive)" -eq 1
check "not interactive explains why no browser opens" stderr_has not-interactive 'without a terminal'
check "no browser started before sign-in" test "$(browser_starts)" -eq 0

KUBERNETES_EXEC_INFO=$exec_info_v1alpha1 run_credential v1alpha1 --login
check "unserved apiVersion exits 2" test "$(exit_status v1alpha1)" -eq 2
check "unserved apiVersion is named" \
    stderr_has v1alpha1 'requests apiVersion "client.authentication.k8s.io/v1alpha1"'
KUBERNETES_EXEC_INFO='{"apiVersion":' run_credential broken-exec-info --login
check "invalid KUBERNETES_EXEC_INFO exits 2" test "$(exit_status broken-exec-info)" -eq 2
check "invalid KUBERNETES_EXEC_INFO is named" stderr_has broken-exec-info 'Invalid KUBERNETES_EXEC_INFO'
check "no browser started for invalid input" test "$(browser_starts)" -eq 0

# 3. --login signs in through the browser once and prints the credential, also when three
# calls need the sign-in at the same time.
export KUBERNETES_EXEC_INFO=$exec_info_v1
start_parallel login-together 3 --login
run_credential login --login
wait_for_parallel
unset KUBERNETES_EXEC_INFO
check "--login exits 0" test "$(exit_status login)" -eq 0
check "parallel --login calls print one token" all_succeeded_with_one_token login-together 3
check "--login opened the browser once" test "$(browser_starts)" -eq 1
check "credential is v1" test "$(credential_field "$work/out/login.out" apiVersion)" = \
    client.authentication.k8s.io/v1
check "credential names jane" test "$(token_claim "$work/out/login.out" email)" = jane@example.test
check "expirationTimestamp is the token's exp" expiry_matches_token "$work/out/login.out"
check "credential token is the stored ID token" \
    test "$(credential_field "$work/out/login.out" token)" = "$(stored_field id_token)"

grants=$(refresh_grants)
KUBERNETES_EXEC_INFO=$exec_info_v1beta1 run_credential v1beta1
check "v1beta1 exits 0" test "$(exit_status v1beta1)" -eq 0
check "v1beta1 requested, v1beta1 printed" \
    test "$(credential_field "$work/out/v1beta1.out" apiVersion)" = client.authentication.k8s.io/v1beta1
check "fresh token is not refreshed" test "$(refresh_grants)" -eq "$grants"
check "fresh token printed again" test "$(credential_field "$work/out/v1beta1.out" token)" = \
    "$(credential_field "$work/out/login.out" token)"

# 4. No Lamplighter running: parallel calls with a stale token share one refresh.
wait_until_stale "$work/out/login.out"
grants=$(refresh_grants)
start_parallel alone "$parallel_calls"
wait_for_parallel
check "$parallel_calls parallel calls print one token" all_succeeded_with_one_token alone "$parallel_calls"
check "parallel calls refreshed exactly once" test "$(refresh_grants)" -eq $((grants + 1))
check "provider reported no grant error" test "$(grant_errors)" -eq 0
check "parallel calls got a new token" test "$(cat "$work/out/alone.token")" != \
    "$(credential_field "$work/out/login.out" token)"
check "keychain holds the refreshed token" test "$(cat "$work/out/alone.token")" = "$(stored_field id_token)"
check "no browser during refresh" test "$(browser_starts)" -eq 1
refresh_token=$(stored_field refresh_token)

# 5. kubectl runs the plugin and reaches the API server double with the ID token.
write_exec_kubeconfig "$work/exec-v1.kubeconfig" client.authentication.k8s.io/v1 Never
write_exec_kubeconfig "$work/exec-v1beta1.kubeconfig" client.authentication.k8s.io/v1beta1 Never
check "kubectl whoami through the v1 plugin" whoami_through_plugin "$work/exec-v1.kubeconfig"
check "kubectl whoami through the v1beta1 plugin" whoami_through_plugin "$work/exec-v1beta1.kubeconfig"

# 6. The running Lamplighter serves the calls and refreshes once for all of them. It is stopped
# with SIGSTOP while its token goes stale and the calls connect, so that they all reach it
# before it can refresh on its own schedule.
QT_LOGGING_RULES="lamplighter.session.debug=true" "$lamplighter" >"$work/logs/lamplighter.log" 2>&1 &
tray_pid=$!
# Only the running instance reports a proxy; `status` without it reads the keychain itself.
for _ in $(seq 1 100); do
    "$lamplighter" status >"$work/out/status.txt" 2>&1 && grep -q '^Proxy: *https://' "$work/out/status.txt" &&
        grep -q 'signed in' "$work/out/status.txt" && break
    sleep 0.2
done
check "running Lamplighter is signed in" grep -q 'signed in' "$work/out/status.txt"
check "running Lamplighter serves the proxy" grep -q '^Proxy: *https://' "$work/out/status.txt"
run_credential tray-fresh
check "running Lamplighter serves a credential" test "$(exit_status tray-fresh)" -eq 0
kill -STOP "$tray_pid"
wait_until_stale "$work/out/tray-fresh.out"
grants=$(refresh_grants)
start_parallel tray "$parallel_calls"
sleep 1
kill -CONT "$tray_pid"
wait_for_parallel
check "$parallel_calls calls through Lamplighter print one token" \
    all_succeeded_with_one_token tray "$parallel_calls"
check "Lamplighter refreshed exactly once for them" test "$(refresh_grants)" -eq $((grants + 1))
check "Lamplighter answered every call" \
    test "$(grep -c 'Sending the ID token to `lamplighter credential`' "$work/logs/lamplighter.log")" \
    -eq $((parallel_calls + 1))
check "calls through Lamplighter got a new token" test "$(cat "$work/out/tray.token")" != \
    "$(credential_field "$work/out/tray-fresh.out" token)"
check "kubectl whoami through the plugin and Lamplighter" whoami_through_plugin "$work/exec-v1.kubeconfig"
check "provider still reported no grant error" test "$(grant_errors)" -eq 0

# 7. Signed out: kubectl without a terminal opens no browser even with --login in the plugin's
# arguments, and --login with a terminal signs in through the running Lamplighter.
"$lamplighter" logout >/dev/null
write_exec_kubeconfig "$work/exec-login.kubeconfig" client.authentication.k8s.io/v1 Never --login
kubectl --kubeconfig "$work/exec-login.kubeconfig" auth whoami >"$work/out/signed-out-kubectl.txt" 2>&1 || true
check "kubectl after logout fails with the advice" grep -q 'Run `lamplighter login`' "$work/out/signed-out-kubectl.txt"
check "kubectl after logout started no browser" test "$(browser_starts)" -eq 1
KUBERNETES_EXEC_INFO=$exec_info_v1 run_credential tray-login --login
check "--login through Lamplighter exits 0" test "$(exit_status tray-login)" -eq 0
check "--login through Lamplighter opened the browser once" test "$(browser_starts)" -eq 2
check "--login through Lamplighter names jane" \
    test "$(token_claim "$work/out/tray-login.out" email)" = jane@example.test
kill "$tray_pid"
wait "$tray_pid" 2>/dev/null || true
tray_pid=

# 8. No token or refresh token ended up on stderr or in a log.
no_output_contains() { ! grep -rqsF -- "$1" "$work"/out/*.err "$work"/logs/ "$work"/out/*.txt; }
check "no stderr or log contains the ID token" no_output_contains "$(cat "$work/out/tray.token")"
check "no stderr or log contains the refresh token" no_output_contains "$refresh_token"

check_no_issued_secrets
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
