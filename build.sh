#!/usr/bin/env bash
# Builds the release kubemem: statically linked, stripped, size-optimised (see Cargo.toml's
# release profile), copied to target/dist/kubemem. Prints its size and fails if it is not
# static or is above the size ceiling.
#
#   ./build.sh                      # the default probe binary
#   KUBEMEM_TARGET=aarch64-unknown-linux-musl ./build.sh
#
# Environment:
#   KUBEMEM_TARGET    Rust target triple; default: this machine's architecture with musl when
#                     that target is installed, else glibc (linked statically either way).
#   KUBEMEM_MAX_SIZE  size ceiling in bytes (default below; set from measurements in README:
#                     1,000,000 for the probe alone, raised with kubemem run, which added
#                     35 KB, about 5 KB of them glibc's fork and execvp).
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

# crt-static links the C library in, so the one file runs in a scratch image.
# relocation-model=static makes it static non-PIE: the kernel maps it where it was linked, so
# it skips relocating itself at every start (about 24k instructions, a third of a probe run;
# DESIGN.md weighs this against ASLR). Passing --target keeps these flags away from build
# scripts, which must stay dynamic.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --locked --target "$target" "$@"

out=target/dist/kubemem
mkdir -p target/dist
cp "${CARGO_TARGET_DIR:-target}/$target/release/kubemem" "$out"

# Static means: no program interpreter and no shared libraries needed.
if readelf -lW "$out" | grep -q 'program interpreter' || readelf -dW "$out" | grep -q '(NEEDED)'; then
    echo "build.sh: $out is dynamically linked" >&2
    readelf -dW "$out" | grep NEEDED >&2 || true
    exit 1
fi

size=$(stat -c %s "$out")
max=${KUBEMEM_MAX_SIZE:-1040000}
echo "$out: $size bytes, static, $target (ceiling $max)"
if [ "$size" -gt "$max" ]; then
    echo "build.sh: $out is $size bytes, above the ceiling of $max" >&2
    exit 1
fi
