# kubemem: the static probe in a scratch image, for any platform the Rust image has.
#   docker build -t kubemem .
#   docker build --target evict -t kubemem:evict .     # kubemem-evict, with --evict
#   docker build --target node -t kubemem:node .       # kubemem-node, the DaemonSet's agent
#   docker buildx build --platform linux/amd64,linux/arm64 -t kubemem .
#   # in an application image:  COPY --from=kubemem /kubemem /kubemem
#
# The build stage runs on the platform it builds for (emulated by buildx for another one), and
# build.sh builds for that platform's musl target (adding it with rustup): nothing here names
# an architecture. tests/image.sh builds this file with the legacy builder and with BuildKit
# and runs both images.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# A Rust target triple; empty: this platform's with musl (build.sh reads it from the
# environment, as every ARG is there for RUN).
ARG KUBEMEM_TARGET=""
# musl-gcc compiles ring's C code (kubemem-evict's TLS) for the musl target. Not pinned: a
# bookworm version disappears from the mirrors at the next point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# build.sh links statically, checks that each result is static and under its size ceiling,
# and leaves target/dist/kubemem, target/dist/kubemem-evict and target/dist/kubemem-node.
RUN ./build.sh

# The --evict variant, as its own image: docker build --target evict -t kubemem:evict .
# It and the node agent come before the last stage so that a plain build still ends with the
# default image.
FROM scratch AS evict
COPY --from=build /src/target/dist/kubemem-evict /kubemem-evict
USER 65532:65532
ENTRYPOINT ["/kubemem-evict"]

# The node agent (deploy/node/, a DaemonSet): docker build --target node -t kubemem:node .
# The same numeric user: it only reads the host's cgroup files, which are world-readable, and
# talks to the API server with its service account's token.
FROM scratch AS node
COPY --from=build /src/target/dist/kubemem-node /kubemem-node
USER 65532:65532
ENTRYPOINT ["/kubemem-node"]

# No shell, no libc, no user database: the binary alone.
FROM scratch
COPY --from=build /src/target/dist/kubemem /kubemem
# The C kubemem's path, so `COPY --from=... /bin/kubemem` keeps working.
COPY --from=build /src/target/dist/kubemem /bin/kubemem
# A numeric user (there is no /etc/passwd): distroless's "nonroot".
USER 65532:65532
ENTRYPOINT ["/kubemem"]
