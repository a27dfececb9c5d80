#!/usr/bin/env bash
# The whole test suite: the command README.md gives and .ci/run runs.
#
# 1. cargo test: unit tests of every parser, the CLI suite over fixture trees, the
#    allocation check, the probe on this machine's own cgroup, the fuzz seeds replayed;
# 2. clippy and rustfmt, so the code stays reviewable; benches and fuzz targets compile;
# 3. the release build (static, under the size ceiling), a run of it here, and its budgets
#    (system calls, peak RSS, instructions: tests/budgets.sh);
#    and one short run of each benchmark script (exec; kubemem run's reaction time and idle
#    cost, as root), so that they keep working;
# 4. the real-kernel suites (cgroup v1 here, runc containers, cgroup v2 in a VM);
# 5. every fuzz target for FUZZ_SECONDS (default 60) each (fuzz/seed.sh).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

step "cargo test"
cargo test --locked

step "benchmarks and fuzz targets compile"
cargo bench --locked --no-run
cargo check --quiet --manifest-path fuzz/Cargo.toml

step "release build (static, under the size ceiling)"
./build.sh

step "release binary on this machine's own cgroup"
target/dist/kubemem --verbose

step "budgets: system calls, peak RSS, instructions of one healthy run"
tests/budgets.sh

step "exec benchmark script runs (its timings are for reading, not asserted)"
RUNS=20 benches/exec/run.sh

step "kubemem run benchmark scripts run (timings not asserted; every run must end in SIGTERM)"
if [ "$(id -u)" = 0 ]; then
    RUNS=2 benches/run/reaction.sh all
    benches/run/idle.sh all 2
elif [ "${CI:-}" = true ]; then
    echo "FAIL: the kubemem run benchmarks need root (with CI=true a missing prerequisite fails)"
    exit 1
else
    echo "SKIP: the kubemem run benchmarks need root"
fi

if [ -x tests/real/run.sh ]; then
    step "real kernels"
    tests/real/run.sh all
fi

step "fuzz every target for ${FUZZ_SECONDS:=60} s"
FUZZ_SECONDS=$FUZZ_SECONDS fuzz/seed.sh
