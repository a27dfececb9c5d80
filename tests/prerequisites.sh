# shellcheck shell=bash
# Sourced by the test scripts that need tools from outside the Rust toolchain.

# apt_install PACKAGE...: as root on Debian, install the packages quietly; otherwise, or when
# that fails, do nothing (the caller checks for what it needs afterwards).
apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null 2>&1 || true
}

# missing_prerequisite SUITE WHAT: ends a suite that cannot run for want of WHAT: a failure
# under CI=true (CI must never pass by skipping), a skip with the reason otherwise (a
# developer's machine may lack a tool).
missing_prerequisite() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL $1: missing $2" >&2
        exit 1
    fi
    echo "SKIP $1: missing $2"
    exit 0
}
