# The start that the end-to-end tests share; sourced by them.
#
# e2e_start_session PREFIX "$@" runs the calling script again under its own X server and in its
# own keyring session, with a fresh work folder /tmp/PREFIX.XXXXXX. In that second run it
# returns with `work`, HOME, XDG_RUNTIME_DIR, KUBECACHEDIR and BROWSER_COUNT_FILE set and the
# test parts of test-parts.sh loaded.
#
# `check NAME COMMAND...` prints "ok - NAME" or "not ok - NAME" and counts both in `checks` and
# `failures`. `check_no_issued_secrets` is such a check: no file under the work folder, the logs
# and the test HOME among them, contains a secret that the provider issued during the run.

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

e2e_start_session() {
    local prefix=$1
    shift
    if [ -z "${LAMPLIGHTER_E2E_INSIDE:-}" ]; then
        work=$(mktemp -d "/tmp/$prefix.XXXXXX")
        mkdir -p "$work/home"
        export LAMPLIGHTER_E2E_INSIDE=1 LAMPLIGHTER_E2E_WORK=$work HOME_FOR_KEYRING=$work/home
        exec xvfb-run --auto-servernum --server-args="-screen 0 1024x768x24" \
            "$tools_dir/with-keyring" "$0" "$@"
    fi

    work=$LAMPLIGHTER_E2E_WORK
    export HOME=$work/home XDG_RUNTIME_DIR=$work/run KUBECACHEDIR=$work/kube-cache
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
    export BROWSER_COUNT_FILE=$work/browser-starts LAMPLIGHTER_TEST_ARTIFACTS=$work/artifacts
    : >"$BROWSER_COUNT_FILE"
    # The provider records what it issues here, and Lamplighter logs at debug level, so that
    # check_no_issued_secrets also covers the most detailed log lines.
    export ISSUED_SECRETS_FILE=$work/issued-secrets
    export QT_LOGGING_RULES="lamplighter.*.debug=true"
    source "$tools_dir/test-parts.sh"
    checks=0
    failures=0
}

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

# Searches every file under the work folder for the secrets in $ISSUED_SECRETS_FILE and names
# each file and kind of secret it finds, never the secret. Files that carry a token by design,
# such as a saved ExecCredential, are named by the caller as shell patterns relative to the work
# folder in E2E_TOKEN_OUTPUTS.
no_issued_secret_in_files() {
    local secrets=$ISSUED_SECRETS_FILE patterns file relative pattern kind value found=0
    [ -s "$secrets" ] || { echo "the provider recorded no secrets in $secrets" >&2; return 1; }
    patterns=$(mktemp)
    cut -d' ' -f2- "$secrets" | sort -u >"$patterns"
    while IFS= read -r file; do
        relative=${file#"$work"/}
        [ "$file" = "$secrets" ] && continue
        # The provider's own log names its interactions, whose ids are also its cookie values.
        for pattern in 'logs/provider.*' ${E2E_TOKEN_OUTPUTS:-}; do
            # shellcheck disable=SC2053 # the pattern is meant to match as a glob
            [[ $relative == $pattern ]] && continue 2
        done
        while IFS=' ' read -r kind value; do
            if grep -qsF -- "$value" "$file"; then
                echo "found a $kind in $relative" >&2
                found=1
            fi
        done <"$secrets"
    done < <(grep -rlsF -D skip -f "$patterns" "$work" || true)
    rm -f "$patterns"
    [ "$found" = 0 ]
}

check_no_issued_secrets() {
    check "no issued secret in any log, output or file of the run" no_issued_secret_in_files
}

