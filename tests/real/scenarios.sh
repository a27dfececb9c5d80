# Real-kernel scenarios for kubemem.  POSIX sh: runs under bash on the host and under
# busybox ash inside the runc container and the VM.  Written once; every environment runs
# this same file from a shell that already sits in the cgroup under test.
#
# Usage: sh scenarios.sh [SCENARIO...]   (default: below verbose warning failure annotations
#        termination-log pagecache pagecache-total tmpfs ancestor, and $RUN; also: no-mount
#        and the run-* below)
#
# Set by the environment:
#   KM_ENV       name used in the result lines (PASS <env>/<scenario>)
#   KM           kubemem binary                 HOG   the hog allocator binary
#   CGV          v1 | v2                        WORK  scratch directory (fifos)
#   CG           cgroup directory of this shell, as seen here
#   CG_PATH      path= kubemem must print (default: $CG)
#   LIMIT        effective limit in bytes for $CG
#   SOURCE       limit_source= kubemem must print for $CG (default: cgroup)
#   LIMIT_DIR    directory whose usage/stat/limit kubemem must report (default: $CG)
#   CACHE_FILE   file on a disk filesystem or block device, clean, about 80% of LIMIT
#   TMPFS_DIR    a directory on tmpfs
#   ANC_CHILD    ancestor scenario: cgroup dir without a limit to run kubemem in
#                (empty: run it right here)
#   ANC_DIR      ancestor scenario: the visible ancestor carrying the limit
#   ANC_LIMIT    its limit in bytes;  ANC_PATH  path= kubemem must print (default $ANC_DIR)
#   OUTSIDE      a cgroup outside CG whose cgroup.procs this shell may write (enables the
#                exact scenario; unset where none is visible, e.g. inside a container)
#   TOL_DOWN, TOL_UP  allowed difference between kubemem's used= and the kernel's (bytes;
#                default: see below)
#   RUN          kubemem run scenarios to add to the default list: run (sampling), and
#                with an interval of an hour, so that only a kernel notification can act:
#                v1 run-wakeup and run-reclaim (a writable cgroup mount), v2 run-events and
#                run-psi (needs PSI_APP)
#   WAKEUP       run-events: the wakeup= kubemem must print (default
#                memory.pressure,memory.events; memory.events on a read-only mount)
#   PSI_APP      run-psi: a child cgroup of LIMIT_DIR with memory.high above 90% of LIMIT,
#                on a cgroup2 mount with memory_localevents
#
# Output: one line per scenario, `PASS env/scenario` or
# `FAIL env/scenario: expected ..., kubemem said ..., kernel said ...`, then `DONE env`.

MIB=1048576
CG_PATH=${CG_PATH:-$CG}
SOURCE=${SOURCE:-cgroup}
LIMIT_DIR=${LIMIT_DIR:-$CG}
ANC_PATH=${ANC_PATH:-$ANC_DIR}
# How close kubemem's used= must be to this shell's reading of the same files, taken just
# before and just after kubemem with shell builtins only (no fork of our own in between):
#  - one page of ordinary drift;
#  - the kernel charges the page counter in per-CPU batches of 64 pages (MEMCG_CHARGE_BATCH)
#    and returns a CPU's unused part when another cgroup charges on that CPU, so
#    usage_in_bytes / memory.current can move by up to 64 pages per CPU either way between
#    two reads even when nothing in the cgroup changed its memory; memory.stat is flushed
#    lazily (rstat) with the same per-CPU threshold;
#  - kubemem runs inside the cgroup it measures, so while it reads, its own pages (stack, heap,
#    page tables, kernel stack; about 170 KiB measured) are charged too: up to 64 more pages
#    upwards only (they are gone again when the shell reads after it).
NCPU=$(nproc 2>/dev/null || echo 1)
TOL_DOWN=${TOL_DOWN:-$((4096 + NCPU * 64 * 4096))}
TOL_UP=${TOL_UP:-$((TOL_DOWN + 64 * 4096))}
trap '' PIPE

# ---- kernel readings (shell builtins only: no fork that would itself be charged) ---------

# stat_key FILE KEY -> $_v (empty when absent)
stat_key() {
    _v=
    while read -r _k _n; do
        if [ "$_k" = "$2" ]; then _v=$_n; break; fi
    done <"$1"
}

# kread DIR -> K_USAGE K_INACT K_WS K_LIMIT K_OOM
kread() {
    if [ "$CGV" = v1 ]; then
        read -r K_USAGE <"$1/memory.usage_in_bytes"
        read -r K_LIMIT <"$1/memory.limit_in_bytes"
        stat_key "$1/memory.stat" hierarchical_memory_limit
        [ -n "$_v" ] && [ "$_v" -lt "$K_LIMIT" ] && K_LIMIT=$_v
        stat_key "$1/memory.stat" total_inactive_file; K_INACT=${_v:-0}
        stat_key "$1/memory.oom_control" oom_kill; K_OOM=${_v:-?}
    else
        read -r K_USAGE <"$1/memory.current"
        read -r K_LIMIT <"$1/memory.max"
        stat_key "$1/memory.stat" inactive_file; K_INACT=${_v:-0}
        stat_key "$1/memory.events" oom_kill; K_OOM=${_v:-?}
    fi
    K_WS=$((K_USAGE - K_INACT))
    [ "$K_WS" -lt 0 ] && K_WS=0
    :
}

kernel_said() {
    if [ "$CGV" = v1 ]; then
        echo "$1: usage_in_bytes=$K_USAGE total_inactive_file=$K_INACT (working set $K_WS) limit=$K_LIMIT oom_kill=$K_OOM"
    else
        echo "$1: memory.current=$K_USAGE inactive_file=$K_INACT (working set $K_WS) memory.max=$K_LIMIT oom_kill=$K_OOM"
    fi
}

# ---- the hog, driven through two fifos ----------------------------------------------------

hog_start() {
    rm -f "$WORK/hog.in" "$WORK/hog.out"
    mkfifo "$WORK/hog.in" "$WORK/hog.out" || return 1
    "$HOG" <"$WORK/hog.in" >"$WORK/hog.out" &
    HOG_PID=$!
    exec 7>"$WORK/hog.in" 8<"$WORK/hog.out"
}

hog_stop() {
    [ -n "$HOG_PID" ] || return 0
    echo exit >&7 2>/dev/null
    exec 7>&- 8<&-
    wait "$HOG_PID" 2>/dev/null
    HOG_PID=
}

# hog COMMAND -> 0 when the hog answered ok; its answer in $HOG_REPLY
hog() {
    HOG_REPLY="no answer (hog gone)"
    echo "$*" >&7 2>/dev/null || return 1
    read -r HOG_REPLY <&8 || { HOG_REPLY="no answer (hog gone)"; return 1; }
    case $HOG_REPLY in ok*) return 0 ;; *) return 1 ;; esac
}

# grow_to PERCENT: allocate anonymous memory until the working set is about PERCENT of LIMIT
grow_to() {
    kread "$LIMIT_DIR"
    _need=$((LIMIT * $1 / 100 - K_WS))
    [ "$_need" -ge "$MIB" ] || return 0
    hog anon $((_need / MIB))
}

# ---- running kubemem and judging its line ------------------------------------------------

# km ARGS... -> R_RC R_OUT, with the kernel read just before (B_*) and just after (A_*)
km() {
    kread "$KDIR"
    B_WS=$K_WS B_USAGE=$K_USAGE
    R_OUT=$("$KM" "$@" 2>&1)
    R_RC=$?
    kread "$KDIR"
    A_WS=$K_WS A_USAGE=$K_USAGE
}

# field NAME -> $_v from the logfmt line in R_OUT
field() {
    _v=
    for _kv in $R_OUT; do
        case $_kv in "$1="*) _v=${_kv#*=}; return 0 ;; esac
    done
    return 1
}

FAILS=0
pass() { echo "PASS $KM_ENV/$SC"; }
# fail EXPECTED [KERNEL-SAID]
fail() {
    FAILS=$((FAILS + 1))
    echo "FAIL $KM_ENV/$SC: expected $1, kubemem said ${R_OUT:-<nothing>} (exit $R_RC), kernel said ${2:-$(kernel_said before) / $(kernel_said after)}"
}

# within N LO HI: LO - TOL_DOWN <= N <= HI + TOL_UP (LO, HI in either order)
within() {
    _lo=$2 _hi=$3
    [ "$_lo" -gt "$_hi" ] && { _lo=$3; _hi=$2; }
    [ "$1" -ge $((_lo - TOL_DOWN)) ] && [ "$1" -le $((_hi + TOL_UP)) ]
}

# expect_line RC LEVEL USAGE-MODE LIMIT SOURCE PATH: judge R_RC/R_OUT against the kernel
expect_line() {
    _exp="exit $1 and one line level=$2 used=<kernel ${3} -${TOL_DOWN}/+${TOL_UP}> limit=$4 usage=$3 cgroup=$CGV limit_source=$5 path=$6"
    _lines=$(printf '%s\n' "$R_OUT" | grep -c .)
    if [ "$R_RC" != "$1" ] || [ "$_lines" != 1 ]; then fail "$_exp"; return 1; fi
    for _f in "level=$2" "limit=$4" "usage=$3" "cgroup=$CGV" "limit_source=$5" "path=$6"; do
        field "${_f%%=*}"
        if [ "$_v" != "${_f#*=}" ]; then fail "$_exp (${_f%%=*} differs)"; return 1; fi
    done
    field used; _used=$_v
    if [ "$3" = total ]; then _b=$B_USAGE _a=$A_USAGE; else _b=$B_WS _a=$A_WS; fi
    case $_used in '' | *[!0-9]*) fail "$_exp (used= missing)"; return 1 ;; esac
    if ! within "$_used" "$_b" "$_a"; then fail "$_exp (used differs by $((_used - _b)) from the reading before)"; return 1; fi
    # the kernel's limit for the directory kubemem reports must be the expected one too
    if [ "$K_LIMIT" != "$4" ]; then fail "$_exp (kernel limit differs from the configured one)"; return 1; fi
    return 0
}

# expect_silent: exit 0 and no output
expect_silent() {
    if [ "$R_RC" != 0 ] || [ -n "$R_OUT" ]; then fail "exit 0 and no output ($1)"; return 1; fi
    return 0
}

# ---- scenarios ---------------------------------------------------------------------------

sc_below() {
    hog free && grow_to 40 || { fail "hog to grow to 40% (hog said: $HOG_REPLY)"; return; }
    km && expect_silent "working set about 40% of the limit, default thresholds" && pass
}

sc_verbose() {
    km --verbose && expect_line 0 ok working-set "$LIMIT" "$SOURCE" "$CG_PATH" && pass
}

sc_warning() {
    grow_to 82 || { fail "hog to grow to 82% (hog said: $HOG_REPLY)"; return; }
    km && expect_line 0 warning working-set "$LIMIT" "$SOURCE" "$CG_PATH" && pass
}

sc_failure() {
    grow_to 95 || { fail "hog to grow to 95% (hog said: $HOG_REPLY)"; return; }
    km && expect_line 4 failure working-set "$LIMIT" "$SOURCE" "$CG_PATH" || return
    # the point of the probe: it fires while the allocator is still alive, before any OOM kill
    if ! hog anon 0; then fail "the hog still alive after the failure line (hog said: $HOG_REPLY)"; return; fi
    kread "$KDIR"
    if [ "$K_OOM" != 0 ]; then fail "oom_kill 0 while kubemem reports failure"; return; fi
    pass
}

sc_pagecache() {
    hog free || { fail "hog to free (hog said: $HOG_REPLY)"; return; }
    hog file "$CACHE_FILE" || { fail "hog to read $CACHE_FILE (hog said: $HOG_REPLY)"; return; }
    kread "$KDIR"
    # the setup must really have produced a high raw usage made of inactive page cache
    if [ $((K_USAGE * 100 / LIMIT)) -lt 75 ] || [ $((K_WS * 100 / LIMIT)) -ge 75 ]; then
        R_RC=- R_OUT="(not run)"
        fail "reading $CACHE_FILE to leave raw usage >= 75% and working set < 75% of $LIMIT"
        return
    fi
    km && expect_silent "page cache only: working set healthy" || return
    km --verbose && expect_line 0 ok working-set "$LIMIT" "$SOURCE" "$CG_PATH" && pass
}

sc_pagecache_total() {
    km --usage total && expect_line 0 warning total "$LIMIT" "$SOURCE" "$CG_PATH" && pass
}

sc_tmpfs() {
    hog free || { fail "hog to free (hog said: $HOG_REPLY)"; return; }
    kread "$KDIR"
    # tmpfs pages sit on the anon LRU and cannot be reclaimed without swap: they are used
    _mib=$(( (LIMIT * 82 / 100 - K_WS) / MIB ))
    if ! dd if=/dev/zero of="$TMPFS_DIR/kubemem-fill" bs=1048576 count="$_mib" 2>/dev/null; then
        R_RC=- R_OUT="(not run)"; fail "dd of $_mib MiB to $TMPFS_DIR"; rm -f "$TMPFS_DIR/kubemem-fill"; return
    fi
    km && expect_line 0 warning working-set "$LIMIT" "$SOURCE" "$CG_PATH" && pass
    rm -f "$TMPFS_DIR/kubemem-fill"
}

sc_ancestor() {
    hog free
    if [ -n "$ANC_CHILD" ]; then
        [ -d "$ANC_CHILD" ] || mkdir "$ANC_CHILD" || { R_RC=- R_OUT="(not run)"; fail "mkdir $ANC_CHILD"; return; }
        KDIR=$ANC_DIR
        kread "$KDIR"; B_WS=$K_WS B_USAGE=$K_USAGE
        R_OUT=$(echo 0 >"$ANC_CHILD/cgroup.procs" && exec "$KM" --verbose 2>&1)
        R_RC=$?
        kread "$KDIR"; A_WS=$K_WS A_USAGE=$K_USAGE
    else
        KDIR=$ANC_DIR
        km --verbose
    fi
    expect_line 0 ok working-set "$ANC_LIMIT" ancestor "$ANC_PATH" && pass
}

# The kernel's numbers to the page. Run inside the cgroup it measures, kubemem's own pages and
# the kernel's per-CPU charge batches blur the comparison (see TOL_* above); so here this shell
# steps outside the cgroup (OUTSIDE) while the hog holds still, and kubemem measures it with
# --cgroup. The usage counter is exact: used= (--usage total) must equal the kernel's usage
# read right after, within one page. (memory.stat is not: the kernel flushes its per-CPU
# statistics lazily, so inactive_file may lag by a few pages between two readers; that part is
# covered by the tolerance of the other scenarios.)
sc_exact() {
    grow_to 60 || { fail "hog to grow to 60% (hog said: $HOG_REPLY)"; return; }
    if ! echo $$ >"$OUTSIDE/cgroup.procs"; then
        R_RC=- R_OUT="(not run)"; fail "to move this shell to $OUTSIDE"; return
    fi
    # Unrelated kernel work (deferred frees, per-CPU caches) can move the counter by a few
    # pages for a moment, in about one run in three here, even with everything in the cgroup
    # idle. A wrong number is wrong every time, so up to five attempts may be taken and one
    # must match.
    _try=0
    while [ "$_try" -lt 5 ]; do
        _try=$((_try + 1))
        sleep 0.2
        km --cgroup "$CG" --verbose --usage total
        field used; _used=$_v
        field limit
        case $R_RC:$_used in 0:[0-9]*) ;; *) break ;; esac
        _d=$((_used - A_USAGE))
        [ "$_d" -lt 0 ] && _d=$((-_d))
        [ "$_v" = "$K_LIMIT" ] && [ "$_d" -le 4096 ] && [ "$A_USAGE" = "$B_USAGE" ] && break
    done
    echo $$ >"$CG/cgroup.procs"
    _exp="exit 0, limit=$K_LIMIT and used= within 4096 bytes of the kernel's usage (attempt $_try of 5)"
    case $R_RC:$_used in 0:[0-9]*) ;; *) fail "$_exp"; return ;; esac
    if [ "$_v" != "$K_LIMIT" ] || [ "$_d" -gt 4096 ]; then fail "$_exp (differs by $((_used - A_USAGE)))"; return; fi
    pass
}

# kubemem run: a second hog grows under `kubemem run --failure 90` a MiB at a time, with a
# pause between steps (an application growing, not one jump past the limit), on top of what
# the first one holds (freeing that would change how its allocator serves the scenarios that
# follow). kubemem must end it with SIGTERM (the hog has no handler: exit 143) before the OOM
# killer strikes (oom_kill 0).
#
# run_hog INTERVAL WAKEUP [INTO] -> 0 when it did, and the start line named WAKEUP (any: not
# checked); INTO is a cgroup directory the hog moves into before it starts
run_hog() {
    rm -f "$WORK/run.in" "$WORK/run.out"
    mkfifo "$WORK/run.in" "$WORK/run.out" || { R_RC=- R_OUT="(not run)"; fail "fifos in $WORK"; return 1; }
    # the hog opens the fifos itself, so that kubemem holds neither
    # shellcheck disable=SC2016 # expanded by the inner sh
    "$KM" run --warning 80 --failure 90 --interval "$1" -- \
        sh -c '[ -z "$3" ] || echo $$ >"$3/cgroup.procs" || exit 99; exec "$0" <"$1" >"$2"' \
        "$HOG" "$WORK/run.in" "$WORK/run.out" "${3:-}" </dev/null >"$WORK/run.log" 2>&1 &
    _km=$!
    exec 5>"$WORK/run.in" 6<"$WORK/run.out"
    _mib=0
    while [ "$_mib" -lt $((LIMIT / MIB + 8)) ] && echo "anon 1" >&5 2>/dev/null && read -r _r <&6; do
        _mib=$((_mib + 1))
        sleep 0.05
    done
    exec 5>&- 6<&-
    wait "$_km"
    R_RC=$?
    R_OUT=$(cat "$WORK/run.log")
    kread "$KDIR"
    _exp="kubemem run --interval $1 to end the hog with SIGTERM (exit 143) at failure, before any OOM kill (oom_kill 0); the hog took $_mib MiB"
    case $R_RC:$K_OOM:$R_OUT in
        143:0:*"level=failure "*" action=signal signal=TERM pid="*) ;;
        *) fail "$_exp" "$(kernel_said after)"; return 1 ;;
    esac
    field wakeup
    if [ "$2" != any ] && [ "$_v" != "$2" ]; then fail "$_exp, woken by $2" "$(kernel_said after)"; return 1; fi
}

# run-wakeup samples once an hour: only a kernel notification can wake it in time. v1 has
# thresholds on usage, so this works below the limit (with little page cache, as here).
sc_run_wakeup() {
    run_hog 1h cgroup.event_control && pass
}

# page cache fills the cgroup (the usual state of a busy one): usage sits at the limit, so the
# kernel reclaims whenever the hog grows, and that is what wakes kubemem (v1: pressure level,
# v2: memory.events `max`); thresholds on usage cannot, it crosses none of them any more.
# WAKEUP as for run_hog
run_reclaim() {
    # enough of the hog's own memory that the cache cannot all stay
    grow_to 40 || { fail "hog to grow to 40% (hog said: $HOG_REPLY)"; return 1; }
    hog file "$CACHE_FILE" || { fail "hog to read $CACHE_FILE (hog said: $HOG_REPLY)"; return 1; }
    kread "$KDIR"
    if [ $((K_USAGE * 100 / LIMIT)) -lt 95 ] || [ $((K_WS * 100 / LIMIT)) -ge 80 ]; then
        R_RC=- R_OUT="(not run)"
        fail "reading $CACHE_FILE to leave raw usage >= 95% and working set < 80% of $LIMIT"
        return 1
    fi
    if [ "$CGV" = v2 ]; then stat_key "$KDIR/memory.events" max; _max=$_v; fi
    run_hog 1h "$1" || return 1
    if [ "$CGV" = v2 ]; then
        stat_key "$KDIR/memory.events" max
        if [ "$_v" -le "$_max" ]; then fail "memory.events max to grow (reclaim at the limit)" "$(kernel_said after)"; return 1; fi
    fi
    pass
}

# run-psi (v2): PSI_APP is a child of the limited cgroup with memory.high between the
# failure threshold and the limit, and memory.events counts local events only (the cgroup2
# mount option memory_localevents). Above memory.high the kernel throttles the hog, which
# stalls on memory: the PSI trigger on the limited cgroup's memory.pressure fires. Nothing
# else can wake kubemem: its memory.events (the limited cgroup's) must stay at high 0 and
# max 0, while PSI_APP's own counts the throttling.
sc_run_psi() {
    run_hog 1h memory.pressure,memory.events "$PSI_APP" || return
    stat_key "$KDIR/memory.events" high; _high=$_v
    stat_key "$KDIR/memory.events" max; _max=$_v
    stat_key "$PSI_APP/memory.events.local" high; _app=$_v
    if [ "$_high:$_max" != 0:0 ] || [ "${_app:-0}" -eq 0 ]; then
        fail "the hog throttled in $PSI_APP (memory.events.local high > 0) and no event in $KDIR (memory.events high 0, max 0)" \
            "$KDIR/memory.events high=$_high max=$_max, $PSI_APP/memory.events.local high=$_app"
        return
    fi
    pass
}

# --annotations: thresholds from a file in kubelet's downward API format (sorted keys,
# Go-quoted values, no newline after the last line) override the flags, with the working set
# at about 60%: the file's failure of 50% (written with Go's \x escapes) fails, pre-oom-killer's
# threshold of 50 fails, the file's 80/90 keep flags of 10/20 from failing, and a malformed
# line is exit 3 naming the file and the line.
sc_annotations() {
    hog free && grow_to 60 || { fail "hog to grow to 60% (hog said: $HOG_REPLY)"; return; }
    _ann=$WORK/annotations
    printf '%s\n%s\n%s' 'app.kubernetes.io/name="kubemem-real"' 'kubemem.io/failure="\x35\x30"' \
        'kubemem.io/warning="40%"' >"$_ann"
    km --warning 85 --failure 95 --annotations "$_ann" &&
        expect_line 4 failure working-set "$LIMIT" "$SOURCE" "$CG_PATH" || return
    field failure; _fail=$_v; field warning
    [ "$_fail:$_v" = "50%:40%" ] || { fail "failure=50% warning=40% from $_ann"; return; }
    printf '%s' 'pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold="50"' >"$_ann"
    km --warning 30 --failure 95 --annotations "$_ann" &&
        expect_line 4 failure working-set "$LIMIT" "$SOURCE" "$CG_PATH" || return
    field failure
    [ "$_v" = 50% ] || { fail "failure=50% from pre-oom-killer's annotation in $_ann"; return; }
    printf '%s\n%s' 'kubemem.io/failure="90"' 'kubemem.io/warning="80"' >"$_ann"
    km --warning 10 --failure 20 --annotations "$_ann" &&
        expect_silent "working set about 60%, thresholds 80/90 from $_ann over flags of 10/20" || return
    printf '%s\n%s' 'kubemem.io/warning="40"' 'kubemem.io/failure="50' >"$_ann"
    km --annotations "$_ann"
    _exp="level=error file=$_ann line=2 error=\"value without its closing double quote\""
    if [ "$R_RC" != 3 ] || [ "$R_OUT" != "$_exp" ]; then fail "exit 3 and $_exp"; return; fi
    pass
}

# --termination-log: at failure the line replaces the file's content, without a newline (what
# kubelet shows as the restarted container's last state); a healthy run leaves it alone; a
# file that cannot be written is reported and the exit code stays 4.
sc_termination_log() {
    hog free && grow_to 60 || { fail "hog to grow to 60% (hog said: $HOG_REPLY)"; return; }
    _tlog=$WORK/termination-log
    echo "an older message, longer than the line that will replace it: $(seq 1 200)" >"$_tlog"
    km --warning 40 --failure 50 --termination-log "$_tlog" &&
        expect_line 4 failure working-set "$LIMIT" "$SOURCE" "$CG_PATH" || return
    _failed=$R_OUT
    if [ "$(cat "$_tlog")" != "$_failed" ] || [ "$(wc -c <"$_tlog")" -ne "${#_failed}" ]; then
        fail "$_tlog to hold the failure line without a newline (it holds: $(cat "$_tlog"))"; return
    fi
    km --warning 85 --failure 90 --termination-log "$_tlog" &&
        expect_silent "working set about 60%, thresholds 85/90" || return
    if [ "$(cat "$_tlog")" != "$_failed" ]; then fail "a healthy run to leave $_tlog alone"; return; fi
    km --warning 40 --failure 50 --termination-log "$WORK/no-such-dir/termination-log"
    case $R_RC:$R_OUT in
        4:"level=failure "*"cannot open termination log: no such file or directory"*) pass ;;
        *) fail "exit 4, the failure line and an error line about the termination log" ;;
    esac
}

# inside a cgroup namespace whose cgroup2 mount was inherited (its root shows as "/..") the
# own cgroup is not reachable: kubemem must say it cannot measure (exit 2), not guess
sc_no_mount() {
    R_OUT=$("$KM" 2>&1)
    R_RC=$?
    _said=
    while read -r _l; do
        case $_l in 0::*) _said="/proc/self/cgroup $_l" ;; esac
    done </proc/self/cgroup
    while read -r _l; do
        case $_l in *" - cgroup2 "*) _said="$_said; mountinfo $_l" ;; esac
    done </proc/self/mountinfo
    case $R_RC:$R_OUT in
        "2:level=error"*) pass ;;
        *) fail "exit 2 and a level=error line (the cgroup2 mount root is outside our namespace)" "$_said" ;;
    esac
}

# ---- main --------------------------------------------------------------------------------

# shellcheck disable=SC2086 # RUN is a list of scenario names
[ $# -gt 0 ] || set -- below verbose ${OUTSIDE:+exact} ${RUN:-} warning failure annotations termination-log \
    pagecache pagecache-total tmpfs ancestor
HOG_PID=
trap 'hog_stop' EXIT
case " $* " in
    *" no-mount "*) ;;
    *) hog_start || { echo "FAIL $KM_ENV/setup: expected to start $HOG, kernel said nothing"; exit 1; } ;;
esac
for SC in "$@"; do
    KDIR=$LIMIT_DIR
    R_RC= R_OUT=
    case $SC in
        below) sc_below ;;
        verbose) sc_verbose ;;
        warning) sc_warning ;;
        failure) sc_failure ;;
        pagecache) sc_pagecache ;;
        pagecache-total) sc_pagecache_total ;;
        tmpfs) sc_tmpfs ;;
        ancestor) sc_ancestor ;;
        exact) sc_exact ;;
        run) run_hog 20ms any && pass ;;
        run-wakeup) sc_run_wakeup ;;
        run-reclaim) run_reclaim cgroup.event_control ;;
        run-events) run_reclaim "${WAKEUP:-memory.pressure,memory.events}" ;;
        run-psi) sc_run_psi ;;
        annotations) sc_annotations ;;
        termination-log) sc_termination_log ;;
        no-mount) sc_no_mount ;;
        *) echo "FAIL $KM_ENV/$SC: expected a known scenario name" ; FAILS=$((FAILS + 1)) ;;
    esac
done
hog_stop
echo "DONE $KM_ENV"
[ "$FAILS" = 0 ]
