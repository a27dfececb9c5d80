# Real-kernel scenarios for `--lead` (kubemem run and the probe with --state) and the
# kernel's OOM-kill count (oom_kills=).  POSIX sh: runs under bash on this machine (cgroup v1)
# and under busybox ash in the VM (cgroup v2), from run.sh and the VM's /init.
#
# Usage: sh lead.sh
#
# Each workload is tests/real/leak.c in a cgroup of its own below BASE, limited to 256 MiB
# (64 MiB for the OOM kill), started by `kubemem run` inside that cgroup (a shell joins it
# and becomes kubemem run).  The probe runs once a second from this shell, outside those
# cgroups, with --cgroup DIR and a --state file on tmpfs, against the same cgroups while
# the workloads run.  The cases run side by side, so that the 60 s ones cost 60 s in all;
# each starts once the one before has reached its level (a start-up that others slow down
# is growth):
#   - flat 94% under `kubemem run --failure 95 --lead 10s`, the probe with --lead 10s
#     --failure 95: no signal and no probe failure in HOLD seconds (lead-flat,
#     lead-probe-flat);
#   - a sawtooth 40%..85% every 2 s under `--lead 5s --failure 95`, the probe likewise
#     (lead-sawtooth, lead-probe-sawtooth);
#   - flat 94% again, reached over a start-up of 3 s rather than at once (an application
#     loading its data, a heap filled at start; under qemu's TCG a start-up of 240 MiB that
#     shares the CPU takes that long), as flat (lead-startup, lead-probe-startup);
#   - then, one after the other: leaks at 2, 8 and 32 MiB/s under `kubemem run --lead 3s
#     --failure 99`, each with its probe (--lead 3s --failure 99), from BASE_MIB = 256 - 20 *
#     RATE (at least 0) so that each would reach the limit about 20 s after its start
#     (lead-leak-N, lead-probe-leak-N); the 8 MiB/s one logs JSON (kubemem run and probe);
#     then a child killed by the OOM killer while its parent, CMD, lives: under `kubemem
#     run` (logfmt), a probe with --verbose afterwards (logfmt and JSON), and again under
#     `kubemem run --log-format json` (lead-oom-kill).
# The leak application needs 2 s to shut down after SIGTERM and keeps leaking meanwhile.
# It says when SIGTERM came and how long the limit was away then at its rate (left_s=);
# that must be at least the lead minus one interval (TOL, 0.1 s; the VM's /init gives 0.2 s):
# the guarantee of `--lead 3s` at the default --interval of 100 ms.  The probe's first failure must come with
# at least the lead left too, at the leak's rate from the working set the probe printed
# (used=): it acts when the time left is within the lead plus the time since its previous
# run, so that the next run would not be too late.  Neither may come with more than twice
# the lead left: that would be a signal for something else than the leak (its start-up),
# which passes the first check without testing the lead.
#
# Set by the environment:
#   KM_ENV     name used in the result lines (PASS <env>/lead-<scenario>)
#   KM         the kubemem binary           LEAK  the leak binary (tests/real/leak.c)
#   CGV        v1 | v2                      WORK  scratch directory (created; logs stay)
#   TMPFS_DIR  a directory on tmpfs, for the probes' state files
#   BASE       an existing cgroup directory (v1: of the memory hierarchy) without processes,
#              below which the cgroups are made (and removed at the end, also on failure)
#   HOLD       seconds the flat and sawtooth cases must go without a signal (default 60)
#   TOL        seconds less than the lead that count as the lead (default 0.1, one interval)
#
# Output: one line per scenario, `PASS env/lead-<name>` or `FAIL env/lead-<name>: expected
# ..., kubemem said ..., the workload said ...`, then `DONE env`.

MIB=1048576
LIMIT_MIB=256
OOM_LIMIT_MIB=64
HOLD=${HOLD:-60}
TOL=${TOL:-0.1}            # one --interval (100 ms, the default)
PIDS=                      # started here: killed by PID at the end
trap '' PIPE
mkdir -p "$WORK" "$TMPFS_DIR/lead" || { echo "FAIL $KM_ENV/lead-setup: expected $WORK and $TMPFS_DIR/lead"; exit 1; }
: >"$WORK/results"

# started PID: kill it at the end; the list is also in WORK/pids, for the caller when this
# shell is killed before its clean-up
started() { PIDS="$PIDS $1"; echo "$1" >>"$WORK/pids"; }

# result lines go to WORK/results (the cases run in background shells) and are printed at
# the end; SC names the scenario
pass() { echo "PASS $KM_ENV/lead-$SC" >>"$WORK/results"; }
fail() { echo "FAIL $KM_ENV/lead-$SC: expected $1" >>"$WORK/results"; }

# ---- cgroups ---------------------------------------------------------------------------------

# mkcg NAME MIB: BASE/NAME with a limit of MIB MiB (and no swap use on v1)
mkcg() {
    if [ "$CGV" = v2 ] && ! grep -qw memory "$BASE/cgroup.subtree_control"; then
        echo +memory >"$BASE/cgroup.subtree_control" || return 1
    fi
    mkdir "$BASE/$1" || return 1
    if [ "$CGV" = v1 ]; then
        echo $(($2 * MIB)) >"$BASE/$1/memory.limit_in_bytes" || return 1
        echo 0 >"$BASE/$1/memory.swappiness" 2>/dev/null
    else
        echo $(($2 * MIB)) >"$BASE/$1/memory.max" || return 1
        echo 0 >"$BASE/$1/memory.swap.max" 2>/dev/null
    fi
    :
}

# rmcg DIR: kill what runs in DIR and below (by PID), remove the directories
rmcg() {
    [ -d "$1" ] || return 0
    for _try in 1 2 3 4 5 6 7 8 9 10; do
        find "$1" -depth -type d 2>/dev/null | while read -r _d; do
            while read -r _k; do kill -9 "$_k" 2>/dev/null; done <"$_d/cgroup.procs"
            rmdir "$_d" 2>/dev/null
        done
        [ -d "$1" ] || return 0
        sleep 0.1
    done
}

# oom_kill DIR -> $_oom: the kernel's OOM-kill count of DIR (v1 memory.oom_control, v2
# memory.events)
oom_kill() {
    _oom=?
    _f=$1/memory.events
    [ "$CGV" = v1 ] && _f=$1/memory.oom_control
    while read -r _k _n; do [ "$_k" = oom_kill ] && { _oom=$_n; break; }; done <"$_f"
}

# ---- lines --------------------------------------------------------------------------------

# get KEY LINE -> the value of KEY in a logfmt (key=value) or JSON ("key":value) line, without
# quotes; empty when absent
get() {
    printf '%s\n' "$2" | awk -v k="$1" '{
        if (substr($0, 1, 1) == "{") {
            if (match($0, "[{,]\"" k "\":(\"[^\"]*\"|[^,}]*)")) {
                v = substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 4)
                gsub(/"/, "", v); print v
            }
            exit
        }
        for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { v = substr($i, length(k) + 2); gsub(/"/, "", v); print v; exit }
    }'
}

# json_ok LINE: a JSON object (python3's parser where there is one, else its outline)
json_ok() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys; assert isinstance(json.loads(sys.argv[1]), dict)' "$1" 2>/dev/null
    else
        case $1 in '{"'*'}') ;; *) return 1 ;; esac
        # every key quoted, no key without a value
        printf '%s\n' "$1" | grep -Eq '^\{"[a-z_]+":("[^"]*"|-?[0-9.]+)(,"[a-z_]+":("[^"]*"|-?[0-9.]+))*\}$'
    fi
}

# eta_ok VALUE: seconds with one decimal (the contract: `eta=12.3`)
eta_ok() { printf '%s\n' "$1" | grep -Eq '^[0-9]+\.[0-9]$'; }

# ge A B: A >= B (decimals)
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# line_with FILE KEY VALUE -> $_line: the first line of FILE whose KEY is VALUE
line_with() {
    _line=
    while IFS= read -r _l; do
        [ "$(get "$2" "$_l")" = "$3" ] && { _line=$_l; return 0; }
    done <"$1"
    return 1
}

# oneline FILE: FILE's lines joined with " | " (for a failure message)
oneline() { tr '\n' '|' <"$1" 2>/dev/null | sed 's/|$//; s/|/ | /g'; }

# ---- running things -----------------------------------------------------------------------

# km_run DIR LOG ARGS... -- CMD...: in the background, a shell joins DIR and becomes
# kubemem run ARGS (its lines to LOG); sets KM_PID
km_run() {
    _dir=$1 _log=$2
    shift 2
    # shellcheck disable=SC2016 # expanded by the inner sh
    sh -c 'echo $$ >"$1/cgroup.procs" || exit 125; km=$2; shift 2; exec "$km" run "$@"' - "$_dir" "$KM" "$@" \
        </dev/null >/dev/null 2>"$_log" &
    KM_PID=$!
    started "$KM_PID"
}

# cs -> $_cs: uptime in hundredths of a second
cs() { read -r _cs _ </proc/uptime; _f=${_cs#*.}; _cs=$((${_cs%.*} * 100 + 1$_f - 100)); }

# probes DIR STATE LOG STOP ARGS...: in the background, the probe with --cgroup DIR --state
# STATE --verbose ARGS once a second until the file STOP exists (or 200 runs); each run
# appends `rc=N T <its line>` to LOG (T: uptime at its start, in hundredths of a second);
# sets PROBE_PID.  The runs keep to a fixed schedule, as
# the kubelet's prober (a ticker) does: a sleep of a second after each run would drift
# against the sawtooth's period and sample it ever later in its cycle, which reads as slow
# growth.
probes() {
    _d=$1 _s=$2 _l=$3 _stop=$4
    shift 4
    rm -f "$_s" "$_l" "$_stop"
    (
        _n=0
        cs; _t0=$_cs
        while [ ! -e "$_stop" ] && [ "$_n" -lt 200 ]; do
            cs; _at=$_cs
            _o=$("$KM" --cgroup "$_d" --state "$_s" --verbose "$@" 2>&1)
            echo "rc=$? $_at $_o" >>"$_l"
            _n=$((_n + 1))
            cs; _z=$((_t0 + 100 * _n - _cs))
            [ "$_z" -gt 0 ] && sleep "$((_z / 100)).$((_z / 10 % 10))$((_z % 10))"
        done
    ) </dev/null >/dev/null 2>&1 &
    PROBE_PID=$!
    started "$PROBE_PID"
}

# wait_for FILE WORD: until FILE has a line starting with WORD (at most 30 s)
wait_for() {
    for _i in $(seq 1 150); do
        grep -q "^$2 " "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

# ---- the cases ----------------------------------------------------------------------------

# leak RATE FORMAT: the leak at RATE MiB/s under kubemem run --lead 3s --failure 99 and the
# probe with --lead 3s --failure 99 alongside; FORMAT logfmt | json for both
leak() {
    _rate=$1 _fmt=$2 _cg=$BASE/leak-$1 _w=$WORK/leak-$1
    _base=$((LIMIT_MIB - 20 * _rate))
    [ "$_base" -lt 0 ] && _base=0
    SC=leak-$_rate
    if ! mkcg "leak-$_rate" "$LIMIT_MIB"; then fail "a cgroup $_cg with a limit of $LIMIT_MIB MiB"; return; fi
    rm -f "$_w.out"
    km_run "$_cg" "$_w.log" --lead 3s --failure 99 --log-format "$_fmt" -- "$LEAK" "$_cg" "$_w.out" leak "$_rate" "$_base"
    # the probe's first run as the leak starts: samples from before would be a flat stretch
    # in its window, which it rightly reads as slower growth (and acts later) until they
    # leave it; the 32 MiB/s leak fills the cgroup in 8 s
    probes "$_cg" "$TMPFS_DIR/lead/state-leak-$_rate" "$_w.probe" "$_w.stop" --lead 3s --failure 99 --log-format "$_fmt"
    wait "$KM_PID"
    _rc=$?
    touch "$_w.stop"
    wait "$PROBE_PID"
    oom_kill "$_cg"
    _said="kubemem run (exit $_rc) said: $(oneline "$_w.log"); leak said: $(oneline "$_w.out"); oom_kill $_oom"

    # kubemem run: SIGTERM in time for the 2 s shutdown, the lead's failure line
    _term=$(grep '^term_at=' "$_w.out" 2>/dev/null)
    _left=$(get left_s "$_term")
    _exp="kubemem run --lead 3s --failure 99 over a leak of $_rate MiB/s from $_base MiB: SIGTERM with at least 3 s - $TOL s and at most 6 s to the limit (left_s), the shutdown done, exit 0, oom_kill 0, one failure line with eta= (seconds, one decimal) and lead=3s"
    if [ "$_rc" != 0 ] || [ "$_oom" != 0 ] || [ -z "$_left" ] || ! grep -q '^shutdown=done' "$_w.out" ||
        ! ge "$_left" "$(awk -v t="$TOL" 'BEGIN { print 3 - t }')" || ! ge 6 "$_left"; then
        fail "$_exp; $_said"
    elif ! line_with "$_w.log" level failure; then
        fail "$_exp; no failure line; $_said"
    elif [ "$(get action "$_line")" != signal ] || [ "$(get signal "$_line")" != TERM ] ||
        ! eta_ok "$(get eta "$_line")" || [ "$(get lead "$_line")" != 3s ] || ! ge 99 "$(get percent "$_line")"; then
        fail "$_exp; the failure line: $_line; $_said"
    elif [ "$_fmt" = json ] && ! json_ok "$_line"; then
        fail "$_exp; valid JSON: $_line"
    else
        pass
    fi

    # the probe: every run exit 0 or 4, the first 4 with at least the lead left, an eta= there
    SC=probe-leak-$_rate
    _said="the probe said: $(tail -8 "$_w.probe" 2>/dev/null | tr '\n' '|'); leak said: $(oneline "$_w.out")"
    _first=$(grep -m1 '^rc=4 ' "$_w.probe" 2>/dev/null)
    _line=${_first#* * }
    _used=$(get used "$_line") _lim=$(get limit "$_line")
    _exp="the probe with --state --lead 3s --failure 99, once a second over the leak of $_rate MiB/s: exit 0 or 4 every run, a first exit 4 with at least 3 s - $TOL s and at most 6 s to the limit at $_rate MiB/s from its used= (and eta=, lead=3s)"
    if grep -qv '^rc=[04] ' "$_w.probe" || [ -z "$_first" ]; then
        fail "$_exp; $_said"
    else
        _pleft=$(awk -v u="$_used" -v l="$_lim" -v r="$_rate" 'BEGIN { printf "%.3f", (l - u) / (r * 1048576) }')
        if [ -z "$_used" ] || [ "$_lim" != $((LIMIT_MIB * MIB)) ] || ! ge "$_pleft" "$(awk -v t="$TOL" 'BEGIN { print 3 - t }')" || ! ge 6 "$_pleft" ||
            ! eta_ok "$(get eta "$_line")" || [ "$(get lead "$_line")" != 3s ]; then
            fail "$_exp; the first failure: $_line (${_pleft}s left); $_said"
        elif [ "$_fmt" = json ] && ! json_ok "$_line"; then
            fail "$_exp; valid JSON: $_line"
        else
            pass
        fi
    fi
    rmcg "$_cg"
}

# steady NAME LEAD FAILURE WORKLOAD...: WORKLOAD (flat, sawtooth) under kubemem run --lead
# LEAD --failure FAILURE and the probe with the same; neither may act in HOLD seconds
steady() {
    _name=$1 _lead=$2 _failure=$3 _cg=$BASE/$1 _w=$WORK/$1
    shift 3
    SC=$_name
    if ! mkcg "$_name" "$LIMIT_MIB"; then fail "a cgroup $_cg with a limit of $LIMIT_MIB MiB"; return; fi
    rm -f "$_w.out"
    km_run "$_cg" "$_w.log" --lead "$_lead" --failure "$_failure" -- "$LEAK" "$_cg" "$_w.out" "$@"
    _km=$KM_PID
    probes "$_cg" "$TMPFS_DIR/lead/state-$_name" "$_w.probe" "$_w.stop" --lead "$_lead" --failure "$_failure"
    sleep "$HOLD"
    touch "$_w.stop"
    _alive=no
    kill -0 "$_km" 2>/dev/null && _alive=yes
    oom_kill "$_cg"
    _said="kubemem run said: $(oneline "$_w.log"); $* said: $(oneline "$_w.out"); oom_kill $_oom"
    # what the workload reached (so that the case tests something)
    case $1 in
        flat) _ok=$(awk '/^flat / { split($3, p, "="); print (p[2] >= 93.5) ? "yes" : "no" }' "$_w.out") ;;
        *) _ok=$(awk -v l=$((LIMIT_MIB * MIB)) '/^sawtooth / { split($2, a, "="); split($3, b, "="); print (a[2] / l <= 0.45 && b[2] / l >= 0.75) ? "yes" : "no" }' "$_w.out") ;;
    esac
    _exp="kubemem run --lead $_lead --failure $_failure over $* to send no signal in $HOLD s (CMD alive, no failure line)"
    if [ "$_ok" != yes ]; then
        fail "$_exp; the workload to reach its levels (flat >= 93.5%, sawtooth <= 45% and >= 75%); $_said"
    elif [ "$_alive" != yes ] || grep -q '^term_at=' "$_w.out" || line_with "$_w.log" level failure || [ "$_oom" != 0 ]; then
        fail "$_exp; $_said"
    else
        pass
    fi
    kill "$_km" 2>/dev/null
    wait "$_km" 2>/dev/null
    wait "$PROBE_PID"
    SC=probe-$_name
    _runs=$(grep -c '^rc=' "$_w.probe" 2>/dev/null)
    _exp="the probe with --state --lead $_lead --failure $_failure once a second over $*: exit 0 every run for $HOLD s (at least $((HOLD * 2 / 3)) runs)"
    if grep -qv '^rc=0 ' "$_w.probe" || [ "${_runs:-0}" -lt $((HOLD * 2 / 3)) ]; then
        fail "$_exp; $_runs runs, the probe said: $(grep -v '^rc=0 ' "$_w.probe" | head -3 | tr '\n' '|') last: $(tail -1 "$_w.probe")"
    else
        pass
    fi
    rmcg "$_cg"
}

# oom: a child of CMD killed by the OOM killer: kubemem run's event line with oom_kills=1
# while CMD lives, the probe's oom_kills=1 afterwards (logfmt and JSON), then again under
# kubemem run --log-format json (oom_kills=2)
oom() {
    _cg=$BASE/oom _w=$WORK/oom
    SC=oom-kill
    if ! mkcg oom "$OOM_LIMIT_MIB"; then fail "a cgroup $_cg with a limit of $OOM_LIMIT_MIB MiB"; return; fi
    rm -f "$_w.out"
    # CMD ignores SIGTERM (kubemem run's failure action at 90% must not end it) and lives 3 s
    # after its child was killed
    km_run "$_cg" "$_w.log" -- "$LEAK" "$_cg" "$_w.out" oomchild 3
    # the line must be there while CMD still lives (3 s after its child was killed)
    _live=no
    for _i in $(seq 1 100); do
        if grep -q 'event=oom-kill' "$_w.log"; then
            kill -0 "$KM_PID" 2>/dev/null && _live=yes
            break
        fi
        kill -0 "$KM_PID" 2>/dev/null || break
        sleep 0.1
    done
    wait "$KM_PID"
    _rc=$?
    oom_kill "$_cg"
    _said="kubemem run (exit $_rc) said: $(oneline "$_w.log"); leak said: $(oneline "$_w.out"); oom_kill $_oom"
    _n=$(grep -c 'event=oom-kill' "$_w.log")
    if [ "$_rc:$_oom" != 0:1 ] || ! grep -q '^child=killed signal=9' "$_w.out"; then
        fail "the child killed by the OOM killer (oom_kill 1) and CMD's exit 0 (setup); $_said"
    elif [ "$_n" != 1 ] || [ "$_live" != yes ] || ! line_with "$_w.log" event oom-kill ||
        [ "$(get oom_kills "$_line")" != 1 ] || [ -z "$(get level "$_line")" ]; then
        # (its level is the sample's verdict: at the limit when the kill came, failure)
        fail "kubemem run to print one line level=... oom_kills=1 event=oom-kill while CMD lives (seen while it lived: $_live); $_said"
    else
        _R=$("$KM" --cgroup "$_cg" --verbose 2>&1)
        _J=$("$KM" --cgroup "$_cg" --verbose --log-format json 2>&1)
        if [ "$(get oom_kills "$_R")" != 1 ] || [ "$(get oom_kills "$_J")" != 1 ] || ! json_ok "$_J"; then
            fail "the probe with --verbose in the cgroup afterwards to print oom_kills=1 (logfmt) and \"oom_kills\":1 (valid JSON); it printed: $_R / $_J"
        else
            rm -f "$_w.out"
            km_run "$_cg" "$_w.json" --log-format json -- "$LEAK" "$_cg" "$_w.out" oomchild 3
            wait "$KM_PID"
            _rc=$?
            oom_kill "$_cg"
            if ! line_with "$_w.json" event oom-kill || [ "$(get oom_kills "$_line")" != 2 ] || ! json_ok "$_line" ||
                [ "$(grep -c '"event":"oom-kill"' "$_w.json")" != 1 ]; then
                fail "kubemem run --log-format json to print one valid JSON line with \"oom_kills\":2,\"event\":\"oom-kill\" (a second child killed, oom_kill $_oom); it said: $(oneline "$_w.json")"
            else
                pass
            fi
        fi
    fi
    rmcg "$_cg"
}

lead_cleanup() {
    # this shell's children, and what the cases started in their own shells
    [ -f "$WORK/pids" ] && PIDS="$PIDS $(cat "$WORK/pids")"
    # shellcheck disable=SC2086 # a list of PIDs
    [ -z "$PIDS" ] || kill -9 $PIDS 2>/dev/null
    for _c in flat sawtooth startup leak-2 leak-8 leak-32 oom; do rmcg "$BASE/$_c"; done
    rm -f "$WORK/pids"
    PIDS=
}
trap lead_cleanup EXIT
trap 'exit 130' INT TERM

# ---- main ---------------------------------------------------------------------------------

# One after the other has reached its level, so that no start-up is slowed down by the
# next (under qemu's TCG a start-up that several share takes seconds: growth, which
# kubemem rightly acts on); the leaks, about 50 s, then run within their HOLD.
rm -f "$WORK"/*.out
steady flat 10s 95 flat 94 &
started $!
wait_for "$WORK/flat.out" flat
steady startup 10s 95 flat 94 3000 &
started $!
wait_for "$WORK/startup.out" flat
steady sawtooth 5s 95 sawtooth 40 85 2000 &
started $!
wait_for "$WORK/sawtooth.out" sawtooth
leak 2 logfmt
leak 8 json
leak 32 logfmt
oom
wait
cat "$WORK/results"
FAILS=$(grep -c '^FAIL' "$WORK/results")
echo "DONE $KM_ENV"
[ "$FAILS" = 0 ]
