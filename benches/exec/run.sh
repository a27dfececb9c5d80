#!/usr/bin/env bash
# Exec-level benchmark: what one probe run costs as a process, against three C yardsticks,
# all in one run on one machine. Run on demand (not in CI: timings are not assertions):
#
#   benches/exec/run.sh              # 1000 timed runs each
#   RUNS=200 benches/exec/run.sh     # quicker, noisier
#
# Programs (built here, see the .c files beside this script):
#   kubemem  the release binary from ./build.sh, healthy path, --warning 85 --failure 95
#   empty    int main(void){return 0;} with gcc -Os -static: the floor for anything on glibc
#   floor    no libc, own _start, raw system calls reading the same three cgroup files
#   stdio    dynamically linked, fopen/fscanf of usage and limit: the original C kubemem's shape
#
# The cgroup: as root on a cgroup v1 host, a fresh child of the memory hierarchy with a 1 GiB
# limit, which this script joins so kubemem finds it as it would in a pod; anywhere else the
# fixture tree tests/fixtures/k8s-v2-cgroupns (a pod's view of cgroup v2 with a namespace).
#
# Measured per program: median wall time (hyperfine -N, pinned to one CPU when taskset is
# there) and its ratios; system calls after execve (strace -f); peak RSS (/usr/bin/time
# %M, which includes the forked child before exec, so nothing reads below ~450 KiB); user
# space instructions (callgrind, under `env -i`: glibc start-up reads every environment
# variable, about 500 instructions each). The table goes to stdout and target/bench-exec/.
set -Eeuo pipefail
cd "$(dirname "$0")/../.."

runs=${RUNS:-1000}
out=target/bench-exec
mkdir -p "$out"

missing() {
    local t
    for t in hyperfine strace valgrind gcc; do command -v "$t" >/dev/null || printf '%s ' "$t"; done
    [ -x /usr/bin/time ] || printf 'time '
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

./build.sh >/dev/null
kubemem=target/dist/kubemem
src=benches/exec
# shellcheck disable=SC2054 # commas inside -Wl, flags
floor_flags=(-Os -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector
    -fno-asynchronous-unwind-tables -fno-pie -no-pie -Wl,--gc-sections -Wl,--build-id=none)
gcc -Os -static "$src/empty.c" -o "$out/empty"
gcc "${floor_flags[@]}" "$src/floor.c" -o "$out/floor"
gcc -Os "$src/stdio.c" -o "$out/stdio"
strip -s "$out/empty" "$out/floor" "$out/stdio"

# Where the probe reads.
v1_mount=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' /proc/mounts)
if [ "$(id -u)" = 0 ] && [ -n "$v1_mount" ] && [ -w "$v1_mount" ]; then
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

names=(kubemem empty floor stdio)
declare -A cmd=(
    [kubemem]="$kubemem ${root_args[*]} --warning 85 --failure 95"
    [empty]="$out/empty"
    [floor]="$out/floor $version $dir"
    [stdio]="$out/stdio $dir 85 95"
)
for n in "${names[@]}"; do
    # shellcheck disable=SC2086 # the commands are word lists
    ${cmd[$n]} || { echo "exec bench: $n exited $? (expected 0, the healthy path)" >&2; exit 1; }
done

pin=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
    pin=(taskset -c "$(($(nproc) - 1))")
fi
"${pin[@]}" hyperfine -N --style basic --warmup 100 --runs "$runs" \
    --export-json "$out/hyperfine.json" "${cmd[@]/#/}" >"$out/hyperfine.txt" 2>&1 ||
    { cat "$out/hyperfine.txt" >&2; exit 1; }

declare -A median syscalls rss instr
for n in "${names[@]}"; do
    c=${cmd[$n]}
    median[$n]=$(python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    if r["command"] == sys.argv[2]: print(r["median"] * 1e6)' "$out/hyperfine.json" "$c")
    # shellcheck disable=SC2086
    strace -f -qq -o "$out/$n.strace" $c
    # One line per call; the first is the execve that starts the program.
    syscalls[$n]=$(($(wc -l <"$out/$n.strace") - 1))
    # shellcheck disable=SC2086
    rss[$n]=$( { /usr/bin/time -f %M $c >/dev/null; } 2>&1 | tail -n 1)
    # shellcheck disable=SC2086
    instr[$n]=$(env -i "$(command -v valgrind)" --tool=callgrind --callgrind-out-file=/dev/null $c 2>&1 |
        sed -n 's/.*Collected : *//p')
done

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
{
    echo "Exec benchmark: $(uname -r), $(nproc) CPUs, $runs runs each; cgroup: $where."
    echo
    echo "| program | median µs | × empty | × stdio | × floor | syscalls | peak RSS KiB | instructions |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|"
    for n in "${names[@]}"; do
        printf '| %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$n" "${median[$n]}" \
            "$(ratio "${median[$n]}" "${median[empty]}")" "$(ratio "${median[$n]}" "${median[stdio]}")" \
            "$(ratio "${median[$n]}" "${median[floor]}")" "${syscalls[$n]}" "${rss[$n]}" "${instr[$n]}"
    done
} | tee "$out/table.md"
