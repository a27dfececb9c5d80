#!/bin/bash
# Records the working-set traces of benches/trend/traces/ (read by benches/trend.rs and
# tests/trend_traces.rs): each workload of record.c in a fresh child of our own cgroup v1
# memory cgroup with a 256 MiB limit, sampled every 100 ms.  Root; cgroup v1.  About 8 min.
#
#   benches/trend/record.sh [NAME...]     (default: all; see TRACES below)
#   benches/trend/record.sh --repeat N NAME...
#
# A trace is replaced only when its recording succeeded.  --repeat: N recordings of 12 s each
# (the start-up and the first estimates) as traces/repeat/NAME.I.trace, for
# `TREND_TRACES=benches/trend/traces/repeat cargo bench --bench trend`.
set -Euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.." || exit 2
TOP=$PWD
CACHE=$TOP/target/real-cache
OUT=$TOP/target/bench-trend
TRACES_DIR=$TOP/benches/trend/traces
# shellcheck source=tests/real/lib.sh disable=SC1091
. "$TOP/tests/real/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "${0##*/}: $*" >&2
    exit 2
}

# NAME: DURATION_S (at most) and record.c's workload.  The leaks start from a base that leaves about
# 20 s (8 s at 32 MiB/s) to the limit; the recording ends a little before it (record.c).
declare -A TRACES=(
    [leak-2]="60 leak 2 216"
    [leak-8]="60 leak 8 96"
    [leak-32]="60 leak 32 0"
    [flat-94]="60 flat 94 0"
    [step-70]="30 flat 70 1000"
    [saw-1000]="60 saw 40 85 1000"
    [saw-2000]="60 saw 40 85 2000"
    [saw-2500]="60 saw 40 85 2500"
    [spike]="60 spike 60 95 30000 1000"
    [cache]="60 cache @FILE 20 1000 1000"
)
ORDER=(leak-2 leak-8 leak-32 flat-94 step-70 saw-1000 saw-2000 saw-2500 spike cache)

[ "$(id -u)" = 0 ] || die "needs root (it creates a cgroup)"
REPEAT=
if [ "${1:-}" = --repeat ]; then
    REPEAT=${2:?--repeat N NAME...}
    shift 2
    [ $# -gt 0 ] || die "--repeat N needs the traces' names"
fi
if [ $# -gt 0 ]; then ORDER=("$@"); fi
for n in "${ORDER[@]}"; do [ -n "${TRACES[$n]:-}" ] || die "no trace $n (${!TRACES[*]})"; done
v1_memory || die "needs a cgroup v1 memory controller (a memory line in /proc/self/cgroup)"
ensure_packages gcc libc6-dev || die "needs $ERR"
mkdir -p "$OUT" "$CACHE" "$TRACES_DIR"
gcc -O2 -Wall -static -o "$OUT/record" benches/trend/record.c || die "record.c did not build"

# The page cache file on a disk filesystem (the cache workload drops and rereads it)
FILE=$OUT/cache.150m
if [ "$(stat -f -c %T "$OUT")" = tmpfs ]; then die "$OUT is on tmpfs (the cache file must be on disk)"; fi
CLEANUPS+=("rm -f '$FILE'")
dd if=/dev/zero of="$FILE" bs=1M count=150 conv=fsync status=none || die "cannot write $FILE"

CG=${V1_MP%/}${V1_OWN%/}/kubemem-trend.$$
CLEANUPS+=("kill_cgroup '$CG'")
# one NAME DURATION_S ARGS... FILE: a recording in a fresh cgroup
one() {
    local n=$1 dur=$2 args=$3 to=$4
    mkdir "$CG" || die "cannot create $CG"
    echo $((256 << 20)) >"$CG/memory.limit_in_bytes"
    echo 0 >"$CG/memory.swappiness"
    echo "$n: $args" >&2
    # shellcheck disable=SC2086
    if DURATION_S=$dur "$OUT/record" "$CG" ${args//@FILE/$FILE} >"$OUT/$n.trace"; then
        { echo "# $n: record.c $args (100 ms, cgroup v1, $(uname -r))"; cat "$OUT/$n.trace"; } >"$to"
    else
        echo "${0##*/}: $n failed; its trace is left as it was" >&2
    fi
    kill_cgroup "$CG"
    if [ -d "$CG" ]; then die "cannot remove $CG"; fi
}
mkdir -p "$TRACES_DIR/repeat"
for ((i = 1; i <= ${REPEAT:-1}; i++)); do
    for n in "${ORDER[@]}"; do
        read -r dur args <<<"${TRACES[$n]}"
        if [ -n "$REPEAT" ]; then
            one "$n.$i" 12 "$args" "$TRACES_DIR/repeat/$n.$i.trace"
        else
            one "$n" "$dur" "$args" "$TRACES_DIR/$n.trace"
        fi
    done
done
