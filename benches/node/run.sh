#!/usr/bin/env bash
# Benchmark of kubemem-node, the node agent, on real cgroup v1 here (as root):
#
#   benches/node/run.sh            # 20 reaction runs per case, 60 s of idle per interval
#   QUICK=1 benches/node/run.sh    # 3 runs, 10 s: a smoke run for CI (timings not asserted)
#
# Everything happens below a cgroup of our own memory cgroup, kubemem-bench-node.PID
# (removed at the end, also on failure, with whatever runs in it), which holds the kubelet's
# cgroupfs tree (kubepods/burstable/pod<uid>/<id>), and `system`, where the agent and the test
# API server (tests/apiserver) run, under a memory limit.  The agent's --cgroup-root is a
# read-only bind mount of that cgroup (target/bench-node/ro), as the DaemonSet mounts the
# host's tree: there v1's kernel notifications cannot be registered (cgroup.event_control is
# not writable), so only the interval's sampling acts.  The reaction is also measured on the
# writable cgroup directory itself, where the agent may register kernel notifications.  No CPU
# quota: the agent's CPU time and its reaction are what is measured, and a quota would shape
# both; the load is one agent and one allocator at a time (and 100 sleeping processes).
#
# (a) Reaction.  One agent per case: the default interval (whatever `kubemem-node` without
#     --interval says on its started line) and 100ms, each on the read-only mount and on the
#     writable directory.  Each of RUNS runs is a new pod (label
#     pre-oom-killer: enabled, threshold 50%) with a 64 MiB container cgroup; once the agent
#     says it watches it, and after a random pause of up to one interval (so that the
#     crossing falls anywhere between two of the agent's samples), grow (benches/run/grow.c)
#     starts in the container's cgroup and writes 256 KiB of new memory every 10 ms, sampling
#     the cgroup after each step the way the agent counts (usage_in_bytes minus
#     total_inactive_file).  The crossing is the start of the step after which its sample
#     first showed 50%, on CLOCK_REALTIME (grow's crossed_at): the threshold was crossed
#     within that step, not before it began, so the latency is never shorter than the real
#     one.  The end is the time the API server recorded the eviction request (its
#     `ctl evictions`, CLOCK_REALTIME on the same machine).  latency = end - crossing.  The
#     issue's bound: at most the interval plus 50 ms (a sample comes within one interval of
#     the crossing, the request within 50 ms of that sample).  A run without an eviction
#     within the interval plus 10 s is a miss.
# (b) Idle cost.  PODS (100) pods, each a 64 MiB container cgroup with one sleeping process;
#     one agent per interval (100ms, 1s and the default when it is neither) watches them all;
#     after all are watched and 2 s to settle: utime + stime of the agent (fields 14 and 15 of
#     /proc/PID/stat, in clock ticks) over IDLE_SECS (60), as seconds and as a percentage of
#     one core, its threads' time on a CPU from /proc/PID/task/*/schedstat (nanoseconds;
#     ticks are 10 ms), and VmRSS and VmHWM from /proc/PID/status at the end.  On the
#     read-only mount, as deployed.
#
# Prints a markdown table (also left in target/bench-node/results.md).  Exit 1 when a run was
# a miss, or (not with QUICK=1: a few runs on a busy CI machine are a smoke test) when a
# maximum is above its bound; 2 when it cannot run (no root, no cgroup v1 memory controller,
# a binary that does not build).
#
# Environment: RUNS, IDLE_SECS, PODS (override the above); KUBEMEM_NODE_BIN (default
# target/dist/kubemem-node, built with KUBEMEM_VARIANTS=node ./build.sh when missing),
# KUBEMEM_APISERVER_BIN (default target/<arch>-unknown-linux-musl/release/examples/apiserver,
# built with tests/apiserver/build.sh when missing).
set -Euo pipefail
export LC_ALL=C
case ${KUBEMEM_NODE_BIN:-} in '' | /*) ;; *) KUBEMEM_NODE_BIN=$PWD/$KUBEMEM_NODE_BIN ;; esac
case ${KUBEMEM_APISERVER_BIN:-} in '' | /*) ;; *) KUBEMEM_APISERVER_BIN=$PWD/$KUBEMEM_APISERVER_BIN ;; esac
cd "$(dirname "$0")/../.." || exit 2
TOP=$PWD
OUT=$TOP/target/bench-node
CACHE=$TOP/target/real-cache
# shellcheck source=tests/real/lib.sh
. "$TOP/tests/real/lib.sh"

if [ -n "${QUICK:-}" ]; then RUNS=${RUNS:-3} IDLE_SECS=${IDLE_SECS:-10}; fi
RUNS=${RUNS:-20}
IDLE_SECS=${IDLE_SECS:-60}
PODS=${PODS:-100}
THRESHOLD=50 CAP=60 STEP_KIB=256 STEP_MS=10

die() {
    echo "${0##*/}: $*" >&2
    exit 2
}
[ "$(id -u)" = 0 ] || die "needs root (it creates cgroups)"
for v in RUNS IDLE_SECS PODS; do
    case ${!v} in '' | *[!0-9]* | 0) die "$v must be a whole number above 0, not ${!v}" ;; esac
done

trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the binaries ----------------------------------------------------------------------------

NODE_BIN=${KUBEMEM_NODE_BIN:-$TOP/target/dist/kubemem-node}
API=${KUBEMEM_APISERVER_BIN:-$TOP/target/$(uname -m)-unknown-linux-musl/release/examples/apiserver}
GROW=$OUT/grow
mkdir -p "$OUT" "$CACHE" || die "needs a writable $OUT"
if [ ! -x "$NODE_BIN" ] && [ -z "${KUBEMEM_NODE_BIN:-}" ]; then
    KUBEMEM_VARIANTS=node ./build.sh >&2 || die "KUBEMEM_VARIANTS=node ./build.sh failed"
fi
[ -x "$NODE_BIN" ] || die "needs kubemem-node at $NODE_BIN"
if [ ! -x "$API" ] && [ -z "${KUBEMEM_APISERVER_BIN:-}" ]; then
    sh tests/apiserver/build.sh >/dev/null || die "tests/apiserver/build.sh failed"
fi
[ -x "$API" ] || die "needs the test API server at $API"
ensure_packages gcc libc6-dev || die "needs $ERR"
gcc -O2 -Wall -static -o "$GROW" "$TOP/benches/run/grow.c" || die "benches/run/grow.c did not build"

# ---- the cgroups and the API server --------------------------------------------------------------

v1_memory || die "needs a cgroup v1 memory controller (a memory line in /proc/self/cgroup and its mount)"
BASE=${V1_MP%/}${V1_OWN%/}/kubemem-bench-node.$$
SYSTEM=$BASE/system
WORK=$OUT/work
rm -rf "$WORK" && mkdir -p "$WORK" || die "needs a writable $WORK"
CLEANUPS+=("kill_cgroup '$BASE'")
mkdir "$BASE" "$SYSTEM" || die "cannot create $BASE"
echo $((512 << 20)) >"$SYSTEM/memory.limit_in_bytes"

# node.sh's helpers: pods and their cgroups (new_pod, ctr, put, pod_gone), the server (ctl,
# api_start), uuid, now, until_ds, has_line, nlines, jkey, evictions
CGV=v1 R_cgfs=$BASE NODE_SH_LIB=1
# shellcheck source=tests/real/node.sh
. "$TOP/tests/real/node.sh"
set +u # node.sh's helpers are POSIX sh, written without set -u

# in_system COMMAND...: COMMAND in the system cgroup, in the background; its PID in $!
in_system() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    bash -c 'echo $$ >"$1/cgroup.procs" && exec "${@:2}"' - "$SYSTEM" "$@" &
}

mkdir -p "$AD"
in_system "$API" serve --listen 127.0.0.1:0 --dir "$AD" </dev/null >"$WORK/apiserver.log" 2>&1
CLEANUPS+=("kill $!")
until_ds 100 [ -s "$AD/kubeconfig" ] || die "the API server did not start (its log: $(tail -3 "$WORK/apiserver.log"))"
sleep 0.2
export KUBECONFIG=$AD/kubeconfig

# the DaemonSet's view of the host's tree: read-only
RO=$OUT/ro
mkdir -p "$RO" || die "needs a writable $OUT"
CLEANUPS+=("umount -l '$RO'") # lazily: the agent may still be exiting
mount --bind "$BASE" "$RO" && mount -o remount,bind,ro "$RO" || die "cannot bind-mount $BASE read-only at $RO"

# agent_start ROOT [--interval X]: the agent on node bench with --cgroup-root ROOT, in the
# system cgroup; AGENT is its PID, AGENT_LOG its log (WORK/agent-N.log), AGENT_IV its interval
# (from its started line)
AGENTS=0
agent_start() {
    local root=$1 log
    shift
    AGENTS=$((AGENTS + 1))
    log=$WORK/agent-$AGENTS.log AGENT_LOG=$WORK/agent-$AGENTS.log
    in_system "$NODE_BIN" --node bench --cgroup-root "$root" --metrics-addr '' "$@" </dev/null >"$log" 2>&1
    AGENT=$!
    CLEANUPS+=("kill $AGENT")
    until_ds 100 grep -q 'event=started' "$log" || die "the agent did not start (its log: $(tail -3 "$log"))"
    AGENT_IV=$(grep -m1 'event=started' "$log" | grep -o 'interval=[^ ]*' | cut -d= -f2)
}
agent_stop() {
    kill -TERM "$AGENT" && wait "$AGENT"
    local rc=$?
    [ "$rc" = 0 ] || echo "${0##*/}: the agent exited $rc after SIGTERM (expected 0)" >&2
}

# ms DURATION -> milliseconds (100ms, 1s, 1.5s, 1m)
ms() {
    awk -v d="$1" 'BEGIN { n = d + 0; u = substr(d, length(n "") + 1)
        m = u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : u == "h" ? 3600000 : -1
        if (m < 0) exit 1; printf "%d", n * m + 0.5 }'
}

LINES=$OUT/lines
: >"$LINES"

# ---- (a) reaction ----------------------------------------------------------------------------

# reaction LABEL ROOT [--interval X]: RUNS runs; lines REACTION LABEL IV MS IV_MS or
# MISS LABEL IV ...
reaction() {
    local label=$1 root=$2 log i name out t_evict crossed iv_ms pause
    shift 2
    agent_start "$root" "$@"
    log=$AGENT_LOG
    iv_ms=$(ms "$AGENT_IV") || die "cannot read the interval $AGENT_IV on the agent's started line"
    echo "reaction: $label, interval $AGENT_IV, $RUNS runs" >&2
    for ((i = 1; i <= RUNS; i++)); do
        name=react-$AGENTS-$i out=$WORK/grow.$AGENTS.$i
        new_pod "$name" cgfs Burstable bench
        ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app "$THRESHOLD")" || die "cannot make pod $name"
        if ! until_ds 100 has_line "$log" event=watching "pod=$NS/$name"; then
            echo "MISS $label $AGENT_IV no watching line for $name" >>"$LINES"
            pod_gone "$name" "$P_ROOT/$P_DIR"
            continue
        fi
        pause=$((RANDOM % iv_ms))
        sleep "$((pause / 1000)).$(printf %03d $((pause % 1000)))"
        # shellcheck disable=SC2016 # expanded by the inner sh
        sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" "$1" v1 "$3" "$4" "$5" "$6" "$7"' - \
            "$C_DIR" "$GROW" "$THRESHOLD" "$STEP_KIB" "$STEP_MS" "$CAP" "$out" </dev/null &
        local grow=$!
        until_ds $((iv_ms / 100 + 100)) evicted "$name"
        kill -TERM "$grow" 2>/dev/null
        wait "$grow"
        t_evict=$(ctl evictions | grep -E "$(jkey name)\"$name\"" | head -1 |
            sed -n 's/.*"time"[[:space:]]*:[[:space:]]*\([0-9.]*\).*/\1/p')
        crossed=$(grep -o 'crossed_at=[0-9.]*' "$out" 2>/dev/null | cut -d= -f2)
        if [ -n "$t_evict" ] && [ -n "$crossed" ]; then
            echo "REACTION $label $AGENT_IV $(awk -v e="$t_evict" -v c="$crossed" 'BEGIN { printf "%.1f", (e - c) * 1000 }') $iv_ms" >>"$LINES"
        else
            echo "MISS $label $AGENT_IV eviction time ${t_evict:-none}, grow said: $(cat "$out" 2>/dev/null)" >>"$LINES"
        fi
        pod_gone "$name" "$P_ROOT/$P_DIR"
    done
    agent_stop
}

# ---- (b) idle cost -------------------------------------------------------------------------

watches_all() { [ "$(nlines "$1" event=watching)" -ge "$PODS" ]; }

# idle LABEL [--interval X]: IDLE LABEL IV seconds=S ticks=T clk_tck=C cpu_ns=N rss_kib=R hwm_kib=H
idle() {
    local label=$1 log stat t0 t1 n0 n1 u0 u1 rss hwm
    shift
    agent_start "$RO" "$@"
    log=$AGENT_LOG
    until_ds 600 watches_all "$log" ||
        die "the agent watches $(nlines "$log" event=watching) of $PODS pods after 60 s"
    echo "idle: interval $AGENT_IV, $PODS containers, $IDLE_SECS s" >&2
    sleep 2
    cpu_of() {
        read -r stat <"/proc/$AGENT/stat"
        # shellcheck disable=SC2086 # the fields after the command name
        set -- ${stat##*) }
        CPU_TICKS=$((${12} + ${13}))
        CPU_NS=$(cat /proc/"$AGENT"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%d", n }')
    }
    read -r u0 _ </proc/uptime; cpu_of; t0=$CPU_TICKS n0=$CPU_NS
    sleep "$IDLE_SECS"
    read -r u1 _ </proc/uptime; cpu_of; t1=$CPU_TICKS n1=$CPU_NS
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT/status")
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$AGENT/status")
    agent_stop
    echo "IDLE $label $AGENT_IV seconds=$(awk -v a="$u0" -v b="$u1" 'BEGIN { print b - a }') ticks=$((t1 - t0)) clk_tck=$(getconf CLK_TCK) cpu_ns=$((n1 - n0)) rss_kib=$rss hwm_kib=$hwm" >>"$LINES"
}

# ---- main ------------------------------------------------------------------------------------

reaction read-only "$RO"
DEFAULT_IV=$AGENT_IV
reaction read-only "$RO" --interval 100ms
reaction writable "$BASE"
reaction writable "$BASE" --interval 100ms

# the idle pods: PODS containers with a sleeping process each, registered in the server
echo "idle: making $PODS pods" >&2
for ((i = 1; i <= PODS; i++)); do
    new_pod "idle-$i" cgfs Burstable bench
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 90)" || die "cannot make pod idle-$i"
    # shellcheck disable=SC2016 # expanded by the inner sh
    sh -c 'echo $$ >"$1/cgroup.procs" && exec sleep 100000' - "$C_DIR" </dev/null >/dev/null 2>&1 &
done
idle read-only --interval 100ms
idle read-only --interval 1s
case $DEFAULT_IV in 100ms | 1s | 1000ms) ;; *) idle read-only ;; esac

# ---- the table -------------------------------------------------------------------------------

{
    echo "kubemem-node on cgroup v1 here: $(uname -r), $(nproc) CPUs; $RUNS reaction runs per case (growth 256 KiB every 10 ms into a 64 MiB limit, threshold 50%); idle: $PODS containers for $IDLE_SECS s."
    echo
    echo "| cgroup root | interval | runs | misses | median ms | max ms | bound ms (interval + 50) | max within |"
    echo "|---|---|--:|--:|--:|--:|--:|---|"
    awk -v dflt="$DEFAULT_IV" '
        { key = ($2 == "read-only" ? "read-only mount (as deployed)" : "writable directory") " | " ($3 == dflt ? "default, " : "") $3 }
        $1 == "MISS" { miss[key]++; if (!(key in seen)) { seen[key] = 1; order[n++] = key } }
        $1 == "REACTION" {
            if (!(key in seen)) { seen[key] = 1; order[n++] = key }
            c = ++count[key]; r[key, c] = $4; bound[key] = $5 + 50
        }
        END {
            for (o = 0; o < n; o++) {
                key = order[o]; k = count[key] + 0
                if (k == 0) { printf "| %s | 0 | %d | - | - | - | NO |\n", key, miss[key]; continue }
                for (i = 1; i <= k; i++) s[i] = r[key, i]
                for (i = 2; i <= k; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
                med = k % 2 ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2
                printf "| %s | %d | %d | %.1f | %.1f | %d | %s |\n", key, k, miss[key] + 0, med, s[k], bound[key],
                    (s[k] <= bound[key] && !miss[key]) ? "yes" : "NO"
            }
        }' "$LINES"
    echo
    echo "| interval | containers | seconds | CPU s | CPU % of one core | schedstat CPU ms | VmRSS KiB | VmHWM KiB |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|"
    awk -v pods="$PODS" -v dflt="$DEFAULT_IV" '$1 == "IDLE" {
        for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        cpu = v["ticks"] / v["clk_tck"]
        printf "| %s%s | %d | %.1f | %.2f | %.3f | %.1f | %d | %d |\n", $3 == dflt ? "default, " : "", $3, pods, v["seconds"], cpu,
            100 * cpu / v["seconds"], v["cpu_ns"] / 1e6, v["rss_kib"], v["hwm_kib"]
    }' "$LINES"
} | tee "$OUT/results.md"

grep '^MISS ' "$LINES" >&2 && { echo "${0##*/}: some runs had no eviction (above)" >&2; exit 1; }
if grep -q '| NO |' "$OUT/results.md"; then
    if [ -n "${QUICK:-}" ]; then
        echo "${0##*/}: a maximum is above its bound (not asserted with QUICK=1)" >&2
    else
        echo "${0##*/}: a maximum is above its bound (interval + 50 ms)" >&2
        exit 1
    fi
fi
exit 0
