#!/usr/bin/env bash
# Resource budgets of one healthy probe run, enforced by the test suite. None is a timing:
# each is a count that a given binary and input reproduce on any machine.
#
#   tests/budgets.sh [BINARY [ARGS...]]   # default target/dist/kubemem (from ./build.sh)
#   KUBEMEM_MAX_RSS_KIB=560 tests/budgets.sh target/dist/kubemem-evict --evict
#
# The run: the healthy path on a pod's view of cgroup v2 with a cgroup namespace (the
# fixture tree k8s-v2-cgroupns: /proc/self/cgroup is "0::/"), --warning 85 --failure 95, and
# ARGS if given (kubemem-evict is measured with --evict: a healthy run never calls the API).
#
# Ceilings (set from measurements of the static musl build, see README "Numbers"; override to
# try one out):
#   KUBEMEM_MAX_SYSCALLS      system calls after execve (strace -f)             default 15
#   KUBEMEM_MAX_RSS_KIB       peak RSS of the program, KiB (VmHWM at its exit,  default 340
#                             read under ptrace by tests/hwm.c)
#   KUBEMEM_MAX_INSTRUCTIONS  user-space instructions (callgrind, env -i)       default 15500
# Peak RSS is not /usr/bin/time's %M: that includes the forked copy of time before the exec
# (about 450 KiB), more than kubemem itself maps.
# The binary's size ceiling is build.sh's (KUBEMEM_MAX_SIZE), and "no heap allocation after
# argument parsing" is tests/alloc.rs (cargo test): both run in the same test command.
#
# Needs strace, valgrind and a C compiler (cc); installs them with apt-get when it can.
# Without them it skips with the reason, except under CI=true, where that is a failure.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/dist/kubemem}
shift || true
max_syscalls=${KUBEMEM_MAX_SYSCALLS:-15}
max_rss=${KUBEMEM_MAX_RSS_KIB:-340}
max_instructions=${KUBEMEM_MAX_INSTRUCTIONS:-15500}
fixture=tests/fixtures/k8s-v2-cgroupns
args=(--root "$fixture" --warning 85 --failure 95 "$@")

missing() {
    local m=() p
    command -v strace >/dev/null || m+=(strace)
    command -v valgrind >/dev/null || m+=(valgrind)
    command -v cc >/dev/null || m+=(gcc)
    for p in "${m[@]}"; do printf '%s ' "$p"; done
}
# shellcheck source=tests/prerequisites.sh
. tests/prerequisites.sh
need=$(missing)
if [ -n "$need" ]; then
    # shellcheck disable=SC2086 # a list of package names
    apt_install $need
    need=$(missing)
fi
[ -z "$need" ] || missing_prerequisite budgets "${need% } (apt-get install ${need% })"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
check() { # name measured ceiling unit
    if [ "$2" -le "$3" ]; then
        printf 'ok   %-13s %8s %s (ceiling %s)\n' "$1" "$2" "$4" "$3"
    else
        printf 'FAIL %-13s %8s %s, above the ceiling of %s\n' "$1" "$2" "$4" "$3"
        failed=1
    fi
}

# The run must be the healthy path: exit 0, nothing printed.
if ! "$bin" "${args[@]}" >"$tmp/out" 2>&1 || [ -s "$tmp/out" ]; then
    echo "FAIL budgets: $bin ${args[*]} is not the healthy path (exit 0, no output):" >&2
    cat "$tmp/out" >&2
    exit 1
fi

strace -f -qq -o "$tmp/strace" "$bin" "${args[@]}"
if ! head -n 1 "$tmp/strace" | grep -q execve; then
    echo "FAIL budgets: strace's first line is not the execve" >&2
    exit 1
fi
check syscalls "$(($(wc -l <"$tmp/strace") - 1))" "$max_syscalls" "system calls after execve"

cc -O2 tests/hwm.c -o "$tmp/hwm"
rss=$("$tmp/hwm" "$bin" "${args[@]}")
check "peak RSS" "$rss" "$max_rss" KiB

# env -i: glibc's start-up reads every environment variable (about 500 instructions each).
instructions=$(env -i "$(command -v valgrind)" --tool=callgrind --callgrind-out-file=/dev/null \
    "$bin" "${args[@]}" 2>&1 | sed -n 's/.*Collected : *//p')
check instructions "${instructions:-999999999}" "$max_instructions" "user-space instructions"

exit "$failed"
