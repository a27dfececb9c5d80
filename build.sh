#!/usr/bin/env bash
# Builds the release kubemem binaries: statically linked, stripped, size-optimised (see
# Cargo.toml's release profile), in three variants:
#
#   target/dist/kubemem        the probe and kubemem run (default features)
#   target/dist/kubemem-evict  the same with --evict (cargo feature evict: rustls and ring)
#   target/dist/kubemem-node   the node agent, a DaemonSet (cargo feature node: kube-rs, tokio)
#
# Prints each one's size and fails if one is not static or is above its size ceiling.
#
#   ./build.sh                      # all three variants
#   KUBEMEM_VARIANTS=default ./build.sh
#   KUBEMEM_TARGET=x86_64-unknown-linux-gnu ./build.sh   # static glibc instead of musl
#
# Arguments are passed on to cargo build.
#
# Environment:
#   KUBEMEM_VARIANTS        which to build: default, evict, node (default "default evict node").
#   KUBEMEM_TARGET          Rust target triple; default: this machine's architecture with
#                           musl (added with rustup when missing). x86_64-unknown-linux-gnu
#                           builds a static glibc binary instead (tested, not shipped).
#   KUBEMEM_DIST            where the binaries go (default target/dist).
#   KUBEMEM_MAX_SIZE        size ceiling of kubemem in bytes. Default, set from measurements
#                           (README "Numbers"): 480,000 for musl (454,720 measured), 1,050,000
#                           for static glibc (1,038,136 measured; glibc's static start-up and
#                           stdio pull in half a megabyte that musl does not).
#   KUBEMEM_EVICT_MAX_SIZE  size ceiling of kubemem-evict: 1,420,000 for musl (1,400,976
#                           measured, rustls with ring, TLS 1.2 and 1.3), 2,000,000 for glibc
#                           (1,983,192 measured).
#   KUBEMEM_NODE_MAX_SIZE   size ceiling of kubemem-node: 5,850,000 for musl (5,673,400
#                           measured: kube-rs, hyper, tokio, rustls with ring), 10,000,000
#                           for glibc (not measured yet).
set -Eeuo pipefail
cd "$(dirname "$0")"

host=$(rustc -vV | sed -n 's/^host: //p')
arch=${host%%-*}
# The release binary is static musl: the one users get, in the image and from this script.
# The C library's start-up differs (see src/main.rs), so no other libc stands in for it.
target=${KUBEMEM_TARGET:-$arch-unknown-linux-musl}
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "build.sh: adding the Rust target $target with rustup" >&2
    rustup target add "$target" >&2 ||
        { echo "build.sh: the Rust target $target is not installed and rustup could not add it" >&2; exit 1; }
fi
# ring (kubemem-evict's TLS) compiles C for the target: on a musl target, with Debian's
# musl-tools' musl-gcc unless CC_<target> names another compiler.
cc_var=CC_${target//-/_}
if [ "${target%-musl}" != "$target" ] && [ -z "${!cc_var:-}" ] && command -v musl-gcc >/dev/null; then
    export "$cc_var=musl-gcc"
fi

dist=${KUBEMEM_DIST:-target/dist}
case $target in
    # kubemem-evict 1,440,000: --lead and --state (issue 14) added 16 KB to it as to the
    # probe (1,417,360 measured), 2.6 KB under the 1,420,000 of before.
    *-musl*) max_size=480000 evict_max_size=1440000 node_max_size=5850000 ;;
    # The static glibc build (tested, not shipped): 1,080,000 since --lead and --state
    # (1,057,912 measured).
    *) max_size=1080000 evict_max_size=2000000 node_max_size=10000000 ;;
esac

# build VARIANT OUTPUT CEILING LINK-FLAGS [CARGO ARGS...]
build() {
    local variant=$1 out=$2 max=$3 link=$4
    shift 4
    # crt-static links the C library in, so the one file runs in a scratch image.
    # relocation-model=static makes it static non-PIE: the kernel maps it where it was
    # linked, so it skips relocating itself at every start (about 24k instructions, a third of
    # a probe run; for kubemem-evict 42k, and 72 KB; DESIGN.md weighs this against ASLR).
    # Passing --target keeps these flags away from build scripts, which must stay dynamic.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static $link" \
        cargo build --release --locked --target "$target" "$@"

    # cargo's binary: kubemem for the probe and for kubemem-evict (a feature of the same
    # binary), kubemem-node for the agent (a binary of its own).
    local bin=kubemem
    [ "$variant" != node ] || bin=kubemem-node
    mkdir -p "$dist"
    cp "${CARGO_TARGET_DIR:-target}/$target/release/$bin" "$out"

    # Static means: no program interpreter and no shared libraries needed.
    if readelf -lW "$out" | grep -q 'program interpreter' || readelf -dW "$out" | grep -q '(NEEDED)'; then
        echo "build.sh: $out is dynamically linked" >&2
        readelf -dW "$out" | grep NEEDED >&2 || true
        exit 1
    fi

    local size
    size=$(stat -c %s "$out")
    echo "$out: $size bytes, static, $target, $variant (ceiling $max)"
    if [ "$size" -gt "$max" ]; then
        echo "build.sh: $out is $size bytes, above the ceiling of $max" >&2
        exit 1
    fi
}

# kubemem: -z noseparate-code, two LOAD segments (headers, code and read-only data; then
# data) instead of GNU ld's four (the musl target links with GNU ld; lld, which links the
# glibc build, does not pad them apart anyway). One page fault and about 4 us less per probe
# run, and 4 KB; the cost is read-only data in executable pages (DESIGN.md). kubemem-evict
# reads the network and keeps them apart.
for variant in ${KUBEMEM_VARIANTS:-default evict node}; do
    case $variant in
        default) build default "$dist/kubemem" "${KUBEMEM_MAX_SIZE:-$max_size}" "-C link-arg=-Wl,-z,noseparate-code" "$@" ;;
        evict) build evict "$dist/kubemem-evict" "${KUBEMEM_EVICT_MAX_SIZE:-$evict_max_size}" "" --features evict "$@" ;;
        node) build node "$dist/kubemem-node" "${KUBEMEM_NODE_MAX_SIZE:-$node_max_size}" "" --features node --bin kubemem-node "$@" ;;
        *)
            echo "build.sh: unknown variant '$variant' in KUBEMEM_VARIANTS (default, evict, node)" >&2
            exit 1
            ;;
    esac
done
