# syntax=docker/dockerfile:1
# kubemem: the static probe in a scratch image, for any platform the Rust image has.
#   docker build -t kubemem .
#   docker buildx build --platform linux/amd64,linux/arm64 -t kubemem .
#   # in an application image:  COPY --from=kubemem /kubemem /kubemem
#
# The build stage runs on the platform it builds for (emulated by buildx for another one), so
# the Rust target is this platform's: nothing here names an architecture.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# A Rust target triple; empty: this platform's, musl when rustup can add that target, static
# glibc otherwise (build.sh picks musl when it is installed).
ARG KUBEMEM_TARGET=""
SHELL ["/bin/bash", "-Eeuo", "pipefail", "-c"]
# x86_64-unknown-linux-gnu -> x86_64-unknown-linux-musl, aarch64-... likewise.
RUN host=$(rustc -vV | sed -n 's/^host: //p'); \
    if [ -z "$KUBEMEM_TARGET" ]; then \
        rustup target add "${host/-gnu/-musl}" || echo "no musl target for $host: static glibc"; \
    else \
        rustup target add "$KUBEMEM_TARGET"; \
    fi
WORKDIR /src
COPY . .
# build.sh links statically, checks that the result is static and under the size ceiling,
# and leaves it at target/dist/kubemem.
RUN ./build.sh

# No shell, no libc, no user database: the binary alone. tests/image.sh builds this stage's
# root file system from the COPY lines below and runs it with runc.
FROM scratch
COPY --from=build /src/target/dist/kubemem /kubemem
# The C kubemem's path, so `COPY --from=... /bin/kubemem` keeps working.
COPY --from=build /src/target/dist/kubemem /bin/kubemem
# A numeric user (there is no /etc/passwd): distroless's "nonroot".
USER 65532:65532
ENTRYPOINT ["/kubemem"]
