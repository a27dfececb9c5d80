# Real-kernel scenarios for kubemem-node, the node agent.  POSIX sh: runs under bash on this
# machine (cgroup v1) and under busybox ash in the VM (cgroup v2), from run.sh and the VM's
# /init.
#
# Usage: sh node.sh [SCENARIO...]   (default: all, in the order of the list at the bottom)
#
# It plays the kubelet: builds the cgroup trees the kubelet builds, for its cgroupfs driver
# (kubepods/burstable/pod<uid>/<id>, Guaranteed pods directly under kubepods, CRI-O's
# crio-<id>) and its systemd driver (kubepods.slice/kubepods-burstable.slice/
# kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope, crio-<id>.scope beside
# crio-conmon-<id>.scope), with real memory limits on the container and/or the pod cgroup,
# registers each pod in the test API server (tests/apiserver) with the same uid, QoS class and
# container IDs, and starts the hog (tests/hog) inside the container's cgroup, where it
# allocates real memory.  kubepods carries a limit of its own, as on a node (the allocatable);
# it must never count as a pod's limit.  Three agents watch the same server: the main one
# (cgroupfs tree, node node-a, --node), a dry-run one (node node-dry, JSON lines) and a
# systemd-driver one (its own tree, node node-sd, NODE_NAME), which sees that tree through a
# read-only bind mount (WORK/ro-sd), as the DaemonSet sees the host's.  A pod on node-b, over
# its threshold all along, is watched by nobody.
#
# Set by the environment:
#   KM_ENV      name used in the result lines (PASS <env>/node-<scenario>)
#   NODE_BIN    the kubemem-node binary         API  the test API server binary
#   HOG         the hog allocator binary        CGV  v1 | v2
#   WORK        scratch directory (created; logs stay there for a look after a failure)
#   BASE        an existing cgroup directory (v1: of the memory hierarchy) below which the
#               trees are made: BASE/kubepods (cgroupfs) and BASE/sd/kubepods.slice
#               (systemd); both are removed at the end, also on failure
#   ROOT_ARG    the main agent's --cgroup-root (empty: none, the agent's default; the VM's
#               BASE is the v2 mount, /sys/fs/cgroup)
#   IN_CLUSTER  1: the agents use the in-cluster configuration: the server runs with --tls,
#               its CA and token (DIR/ca.crt, DIR/token) are copied to
#               /var/run/secrets/kubernetes.io/serviceaccount/ (only where that directory
#               is ours: the VM) and KUBERNETES_SERVICE_HOST/PORT are set; otherwise the
#               agents get KUBECONFIG (the server's DIR/kubeconfig, plain HTTP)
#   SLOW        factor for the waits on what must happen (default 1; the VM under TCG: 4)
#
# Output: one line per scenario, `PASS env/node-<name>` or `FAIL env/node-<name>: expected
# ..., agent said ..., apiserver said ...`, then `DONE env`.

MIB=1048576
LIMIT=$((64 * MIB))          # a container's (or a pod's) limit
KUBEPODS_LIMIT=$((256 * MIB)) # the node's allocatable, on kubepods: never a pod's limit
IV=100ms                     # --interval of every agent
IV_DS=1                      # the same in tenths of a second
SLOW=${SLOW:-1}
WAIT_DS=$((100 * SLOW))      # what must happen happens within this (tenths of a second)
QUIET_DS=$((10 * IV_DS * SLOW)) # what must not happen: ten intervals of nothing
NS=default
AD=$WORK/api                 # the API server's directory
CA=/var/run/secrets/kubernetes.io/serviceaccount
PIDS=                        # started here: killed by PID at the end
HOG_SLOTS=
trap '' PIPE

# ---- small tools ---------------------------------------------------------------------------

uuid() { read -r _u </proc/sys/kernel/random/uuid; }
# now -> $_now: uptime in tenths of a second (/proc/uptime has two decimals)
now() { read -r _now _ </proc/uptime; _f=${_now#*.}; _now=$((${_now%.*} * 10 + ${_f%?})); }
# quiet: ten intervals (longer under SLOW) in which something must not happen
quiet() { sleep "$((QUIET_DS / 10)).$((QUIET_DS % 10))"; }

# until_ds DS COMMAND...: run COMMAND every 0.1 s until it succeeds (0) or DS tenths passed (1)
until_ds() {
    now; _end=$((_now + $1))
    shift
    while ! "$@"; do
        now; [ "$_now" -ge "$_end" ] && return 1
        sleep 0.1
    done
}

# nlines FILE WORD...: the number of lines of FILE holding every WORD as a whole
# space-separated word (logfmt key=value pairs; the order of the keys is the agent's)
nlines() {
    _f=$1; shift
    # shellcheck disable=SC2016 # expanded by the eval
    _c='cat "$_f"'
    for _w in "$@"; do _c="$_c | grep -E -e '(^| )$_w( |\$)'"; done
    eval "$_c" 2>/dev/null | grep -c .
}
has_line() { [ "$(nlines "$@")" -gt 0 ]; }

ctl() { "$API" ctl "$AD" "$@"; }

# started PID: kill it at the end; the list is also in WORK/pids, for the caller when this
# shell is killed before its clean-up
started() { PIDS="$PIDS $1"; echo "$1" >>"$WORK/pids"; }

# jfield NAME -> a grep -E pattern for "NAME": in the server's JSON (any spacing)
jkey() { printf '"%s"[[:space:]]*:[[:space:]]*' "$1"; }

# evictions NAME [CODE] -> the number of eviction requests for pod NAME (with answer CODE)
evictions() {
    ctl evictions 2>/dev/null | grep -E "$(jkey name)\"$1\"" | grep -E "$(jkey code)${2:-[0-9]+}" | grep -c .
}
# events NAME -> the number of Events on pod NAME with reason PreOOMEviction and type Warning
events() {
    ctl events 2>/dev/null | grep -E "$(jkey reason)\"PreOOMEviction\"" | grep -E "$(jkey type)\"Warning\"" |
        grep -E "$(jkey name)\"$1\"" | grep -c .
}
evicted() { [ "$(evictions "$1" 201)" -ge 1 ]; }
has_events() { [ "$(events "$1")" -ge 1 ]; }

FAILS=0
pass() { echo "PASS $KM_ENV/node-$SC"; }
# fail EXPECTED [POD...]: with what the agents said about each POD and the server's records
fail() {
    FAILS=$((FAILS + 1))
    _e=$1; shift
    _said=
    for _p in "$@"; do
        _l=$(cat "$WORK"/agent-*.log 2>/dev/null | grep -E "pod\"?[=:]\"?$NS/$_p([\" ]|\$)" | tail -4 | tr '\n' '|')
        _a=$(ctl evictions 2>/dev/null | grep -E "$(jkey name)\"$_p\"" | tr -d ' \n')
        _said="$_said; $_p: agent said ${_l:-nothing}, apiserver evictions ${_a:-none}, events $(events "$_p")"
    done
    echo "FAIL $KM_ENV/node-$SC: expected $_e${_said}"
}

# ---- cgroups: the kubelet's trees -------------------------------------------------------------

setlimit() {
    if [ "$CGV" = v1 ]; then echo "$2" >"$1/memory.limit_in_bytes"; else echo "$2" >"$1/memory.max"; fi
}

# mkcg ROOT REL LIMIT|-: make ROOT/REL level by level (v2: +memory in each parent's
# cgroup.subtree_control, so that every level has memory files), with LIMIT on the last
mkcg() {
    _p=$1 _rest=$2
    while [ -n "$_rest" ]; do
        _seg=${_rest%%/*}
        case $_rest in */*) _rest=${_rest#*/} ;; *) _rest= ;; esac
        if [ "$CGV" = v2 ] && ! grep -qw memory "$_p/cgroup.subtree_control"; then
            echo +memory >"$_p/cgroup.subtree_control" || return 1
        fi
        _p=$_p/$_seg
        if [ ! -d "$_p" ]; then
            mkdir "$_p" || return 1
            case $_seg in kubepods | kubepods.slice) setlimit "$_p" "$KUBEPODS_LIMIT" ;; esac
        fi
    done
    [ "$3" = - ] || setlimit "$_p" "$3"
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

# ws DIR -> $_ws: the working set as the kernel counts it (usage minus inactive page cache)
ws() {
    if [ "$CGV" = v1 ]; then
        read -r _use <"$1/memory.usage_in_bytes"; _key=total_inactive_file
    else
        read -r _use <"$1/memory.current"; _key=inactive_file
    fi
    _in=0
    while read -r _k _n; do [ "$_k" = "$_key" ] && { _in=$_n; break; }; done <"$1/memory.stat"
    _ws=$((_use - _in))
}

# A pod: new_pod NAME LAYOUT QOS [NODE] sets P_NAME P_UID P_DIR (the pod cgroup, relative to
# its root R_cgfs/R_sd) and starts an empty container list; ctr adds containers.
#   LAYOUT cgfs | sd (the kubelet's cgroup driver)    QOS Guaranteed | Burstable | BestEffort
new_pod() {
    P_NAME=$1 P_LAYOUT=$2 P_QOS=$3 P_NODE=${4:-node-a} P_SPECS='' P_STATUSES=''
    uuid; P_UID=$_u
    _q=$(echo "$3" | tr '[:upper:]' '[:lower:]')
    if [ "$2" = cgfs ]; then
        P_ROOT=$R_cgfs
        case $3 in Guaranteed) P_DIR=kubepods/pod$P_UID ;; *) P_DIR=kubepods/$_q/pod$P_UID ;; esac
    else
        P_ROOT=$R_sd
        _uid_=$(echo "$P_UID" | tr - _)
        case $3 in
            Guaranteed) P_DIR=kubepods.slice/kubepods-pod$_uid_.slice ;;
            *) P_DIR=kubepods.slice/kubepods-$_q.slice/kubepods-$_q-pod$_uid_.slice ;;
        esac
    fi
}

# pod_limit LIMIT: the pod cgroup (made now) with a limit of its own
pod_limit() { mkcg "$P_ROOT" "$P_DIR" "$1"; }

# ctr NAME RUNTIME LIMIT|-: a container of the pod (containerd | crio), its cgroup made with
# LIMIT; C_DIR is its absolute directory, C_ID its ID
ctr() {
    uuid; C_ID=$_u; uuid; C_ID=$(echo "$C_ID$_u" | tr -d -)
    if [ "$P_LAYOUT" = cgfs ]; then
        case $2 in crio) _leaf=crio-$C_ID ;; *) _leaf=$C_ID ;; esac
    else
        case $2 in crio) _leaf=crio-$C_ID.scope ;; *) _leaf=cri-containerd-$C_ID.scope ;; esac
    fi
    case $2 in crio) _cid=cri-o://$C_ID ;; *) _cid=containerd://$C_ID ;; esac
    C_DIR=$P_ROOT/$P_DIR/$_leaf
    mkcg "$P_ROOT" "$P_DIR/$_leaf" "$3" || return 1
    P_SPECS="$P_SPECS${P_SPECS:+,}{\"name\":\"$1\",\"image\":\"registry.k8s.io/pause:3.10\"}"
    P_STATUSES="$P_STATUSES${P_STATUSES:+,}{\"name\":\"$1\",\"containerID\":\"$_cid\",\"image\":\"registry.k8s.io/pause:3.10\",\"imageID\":\"\",\"ready\":true,\"restartCount\":0,\"started\":true,\"state\":{\"running\":{\"startedAt\":\"2026-01-01T00:00:00Z\"}}}"
}

# Labels and annotations, JSON members
LABEL='"pre-oom-killer":"enabled"'
# pok CONTAINER PERCENT: pre-oom-killer's annotations
pok() {
    printf '"pre-oom-killer.v1alpha1.k8s.io/target-container-name":"%s","pre-oom-killer.v1alpha1.k8s.io/memory-usage-threshold":"%s"' "$1" "$2"
}

# put LABELS ANNOTATIONS: create or replace the pod in the API server
put() {
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"%s","uid":"%s","labels":{%s},"annotations":{%s}},"spec":{"nodeName":"%s","containers":[%s]},"status":{"phase":"Running","qosClass":"%s","containerStatuses":[%s]}}\n' \
        "$P_NAME" "$NS" "$P_UID" "$1" "$2" "$P_NODE" "$P_SPECS" "$P_QOS" "$P_STATUSES" >"$WORK/pod.json"
    ctl put "$WORK/pod.json" >/dev/null || { echo "node.sh: ctl put $P_NAME failed" >&2; return 1; }
}

# pod_gone NAME DIR: what the kubelet does after an eviction: delete the pod, remove its cgroups
pod_gone() {
    ctl delete "$NS" "$1" >/dev/null 2>&1
    rmcg "$2"
}

# ---- hogs: one per slot (1 to 6), in a container's cgroup, driven through a fifo -----------

# hog_start SLOT DIR: a hog that moves itself into the cgroup DIR; its answers go to a file
hog_start() {
    _in=$WORK/hog.$1.in _out=$WORK/hog.$1.out
    rm -f "$_in" "$_out"
    mkfifo "$_in" || return 1
    : >"$_out"
    # shellcheck disable=SC2016 # expanded by the inner sh
    sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" <"$3" >"$4"' - "$2" "$HOG" "$_in" "$_out" 2>/dev/null &
    eval "HOG_PID_$1=\$! HOG_DIR_$1=\$2"
    started $!; HOG_SLOTS="$HOG_SLOTS $1"
    eval "exec $(($1 + 2))>\"\$_in\""
}

more_lines() { [ "$(grep -c . "$1")" -gt "$2" ]; }
# more_lines_of FILE N WORD...: more than N lines with every WORD
more_lines_of() { _f=$1 _n=$2; shift 2; [ "$(nlines "$_f" "$@")" -gt "$_n" ]; }

# hog SLOT COMMAND: 0 when the hog answered ok
hog() {
    _out=$WORK/hog.$1.out
    _n=$(grep -c . "$_out")
    eval "echo \"\$2\" >&$(($1 + 2))" 2>/dev/null || return 1
    until_ds "$WAIT_DS" more_lines "$_out" "$_n" || return 1
    tail -1 "$_out" | grep -q '^ok'
}

# hog_to SLOT PERCENT: grow until the container's working set is over PERCENT of LIMIT
hog_to() {
    eval "ws \"\$HOG_DIR_$1\""
    _need=$((LIMIT * $2 / 100 - _ws))
    [ "$_need" -gt 0 ] || return 0
    hog "$1" "anon $((_need / MIB + 1))"
}

hog_stop() {
    eval "_pid=\$HOG_PID_$1"
    [ -n "$_pid" ] || return 0
    eval "exec $(($1 + 2))>&-"
    kill -9 "$_pid" 2>/dev/null
    wait "$_pid" 2>/dev/null
    eval "HOG_PID_$1="
}

# ---- the API server and the agents ------------------------------------------------------------

api_start() {
    mkdir -p "$AD" || return 1
    _tls=
    [ "${IN_CLUSTER:-}" = 1 ] && _tls=--tls
    "$API" serve --listen 127.0.0.1:0 --dir "$AD" $_tls </dev/null >"$WORK/apiserver.log" 2>&1 &
    started $!
    until_ds "$WAIT_DS" [ -s "$AD/port" ] || return 1
    until_ds "$WAIT_DS" [ -s "$AD/kubeconfig" ] || return 1
    if [ "${IN_CLUSTER:-}" = 1 ]; then
        # what the kubelet mounts into a pod with a ServiceAccount: the server's CA, the
        # token it accepts, the namespace
        mkdir -p "$CA" && cp "$AD/ca.crt" "$CA/ca.crt" && cp "$AD/token" "$CA/token" || return 1
        printf '%s' kube-system >"$CA/namespace"
        read -r _port <"$AD/port"
        export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT="$_port"
        unset KUBECONFIG
    else
        export KUBECONFIG="$AD/kubeconfig"
        unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
    fi
}

# agent NAME ENV ARGS...: start kubemem-node with the environment assignments ENV (a list of
# words, may be empty), its lines to WORK/agent-NAME.log; waits for its started line
agent() {
    _log=$WORK/agent-$1.log _env=$2
    shift 2
    # shellcheck disable=SC2086 # a list of assignments
    env $_env "$NODE_BIN" --interval "$IV" --metrics-addr '' "$@" </dev/null >"$_log" 2>&1 &
    started $!
    until_ds "$WAIT_DS" grep -Eqs '(event=|"event":[[:space:]]*")started' "$_log"
}

# watching LOG POD CONTAINER: the agent says it watches that container
watching() { until_ds "$WAIT_DS" has_line "$1" event=watching "pod=$NS/$2" "container=$3"; }

# ---- scenarios ------------------------------------------------------------------------------

A=$WORK/agent-main.log D=$WORK/agent-dry.log S=$WORK/agent-sd.log

# start: the server and the agents, and the pod on node-b, over its threshold all along
sc_start() {
    api_start || { fail "the API server to start and write $AD/port and $AD/kubeconfig (its log: $(tail -3 "$WORK/apiserver.log" | tr '\n' '|'))"; return 1; }
    new_pod elsewhere cgfs Burstable node-b
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 6 "$C_DIR" && hog_to 6 60 ||
        { fail "the pod on node-b, its cgroup and its hog"; return 1; }
    # shellcheck disable=SC2086 # ROOT_ARG: empty or one option and its value
    agent main '' --node node-a ${ROOT_ARG:+--cgroup-root "$ROOT_ARG"} ||
        { fail "the agent's event=started line (its log: $(tail -3 "$A" | tr '\n' '|'))"; return 1; }
    agent dry '' --node node-dry --cgroup-root "$R_cgfs" --dry-run --log-format json ||
        { fail "the --dry-run --log-format json agent's started line (its log: $(tail -3 "$D" | tr '\n' '|'))"; return 1; }
    # the systemd tree through a read-only bind mount, as the DaemonSet mounts the host's: no
    # kernel notification can be registered there (v1), sampling alone must do
    mkdir -p "$V_sd" && mount --bind "$R_sd" "$V_sd" && mount -o remount,bind,ro "$V_sd" ||
        { fail "a read-only bind mount of $R_sd at $V_sd"; return 1; }
    agent sd NODE_NAME=node-sd --cgroup-root "$V_sd" ||
        { fail "the NODE_NAME=node-sd agent's started line (its log: $(tail -3 "$S" | tr '\n' '|'))"; return 1; }
    pass
}

# an annotated pod crossing its threshold is evicted once, with an Event; it stays over the
# threshold for ten intervals more (nothing kills it here) and is not evicted again
sc_evict() {
    new_pod evict-once cgfs Burstable
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" || { fail "the pod"; return; }
    watching "$A" evict-once app || { fail "event=watching pod=$NS/evict-once container=app" evict-once; return; }
    has_line "$A" event=watching "pod=$NS/evict-once" "limit=$LIMIT" || { fail "limit=$LIMIT on the watching line" evict-once; return; }
    hog_start 1 "$C_DIR" && hog_to 1 60 || { fail "the hog to grow to 60%"; return; }
    until_ds "$WAIT_DS" evicted evict-once || { fail "an eviction (201) within $((WAIT_DS / 10)) s of the crossing" evict-once; return; }
    quiet
    if [ "$(evictions evict-once)" != 1 ]; then fail "exactly one eviction request" evict-once
    elif ! has_line "$A" event=evict "pod=$NS/evict-once" container=app level=failure; then fail "an event=evict ... level=failure line" evict-once
    elif ! until_ds "$WAIT_DS" has_line "$A" event=evicted "pod=$NS/evict-once"; then fail "an event=evicted line" evict-once
    elif [ "$(events evict-once)" -lt 1 ]; then fail "an Event reason PreOOMEviction type Warning on the pod" evict-once
    else pass; fi
    hog_stop 1; pod_gone evict-once "$P_ROOT/$P_DIR"
}

# a pod without the label and a labelled pod under its threshold are never touched, while a
# third pod beside them crosses its threshold and is evicted (so the agent was sampling)
sc_ignored() {
    new_pod unlabelled cgfs Burstable; _d1=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put '"app":"web"' "$(pok app 50)" && hog_start 1 "$C_DIR" && hog_to 1 60 || { fail "pod unlabelled"; return; }
    new_pod under cgfs Burstable; _d2=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 90)" && hog_start 2 "$C_DIR" && hog_to 2 60 || { fail "pod under"; return; }
    new_pod sentinel cgfs Burstable; _d3=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 3 "$C_DIR" && hog_to 3 60 || { fail "pod sentinel"; return; }
    until_ds "$WAIT_DS" evicted sentinel || { SC=unlabelled; fail "pod sentinel (beside them, over its threshold) evicted" sentinel; return; }
    quiet
    SC=unlabelled
    if [ "$(evictions unlabelled):$(events unlabelled)" != 0:0 ]; then fail "no eviction and no Event for a pod without the label pre-oom-killer: enabled" unlabelled
    elif has_line "$A" event=watching "pod=$NS/unlabelled"; then fail "no watching line for a pod without the label" unlabelled
    else pass; fi
    SC=under-threshold
    if ! has_line "$A" event=watching "pod=$NS/under" container=app; then fail "a watching line for the pod under its threshold" under
    elif [ "$(evictions under):$(events under)" != 0:0 ]; then fail "no eviction and no Event for a pod at 60% of a 90% threshold" under
    else pass; fi
    hog_stop 1; hog_stop 2; hog_stop 3
    pod_gone unlabelled "$_d1"; pod_gone under "$_d2"; pod_gone sentinel "$_d3"
}

# no limit on the container nor on the pod (BestEffort, CRI-O under cgroupfs; kubepods has the
# node's allocatable, which does not count): one no-limit line, never evicted
sc_no_limit() {
    new_pod no-limit cgfs BestEffort
    ctr app crio - && put '' '"kubemem.io/failure":"50"' || { fail "the pod"; return; }
    hog_start 1 "$C_DIR" && hog "1" "anon 48" || { fail "the hog to take 48 MiB"; return; }
    until_ds "$WAIT_DS" has_line "$A" event=no-limit "pod=$NS/no-limit" container=app ||
        { fail "an event=no-limit line" no-limit; hog_stop 1; pod_gone no-limit "$P_ROOT/$P_DIR"; return; }
    quiet
    if [ "$(nlines "$A" event=no-limit "pod=$NS/no-limit")" != 1 ]; then fail "exactly one no-limit line" no-limit
    elif [ "$(evictions no-limit)" != 0 ]; then fail "no eviction of a container without a limit" no-limit
    else pass; fi
    hog_stop 1; pod_gone no-limit "$P_ROOT/$P_DIR"
}

# a PodDisruptionBudget allows no disruption for the first two requests (429): the agent says
# so, retries while the container stays over its threshold, records Events, and evicts when
# the server allows it
sc_pdb() {
    ctl respond "$NS" pdb 429 2 || { fail "ctl respond"; return; }
    new_pod pdb cgfs Burstable
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 1 "$C_DIR" && hog_to 1 60 || { fail "the pod"; return; }
    until_ds $((WAIT_DS * 2)) evicted pdb || { fail "two requests answered 429, then an eviction (201)" pdb; hog_stop 1; pod_gone pdb "$P_ROOT/$P_DIR"; return; }
    _codes=$(ctl evictions | grep -E "$(jkey name)\"pdb\"" | sed -n 's/.*"code"[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p' | tr '\n' ' ')
    if [ "$_codes" != "429 429 201 " ]; then fail "answers 429 429 201 in that order, one request in flight at a time (got $_codes)" pdb
    elif ! until_ds "$WAIT_DS" has_line "$A" event=evicted "pod=$NS/pdb"; then fail "an event=evicted line after the refusals" pdb
    elif [ "$(nlines "$A" event=refused "pod=$NS/pdb" code=429)" -lt 2 ]; then fail "two event=refused code=429 lines" pdb
    elif ! grep -E "(^| )event=refused( |$)" "$A" | grep -E "(^| )pod=$NS/pdb( |$)" | grep -Eq "(^| )retry_in=[0-9]+ms( |$)"; then fail "retry_in=<ms>ms on the refused lines" pdb
    elif [ "$(events pdb)" -lt 2 ]; then fail "Events for the refusals and the eviction" pdb
    else pass; fi
    hog_stop 1; pod_gone pdb "$P_ROOT/$P_DIR"
}

# watch-drop / watch-expire: a pod known before the watch ends and one added right after it
# (while the agent has no watch) both get evicted when they cross; after the 410 Gone the
# agent says it re-lists
watch_end() {
    _how=$1 _p1=$2 _p2=$3
    _restarts=$(nlines "$A" event=watch-restart)
    new_pod "$_p1" cgfs Burstable; _d1=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 1 "$C_DIR" || { fail "pod $_p1"; return; }
    watching "$A" "$_p1" app || { fail "a watching line for $_p1" "$_p1"; return; }
    ctl "$_how" || { fail "ctl $_how"; return; }
    new_pod "$_p2" cgfs Burstable; _d2=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 2 "$C_DIR" || { fail "pod $_p2"; return; }
    if [ "$_how" = expire ] && ! until_ds "$WAIT_DS" more_lines_of "$A" "$_restarts" event=watch-restart; then
        fail "an event=watch-restart line after the 410 Gone"
        hog_stop 1; hog_stop 2; pod_gone "$_p1" "$_d1"; pod_gone "$_p2" "$_d2"
        return
    fi
    both_cross "$A" "$_p1" "$_d1" "$_p2" "$_d2"
}

# a labelled pod at 60% of a 90% threshold is left alone; its threshold changed to 50 (the
# same pod, replaced in the server) evicts it without a restart of the agent
sc_annotation_change() {
    new_pod change cgfs Burstable
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 90)" && hog_start 1 "$C_DIR" && hog_to 1 60 || { fail "the pod"; return; }
    watching "$A" change app || { fail "a watching line" change; return; }
    quiet
    if [ "$(evictions change)" != 0 ]; then fail "no eviction at 60% of a 90% threshold" change
    elif ! put "$LABEL" "$(pok app 50)"; then fail "ctl put of the changed pod"
    elif ! until_ds "$WAIT_DS" evicted change; then fail "an eviction after the threshold changed to 50" change
    else pass; fi
    hog_stop 1; pod_gone change "$P_ROOT/$P_DIR"
}

# both_cross LOG POD1 DIR1 POD2 DIR2: hogs 1 and 2 run in the two pods' containers (named
# app); both watched by the agent of LOG, grown over their threshold at the same time, both
# evicted; then both gone
both_cross() {
    if ! watching "$1" "$2" app || ! watching "$1" "$4" app; then fail "watching lines for both" "$2" "$4"
    elif ! hog_to 1 60 || ! hog_to 2 60; then fail "the hogs to grow to 60%"
    elif until_ds "$WAIT_DS" evicted "$2" && until_ds "$WAIT_DS" evicted "$4"; then pass
    else fail "both pods evicted" "$2" "$4"; fi
    hog_stop 1; hog_stop 2
    pod_gone "$2" "$3"; pod_gone "$4" "$5"
}

# two pods over their thresholds at the same time: both evicted
sc_two_pods() {
    new_pod two-a cgfs Burstable; _d1=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 1 "$C_DIR" || { fail "pod two-a"; return; }
    new_pod two-b cgfs Burstable; _d2=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 2 "$C_DIR" || { fail "pod two-b"; return; }
    both_cross "$A" two-a "$_d1" two-b "$_d2"
}

# a pod whose cgroup vanishes, and one that names a container it does not have: one error
# line each, and a pod beside them still gets evicted
sc_vanished() {
    new_pod vanished cgfs Burstable; _d1=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 1 "$C_DIR" && hog_to 1 30 || { fail "pod vanished"; return; }
    watching "$A" vanished app || { fail "a watching line" vanished; return; }
    hog_stop 1; rmcg "$_d1"
    new_pod no-such-container cgfs Burstable; _d2=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok sidecar 50)" || { fail "pod no-such-container"; return; }
    new_pod alive cgfs Burstable; _d3=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 2 "$C_DIR" && hog_to 2 60 || { fail "pod alive"; return; }
    if ! until_ds "$WAIT_DS" has_line "$A" event=error "pod=$NS/vanished"; then fail "an event=error line for the pod whose cgroup vanished" vanished
    elif ! until_ds "$WAIT_DS" has_line "$A" event=error "pod=$NS/no-such-container"; then fail "an event=error line for a target container the pod does not have" no-such-container
    elif ! until_ds "$WAIT_DS" evicted alive; then fail "the pod beside them evicted" alive vanished
    else
        quiet
        _n1=$(nlines "$A" event=error "pod=$NS/vanished") _n2=$(nlines "$A" event=error "pod=$NS/no-such-container")
        if [ "$_n1" != 1 ]; then fail "one error line for the pod whose cgroup vanished, not one per sample nor one per step (got $_n1)" vanished
        elif [ "$_n2" != 1 ]; then fail "one error line for the missing container (got $_n2)" no-such-container
        elif [ "$(evictions vanished):$(evictions no-such-container)" != 0:0 ]; then fail "no eviction of either" vanished no-such-container
        else pass; fi
    fi
    hog_stop 2
    pod_gone vanished "$_d1"; pod_gone no-such-container "$_d2"; pod_gone alive "$_d3"
}

# --dry-run: the crossing is logged and recorded as an Event, never evicted (a request with
# dryRun=All is no eviction); the agent's lines are JSON here
sc_dry_run() {
    new_pod dry cgfs Burstable node-dry
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 1 "$C_DIR" && hog_to 1 60 || { fail "the pod"; return; }
    _ev="$(jkey event)\"dry-run\"" _pod="$(jkey pod)\"$NS/dry\""
    # shellcheck disable=SC2016 # expanded by the inner sh
    until_ds "$WAIT_DS" sh -c 'grep -E "$1" "$3" | grep -Eq "$2"' - "$_ev" "$_pod" "$D" ||
        { fail "a JSON line with \"event\":\"dry-run\" and \"pod\":\"$NS/dry\"" dry; hog_stop 1; pod_gone dry "$P_ROOT/$P_DIR"; return; }
    until_ds "$WAIT_DS" has_events dry
    quiet
    _real=$(ctl evictions | grep -E "$(jkey name)\"dry\"" | grep -Ev "$(jkey dryRun)\\[[[:space:]]*\"All\"" | grep -c .)
    if [ "$_real" != 0 ]; then fail "no eviction request without dryRun=All" dry
    elif [ "$(events dry)" -lt 1 ]; then fail "an Event reason PreOOMEviction type Warning on the pod" dry
    elif grep -v '^{' "$D" | grep -q .; then fail "JSON lines only with --log-format json (got: $(grep -v '^{' "$D" | head -2 | tr '\n' '|'))"
    else pass; fi
    hog_stop 1; pod_gone dry "$P_ROOT/$P_DIR"
}

# kubemem's own annotations, without the label: kubemem.io/container picks app; the sidecar
# over the failure threshold does nothing, app over it evicts
sc_kubemem_annotations() {
    new_pod km-ann cgfs Burstable
    ctr app containerd "$LIMIT" && _app=$C_DIR && ctr sidecar containerd "$LIMIT" && _side=$C_DIR &&
        put '' '"kubemem.io/failure":"50%","kubemem.io/warning":"40","kubemem.io/container":"app"' || { fail "the pod"; return; }
    hog_start 1 "$_side" && hog_to 1 70 && hog_start 2 "$_app" || { fail "the hogs"; return; }
    watching "$A" km-ann app || { fail "a watching line for container app" km-ann; return; }
    quiet
    if [ "$(evictions km-ann)" != 0 ]; then fail "no eviction for the sidecar at 70% (kubemem.io/container: app)" km-ann
    elif has_line "$A" event=watching "pod=$NS/km-ann" container=sidecar; then fail "no watching line for the sidecar" km-ann
    elif ! hog_to 2 60; then fail "the hog in app to grow"
    elif ! until_ds "$WAIT_DS" evicted km-ann; then fail "an eviction when app crosses kubemem.io/failure 50%" km-ann
    elif ! has_line "$A" event=evict "pod=$NS/km-ann" container=app; then fail "the event=evict line naming container=app" km-ann
    else pass; fi
    hog_stop 1; hog_stop 2; pod_gone km-ann "$P_ROOT/$P_DIR"
}

# Guaranteed (cgroupfs: directly under kubepods), limits on pod and container, the failure
# threshold a quantity
sc_guaranteed() {
    new_pod guaranteed cgfs Guaranteed
    pod_limit "$LIMIT" && ctr app containerd "$LIMIT" && put '' '"kubemem.io/failure":"40Mi"' &&
        hog_start 1 "$C_DIR" || { fail "the pod"; return; }
    watching "$A" guaranteed app || { fail "a watching line" guaranteed; return; }
    hog_to 1 70 || { fail "the hog to grow to 70%"; return; }
    if until_ds "$WAIT_DS" evicted guaranteed; then pass; else fail "an eviction over 40Mi" guaranteed; fi
    hog_stop 1; pod_gone guaranteed "$P_ROOT/$P_DIR"
}

# no limit on the container, the pod cgroup's limit counts
sc_pod_limit() {
    new_pod pod-limit cgfs Burstable
    pod_limit "$LIMIT" && ctr app containerd - && put "$LABEL" "$(pok app 50)" && hog_start 1 "$C_DIR" || { fail "the pod"; return; }
    watching "$A" pod-limit app || { fail "a watching line" pod-limit; return; }
    hog_to 1 60 || { fail "the hog to grow to 60%"; return; }
    if ! has_line "$A" event=watching "pod=$NS/pod-limit" "limit=$LIMIT"; then fail "limit=$LIMIT (the pod cgroup's) on the watching line" pod-limit
    elif ! until_ds "$WAIT_DS" evicted pod-limit; then fail "an eviction at 60% of the pod's limit" pod-limit
    else pass; fi
    hog_stop 1; pod_gone pod-limit "$P_ROOT/$P_DIR"
}

# the systemd driver: a Burstable containerd pod and a Guaranteed one, both evicted
sc_systemd() {
    new_pod sd-burstable sd Burstable node-sd; _d1=$P_ROOT/$P_DIR
    ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 1 "$C_DIR" || { fail "pod sd-burstable"; return; }
    new_pod sd-guaranteed sd Guaranteed node-sd; _d2=$P_ROOT/$P_DIR
    pod_limit "$LIMIT" && ctr app containerd "$LIMIT" && put "$LABEL" "$(pok app 50)" && hog_start 2 "$C_DIR" || { fail "pod sd-guaranteed"; return; }
    both_cross "$S" sd-burstable "$_d1" sd-guaranteed "$_d2"
}

# CRI-O under systemd: crio-<id>.scope is the container, never crio-conmon-<id>.scope beside
# it, which here holds 70% of the same limit while the container holds 30%
sc_crio() {
    new_pod crio sd Burstable node-sd
    ctr app crio "$LIMIT" || { fail "the container cgroup"; return; }
    _conmon=${C_DIR%/*}/crio-conmon-$C_ID.scope
    mkcg "${_conmon%/*}" "${_conmon##*/}" "$LIMIT" && put "$LABEL" "$(pok app 50)" &&
        hog_start 1 "$_conmon" && hog_to 1 70 && hog_start 2 "$C_DIR" && hog_to 2 30 || { fail "the pod and its hogs"; return; }
    watching "$S" crio app || { fail "a watching line" crio; return; }
    quiet
    _path=$V_sd${C_DIR#"$R_sd"}
    if ! has_line "$S" event=watching "pod=$NS/crio" "path=$_path"; then fail "path=$_path on the watching line" crio
    elif [ "$(evictions crio)" != 0 ]; then fail "no eviction while only crio-conmon-<id>.scope is over the threshold" crio
    elif ! hog_to 2 60; then fail "the hog in crio-<id>.scope to grow"
    elif ! until_ds "$WAIT_DS" evicted crio; then fail "an eviction when crio-<id>.scope crosses" crio
    else pass; fi
    hog_stop 1; hog_stop 2; pod_gone crio "$P_ROOT/$P_DIR"
}

# value KEY LINE -> the value of KEY in a logfmt LINE (empty when it has none)
value() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

# kubemem.io/lead: a container leaking at 32 MiB/s into 224 MiB (full in 7 s), with
# kubemem.io/failure 99, is evicted by the lead, far below 99%: its evict line says eta= (at
# most the lead and 1.25 intervals of 100 ms: rounded down, 3.1) and lead=3s, and so does the
# Event.
# The leak stops at 200 MiB (89%), so without the lead nothing would evict it.
sc_lead() {
    new_pod leak-lead cgfs Burstable
    ctr app containerd "$((224 * MIB))" && put '' '"kubemem.io/failure":"99","kubemem.io/lead":"3s"' &&
        hog_start 1 "$C_DIR" || { fail "the pod"; return; }
    watching "$A" leak-lead app || { fail "a watching line" leak-lead; hog_stop 1; pod_gone leak-lead "$P_ROOT/$P_DIR"; return; }
    # no answer awaited: the hog answers when it has leaked all of it
    echo 'leak 32 200' >&3
    until_ds "$WAIT_DS" evicted leak-lead
    hog_stop 1
    _l=$(grep -E '(^| )event=evict( |$)' "$A" | grep -E "(^| )pod=$NS/leak-lead( |$)" | head -1)
    _eta=$(value eta "$_l") _pct=$(value percent "$_l")
    if ! evicted leak-lead; then fail "an eviction by the lead within $((WAIT_DS / 10)) s of the leak's start" leak-lead
    elif [ -z "$_l" ]; then fail "an event=evict line" leak-lead
    elif [ "$(value lead "$_l")" != 3s ]; then fail "lead=3s on the evict line (got: $_l)" leak-lead
    elif ! awk -v e="$_eta" 'BEGIN { exit !(e ~ /^[0-9]+\.[0-9]$/ && e + 0 <= 3.1) }'; then fail "eta=<seconds> at most 3.1 on the evict line (got: $_l)" leak-lead
    elif ! awk -v p="$_pct" 'BEGIN { exit !(p != "" && p + 0 < 99) }'; then fail "an eviction below the failure threshold 99% (got: $_l)" leak-lead
    elif ! ctl events | grep -E "$(jkey name)\"leak-lead\"" | grep -F " eta=$_eta " | grep -qF " lead=3s "; then fail "eta=$_eta and lead=3s in the Event's message" leak-lead
    else pass; fi
    pod_gone leak-lead "$P_ROOT/$P_DIR"
}

# the OOM killer kills a process of a watched container (a 96 MiB allocation in 64 MiB; a
# sleep lives on beside it): one event=oom-kill line with oom_kills=1 (the kernel's count
# was 0 when the agent began to watch). The threshold is out of reach: an eviction would
# delete the pod from the server, and the agent would forget it before the kill.
sc_oom_kill() {
    new_pod oom-kill cgfs Burstable
    ctr app containerd "$LIMIT" && put '' '"kubemem.io/failure":"1Gi"' && hog_start 1 "$C_DIR" || { fail "the pod"; return; }
    # shellcheck disable=SC2016 # expanded by the inner sh
    sh -c 'echo $$ >"$1/cgroup.procs" && exec sleep 600' - "$C_DIR" </dev/null >/dev/null 2>&1 &
    started $!
    watching "$A" oom-kill app || { fail "a watching line" oom-kill; hog_stop 1; pod_gone oom-kill "$P_ROOT/$P_DIR"; return; }
    echo 'anon 96' >&3
    if ! until_ds "$WAIT_DS" has_line "$A" event=oom-kill "pod=$NS/oom-kill" container=app oom_kills=1; then
        fail "an event=oom-kill line with oom_kills=1 (the cgroup's count: $(cat "$C_DIR/memory.oom_control" "$C_DIR/memory.events" 2>/dev/null | grep oom_kill | tr '\n' ' '))" oom-kill
    else
        quiet
        if [ "$(nlines "$A" event=oom-kill "pod=$NS/oom-kill")" != 1 ]; then fail "one event=oom-kill line for one kill" oom-kill
        else pass; fi
    fi
    hog_stop 1; pod_gone oom-kill "$P_ROOT/$P_DIR"
}

# the pod on node-b, over its threshold from the start: never evicted, never named by an
# agent; every GET of pods the server saw was a list or watch of one node's pods, and there
# was no loop of lists
sc_other_node() {
    _req=$WORK/requests.json
    ctl requests >"$_req" || { fail "ctl requests"; return; }
    _bad=$(grep -E "$(jkey method)\"GET\"" "$_req" | grep -E "$(jkey path)\"[^\"]*/pods[/\"]" |
        grep -Ev "$(jkey path)\"/api/v1/pods\""
        grep -E "$(jkey path)\"/api/v1/pods\"" "$_req" | grep -Ev "fieldSelector=spec\.nodeName(=|%3[dD])node-")
    if [ "$(evictions elsewhere)" != 0 ]; then fail "no eviction of the pod on node-b" elsewhere
    elif cat "$WORK"/agent-*.log | grep -q elsewhere; then fail "no agent line naming the pod on node-b (got: $(grep -h elsewhere "$WORK"/agent-*.log | head -2 | tr '\n' '|'))"
    elif [ -n "$_bad" ]; then fail "only lists and watches of /api/v1/pods with fieldSelector=spec.nodeName=<node> (got: $(echo "$_bad" | head -3 | tr '\n' '|'))"
    elif ! grep -Eq 'watch=(true|1)' "$_req"; then fail "a watch among the requests ($(head -3 "$_req" | tr '\n' '|'))"
    else
        # never a loop of lists: one list per agent, and one more after each ctl drop or
        # expire at most
        for _node in node-a node-dry node-sd; do
            _lists=$(grep -E "$(jkey path)\"/api/v1/pods\"" "$_req" | grep -E "nodeName(=|%3[dD])$_node([&\"]|\$)" |
                grep -Evc 'watch=(true|1)')
            [ "$_lists" -le 3 ] || { fail "at most 3 lists of the pods of $_node (the first, one after ctl drop, one after ctl expire), got $_lists"; return; }
        done
        pass
    fi
}

# ---- main --------------------------------------------------------------------------------

node_cleanup() {
    for _s in $HOG_SLOTS; do hog_stop "$_s"; done
    # shellcheck disable=SC2086 # a list of PIDs
    [ -z "$PIDS" ] || kill $PIDS 2>/dev/null
    for _p in $PIDS; do wait "$_p" 2>/dev/null; done
    PIDS=
    rm -f "$WORK/pids"
    umount -l "$V_sd" 2>/dev/null
    rmcg "$R_cgfs/kubepods"; rmcg "$R_sd"
}
# With NODE_SH_LIB=1 this file only defines its functions, for benches/node/run.sh (which sets
# WORK and R_cgfs first).
[ "${NODE_SH_LIB:-}" = 1 ] && return 0

trap node_cleanup EXIT
trap 'exit 130' INT TERM

R_cgfs=$BASE R_sd=$BASE/sd V_sd=$WORK/ro-sd
mkdir -p "$WORK" || exit 1
[ $# -gt 0 ] || set -- evict ignored no-limit pdb watch-drop watch-expire annotation-change two-pods \
    vanished dry-run kubemem-annotations guaranteed pod-limit systemd crio lead oom-kill other-node
SC=start
if mkcg "$BASE" sd - && sc_start; then
    for SC in "$@"; do
        case $SC in
            evict) sc_evict ;;
            ignored) sc_ignored ;;
            no-limit) sc_no_limit ;;
            pdb) sc_pdb ;;
            watch-drop) watch_end drop dropped-known dropped-new ;;
            watch-expire) watch_end expire expired-known expired-new ;;
            annotation-change) sc_annotation_change ;;
            two-pods) sc_two_pods ;;
            vanished) sc_vanished ;;
            dry-run) sc_dry_run ;;
            kubemem-annotations) sc_kubemem_annotations ;;
            guaranteed) sc_guaranteed ;;
            pod-limit) sc_pod_limit ;;
            systemd) sc_systemd ;;
            crio) sc_crio ;;
            lead) sc_lead ;;
            oom-kill) sc_oom_kill ;;
            other-node) sc_other_node ;;
            *) echo "FAIL $KM_ENV/node-$SC: expected a known scenario name"; FAILS=$((FAILS + 1)) ;;
        esac
    done
fi
node_cleanup
echo "DONE $KM_ENV"
[ "$FAILS" = 0 ]
