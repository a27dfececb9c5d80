# syntax=docker/dockerfile:1
# kubemem: the static probe in a scratch image, for any platform the Rust image has.
#   docker build -t kubemem .
#   docker build --target evict -t kubemem:evict .     # kubemem-evict, with --evict
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
# build.sh links statically, checks that each result is static and under its size ceiling,
# and leaves target/dist/kubemem and target/dist/kubemem-evict (--evict: rustls and ring,
# whose C parts the builder's compiler builds).
RUN ./build.sh

# The --evict variant, as its own image: docker build --target evict -t kubemem:evict .
# It comes before the last stage so that a plain build still ends with the default image.
FROM scratch AS evict
COPY --from=build /src/target/dist/kubemem-evict /kubemem-evict
USER 65532:65532
ENTRYPOINT ["/kubemem-evict"]

# No shell, no libc, no user database: the binary alone. The test suite (`tests/real/run.sh
# image`) builds this stage's root file system from the COPY lines below and runs it with runc.
FROM scratch
COPY --from=build /src/target/dist/kubemem /kubemem
# The C kubemem's path, so `COPY --from=... /bin/kubemem` keeps working.
COPY --from=build /src/target/dist/kubemem /bin/kubemem
# A numeric user (there is no /etc/passwd): distroless's "nonroot".
USER 65532:65532
ENTRYPOINT ["/kubemem"]
