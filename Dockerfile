# syntax=docker/dockerfile:1
# kubemem: the static probe in a scratch image.
#   docker build -t kubemem .
#   # in an application image:  COPY --from=kubemem /kubemem /kubemem
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# build.sh links statically (musl when the builder has that target, static glibc otherwise),
# checks that the result is static and prints its size.
RUN ./build.sh

FROM scratch
COPY --from=build /src/target/dist/kubemem /kubemem
# The C kubemem's path, so `COPY --from=... /bin/kubemem` keeps working.
COPY --from=build /src/target/dist/kubemem /bin/kubemem
USER 65532:65532
ENTRYPOINT ["/kubemem"]
