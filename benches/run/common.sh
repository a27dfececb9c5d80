# shellcheck shell=bash
# Shared by reaction.sh and idle.sh (bash; sourced): the builds, a fresh cgroup v1 memory
# cgroup on this machine, and the cgroup v2 VM of the real-kernel suite (tests/real/lib.sh),
# whose downloads (target/real-cache/) it shares.
set -Euo pipefail
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
TOP=$PWD
BENCH=$TOP/benches/run
OUT=$TOP/target/bench-run
CACHE=$TOP/target/real-cache
# shellcheck source=tests/real/lib.sh disable=SC1091
. "$TOP/tests/real/lib.sh"
LIMIT_MIB=64
# The known rate: 256 KiB every 10 ms, 25 MiB/s.
STEP_KIB=256
STEP_MS=10
mkdir -p "$OUT" "$CACHE"

trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "${0##*/}: $*" >&2
    exit 2
}

# build: the release kubemem and the static allocator; sets KM and GROW
build() {
    [ "$(id -u)" = 0 ] || die "needs root (it creates cgroups and boots the VM)"
    ensure_packages gcc libc6-dev binutils || die "needs $ERR"
    ./build.sh >/dev/null || die "./build.sh failed"
    KM=$TOP/target/dist/kubemem
    GROW=$OUT/grow
    gcc -O2 -Wall -static -o "$GROW" "$BENCH/grow.c" || die "grow.c did not build"
}

# v1_cgroup: a fresh child of this process's own cgroup v1 memory cgroup (never elsewhere in
# the hierarchy) with a LIMIT_MIB limit, removed on exit (also on failure); sets CG, or says
# why not and returns 1
v1_cgroup() {
    local mount own
    mount=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' /proc/mounts)
    own=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}:\(.*\)$/\3/p' /proc/self/cgroup)
    own=${own%/}
    if [ -z "$mount" ] || [ ! -w "$mount$own" ]; then
        echo "${0##*/}: no writable cgroup v1 memory cgroup of our own here; skipping v1" >&2
        return 1
    fi
    CG=$mount$own/kubemem-bench-run-$$
    CLEANUPS+=("kill_cgroup '$CG'")
    mkdir "$CG" || die "cannot create $CG"
    echo $((LIMIT_MIB << 20)) >"$CG/memory.limit_in_bytes"
    echo 0 >"$CG/memory.swappiness" 2>/dev/null || true
}

# in_vm NAME TIMEOUT: boots the cgroup v2 VM whose /init (vm-init.sh) runs `sh measure.sh
# LINE` for each line on standard input, in a cgroup with a LIMIT_MIB limit; the console
# goes to $OUT/NAME.console
in_vm() {
    local root=$OUT/vm/initrd
    vm_prereqs || die "the VM needs $ERR"
    CLEANUPS+=("rm -rf '$OUT/vm'")
    vm_root "$root" || die "the VM needs $ERR"
    cp "$KM" "$root/kubemem"
    cp "$GROW" "$root/grow"
    cp "$BRD_KO" "$root/brd.ko"
    cp "$BENCH/measure.sh" "$root/measure.sh"
    cp "$BENCH/vm-init.sh" "$root/init" && chmod +x "$root/init"
    printf 'LIMIT_MIB=%s\nSTEP_KIB=%s\nSTEP_MS=%s\n' "$LIMIT_MIB" "$STEP_KIB" "$STEP_MS" >"$root/bench.conf"
    cat >"$root/bench.args"
    (cd "$root" && find . | cpio -o -H newc --quiet) >"$OUT/vm/initrd.cpio" || die "cpio failed"
    vm_qemu "$OUT/vm/initrd.cpio"
    echo "booting the VM (qemu TCG) for $1" >&2
    timeout "$2" "${VM_QEMU[@]}" </dev/null 2>&1 | tr -d '\r' >"$OUT/$1.console"
    grep -q '^BENCH done' "$OUT/$1.console" ||
        { tail -20 "$OUT/$1.console" >&2; die "the VM did not finish (console in $OUT/$1.console)"; }
}
