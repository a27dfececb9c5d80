#!/bin/bash
# Real-kernel tests for kubemem: tests/real/run.sh [v1|runc|vm|all]   (default: all)
#
#   v1    cgroup v1 on this machine: a child of our own memory cgroup with a 64 MiB limit
#   runc  real containers (Debian package runc) on this machine's cgroup v1 hierarchy:
#         without and with a cgroup namespace, and without a limit below a limited parent
#   vm    cgroup v2 in a qemu VM (TCG) booting the Debian kernel with a busybox initramfs
#
# v1 and vm also run the node agent's scenarios (node.sh: kubemem-node against the test API
# server, tests/apiserver, over cgroup trees laid out as the kubelet lays them out): on v1
# below a cgroup of our own with KUBECONFIG, in the VM below the v2 root with the in-cluster
# configuration over TLS.  They need ${KUBEMEM_NODE_BIN:-target/dist/kubemem-node} (built with
# `KUBEMEM_VARIANTS=node ./build.sh` when the default is missing) and
# ${KUBEMEM_APISERVER_BIN:-target/<arch>-unknown-linux-musl/release/examples/apiserver} (built
# with tests/apiserver/build.sh when the default is missing), both static; without them the
# node scenarios are skipped (v1-node, vm-node), or fail with CI=true.
#
# v1 and vm also run the --lead scenarios (lead.sh: leaks, a flat and a sawtooth workload
# (tests/real/leak.c) in cgroups of 256 MiB under kubemem run --lead and the probe with
# --state, and a child killed by the OOM killer); they take about a minute, their cases
# running side by side.
#
# (The Dockerfile's images are built and run by a real Docker engine in tests/image.sh.)
#
# Needs root.  Installs what it needs with apt-get (Debian bookworm) and never removes a
# package; qemu and the kernel are only downloaded and unpacked, not installed (qemu's shared
# libraries are installed), so an installed qemu of another release does not get in the way.
# Downloads are cached under target/real-cache/.  Uses ${KUBEMEM_BIN:-target/dist/kubemem}
# (runs ./build.sh when the default binary is missing).  Without root, or when a prerequisite
# cannot be had, an environment is skipped with the reason -- unless CI=true, where that is a
# failure.
#
# Prints `PASS env/scenario` or `FAIL env/scenario: ...` per scenario and ends with
# `N passed, M failed`; exits non-zero on any failure.
set -u
export LC_ALL=C

case ${KUBEMEM_BIN:-} in '' | /*) ;; *) KUBEMEM_BIN=$PWD/$KUBEMEM_BIN ;; esac
case ${KUBEMEM_NODE_BIN:-} in '' | /*) ;; *) KUBEMEM_NODE_BIN=$PWD/$KUBEMEM_NODE_BIN ;; esac
case ${KUBEMEM_APISERVER_BIN:-} in '' | /*) ;; *) KUBEMEM_APISERVER_BIN=$PWD/$KUBEMEM_APISERVER_BIN ;; esac
cd "$(dirname "$0")/../.." || exit 2
TOP=$PWD
HERE=$TOP/tests/real
CACHE=$TOP/target/real-cache
WORK=$TOP/target/real
MIB=1048576
LIMIT=$((64 * MIB))        # the cgroup the scenarios run in
ANC_LIMIT=$((48 * MIB))    # a limited parent above an unlimited child
NS_LIMIT=$((40 * MIB))     # the root of a cgroup namespace (VM ancestor case)
CACHE_MIB=52               # page-cache file: about 80% of LIMIT
STARTED=$(date +%s.%N)

case ${1:-all} in
    v1 | runc | vm) ENVS=$1 ;;
    all) ENVS="v1 runc vm" ;;
    *) echo "usage: $0 [v1|runc|vm|all]" >&2; exit 2 ;;
esac

RESULTS=$(mktemp) || exit 2

# ---- reporting ---------------------------------------------------------------------------

# record ENV [RUNS]: pass result lines through and remember them; a run of scenarios.sh that
# did not reach its DONE line (crash, timeout, guest panic) is a failure of its own
record() {
    local env=$1 runs=${2:-1} line done=0
    while IFS= read -r line; do
        line=${line%$'\r'}
        case $line in
            PASS\ * | FAIL\ *) echo "$line"; echo "$line" >>"$RESULTS" ;;
            DONE\ *) done=$((done + 1)) ;;
            *GUEST\ *) echo "  vm: ${line#*GUEST }" ;;
            *) [ -n "${VERBOSE:-}" ] && echo "  | $line" ;;
        esac
    done
    if [ "$done" -lt "$runs" ]; then
        echo "FAIL $env/complete: expected $runs scenario run(s) to finish, $done did (VERBOSE=1 shows all output)" | tee -a "$RESULTS"
    fi
}

# unavailable ENV REASON: skip (developer) or fail (CI=true)
unavailable() {
    if [ "${CI:-}" = true ]; then
        echo "FAIL $1/prerequisites: expected $2 (with CI=true a missing prerequisite fails)" | tee -a "$RESULTS"
    else
        echo "SKIP $1: needs $2"
    fi
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- prerequisites -------------------------------------------------------------------------

# ensure_packages, is_static, kill_cgroup, v1_memory, vm_prereqs, vm_root, vm_qemu
# shellcheck source=tests/real/lib.sh
. "$HERE/lib.sh"

KM=${KUBEMEM_BIN:-$TOP/target/dist/kubemem}
HOG=$WORK/hog/x86_64-unknown-linux-gnu/release/hog
CGNS=$WORK/cgns
LEAK=$WORK/leak

# common: root, kubemem, hog.  Sets COMMON_ERR when the suite cannot run at all.
common_prereqs() {
    COMMON_ERR=
    if [ "$(id -u)" != 0 ]; then COMMON_ERR="root (it creates cgroups, runs runc and installs packages)"; return; fi
    mkdir -p "$WORK" "$CACHE" || { COMMON_ERR="a writable $WORK"; return; }
    ensure_packages gcc libc6-dev binutils || { COMMON_ERR=$ERR; return; }
    if [ ! -x "$KM" ] && [ -z "${KUBEMEM_BIN:-}" ]; then
        echo "building kubemem with ./build.sh" >&2
        KUBEMEM_VARIANTS=default ./build.sh >&2 || { COMMON_ERR="a kubemem binary, but ./build.sh failed"; return; }
    fi
    [ -x "$KM" ] || { COMMON_ERR="a kubemem binary at $KM"; return; }
    is_static "$KM" || { COMMON_ERR="$KM to be statically linked (it runs in a scratch container and an initramfs)"; return; }
    command -v cargo >/dev/null || { COMMON_ERR="cargo to build the hog"; return; }
    RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release --target x86_64-unknown-linux-gnu \
        --manifest-path "$TOP/tests/hog/Cargo.toml" --target-dir "$WORK/hog" >&2 ||
        { COMMON_ERR="the hog (tests/hog), but it did not build"; return; }
    is_static "$HOG" || { COMMON_ERR="a static hog"; return; }
    gcc -O2 -static -o "$LEAK" "$HERE/leak.c" || { COMMON_ERR="leak.c to build with gcc -static"; return; }
}

NODE=${KUBEMEM_NODE_BIN:-$TOP/target/dist/kubemem-node}
APISERVER=${KUBEMEM_APISERVER_BIN:-$TOP/target/$(uname -m)-unknown-linux-musl/release/examples/apiserver}

# the node scenarios: kubemem-node and the test API server, static (they run in the
# initramfs too).  Sets NODE_ERR when they cannot run.
node_prereqs() {
    NODE_ERR=
    if [ ! -x "$NODE" ] && [ -z "${KUBEMEM_NODE_BIN:-}" ]; then
        echo "building kubemem-node with KUBEMEM_VARIANTS=node ./build.sh" >&2
        KUBEMEM_VARIANTS=node ./build.sh >&2 || { NODE_ERR="kubemem-node, but KUBEMEM_VARIANTS=node ./build.sh failed"; return; }
    fi
    [ -x "$NODE" ] || { NODE_ERR="a kubemem-node binary at $NODE"; return; }
    is_static "$NODE" || { NODE_ERR="$NODE to be statically linked"; return; }
    if [ ! -x "$APISERVER" ] && [ -z "${KUBEMEM_APISERVER_BIN:-}" ] && [ -f tests/apiserver/build.sh ]; then
        echo "building the test API server with tests/apiserver/build.sh" >&2
        sh tests/apiserver/build.sh >&2 || { NODE_ERR="the test API server, but tests/apiserver/build.sh failed"; return; }
    fi
    [ -x "$APISERVER" ] || { NODE_ERR="the test API server at $APISERVER (tests/apiserver/build.sh)"; return; }
    is_static "$APISERVER" || { NODE_ERR="$APISERVER to be statically linked"; return; }
}

# ---- cleanup (CLEANUPS and cleanup: lib.sh) ---------------------------------------------

trap 'cleanup; rm -f "$RESULTS"' EXIT
trap 'exit 130' INT TERM

# background OUTFILE COMMAND...: run COMMAND with its output to OUTFILE and wait for it in a
# way that a signal interrupts (the EXIT trap then cleans up at once; it kills COMMAND too)
background() {
    local out=$1
    shift
    "$@" </dev/null >"$out" 2>&1 &
    local pid=$!
    CLEANUPS+=("kill $pid")
    wait "$pid"
}

# make_cache_file PATH: CACHE_MIB MiB written to disk, so that it is not dirty when read
make_cache_file() {
    dd if=/dev/zero of="$1" bs=$MIB count=$CACHE_MIB conv=fsync status=none
}

# ---- environment: cgroup v1 on this machine ------------------------------------------------

env_v1() {
    if ! v1_memory; then
        unavailable v1 "a cgroup v1 memory controller (a memory line in /proc/self/cgroup and its cgroup mount)"
        return
    fi
    local cg=${V1_MP%/}${V1_OWN%/}/kubemem-real.$$ fstype
    local cache=/var/tmp/kubemem-real.$$.cache tmp=/dev/shm/kubemem-real.$$
    fstype=$(stat -f -c %T /var/tmp)
    if [ "$fstype" = tmpfs ]; then unavailable v1 "/var/tmp on a disk filesystem (it is tmpfs)"; return; fi
    if [ "$(stat -f -c %T /dev/shm)" != tmpfs ]; then unavailable v1 "/dev/shm on tmpfs"; return; fi
    CLEANUPS+=("kill_cgroup '$cg'; rm -rf '$cache' '$tmp' '$WORK/v1'")
    mkdir "$cg" "$tmp" "$WORK/v1" || { unavailable v1 "a child cgroup $cg (mkdir failed)"; return; }
    echo "$LIMIT" >"$cg/memory.limit_in_bytes"
    echo 0 >"$cg/memory.swappiness" 2>/dev/null
    make_cache_file "$cache"
    echo "v1: cgroup $cg" >&2
    # a shell moves itself into the cgroup; the hog and kubemem are started from it
    KM_ENV=v1 KM=$KM HOG=$HOG CGV=v1 WORK=$WORK/v1 CG=$cg LIMIT=$LIMIT \
        CACHE_FILE=$cache TMPFS_DIR=$tmp ANC_CHILD=$cg/kmchild ANC_DIR=$cg ANC_LIMIT=$LIMIT OUTSIDE=${cg%/*} \
        RUN="run run-wakeup run-reclaim" \
        background "$WORK/v1.out" timeout 300 bash -c 'echo $$ >"$CG/cgroup.procs" && exec bash "$1"' - "$HERE/scenarios.sh"
    record v1 <"$WORK/v1.out"
    cleanup
    env_v1_lead
    env_v1_node
}

# the --lead scenarios on v1: below a cgroup of our own without a limit, kubemem-lead.PID
# (lead.sh makes its limited cgroups in it); lead.sh runs outside it, its state files on
# /dev/shm
env_v1_lead() {
    local base=${V1_MP%/}${V1_OWN%/}/kubemem-lead.$$ work=$WORK/v1-lead tmp=/dev/shm/kubemem-lead.$$
    # lead.sh kills what it started by PID and removes its PID list; a list left behind
    # (lead.sh killed outright) is killed here
    CLEANUPS+=("kill_cgroup '$base'; [ -f '$work/pids' ] && kill -9 \$(cat '$work/pids'); rm -rf '$tmp'")
    rm -rf "$work"
    mkdir "$base" "$tmp" || { unavailable v1-lead "a child cgroup $base and $tmp (mkdir failed)"; return; }
    echo "v1: --lead scenarios in $base" >&2
    local t0 out=$WORK/v1-lead.out
    t0=$(date +%s.%N)
    KM_ENV=v1 KM=$KM LEAK=$LEAK CGV=v1 WORK=$work TMPFS_DIR=$tmp BASE=$base \
        background "$out" timeout 200 bash "$HERE/lead.sh"
    record v1 <"$out"
    echo "v1: --lead scenarios $(elapsed "$t0") s"
    cleanup
}

# the node agent's scenarios on v1: below a cgroup of our own, kubemem-node.PID, which is
# their --cgroup-root (the kubelet's trees are made in it); node.sh runs outside it
env_v1_node() {
    if [ -n "$NODE_ERR" ]; then unavailable v1-node "$NODE_ERR"; return; fi
    local base=${V1_MP%/}${V1_OWN%/}/kubemem-node.$$ work=$WORK/v1-node
    # node.sh kills what it started by PID and removes its PID list; a list left behind
    # (node.sh killed outright) is killed here
    CLEANUPS+=("kill_cgroup '$base'; [ -f '$work/pids' ] && kill -9 \$(cat '$work/pids')")
    CLEANUPS+=("umount -l '$work/ro-sd'")
    umount -l "$work/ro-sd" 2>/dev/null
    rm -rf "$work"
    mkdir "$base" || { unavailable v1-node "a child cgroup $base (mkdir failed)"; return; }
    echo "v1: node scenarios in $base" >&2
    local t0 out=$WORK/v1-node.out
    t0=$(date +%s.%N)
    KM_ENV=v1 NODE_BIN=$NODE API=$APISERVER HOG=$HOG CGV=v1 WORK=$work BASE=$base ROOT_ARG=$base \
        background "$out" timeout 300 bash "$HERE/node.sh"
    record v1 <"$out"
    echo "v1: node scenarios $(elapsed "$t0") s"
    cleanup
}

# ---- environment: runc -------------------------------------------------------------------

# oci_config CGROUPS_PATH LIMIT|- CGNS(0|1) SCENARIOS ENV-ASSIGNMENTS... > config.json
oci_config() {
    local cgpath=$1 limit=$2 cgns=$3 e envs="" res="" ns="" args='"/bin/sh", "/scenarios.sh"'
    for e in $4; do args="$args, \"$e\""; done
    shift 4
    for e in PATH=/bin "$@"; do envs="$envs\"$e\", "; done
    [ "$limit" != - ] && res="\"memory\": { \"limit\": $limit, \"swap\": $limit },"
    [ "$cgns" = 1 ] && ns='{ "type": "cgroup" },'
    cat <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": [ $args ],
    "env": [ ${envs%, } ],
    "cwd": "/",
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "kubemem-real",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=131072k" ] },
    { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "nodev", "mode=1777", "size=16384k" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [ "nosuid", "noexec", "nodev", "ro" ] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": [ "nosuid", "noexec", "nodev", "relatime", "rw" ] }
  ],
  "linux": {
    "cgroupsPath": "$cgpath",
    "resources": { $res "devices": [ { "allow": false, "access": "rwm" } ] },
    "namespaces": [ $ns { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ],
    "maskedPaths": [ "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware" ],
    "readonlyPaths": [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ]
  }
}
EOF
}

# run_container NAME CGROUPS_PATH LIMIT|- CGNS SCENARIOS ENV-ASSIGNMENTS...
run_container() {
    local name=$1 cgpath=$2 limit=$3 cgns=$4 scenarios=$5 id=kubemem-real-$$-$1
    shift 5
    oci_config "$cgpath" "$limit" "$cgns" "$scenarios" KM_ENV="$name" KM=/kubemem HOG=/hog CGV=v1 \
        WORK=/tmp CACHE_FILE=/cache TMPFS_DIR=/dev/shm "$@" >"$BUNDLE/config.json"
    CLEANUPS+=("runc --root '$WORK/runc-state' delete -f $id")
    background "$WORK/$name.out" timeout 300 runc --root "$WORK/runc-state" run --bundle "$BUNDLE" "$id"
    record "$name" <"$WORK/$name.out"
    runc --root "$WORK/runc-state" delete -f "$id" >/dev/null 2>&1
}

env_runc() {
    ensure_packages runc busybox-static || { unavailable runc "$ERR"; return; }
    if ! v1_memory; then unavailable runc "a cgroup v1 memory controller on this machine"; return; fi
    BUNDLE=$WORK/runc
    rm -rf "$BUNDLE"
    CLEANUPS+=("rm -rf '$BUNDLE'")
    # rootfs: the static kubemem and hog, the scenario script, a page-cache file, and a static
    # busybox for the scenario shell
    mkdir -p "$BUNDLE/rootfs/bin" || { unavailable runc "a bundle directory"; return; }
    cp "$KM" "$BUNDLE/rootfs/kubemem"
    cp "$HOG" "$BUNDLE/rootfs/hog"
    cp "$HERE/scenarios.sh" "$BUNDLE/rootfs/scenarios.sh"
    cp /bin/busybox "$BUNDLE/rootfs/bin/busybox"
    is_static "$BUNDLE/rootfs/bin/busybox" || { unavailable runc "a static busybox (busybox-static)"; return; }
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$BUNDLE/rootfs/bin/$a"; done
    make_cache_file "$BUNDLE/rootfs/cache"
    # What runc 1.1 does on a hybrid v1 host (checked in the container's own files): every v1
    # hierarchy gets a `cgroup` mount below a tmpfs at /sys/fs/cgroup; the unified (cgroup2)
    # hierarchy is not mounted although /proc/self/cgroup still has a `0::/...` line.  Without
    # a cgroup namespace each mount is a bind of the container's directory (mountinfo root =
    # the full host path, the same path as in /proc/self/cgroup); with one, both show "/".
    # A relative cgroupsPath is created below runc's own cgroup in each hierarchy.
    local m=/sys/fs/cgroup/memory own=${V1_OWN%/}
    # 1. the usual v1 container (containerd and Docker on v1 use no cgroup namespace): runc
    #    bind-mounts the container's own cgroup directory, mountinfo root = its cgroup path
    run_container runc kubemem-real-$$ "$LIMIT" 0 \
        "below verbose warning failure pagecache pagecache-total tmpfs ancestor" \
        CG=$m LIMIT=$LIMIT ANC_CHILD=$m/kmchild ANC_DIR=$m ANC_LIMIT=$LIMIT
    # 2. with a cgroup namespace: the container sees its cgroup as "/"
    run_container runc-cgns kubemem-real-cgns-$$ "$LIMIT" 1 \
        "below verbose warning failure pagecache pagecache-total tmpfs ancestor" \
        CG=$m LIMIT=$LIMIT ANC_CHILD=$m/kmchild ANC_DIR=$m ANC_LIMIT=$LIMIT
    # 3. a container without a limit in a limited "pod" cgroup: the parent is not visible in
    #    the container, only hierarchical_memory_limit tells
    local pod=$V1_MP$own/kubemem-real-pod.$$
    CLEANUPS+=("kill_cgroup '$pod'")
    mkdir "$pod" && echo "$LIMIT" >"$pod/memory.limit_in_bytes"
    run_container runc-pod kubemem-real-pod.$$/ctr - 0 \
        "below verbose warning failure pagecache pagecache-total tmpfs" \
        CG=$m LIMIT=$LIMIT SOURCE=ancestor
    cleanup
    # runc creates the relative cgroupsPath below its own cgroup in every hierarchy
    find /sys/fs/cgroup -depth -type d \( -name "kubemem-real-$$" -o -name "kubemem-real-cgns-$$" \
        -o -name "kubemem-real-pod.$$" -o -path "*/kubemem-real-pod.$$/*" \) -exec rmdir {} \; 2>/dev/null
}

# ---- environment: cgroup v2 in a VM --------------------------------------------------------

# guest_secs NAME: seconds between the VM's `GUEST NAME start at uptime` and `... done` lines
guest_secs() {
    tr -d '\r' <"$WORK/vm.console" | awk -v n="$1" '
        $0 ~ "GUEST " n " start at uptime" { a = $(NF - 1) } $0 ~ "GUEST " n " done at uptime" { b = $(NF - 1) }
        END { printf "%.1f", (a != "" && b != "") ? b - a : 0 }'
}

env_vm() {
    vm_prereqs || { unavailable vm "$ERR"; return; }
    gcc -static -O2 -o "$CGNS" "$HERE/cgns.c" || { unavailable vm "cgns.c to build with gcc -static"; return; }
    local root=$WORK/vm/initrd
    rm -rf "$WORK/vm"
    CLEANUPS+=("rm -rf '$WORK/vm'")
    vm_root "$root" || { unavailable vm "$ERR"; return; }
    cp "$KM" "$root/kubemem"; cp "$HOG" "$root/hog"; cp "$CGNS" "$root/cgns"; cp "$BRD_KO" "$root/brd.ko"
    cp "$LEAK" "$root/leak"; cp "$HERE/lead.sh" "$root/lead.sh"
    cp "$HERE/scenarios.sh" "$root/scenarios.sh"
    cp "$HERE/vm-init.sh" "$root/init" && chmod +x "$root/init"
    printf 'LIMIT=%s\nANC_LIMIT=%s\nNS_LIMIT=%s\nCACHE_MIB=%s\n' "$LIMIT" "$ANC_LIMIT" "$NS_LIMIT" "$CACHE_MIB" >"$root/vm.conf"
    # the node scenarios (node.sh) when their binaries are there: the init runs them when it
    # finds /node.sh
    local runs=6
    if [ -n "$NODE_ERR" ]; then
        unavailable vm-node "$NODE_ERR"
    else
        cp "$NODE" "$root/kubemem-node"; cp "$APISERVER" "$root/apiserver"; cp "$HERE/node.sh" "$root/node.sh"
        runs=7
    fi
    (cd "$root" && find . | cpio -o -H newc --quiet) >"$WORK/vm/initrd.cpio" || { unavailable vm "cpio to build the initramfs"; return; }
    local t0 secs
    t0=$(date +%s.%N)
    # the --lead scenarios hold about 1 GiB at once (four cgroups of 256 MiB)
    VM_MEM=1536M vm_qemu "$WORK/vm/initrd.cpio"
    # 120 s for the kubemem scenarios, 100 more for the --lead scenarios, 240 more for the
    # node scenarios
    background "$WORK/vm.console" timeout 460 "${VM_QEMU[@]}"
    secs=$(elapsed "$t0")
    record vm "$runs" <"$WORK/vm.console"
    grep -q '^GUEST done' <(tr -d '\r' <"$WORK/vm.console") ||
        { echo "vm console (last lines):"; tail -20 "$WORK/vm.console"; } >&2
    # the node and --lead scenarios' own time (guest uptime at their start and end) is not
    # the probe's
    local node_secs lead_secs
    node_secs=$(guest_secs node)
    lead_secs=$(guest_secs lead)
    echo "vm: boot to poweroff $secs s (qemu TCG), of which the node scenarios $node_secs s, the --lead scenarios $lead_secs s"
    secs=$(awk -v s="$secs" -v n="$node_secs" -v l="$lead_secs" 'BEGIN { printf "%.1f", s - n - l }')
    if awk -v s="$secs" 'BEGIN { exit !(s >= 60) }'; then
        echo "FAIL vm/time: expected boot, all kubemem scenarios and poweroff in under 60 s, it took $secs s (without the node and --lead scenarios)" | tee -a "$RESULTS"
    fi
}

# ---- main --------------------------------------------------------------------------------

common_prereqs
[ -n "$COMMON_ERR" ] || node_prereqs
for e in $ENVS; do
    if [ -n "$COMMON_ERR" ]; then unavailable "$e" "$COMMON_ERR"; continue; fi
    "env_$e"
done
cleanup
P=$(grep -c '^PASS ' "$RESULTS")
F=$(grep -c '^FAIL ' "$RESULTS")
echo "suite: $(elapsed "$STARTED") s"
echo "$P passed, $F failed"
[ "$F" = 0 ]
