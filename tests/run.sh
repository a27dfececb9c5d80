#!/usr/bin/env bash
# The whole test suite: the command README.md gives and .ci/run runs.
#
# Every suite that runs a kubemem binary runs the release binary users get: the static musl
# build that ./build.sh leaves in target/dist/ (KUBEMEM_BIN points the Rust suites at it).
#
# 1. clippy and rustfmt, so the code stays reviewable; benches and fuzz targets compile;
# 2. the release builds (kubemem, kubemem-evict and kubemem-node, static musl, under their
#    size ceilings) and a run of each here; the node agent's unit tests; the test Kubernetes
#    API server (tests/apiserver, a static binary the node scenarios run) and its self-test;
# 3. cargo test against them: unit tests of every parser, the CLI suite over fixture trees,
#    kubemem run with real processes, the probe on this machine's own cgroup, the allocation
#    check, the fuzz seeds replayed; then again with the evict feature against
#    kubemem-evict, which adds --evict's suite (tests/evict.rs: a TLS API server made in the
#    test); and the CLI, host and run suites against a static glibc build (KUBEMEM_TARGET),
#    which stays possible and so stays tested;
# 4. their budgets (system calls, peak RSS, instructions: tests/budgets.sh); and one short
#    run of each benchmark script (exec; kubemem run's reaction time and idle cost, as root),
#    so that they keep working, and the node agent's (reaction and idle cost, QUICK), and the
#    lead kubemem run obtains (QUICK);
# 5. what users deploy: hadolint on the Dockerfile, kubernetes-validate on every manifest in
#    deploy/ and README.md (tests/deploy.sh); the image itself, both Dockerfile targets built
#    with the legacy builder and BuildKit and run by a real Docker engine (tests/image.sh);
# 6. the real-kernel suites (cgroup v1 here, runc containers, cgroup v2 in a VM), the node
#    agent's scenarios among them (v1 here, v2 in the VM, against the test API server);
# 7. every fuzz target for FUZZ_SECONDS (default 60) each (fuzz/seed.sh).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked --all-targets --features evict -- -D warnings
cargo clippy --locked --all-targets --features node -- -D warnings

step "benchmarks and fuzz targets compile"
cargo bench --locked --no-run
cargo check --quiet --manifest-path fuzz/Cargo.toml

step "release builds (static musl, under their size ceilings) and the test API server"
./build.sh
tests/apiserver/build.sh

step "release binaries on this machine's own cgroup"
target/dist/kubemem --verbose
target/dist/kubemem-evict --verbose --evict
target/dist/kubemem-node --version

step "cargo test, the binary suites against target/dist/kubemem"
KUBEMEM_BIN=$PWD/target/dist/kubemem cargo test --locked

step "cargo test --features evict against target/dist/kubemem-evict (and --evict against a TLS API server)"
KUBEMEM_BIN=$PWD/target/dist/kubemem-evict cargo test --locked --features evict

step "kubemem-node's unit tests; the test API server's self-test (curl, plain and TLS)"
cargo test --locked --features node --bin kubemem-node
APISERVER=$PWD/target/$(uname -m)-unknown-linux-musl/release/examples/apiserver tests/apiserver/selftest.sh

step "a static glibc build (KUBEMEM_TARGET): the CLI, host and run suites against it"
KUBEMEM_TARGET=$(uname -m)-unknown-linux-gnu KUBEMEM_VARIANTS=default KUBEMEM_DIST=target/dist-glibc ./build.sh
KUBEMEM_BIN=$PWD/target/dist-glibc/kubemem cargo test --locked --test cli --test host --test run

step "budgets: system calls, peak RSS, instructions of one healthy run"
tests/budgets.sh
# The same healthy run with --evict: the same system calls and about the same instructions;
# the larger binary maps more of itself (clean, shared pages), hence its own RSS ceiling.
KUBEMEM_MAX_RSS_KIB=${KUBEMEM_EVICT_MAX_RSS_KIB:-560} tests/budgets.sh target/dist/kubemem-evict --evict
# The same healthy run with --state and --lead: the working set at every run (memory.stat:
# open, read), the cgroup's identity (stat) and the state file (open, pread, pwrite): 6 more
# system calls; the stat's parse and the trend about double the instructions. The state
# file is a real one, with the samples of the runs before (the script runs the binary 4
# times).
state_dir=$(mktemp -d)
KUBEMEM_MAX_SYSCALLS=20 KUBEMEM_MAX_RSS_KIB=400 KUBEMEM_MAX_INSTRUCTIONS=30000 \
    tests/budgets.sh target/dist/kubemem --state "$state_dir/state" --lead 10s
rm -rf "$state_dir"

step "exec benchmark script runs (its timings are for reading, not asserted)"
RUNS=20 benches/exec/run.sh

step "kubemem run benchmark scripts run (timings not asserted; every run must end in SIGTERM)"
if [ "$(id -u)" = 0 ]; then
    RUNS=2 benches/run/reaction.sh all
    benches/run/idle.sh all 2
    QUICK=1 benches/node/run.sh
    QUICK=1 benches/run/lead.sh
elif [ "${CI:-}" = true ]; then
    echo "FAIL: the kubemem run benchmarks need root (with CI=true a missing prerequisite fails)"
    exit 1
else
    echo "SKIP: the kubemem run benchmarks need root"
fi

step "Dockerfile and manifests: hadolint, kubernetes-validate"
tests/deploy.sh

step "the image: built and run by a real Docker engine"
tests/image.sh

if [ -x tests/real/run.sh ]; then
    step "real kernels"
    tests/real/run.sh all
fi

step "fuzz every target for ${FUZZ_SECONDS:=60} s"
FUZZ_SECONDS=$FUZZ_SECONDS fuzz/seed.sh
