#!/usr/bin/env bash
# Builds the release kubemem binaries: statically linked, stripped, size-optimised (see
# Cargo.toml's release profile), in two variants:
#
#   target/dist/kubemem        the probe and kubemem run (default features)
#   target/dist/kubemem-evict  the same with --evict (cargo feature evict: rustls and ring)
#
# Prints each one's size and fails if one is not static or is above its size ceiling.
#
#   ./build.sh                      # both variants
#   KUBEMEM_VARIANTS=default ./build.sh
#   KUBEMEM_TARGET=aarch64-unknown-linux-musl ./build.sh
#
# Arguments are passed on to cargo build.
#
# Environment:
#   KUBEMEM_VARIANTS        which to build: default, evict, or both (default "default evict").
#   KUBEMEM_TARGET          Rust target triple; default: this machine's architecture with musl
#                           when that target is installed, else glibc (linked statically
#                           either way).
#   KUBEMEM_MAX_SIZE        size ceiling of kubemem in bytes (default below; set from
#                           measurements in README: 1,000,000 for the probe alone, raised with
#                           kubemem run, which added 35 KB, about 5 KB of them glibc's fork and
#                           execvp).
#   KUBEMEM_EVICT_MAX_SIZE  size ceiling of kubemem-evict (default below: 1,960,664 bytes
#                           measured, rustls with ring, TLS 1.2 and 1.3).
set -Eeuo pipefail
cd "$(dirname "$0")"

host=$(rustc -vV | sed -n 's/^host: //p')
arch=${host%%-*}
target=${KUBEMEM_TARGET:-}
if [ -z "$target" ]; then
    target=$arch-unknown-linux-gnu
    if rustup target list --installed 2>/dev/null | grep -qx "$arch-unknown-linux-musl"; then
        target=$arch-unknown-linux-musl
    fi
fi

# build VARIANT OUTPUT CEILING [CARGO ARGS...]
build() {
    local variant=$1 out=$2 max=$3
    shift 3
    # crt-static links the C library in, so the one file runs in a scratch image.
    # relocation-model=static makes it static non-PIE: the kernel maps it where it was
    # linked, so it skips relocating itself at every start (about 24k instructions, a third of
    # a probe run; for kubemem-evict 42k, and 72 KB; DESIGN.md weighs this against ASLR).
    # Passing --target keeps these flags away from build scripts, which must stay dynamic.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
        cargo build --release --locked --target "$target" "$@"

    mkdir -p target/dist
    cp "${CARGO_TARGET_DIR:-target}/$target/release/kubemem" "$out"

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

for variant in ${KUBEMEM_VARIANTS:-default evict}; do
    case $variant in
        default) build default target/dist/kubemem "${KUBEMEM_MAX_SIZE:-1040000}" "$@" ;;
        evict) build evict target/dist/kubemem-evict "${KUBEMEM_EVICT_MAX_SIZE:-1990000}" --features evict "$@" ;;
        *)
            echo "build.sh: unknown variant '$variant' in KUBEMEM_VARIANTS (default, evict)" >&2
            exit 1
            ;;
    esac
done
