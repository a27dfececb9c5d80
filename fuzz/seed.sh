#!/usr/bin/env bash
# Builds fuzz/corpus/<target>/ from the fixture trees, then runs each target for
# FUZZ_SECONDS (default 60) with cargo-fuzz on a nightly toolchain:
#   fuzz/seed.sh            # seed and run every target
#   fuzz/seed.sh stat       # one target
set -Eeuo pipefail
cd "$(dirname "$0")"
fixtures=../tests/fixtures
mkdir -p corpus/{u64,stat,proc_cgroup,mountinfo,threshold,args}
n=0
while IFS= read -r -d '' f; do
    n=$((n + 1))
    case "$f" in
        */memory.stat) cp "$f" "corpus/stat/$n" ;;
        */memory.current | */memory.max | */memory.usage_in_bytes | */memory.limit_in_bytes) cp "$f" "corpus/u64/$n" ;;
        */proc/self/cgroup)
            cp "$f" "corpus/proc_cgroup/$n"
            { cat "$f"; printf '\0'; cat "$(dirname "$f")/mountinfo" 2>/dev/null || true; } > "corpus/mountinfo/$n" ;;
    esac
done < <(find "$fixtures" -type f -print0)
for t in 85 85% 92.5 900Mi 1.5Gi 512M 2G 0.001Ki; do printf '%s' "$t" > "corpus/threshold/$t"; done
printf -- '--warning\00085\0--failure\00095\0--logfile\0/proc/1/fd/1' > corpus/args/c-kubemem
printf -- '-w\0900Mi\0-f\0001.5Gi\0-v\0--log-format\0json' > corpus/args/quantities
for t in "${@:-u64 stat proc_cgroup mountinfo threshold args}"; do
    for target in $t; do
        cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="${FUZZ_SECONDS:-60}"
    done
done
