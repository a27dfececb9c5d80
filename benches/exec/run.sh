#!/usr/bin/env bash
# Exec-level benchmark: what one probe run costs as a process, against three C yardsticks,
# all in one run on one machine. Run on demand (not in CI: timings are not assertions):
#
#   benches/exec/run.sh              # 1000 timed runs each, in 5 rounds
#   RUNS=200 ROUNDS=2 benches/exec/run.sh     # quicker, noisier
#
# Programs (built here, see the .c files beside this script):
#   kubemem        the release binary from ./build.sh (static musl), healthy path,
#                  --warning 85 --failure 95
#   kubemem-glibc  the same built static with glibc (KUBEMEM_TARGET, in target/dist-glibc)
#   empty          int main(void){return 0;} with gcc -Os -static: the floor for anything on glibc
#   empty-musl     the same with musl-gcc -static (when musl-gcc is there): the floor on musl
#   floor          no libc, own _start, raw system calls reading the same three cgroup files
#   stdio          dynamically linked, fopen/fscanf of usage and limit: the original C kubemem's shape
#
# The cgroup: as root on a cgroup v1 host, a fresh child of the memory hierarchy with a 1 GiB
# limit, which this script joins so kubemem finds it as it would in a pod; anywhere else the
# fixture tree tests/fixtures/k8s-v2-cgroupns (a pod's view of cgroup v2 with a namespace),
# which CGROUP=fixture also selects.
#
# Measured per program: median wall time (hyperfine -N, pinned to one CPU when taskset is
# there) and its ratios, each the median over rounds; system calls after execve (strace -f); peak RSS
# of the program itself (VmHWM at its exit, tests/hwm.c; /usr/bin/time's %M would include
# the forked copy of time, about 450 KiB); page faults after exec (perf stat's software event, mean of 20 runs; "-" without a working
# perf); user space instructions (callgrind, under `env -i`: glibc start-up reads every
# environment variable, about 500 instructions each). The table goes to stdout and
# target/bench-exec/.
set -Eeuo pipefail
cd "$(dirname "$0")/../.."

runs=${RUNS:-1000}
out=target/bench-exec
mkdir -p "$out"

missing() {
    local t
    for t in hyperfine strace valgrind gcc; do command -v "$t" >/dev/null || printf '%s ' "$t"; done
}
need=$(missing)
if [ -n "$need" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # shellcheck disable=SC2086 # a list of package names
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need; } >/dev/null 2>&1 || true
    need=$(missing)
fi
if [ -n "$need" ]; then
    echo "exec bench: needs ${need% } (apt-get install ${need% })" >&2
    exit 2
fi

KUBEMEM_VARIANTS=default ./build.sh >/dev/null
KUBEMEM_TARGET=$(uname -m)-unknown-linux-gnu KUBEMEM_VARIANTS=default KUBEMEM_DIST=target/dist-glibc \
    ./build.sh >/dev/null
kubemem=target/dist/kubemem
kubemem_glibc=target/dist-glibc/kubemem
src=benches/exec
# shellcheck disable=SC2054 # commas inside -Wl, flags
floor_flags=(-Os -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector
    -fno-asynchronous-unwind-tables -fno-pie -no-pie -Wl,--gc-sections -Wl,--build-id=none)
gcc -Os -static "$src/empty.c" -o "$out/empty"
gcc "${floor_flags[@]}" "$src/floor.c" -o "$out/floor"
gcc -Os "$src/stdio.c" -o "$out/stdio"
strip -s "$out/empty" "$out/floor" "$out/stdio"
gcc -O2 tests/hwm.c -o "$out/hwm"
if command -v musl-gcc >/dev/null; then
    musl-gcc -Os -static "$src/empty.c" -o "$out/empty-musl"
    strip -s "$out/empty-musl"
fi

# Where the probe reads.
v1_mount=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' /proc/mounts)
if [ "${CGROUP:-real}" = real ] && [ "$(id -u)" = 0 ] && [ -n "$v1_mount" ] && [ -w "$v1_mount" ]; then
    dir=$v1_mount/kubemem-bench-$$
    mkdir "$dir"
    home=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
    cleanup() { echo $$ > "$v1_mount$home/cgroup.procs" 2>/dev/null || true; rmdir "$dir" 2>/dev/null || true; }
    trap cleanup EXIT
    echo $((1 << 30)) > "$dir/memory.limit_in_bytes"
    echo $$ > "$dir/cgroup.procs"
    where="a real cgroup v1 memory cgroup ($dir, limit 1 GiB)"
    version=v1
    root_args=()
else
    fixture=tests/fixtures/k8s-v2-cgroupns
    dir=$fixture/sys/fs/cgroup
    where="the fixture tree $fixture (page-cache files, not kernel-generated ones)"
    version=v2
    root_args=(--root "$fixture")
fi

names=(kubemem kubemem-glibc empty)
[ -x "$out/empty-musl" ] && names+=(empty-musl)
names+=(floor stdio)
declare -A cmd=(
    [kubemem]="$kubemem ${root_args[*]} --warning 85 --failure 95"
    [kubemem-glibc]="$kubemem_glibc ${root_args[*]} --warning 85 --failure 95"
    [empty]="$out/empty"
    [empty-musl]="$out/empty-musl"
    [floor]="$out/floor $version $dir"
    [stdio]="$out/stdio $dir 85 95"
)
# The commands in the order of names (hyperfine's results, and the table, follow it).
cmds=()
for n in "${names[@]}"; do
    cmds+=("${cmd[$n]}")
    # shellcheck disable=SC2086 # the commands are word lists
    ${cmd[$n]} || { echo "exec bench: $n exited $? (expected 0, the healthy path)" >&2; exit 1; }
done

pin=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
    pin=(taskset -c "$(($(nproc) - 1))")
fi
# Rounds of hyperfine over all of them, so that drift of a shared machine (seen here: one
# program 25% slower from one minute to the next) hits every program in every round; each
# ratio is the median of its per-round ratios.
rounds=${ROUNDS:-5}
for r in $(seq "$rounds"); do
    "${pin[@]}" hyperfine -N --style basic --warmup 50 --runs $(((runs + rounds - 1) / rounds)) \
        --export-json "$out/hyperfine-$r.json" "${cmds[@]}" >"$out/hyperfine.txt" 2>&1 ||
        { cat "$out/hyperfine.txt" >&2; exit 1; }
done
# shellcheck disable=SC2016 # python, not shell
stats='import json, statistics, sys
rounds, names, cmds = int(sys.argv[1]), sys.argv[2].split(), sys.argv[3:]
med = [{n: r["median"] for n, c in zip(names, cmds) for r in
        json.load(open(f"target/bench-exec/hyperfine-{i}.json"))["results"] if r["command"] == c}
       for i in range(1, rounds + 1)]
for n in names:
    m = lambda f: statistics.median(f(x) for x in med)
    print(n, f"{m(lambda x: x[n]) * 1e6:.0f}", *(f"{m(lambda x: x[n] / x[b]):.2f}"
          for b in ("empty", "stdio", "floor")))'
read_stats() { python3 -c "$stats" "$rounds" "${names[*]}" "${cmds[@]}"; }

declare -A median x_empty x_stdio x_floor syscalls rss faults instr
# perf's software page-fault event works in VMs that expose no hardware counters.
perf_works=false
perf stat -e page-faults true >/dev/null 2>&1 && perf_works=true
while read -r n m e st f; do
    median[$n]=$m x_empty[$n]=$e x_stdio[$n]=$st x_floor[$n]=$f
done < <(read_stats)
for n in "${names[@]}"; do
    c=${cmd[$n]}
    # shellcheck disable=SC2086
    strace -f -qq -o "$out/$n.strace" $c
    # One line per call; the first is the execve that starts the program.
    syscalls[$n]=$(($(wc -l <"$out/$n.strace") - 1))
    # shellcheck disable=SC2086
    rss[$n]=$("$out/hwm" $c)
    faults[$n]=-
    if $perf_works; then
        # shellcheck disable=SC2086
        faults[$n]=$(perf stat -x, -r 20 -e page-faults $c 2>&1 >/dev/null | cut -d, -f1)
    fi
    # shellcheck disable=SC2086
    instr[$n]=$(env -i "$(command -v valgrind)" --tool=callgrind --callgrind-out-file=/dev/null $c 2>&1 |
        sed -n 's/.*Collected : *//p')
done

{
    echo "Exec benchmark: $(uname -r), $(nproc) CPUs, $rounds rounds, $runs runs each; cgroup: $where."
    echo
    echo "| program | median µs | × empty | × stdio | × floor | syscalls | page faults | peak RSS KiB | instructions |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    for n in "${names[@]}"; do
        echo "| $n | ${median[$n]} | ${x_empty[$n]} | ${x_stdio[$n]} | ${x_floor[$n]} | ${syscalls[$n]} | ${faults[$n]} | ${rss[$n]} | ${instr[$n]} |"
    done
} | tee "$out/table.md"
