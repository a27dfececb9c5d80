#!/usr/bin/env bash
# The image as users build and run it, with a real Docker engine: the Dockerfile, unchanged,
# built from the tracked files (a fresh clone's content) with the legacy builder and with
# BuildKit, all three targets (the default scratch image, `--target evict` and `--target
# node`); then each image run as a user and as kubelet run it:
#
#   - `--memory=64m` gives limit=67108864 limit_source=cgroup; `--failure 1Ki` exits 4 with the
#     failure line; a bad flag exits 3; `--version` answers (the musl binary once ignored every
#     argument: only a real run of the shipped binary shows that);
#   - it runs as 65532:65532 (the image's User, and a root-owned termination log it cannot
#     write), has no shell, and holds only /kubemem and /bin/kubemem, static musl binaries;
#   - `run -- /kubemem --failure 1Ki` exits 4 (the supervisor starts CMD and passes its status);
#   - a host file bound at /dev/termination-log gets the failure line; an annotations file at
#     /etc/podinfo sets the threshold; `install` copies kubemem, owned by its user, into a
#     shared directory (the initContainer way);
#   - `COPY --from=` the image into another image works, and runs there under --memory=128m;
#   - the evict image: /kubemem-evict, static musl, healthy under --memory=64m, has --evict;
#   - the node image: only /kubemem-node, static musl, 65532:65532, no shell; --version and
#     --help exit 0, a bad flag and no node name exit 3; run as deploy/node's DaemonSet runs
#     it (a read-only root, no capabilities, no privilege escalation, the host's
#     /sys/fs/cgroup read-only at /host/sys/fs/cgroup, NODE_NAME, --memory=64m, the in-cluster
#     configuration: the service account's files and KUBERNETES_SERVICE_HOST) against a
#     stand-in API server over TLS: GET /healthz answers 200 on the published default port
#     9102, GET /metrics Prometheus text, the pod list carries
#     fieldSelector=spec.nodeName=NODE and the token, and SIGTERM (docker stop) ends it with
#     exit 0.
#
# Uses Debian's docker.io CLI (/usr/bin/docker: BuildKit is built in; a newer CLI without the
# buildx plugin has none). As root on Debian it installs docker.io and debootstrap when missing
# and starts dockerd with its defaults (overlay2, cgroupfs, bridge) when none answers, logging
# to target/image/dockerd.log, and stops that one on exit; a running engine is used and left
# running. Without root or a prerequisite it skips with the reason, under CI=true it fails.
#
# The build stage's base, rust:RUST_VERSION-bookworm (the Dockerfile's ARG default), comes from
# the local image store, else from a pull, else it is made here as a stand-in with that name:
# debootstrap's minbase bookworm with gcc, libc6-dev, ca-certificates and curl, the toolchain
# from rustup-init with the official image's environment, and this machine's TLS trust store
# (it may hold authorities Debian's bundle lacks, needed to reach crates.io from the build).
# Docker's image store keeps it between runs (making it takes one to two minutes).
#
# Every container and image made here is removed on exit, except the stand-in and the build
# cache: a rerun on the same source reuses the cached build stages and takes seconds to build;
# on an engine this script started, cache entries older than 6 hours are pruned first.
#
# Prints PASS/FAIL per check and ends with `N passed, N failed`; exits non-zero on any failure.
set -Eeuo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
TOP=$PWD
# shellcheck source=tests/prerequisites.sh
. tests/prerequisites.sh

DOCKER=/usr/bin/docker
WORK=$TOP/target/image
TAG=kubemem-test-$$
LABEL=kubemem-test=$$
STARTED=$SECONDS
MIB=1048576
DOCKERD_PID=
STANDIN_PID=
IMAGES=()
passed=0
failed=0

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
# judge NAME EXPECTED OK(0|1): a check's verdict; a failure says what the container run for
# the check said (RC set by dk_run), on one line
judge() {
    local msg="expected $2"
    if [ "$3" = 0 ]; then pass "$1"; return; fi
    [ -z "${RC:-}" ] || msg="$msg; got exit $RC, stdout: ${OUT:-<nothing>}${ERR:+, stderr: $ERR}"
    msg=${msg//$'\n'/ }
    fail "$1" "${msg:0:2000}"
}
elapsed() { echo "$((SECONDS - $1)) s"; }

cleanup() {
    set +e
    if [ -n "$DOCKERD_PID" ] || "$DOCKER" version >/dev/null 2>&1; then
        "$DOCKER" ps -aq --filter "label=$LABEL" | xargs -r timeout 60 "$DOCKER" rm -f >/dev/null 2>&1
        [ "${#IMAGES[@]}" = 0 ] || timeout 120 "$DOCKER" rmi -f "${IMAGES[@]}" >/dev/null 2>&1
    fi
    [ -z "$STANDIN_PID" ] || { kill "$STANDIN_PID" 2>/dev/null; wait "$STANDIN_PID" 2>/dev/null; }
    rm -rf "$WORK/context" "$WORK/copy-from" "$WORK/run" "$WORK/standin"
    if [ -n "$DOCKERD_PID" ]; then
        # The engine this script started, by its PID; it stops its containerd itself.
        kill "$DOCKERD_PID" 2>/dev/null
        local deadline=$((SECONDS + 60))
        while kill -0 "$DOCKERD_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.5; done
        kill -KILL "$DOCKERD_PID" 2>/dev/null
        wait "$DOCKERD_PID" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- prerequisites -----------------------------------------------------------------------

want=()
[ -x "$DOCKER" ] && command -v dockerd >/dev/null || want+=(docker.io)
command -v debootstrap >/dev/null || want+=(debootstrap)
command -v readelf >/dev/null || want+=(binutils)
command -v curl >/dev/null || want+=(curl)
command -v file >/dev/null || want+=(file)
command -v openssl >/dev/null || want+=(openssl)
[ "${#want[@]}" = 0 ] || apt_install "${want[@]}"
[ -x "$DOCKER" ] || missing_prerequisite image "Debian's docker CLI at $DOCKER (apt-get install docker.io)"
for t in git readelf curl python3 openssl; do
    command -v "$t" >/dev/null || missing_prerequisite image "$t"
done
mkdir -p "$WORK"

# An engine: the one that answers, else dockerd started here with its defaults.
if ! timeout 20 "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || missing_prerequisite image "a running Docker engine, or root to start dockerd"
    command -v dockerd >/dev/null || missing_prerequisite image "dockerd (apt-get install docker.io)"
    echo "starting dockerd (log: target/image/dockerd.log)"
    dockerd >"$WORK/dockerd.log" 2>&1 </dev/null &
    DOCKERD_PID=$!
    deadline=$((SECONDS + 60))
    until timeout 10 "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; do
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$WORK/dockerd.log" >&2
            fail engine "dockerd to answer within 60 s"
            echo "$passed passed, $failed failed"
            exit 1
        fi
        sleep 0.5
    done
    # A bounded cache, on the engine started here only: BuildKit's entries unused for 6 hours
    # and untagged images (the legacy builder's stages) made more than 6 hours ago go.
    timeout 300 "$DOCKER" builder prune -f --filter until=6h >/dev/null 2>&1 || true
    timeout 300 "$DOCKER" image prune -f --filter until=6h >/dev/null 2>&1 || true
fi
echo "engine: Docker $("$DOCKER" version --format '{{.Server.Version}}'), $("$DOCKER" info --format '{{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}' 2>/dev/null)"

# ---- the build stage's base image --------------------------------------------------------

RUST_VERSION=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile | head -n 1)
RUST_IMAGE=rust:$RUST_VERSION-bookworm

# debian_mirror: the first URI apt's sources give for bookworm's main archive
debian_mirror() {
    local f files=()
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ "${#files[@]}" != 0 ] || return 0
    awk '
        FNR == 1 || /^[[:space:]]*$/ { uri = "" }
        /^deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) break
                            if ($(i + 1) == "bookworm") { print $i; exit } }
        /^URIs:/ { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm" && uri != "") { print uri; exit } }
    ' "${files[@]}"
}

# make_standin: the stand-in for the official rust image, tagged RUST_IMAGE (about 1 minute
# here, 2 on a slower mirror)
make_standin() {
    local root=$WORK/standin mirror arch
    [ "$(id -u)" = 0 ] || { fail standin "root to run debootstrap"; return 1; }
    command -v debootstrap >/dev/null || { fail standin "debootstrap (apt-get install debootstrap)"; return 1; }
    mirror=$(debian_mirror)
    mirror=${mirror:-http://deb.debian.org/debian}
    arch=$(uname -m)
    rm -rf "$root"
    mkdir -p "$root"
    echo "making the stand-in $RUST_IMAGE: debootstrap bookworm from $mirror, rustup-init $RUST_VERSION"
    # A private mount namespace: debootstrap's /proc and /sys mounts, and the chroot's, stay
    # inside $root and go with the namespace.
    # shellcheck disable=SC2016 # the script's own variables, expanded inside it
    if ! timeout 1200 unshare --mount --propagation private bash -Eeuo pipefail -c '
        root=$1 mirror=$2 version=$3 arch=$4
        debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates,curl bookworm "$root" "$mirror"
        rm -f "$root"/var/cache/apt/archives/*.deb
        # The trust store of this machine in place of Debian'"'"'s: the certificates, not
        # links to them (the chroot'"'"'s own links point into its /usr/share).
        rm -rf "$root/etc/ssl/certs"
        cp -rL /etc/ssl/certs "$root/etc/ssl/certs"
        cp -L /etc/resolv.conf "$root/etc/resolv.conf"
        mount -t proc proc "$root/proc"
        chroot "$root" /usr/bin/env -i RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
            PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            /bin/sh -euc "
                url=https://static.rust-lang.org/rustup/dist/$arch-unknown-linux-gnu/rustup-init
                curl -fsS --proto =https -o /tmp/rustup-init \$url
                echo \"\$(curl -fsS --proto =https \$url.sha256 | cut -d \" \" -f 1)  /tmp/rustup-init\" | sha256sum -c -
                chmod +x /tmp/rustup-init
                /tmp/rustup-init -y -q --no-modify-path --profile minimal --default-toolchain $version
                rm /tmp/rustup-init
                chmod -R a+w /usr/local/rustup /usr/local/cargo
                rustc --version"
        umount "$root/proc"
    ' - "$root" "$mirror" "$RUST_VERSION" "$arch" >"$WORK/standin.log" 2>&1; then
        tail -n 30 "$WORK/standin.log"
        fail standin "debootstrap and rustup-init to make $RUST_IMAGE (log: target/image/standin.log)"
        return 1
    fi
    # The official image's environment (its Dockerfile's ENV lines) and command.
    if ! tar --numeric-owner -C "$root" -c . |
        timeout 600 "$DOCKER" import \
            --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
            --change 'ENV CARGO_HOME=/usr/local/cargo' \
            --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change "ENV RUST_VERSION=$RUST_VERSION" \
            --change 'LABEL org.opencontainers.image.description="stand-in made by tests/image.sh"' \
            --change 'CMD ["bash"]' \
            - "$RUST_IMAGE" >/dev/null; then
        fail standin "docker import of the stand-in"
        return 1
    fi
    rm -rf "$root"
}

t0=$SECONDS
if timeout 30 "$DOCKER" image inspect "$RUST_IMAGE" >/dev/null 2>&1; then
    pass "base/$RUST_IMAGE (in the image store)"
elif timeout 120 "$DOCKER" pull -q "$RUST_IMAGE" >/dev/null 2>&1; then
    pass "base/$RUST_IMAGE (pulled, $(elapsed "$t0"))"
elif make_standin; then
    pass "base/$RUST_IMAGE (stand-in made, $(elapsed "$t0"))"
else
    echo "$passed passed, $failed failed"
    exit 1
fi

# ---- builds ------------------------------------------------------------------------------

# The context: the tracked files as they are in the work tree (a fresh clone's files, plus
# uncommitted edits), so nothing untracked (target/, a local build) can get in.
CTX=$WORK/context
rm -rf "$CTX"
mkdir -p "$CTX"
git ls-files -z | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$CTX" -xf -

# build NAME BUILDKIT(0|1) TAG [ARGS...]: docker build of the context; log in target/image/
build() {
    local name=$1 kit=$2 tag=$3 t=$SECONDS rm=()
    shift 3
    IMAGES+=("$tag")
    # The legacy builder keeps a failed step's container unless told not to.
    [ "$kit" = 1 ] || rm=(--force-rm)
    if DOCKER_BUILDKIT=$kit timeout 2400 "$DOCKER" build "${rm[@]}" --label "$LABEL" -t "$tag" "$@" \
        >"$WORK/build-$name.log" 2>&1; then
        pass "build/$name ($(elapsed "$t"))"
    else
        tail -n 30 "$WORK/build-$name.log"
        fail "build/$name" "docker build to succeed (log: target/image/build-$name.log)"
        return 1
    fi
}

# ---- checks ------------------------------------------------------------------------------

# dk_run ARGS...: docker run --rm ARGS, bounded; sets RC, OUT (stdout), ERR (stderr)
dk_run() {
    RC=0
    timeout 120 "$DOCKER" run --rm --label "$LABEL" "$@" </dev/null >"$WORK/run/out" 2>"$WORK/run/err" || RC=$?
    OUT=$(cat "$WORK/run/out") ERR=$(cat "$WORK/run/err")
}

# copy_out IMAGE PATH DEST: a file of the image, through a created (never started) container
copy_out() {
    local cid
    cid=$(timeout 60 "$DOCKER" create --label "$LABEL" "$1") &&
        timeout 60 "$DOCKER" cp "$cid:$2" "$3" >/dev/null
    local rc=$?
    [ -z "${cid:-}" ] || timeout 60 "$DOCKER" rm -f "$cid" >/dev/null 2>&1 || true
    return "$rc"
}

# static_musl FILE: statically linked (no interpreter, no shared library), and not glibc:
# glibc's start files carry a GNU ABI tag note, musl's do not
static_musl() {
    [ -s "$1" ] &&
        ! readelf -lW "$1" | grep -q 'program interpreter' &&
        ! readelf -dW "$1" | grep -q '(NEEDED)' &&
        ! readelf -nW "$1" | grep -q 'NT_GNU_ABI_TAG'
}

# image_files IMAGE: the files of a created container, less what the engine itself puts in
# every container, on one line
image_files() {
    local cid
    cid=$(timeout 60 "$DOCKER" create --label "$LABEL" "$1") &&
        timeout 60 "$DOCKER" export "$cid" | tar -tvf - | awk '$1 !~ /^d/ { print $6 }' |
        grep -vxE '\.dockerenv|dev/.*|etc/(hostname|hosts|mtab|resolv\.conf)' | sort | tr '\n' ' '
}

# user_checks NAME IMAGE: what every image must be: run as 65532:65532, with no shell
user_checks() {
    local name=$1 img=$2 ok user
    RC='' OUT='' ERR=''
    user=$(timeout 30 "$DOCKER" image inspect -f '{{.Config.User}}' "$img" 2>&1) || true
    ok=1; [ "$user" = 65532:65532 ] && ok=0
    judge "$name/user" "the image's User 65532:65532, it is '$user'" "$ok"

    dk_run --entrypoint /bin/sh "$img" -c 'echo shell'
    ok=1; [ "$RC" != 0 ] && [[ $OUT != *shell* ]] && ok=0
    judge "$name/no-shell" "no /bin/sh to run" "$ok"
}

# common_checks NAME IMAGE: what both probe images must do: run healthy under a memory limit,
# as 65532:65532, with no shell
common_checks() {
    local name=$1 img=$2 ok
    dk_run --memory=64m "$img" --verbose
    ok=1; [ "$RC" = 0 ] && [[ $OUT == "level=ok "*" limit=$((64 * MIB)) "* ]] && [[ "$OUT " == *" limit_source=cgroup "* ]] && ok=0
    judge "$name/healthy" "exit 0 and level=ok ... limit=$((64 * MIB)) ... limit_source=cgroup" "$ok"
    user_checks "$name" "$img"
}

# image_checks NAME IMAGE BUILDKIT: the default image
image_checks() {
    local name=$1 img=$2 kit=$3 ok bin=$WORK/run/$1-kubemem files line
    common_checks "$name" "$img"
    # As users run it.
    dk_run --memory=64m "$img" --failure 1Ki
    ok=1; [ "$RC" = 4 ] && [[ $OUT == "level=failure "*" limit=$((64 * MIB)) "* ]] && ok=0
    judge "$name/failure" "exit 4 and a level=failure line at --failure 1Ki" "$ok"

    dk_run --memory=64m "$img" --bogus-flag
    ok=1; [ "$RC" = 3 ] && ok=0
    judge "$name/bad-flag" "exit 3 for --bogus-flag" "$ok"

    dk_run "$img" --version
    ok=1; [ "$RC" = 0 ] && [[ $OUT == "kubemem "* ]] && ok=0
    judge "$name/version" "exit 0 and 'kubemem VERSION' for --version" "$ok"

    # The supervisor starts CMD and exits with its status.
    dk_run --memory=64m "$img" run -- /kubemem --failure 1Ki
    ok=1; [ "$RC" = 4 ] && [[ $OUT == *"level=failure "* ]] && ok=0
    judge "$name/run" "run -- /kubemem --failure 1Ki to exit 4 with the child's failure line" "$ok"

    # Nothing but the binary, static musl: the files of a created container, less what the
    # engine itself puts in every container.
    RC='' OUT='' ERR=''
    files=$(image_files "$img") || true
    ok=1; [ "$files" = "bin/kubemem kubemem " ] && ok=0
    judge "$name/files" "only bin/kubemem and kubemem in the file system, found: $files" "$ok"

    rm -f "$bin" "$bin.bin"
    ok=1
    copy_out "$img" /kubemem "$bin" && copy_out "$img" /bin/kubemem "$bin.bin" && cmp -s "$bin" "$bin.bin" &&
        static_musl "$bin" && ok=0
    judge "$name/static-musl" "/kubemem and /bin/kubemem the same static musl binary ($(file -b "$bin" 2>&1 | cut -c 1-120))" "$ok"

    dk_run --entrypoint /bin/kubemem "$img" --version
    ok=1; [ "$RC" = 0 ] && [[ $OUT == "kubemem "* ]] && ok=0
    judge "$name/bin-kubemem" "/bin/kubemem --version to exit 0 and print its version" "$ok"

    # As kubelet runs it: the termination log a host file of mode 0666 bound over
    # /dev/termination-log; a root-owned one of mode 0644 it must not be able to write.
    local tl=$WORK/run/$name-termination-log
    : >"$tl"
    chmod 0666 "$tl"
    dk_run --memory=64m -v "$tl:/dev/termination-log" "$img" --failure 1Ki --termination-log /dev/termination-log
    line=$(cat "$tl")
    ok=1; [ "$RC" = 4 ] && [[ $OUT == "level=failure "* ]] && [ "$line" = "$OUT" ] && ok=0
    judge "$name/termination-log" "exit 4 and the failure line in the termination log (it holds: ${line:-nothing})" "$ok"

    : >"$tl"
    chmod 0644 "$tl"
    dk_run --memory=64m -v "$tl:/dev/termination-log" "$img" --failure 1Ki --termination-log /dev/termination-log
    ok=1; [ "$RC" = 4 ] && [[ $ERR == *"cannot open termination log: permission denied"* ]] && [ ! -s "$tl" ] && ok=0
    judge "$name/non-root" "exit 4 and permission denied on a root-owned termination log of mode 0644" "$ok"

    mkdir -p "$WORK/run/$name-podinfo"
    printf '%s\n%s' 'app.kubernetes.io/name="kubemem-image"' 'kubemem.io/failure="1Ki"' >"$WORK/run/$name-podinfo/annotations"
    dk_run --memory=64m -v "$WORK/run/$name-podinfo:/etc/podinfo:ro" "$img" --failure 95 --annotations /etc/podinfo/annotations
    ok=1; [ "$RC" = 4 ] && [[ "$OUT " == "level=failure "*" failure=1024 "* ]] && ok=0
    judge "$name/annotations" "exit 4 and failure=1024 from /etc/podinfo/annotations" "$ok"

    local shared=$WORK/run/$name-shared
    mkdir -p "$shared"
    chmod 0777 "$shared"
    # deploy/init-container.yaml's initContainer: a read-only root, no privilege escalation.
    dk_run --read-only --security-opt no-new-privileges -v "$shared:/shared" "$img" install /shared/kubemem
    ok=1; [ "$RC" = 0 ] && cmp -s "$bin" "$shared/kubemem" && [ "$(stat -c %u "$shared/kubemem")" = 65532 ] && ok=0
    judge "$name/install" "exit 0 and a copy of /kubemem owned by 65532 in the shared directory" "$ok"

    # COPY --from into another image (the base image will do), run under another limit.
    local app=$TAG:$name-copy-from
    mkdir -p "$WORK/copy-from"
    printf 'FROM %s\nCOPY --from=%s /kubemem /kubemem\n' "$RUST_IMAGE" "$img" >"$WORK/copy-from/Dockerfile"
    RC='' OUT='' ERR=''
    ok=1
    if build "$name-copy-from" "$kit" "$app" "$WORK/copy-from"; then
        dk_run --memory=128m "$app" /kubemem --verbose
        [ "$RC" = 0 ] && [[ $OUT == "level=ok "*" limit=$((128 * MIB)) "* ]] && ok=0
    fi
    judge "$name/copy-from" "COPY --from=$img /kubemem into $RUST_IMAGE, exit 0 and limit=$((128 * MIB)) under --memory=128m" "$ok"
}

# evict_checks NAME IMAGE: the evict image
evict_checks() {
    local name=$1 img=$2 ok bin=$WORK/run/$1-kubemem-evict
    common_checks "$name" "$img"
    dk_run "$img" --help
    ok=1; [ "$RC" = 0 ] && [[ $OUT == *--evict* ]] && ok=0
    judge "$name/help" "--evict in --help" "$ok"

    RC='' OUT='' ERR=''
    rm -f "$bin"
    ok=1; copy_out "$img" /kubemem-evict "$bin" && static_musl "$bin" && ok=0
    judge "$name/static-musl" "/kubemem-evict a static musl binary ($(file -b "$bin" 2>&1 | cut -c 1-120))" "$ok"
}

# The stand-in API server of node_checks, over TLS with a certificate of its own CA: an
# empty PodList for a list, a watch that stays open with no event, 201 for a POST (an
# Event). Each request's method, path with query and Authorization header (its blank an =),
# one a line, in the request log. Just what the agent needs to start up in the image; the
# protocol itself (events, 410 Gone, evictions) is the node scenarios' business.
# Arguments: ADDRESS REQUEST-LOG PORT-FILE CERT KEY.
# shellcheck disable=SC2016 # Python source
STANDIN_APISERVER='
import http.server, ssl, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        log(self)
        if "watch=1" in self.path or "watch=true" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            time.sleep(3600)
        else:
            self.answer(200, b"{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]}")
    def do_POST(self):
        log(self)
        self.answer(201, self.rfile.read(int(self.headers.get("Content-Length", "0"))))
def log(h):
    with open(sys.argv[2], "a") as f:
        f.write("%s %s %s\n" % (h.command, h.path, h.headers.get("Authorization", "-").replace(" ", "=")))
s = http.server.ThreadingHTTPServer((sys.argv[1], 0), H)
s.daemon_threads = True
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(sys.argv[4], sys.argv[5])
s.socket = tls.wrap_socket(s.socket, server_side=True)
with open(sys.argv[3], "w") as f:
    f.write(str(s.server_address[1]))
s.serve_forever()
'

# node_checks NAME IMAGE: the node agent's image, run as the DaemonSet of deploy/node runs it
node_checks() {
    local name=$1 img=$2 ok bin=$WORK/run/$1-kubemem-node files dir=$WORK/run/$1-apiserver
    local gateway cid metrics deadline code
    user_checks "$name" "$img"

    RC='' OUT='' ERR=''
    files=$(image_files "$img") || true
    ok=1; [ "$files" = "kubemem-node " ] && ok=0
    judge "$name/files" "only kubemem-node in the file system, found: $files" "$ok"

    rm -f "$bin"
    ok=1; copy_out "$img" /kubemem-node "$bin" && static_musl "$bin" && ok=0
    judge "$name/static-musl" "/kubemem-node a static musl binary ($(file -b "$bin" 2>&1 | cut -c 1-120))" "$ok"

    dk_run "$img" --version
    ok=1; [ "$RC" = 0 ] && [[ $OUT == "kubemem-node "* ]] && ok=0
    judge "$name/version" "exit 0 and 'kubemem-node VERSION' for --version" "$ok"

    dk_run "$img" --help
    ok=1; [ "$RC" = 0 ] && [[ $OUT == *--cgroup-root* ]] && [[ $OUT == *--metrics-addr* ]] && ok=0
    judge "$name/help" "exit 0 and --cgroup-root and --metrics-addr in --help" "$ok"

    dk_run -e NODE_NAME=image-test "$img" --bogus-flag
    ok=1; [ "$RC" = 3 ] && ok=0
    judge "$name/bad-flag" "exit 3 (usage error) for --bogus-flag" "$ok"

    # No --node and no NODE_NAME: which pods to watch is unknown, a usage error too.
    dk_run "$img" --dry-run
    ok=1; [ "$RC" = 3 ] && ok=0
    judge "$name/no-node" "exit 3 (usage error) without --node and NODE_NAME" "$ok"

    # As deploy/node/daemonset.yaml runs it: user 65532, a read-only root, no capabilities,
    # no privilege escalation, the host's cgroup tree read-only at /host/sys/fs/cgroup,
    # NODE_NAME set, a memory limit, the metrics port published, and the in-cluster
    # configuration kubelet gives a pod: KUBERNETES_SERVICE_HOST and _PORT (the stand-in API
    # server on the bridge's gateway) and the service account's token, ca.crt and namespace.
    RC='' OUT='' ERR=''
    rm -rf "$dir"
    mkdir -p "$dir/sa"
    gateway=$(timeout 30 "$DOCKER" network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null) || gateway=
    # An engine may leave the gateway out of the bridge's IPAM configuration (`<no value>`):
    # then the bridge interface's own address, which is the containers' gateway.
    case $gateway in
        *[!0-9.]* | '') gateway=$(ip -4 -o addr show docker0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }') ;;
    esac
    (
        cd "$dir" &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
                -keyout ca.key -out sa/ca.crt -subj /CN=kubemem-image-test-ca \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -keyout server.key -out server.csr -subj /CN=kube-apiserver &&
            printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n' \
                "${gateway:-127.0.0.1}" >server.ext &&
            openssl x509 -req -in server.csr -CA sa/ca.crt -CAkey ca.key -CAcreateserial -days 1 \
                -extfile server.ext -out server.crt
    ) >"$dir/openssl.log" 2>&1 || fail "$name/tls" "openssl to make the stand-in's CA and certificate: $(tail -n 3 "$dir/openssl.log" | tr '\n' ' ')"
    printf image-test-token >"$dir/sa/token"
    printf kube-system >"$dir/sa/namespace"
    chmod 0755 "$dir/sa"
    chmod 0644 "$dir/sa/token" "$dir/sa/namespace" "$dir/sa/ca.crt" 2>/dev/null || true
    python3 -c "$STANDIN_APISERVER" "${gateway:-127.0.0.1}" "$dir/requests" "$dir/port" \
        "$dir/server.crt" "$dir/server.key" </dev/null >"$dir/log" 2>&1 &
    STANDIN_PID=$!
    deadline=$((SECONDS + 10))
    until [ -s "$dir/port" ] || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.2; done
    cid=$(timeout 60 "$DOCKER" run -d --label "$LABEL" --read-only --cap-drop ALL \
        --security-opt no-new-privileges --memory=64m -p 127.0.0.1::9102 \
        -v /sys/fs/cgroup:/host/sys/fs/cgroup:ro \
        -v "$dir/sa:/var/run/secrets/kubernetes.io/serviceaccount:ro" \
        -e KUBERNETES_SERVICE_HOST="$gateway" -e KUBERNETES_SERVICE_PORT="$(cat "$dir/port" 2>/dev/null)" \
        -e NODE_NAME=image-test \
        "$img" --cgroup-root /host/sys/fs/cgroup --dry-run 2>&1) || cid=
    metrics=$(timeout 30 "$DOCKER" port "$cid" 9102/tcp 2>/dev/null | head -n 1) || metrics=
    deadline=$((SECONDS + 30))
    ok=1
    while [ -n "$metrics" ] && [ "$SECONDS" -lt "$deadline" ]; do
        curl -fsS --max-time 2 -o /dev/null "http://$metrics/healthz" 2>/dev/null && { ok=0; break; }
        sleep 0.5
    done
    if [ "$ok" != 0 ] && [ -n "$cid" ]; then
        RC=$(timeout 30 "$DOCKER" inspect -f '{{.State.ExitCode}} ({{.State.Status}})' "$cid" 2>&1) || true
        OUT=$(timeout 30 "$DOCKER" logs "$cid" 2>&1 | head -c 1000) || true
    fi
    judge "$name/read-only-root" "GET /healthz to answer 2xx within 30 s on the default metrics port ${metrics:-(none published: the container ${cid:0:80} is not running)}, under a read-only root as 65532 with no capabilities" "$ok"

    ok=1; [ -n "$metrics" ] && curl -fsS --max-time 5 "http://$metrics/metrics" >"$dir/metrics" 2>&1 && grep -q '^# TYPE ' "$dir/metrics" && ok=0
    judge "$name/metrics" "GET /metrics to answer Prometheus text (# TYPE lines): $(head -c 200 "$dir/metrics" 2>/dev/null)" "$ok"

    ok=1; grep -q '^GET /api/v1/pods?.*fieldSelector=spec\.nodeName\(%3D\|=\)image-test.* Bearer=image-test-token$' "$dir/requests" 2>/dev/null && ok=0
    judge "$name/node-name" "a pod list or watch with fieldSelector=spec.nodeName=image-test (NODE_NAME) and the service account's token, the requests: $(head -n 3 "$dir/requests" 2>/dev/null | tr '\n' ' ')" "$ok"

    # Kubelet stops it with SIGTERM: exit 0 within the grace period.
    code=
    if [ -n "$cid" ]; then
        timeout 60 "$DOCKER" stop -t 10 "$cid" >/dev/null 2>&1 || true
        code=$(timeout 30 "$DOCKER" inspect -f '{{.State.ExitCode}}' "$cid" 2>/dev/null) || code=
        OUT=$(timeout 30 "$DOCKER" logs "$cid" 2>&1 | head -c 2000) || OUT=
    fi
    RC=$code
    ok=1; [ "$code" = 0 ] && [[ $OUT == *"event=started "*"node=image-test"* ]] && ok=0
    judge "$name/sigterm" "an event=started line for node=image-test, and exit 0 after SIGTERM" "$ok"
    kill "$STANDIN_PID" 2>/dev/null || true
    wait "$STANDIN_PID" 2>/dev/null || true
    STANDIN_PID=
}

mkdir -p "$WORK/run"
for builder in legacy buildkit; do
    [ "$builder" = legacy ] && kit=0 || kit=1
    build "$builder" "$kit" "$TAG:$builder" "$CTX" && image_checks "$builder" "$TAG:$builder" "$kit"
    build "$builder-evict" "$kit" "$TAG:$builder-evict" --target evict "$CTX" &&
        evict_checks "$builder-evict" "$TAG:$builder-evict"
    build "$builder-node" "$kit" "$TAG:$builder-node" --target node "$CTX" &&
        node_checks "$builder-node" "$TAG:$builder-node"
done

echo "suite: $(elapsed "$STARTED")"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
