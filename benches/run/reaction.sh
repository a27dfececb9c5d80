#!/usr/bin/env bash
# Reaction-time benchmark of `kubemem run`: how long from the moment the working set reaches
# the failure threshold until the supervised program has its SIGTERM.  Run on demand, as
# root; timings are printed, never asserted:
#
#   benches/run/reaction.sh [v1|vm|all]     # default all; RUNS=20 runs per case
#
# The program is grow (grow.c): under `kubemem run --warning 80 --failure 90`, in a cgroup
# limited to 64 MiB, it writes 256 KiB of new memory every 10 ms (25 MiB/s) and after each
# step reads the cgroup's files the way kubemem counts (usage minus inactive page cache).
# The crossing is the start of the step after which its own sample first showed 90%; its
# SIGTERM handler takes the arrival time; both CLOCK_MONOTONIC.  The reaction is therefore
# never shorter than the real one (at most one step's writing time longer, printed as
# "touch").  It stops growing at 97% and waits there.  Every run must end with kubemem's exit
# 143 and no OOM kill in the cgroup; any other end is a miss, printed, and makes the script
# exit 1 once the table is out (a behaviour, not a timing).
#
# Environments:
#   v1  this machine's cgroup v1 memory hierarchy: a fresh child cgroup, removed afterwards
#       (also on failure), and a 64 MiB file on /var/tmp for page cache
#   vm  cgroup v2 in the qemu VM of the real-kernel suite (TCG: software emulation, one
#       vCPU, so every time there is inflated), a RAM disk for page cache
# Cases:
#   sampling      --interval 100ms (the default) and no kernel notification, an empty
#                 cgroup.  v1: kubemem measures the cgroup through a read-only bind mount
#                 (--cgroup), where it cannot register any (wakeup=none); v2: the ones it
#                 registers do not fire below the limit
#   default       v1: --interval 100ms with its notifications, what a writable v1 mount gets
#   wakeup        --interval 1h, an empty cgroup: only a kernel notification can act in
#                 time.  v1 only: its thresholds on usage fire below the limit; v2 has no
#                 notification there (the interval is all there is)
#   wakeup-cache  --interval 1h, the cgroup first filled with page cache, so that every step
#                 makes the kernel reclaim: v1 memory.pressure_level, v2 memory.events
# The issue's target is --interval + 5 ms: 105 ms at the default, against which the wake-up
# cases are compared too.  The table goes to stdout and target/bench-run/reaction.md.
# shellcheck source=benches/run/common.sh
. "$(dirname "$0")/common.sh"

RUNS=${RUNS:-20}
case ${1:-all} in
    v1 | vm) ENVS=$1 ;;
    all) ENVS="v1 vm" ;;
    *) die "usage: $0 [v1|vm|all]" ;;
esac
build
RESULTS=$OUT/reaction.lines
: >"$RESULTS"

# measure ENV CASE INTERVAL [CACHE_FILE]: the runs of one case here, into RESULTS; KM_ARGS
# as for measure.sh
measure() {
    KM=$KM GROW=$GROW CG=$CG CGV=v1 WORK=$OUT STEP_KIB=$STEP_KIB STEP_MS=$STEP_MS \
        KM_ARGS=${KM_ARGS:-} sh "$BENCH/measure.sh" reaction "$1" "$2" "$3" "$RUNS" "${4:-}" |
        tee -a "$RESULTS" | grep -v '^REACTION' >&2 || true
}

bench_v1() {
    v1_cgroup || return 0
    local cache=/var/tmp/kubemem-bench-run.$$ ro=$OUT/ro-cgroup
    [ "$(stat -f -c %T /var/tmp)" != tmpfs ] || die "/var/tmp is tmpfs; the page-cache file must be on a disk"
    CLEANUPS+=("rm -f '$cache'")
    dd if=/dev/zero of="$cache" bs=1M count="$LIMIT_MIB" conv=fsync status=none
    mkdir -p "$ro"
    CLEANUPS+=("umount '$ro'")
    if ! mount --bind "$CG" "$ro" || ! mount -o remount,bind,ro "$ro"; then
        die "cannot bind-mount $CG read-only at $ro"
    fi
    echo "v1: $RUNS runs per case in $CG" >&2
    KM_ARGS="--cgroup $ro" measure v1 sampling 100ms
    measure v1 default 100ms
    measure v1 wakeup 1h
    measure v1 wakeup-cache 1h "$cache"
    cleanup
}

bench_vm() {
    in_vm reaction 3000 <<EOF
reaction vm sampling 100ms $RUNS
reaction vm wakeup-cache 1h $RUNS /dev/ram0
EOF
    # (the first line may follow the firmware's escape sequences)
    grep -oE '(REACTION|MISS|WAKEUP) .*' "$OUT/reaction.console" >>"$RESULTS"
    grep -oE 'MISS .*' "$OUT/reaction.console" >&2 || true
}

for e in $ENVS; do "bench_$e"; done

# The table: per environment and case, the median and the largest reaction in ms.
{
    echo "kubemem run reaction: $(uname -r) here, $(nproc) CPUs; $RUNS runs per case; growth 256 KiB every 10 ms; limit $LIMIT_MIB MiB; failure 90%."
    echo
    echo "| environment | case | wake-up | interval | runs | misses | median ms | max ms | ≤ 105 ms | median touch ms | rate MiB/s |"
    echo "|---|---|---|---|--:|--:|--:|--:|---|--:|--:|"
    awk '
        $1 == "WAKEUP" { wake[$2 " " $3] = substr($4, 8) }
        $1 == "MISS" { key = $2 " " $3; miss[key]++; iv[key] = $4; if (!(key in seen)) { seen[key] = 1; order[n++] = key } }
        $1 == "REACTION" {
            key = $2 " " $3; iv[key] = $4
            if (!(key in seen)) { seen[key] = 1; order[n++] = key }
            for (i = 5; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            c = ++count[key]; r[key, c] = v["reaction_us"] / 1000; t[key, c] = v["touch_us"] / 1000
            rate[key] += v["rate_mib_s"]
        }
        function median(a, key, k,    i, j, x, s) {
            for (i = 1; i <= k; i++) s[i] = a[key, i]
            for (i = 2; i <= k; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
            m = s[k]
            return k % 2 ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2
        }
        END {
            for (o = 0; o < n; o++) {
                key = order[o]; k = count[key] + 0; split(key, p, " ")
                if (k == 0) { printf "| %s | %s | %s | %s | 0 | %d | - | - | no | - | - |\n", p[1], p[2], wake[key], iv[key], miss[key]; continue }
                med = median(r, key, k); mx = m; tm = median(t, key, k)
                printf "| %s | %s | %s | %s | %d | %d | %.1f | %.1f | %s | %.2f | %.0f |\n", p[1], p[2], wake[key], iv[key], k, miss[key] + 0, med, mx, (mx <= 105 && !miss[key]) ? "yes" : "no", tm, rate[key] / k
            }
        }' "$RESULTS"
} | tee "$OUT/reaction.md"
misses=$(grep -c '^MISS ' "$RESULTS" || true)
[ "$misses" = 0 ] || die "$misses run(s) did not end with SIGTERM before an OOM kill (see above)"
