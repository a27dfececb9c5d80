#!/bin/sh
# Builds the test API server as a static musl binary (it also runs inside the busybox VM of
# the cgroup v2 scenarios) and prints its path. Arguments go to cargo build.
set -eu
cd "$(dirname "$0")/../.."
target=${APISERVER_TARGET:-$(uname -m)-unknown-linux-musl}
cc_var=CC_$(echo "$target" | tr - _)
# ring compiles C for the target: musl-gcc unless CC_<target> names another compiler.
if eval "[ -z \"\${$cc_var:-}\" ]" && command -v musl-gcc >/dev/null; then
    export "$cc_var=musl-gcc"
fi
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked --example apiserver --target "$target" "$@" >&2
echo "$PWD/target/$target/release/examples/apiserver"
