#!/usr/bin/env bash
# Builds fuzz/corpus/<target>/ from the fixture trees, then runs each target for
# FUZZ_SECONDS (default 60) with cargo-fuzz:
#   fuzz/seed.sh            # seed and run every target
#   fuzz/seed.sh stat       # one target
#
# cargo-fuzz passes nightly-only flags (-Z sanitizer). A nightly toolchain is used when
# rustup has one; otherwise stable with RUSTC_BOOTSTRAP=1, which accepts them (stable ships
# the address sanitizer's runtime for x86_64 and aarch64 Linux). cargo-fuzz itself is
# installed from crates.io when missing. Each run ends with libFuzzer's final statistics:
# executions (stat::number_of_executed_units) and coverage (cov: edges, ft: features).
set -Eeuo pipefail
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

fixtures=../tests/fixtures
mkdir -p corpus/{u64,stat,proc_cgroup,mountinfo,threshold,args,annotations,http_response,oom_events,state}
n=0
while IFS= read -r -d '' f; do
    n=$((n + 1))
    case "$f" in
        */memory.stat) cp "$f" "corpus/stat/$n" ;;
        */memory.events | */memory.oom_control) cp "$f" "corpus/oom_events/$n" ;;
        */memory.current | */memory.max | */memory.usage_in_bytes | */memory.limit_in_bytes) cp "$f" "corpus/u64/$n" ;;
        */proc/self/cgroup)
            cp "$f" "corpus/proc_cgroup/$n"
            { cat "$f"; printf '\0'; cat "$(dirname "$f")/mountinfo" 2>/dev/null || true; } > "corpus/mountinfo/$n" ;;
    esac
done < <(find "$fixtures" -type f -print0)
for t in 85 85% 92.5 900Mi 1.5Gi 512M 2G 0.001Ki; do printf '%s' "$t" > "corpus/threshold/$t"; done
printf -- '--warning\00085\0--failure\00095\0--logfile\0/proc/1/fd/1' > corpus/args/c-kubemem
printf -- '-w\0900Mi\0-f\0001.5Gi\0-v\0--log-format\0json' > corpus/args/quantities
cp ../tests/annotations/* corpus/annotations/
printf 'kubemem.io/failure="\\x39\\065"\nx="\\a\\u00e9\\U0001f600"\n' > corpus/annotations/escapes
printf -- 'run\0--warning-signal\0USR1\0--grace\0001.5s\0--interval\00020ms\0--\0sh\0-c\0exit 3' > corpus/args/run
# API server answers to an eviction, as tests/evict.rs's server (and kube-apiserver) send them.
status='{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Cannot evict pod as it would violate the pod'"'"'s disruption budget.","reason":"TooManyRequests","details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web needs 2 healthy pods and has 2 currently"}]},"code":429}'
printf 'HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${#status}" "$status" > corpus/http_response/429
printf 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n8;x=1\r\n{"kind":\r\n8\r\n"Status"\r\n1\r\n}\r\n0\r\nX-Trailer: 1\r\n\r\n' > corpus/http_response/201-chunked
printf 'HTTP/1.0 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nforbidden: \\u00e9 \\ud83d\\ude00' > corpus/http_response/403-close

# A state file as the probe writes it: 5 header words, 32 points, the checksum (made right by
# the check before decoding).
{ printf 'kubemem\001'; head -c 552 /dev/zero; } > corpus/state/empty
printf 'kubemem\001\240\301\236Q\242\001\0\0\344\004Q\0\0\0\0\0\303V\016\0\0\0\0\0\002' > corpus/state/two-points

targets=("$@")
[ $# -gt 0 ] || targets=(u64 stat proc_cgroup mountinfo threshold args annotations http_response oom_events state)
mkdir -p target/logs
for target in "${targets[@]}"; do
    echo "== fuzz $target for ${FUZZ_SECONDS:-60} s"
    log=target/logs/$target.log
    if ! "${fuzz[@]}" run "$target" "corpus/$target" -- \
        -max_total_time="${FUZZ_SECONDS:-60}" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz $target: failed, see fuzz/$log and fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)' "$log"
done
