# The start that the end-to-end tests share; sourced by them.
#
# e2e_start_session PREFIX "$@" runs the calling script again under its own X server and in its
# own keyring session, with a fresh work folder /tmp/PREFIX.XXXXXX. In that second run it
# returns with `work`, HOME, XDG_RUNTIME_DIR, KUBECACHEDIR and BROWSER_COUNT_FILE set and the
# test parts of test-parts.sh loaded.
#
# `check NAME COMMAND...` prints "ok - NAME" or "not ok - NAME" and counts both in `checks` and
# `failures`.

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
