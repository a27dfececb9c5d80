# shellcheck shell=sh
# The measurements of the kubemem run benchmarks, one case at a time.  POSIX sh: reaction.sh
# and idle.sh run it on this machine and as part of the VM's /init (busybox ash).
#
#   sh measure.sh reaction ENV CASE INTERVAL RUNS [CACHE_FILE]
#   sh measure.sh idle ENV SECONDS
#
# Set by the caller: KM (kubemem), GROW (the allocator, grow.c), CG (a cgroup directory with
# a limit, which the runs join), CGV (v1 | v2), WORK (scratch directory), STEP_KIB, STEP_MS
# (the growth rate); KM_ARGS, more options for kubemem run (a list of words, may be empty).
#
# reaction: RUNS times kubemem run --warning 80 --failure 90 --interval INTERVAL over grow;
# with CACHE_FILE grow first fills the cgroup with that file's page cache.  Prints per run
# `REACTION ENV CASE INTERVAL <grow's line>`, or `MISS ENV CASE INTERVAL <what went wrong>`
# (no SIGTERM, another exit status, an OOM kill), and once the start line's last key
# (`WAKEUP ENV CASE wakeup=...`).
#
# idle: kubemem run at the default interval over `sleep`, for SECONDS after a second to
# settle; prints `IDLE ENV seconds=S ticks=T clk_tck=C cpu_ns=N`: utime + stime of the kubemem
# process (fields 14 and 15 of /proc/PID/stat) and its time on a CPU from
# /proc/PID/schedstat (nanoseconds; 0 where the kernel has no schedstat).

# oom_kills: the cgroup's OOM kill count
oom_kills() {
    _key=oom_kill _file=$CG/memory.events
    [ "$CGV" = v1 ] && _file=$CG/memory.oom_control
    while read -r _k _n; do
        [ "$_k" = "$_key" ] && { echo "$_n"; return; }
    done <"$_file"
    echo "?"
}

reaction() {
    env=$1 case=$2 interval=$3 runs=$4 cache=${5:-}
    i=0
    while [ "$i" -lt "$runs" ]; do
        i=$((i + 1))
        rm -f "$WORK/grow.out"
        before=$(oom_kills)
        # the shell joins the cgroup, then becomes kubemem, which starts the allocator there
        # shellcheck disable=SC2016 # expanded by the inner sh
        sh -c 'echo $$ >"$1/cgroup.procs" || exit 125; km=$2 iv=$3 args=$4; shift 4
            exec "$km" run --warning 80 --failure 90 --interval "$iv" $args -- "$@"' \
            - "$CG" "$KM" "$interval" "${KM_ARGS:-}" "$GROW" "$CG" "$CGV" 90 "$STEP_KIB" "$STEP_MS" 97 "$WORK/grow.out" \
            ${cache:+"$cache"} </dev/null >"$WORK/km.log" 2>&1
        rc=$?
        after=$(oom_kills)
        if [ "$i" = 1 ]; then
            start=$(grep -m1 'action=start' "$WORK/km.log")
            echo "WAKEUP $env $case ${start##* }"
        fi
        line=$(cat "$WORK/grow.out" 2>/dev/null)
        case $rc:$after:$line in
            143:"$before":reaction_us=[0-9-]*) echo "REACTION $env $case $interval $line" ;;
            *) echo "MISS $env $case $interval exit $rc, oom_kill $before -> $after, grow said: ${line:-nothing}; kubemem said: $(tr '\n' ' ' <"$WORK/km.log")" ;;
        esac
    done
}

# cpu PID -> CPU_TICKS (utime + stime) CPU_NS (schedstat)
cpu() {
    read -r _stat <"/proc/$1/stat"
    # shellcheck disable=SC2086 # the fields after the command name
    set -- "$1" ${_stat##*) }
    CPU_TICKS=$((${13} + ${14}))
    CPU_NS=0
    [ -r "/proc/$1/schedstat" ] && read -r CPU_NS _ <"/proc/$1/schedstat"
}

idle() {
    env=$1 secs=$2
    # shellcheck disable=SC2016 # expanded by the inner sh
    sh -c 'echo $$ >"$1/cgroup.procs" || exit 125; exec "$2" run -- sleep "$3"' \
        - "$CG" "$KM" $((secs + 60)) </dev/null >"$WORK/idle.log" 2>&1 &
    pid=$!
    sleep 1
    read -r up0 _ </proc/uptime
    cpu "$pid"
    t0=$CPU_TICKS n0=$CPU_NS
    sleep "$secs"
    read -r up1 _ </proc/uptime
    cpu "$pid"
    kill -TERM "$pid"
    wait "$pid"
    tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
    echo "IDLE $env seconds=$(awk -v a="$up0" -v b="$up1" 'BEGIN { print b - a }') ticks=$((CPU_TICKS - t0)) clk_tck=$tck cpu_ns=$((CPU_NS - n0))"
}

what=$1
shift
case $what in
    reaction) reaction "$@" ;;
    idle) idle "$@" ;;
    *) echo "usage: measure.sh reaction|idle ..." >&2; exit 2 ;;
esac
