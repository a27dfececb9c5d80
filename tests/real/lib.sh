# Shared by the real-kernel suite (run.sh) and the benchmarks of kubemem run (benches/run/)
# and kubemem-node (benches/node/): Debian packages, the qemu VM with cgroup v2, our own
# cgroup v1 memory cgroup, cgroup clean-up.  bash; sourced, not run.
#
# Needs CACHE (where downloads are kept).  Functions that can fail return 1 with the reason
# in ERR, worded as what is missing ("the kernel package ..."); ERR and the variables the
# functions set are read by the sourcing script.
# shellcheck disable=SC2034

# ---- clean-up -------------------------------------------------------------------------------

# CLEANUPS: commands (strings, eval'd) that undo what was set up, run last first by cleanup,
# which the sourcing script's EXIT trap calls (so also on failure and on a signal)
CLEANUPS=()
cleanup() {
    local i
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[i]}" >/dev/null 2>&1; done
    CLEANUPS=()
}

# ---- packages ------------------------------------------------------------------------------

pkg_ok() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q 'ok installed'; }

# installed_conflict PKG: an installed package that PKG conflicts with (unversioned
# Conflicts of the candidate, e.g. busybox-static vs busybox); prints its name
installed_conflict() {
    local c
    for c in $(apt-cache show --no-all-versions "$1" 2>/dev/null |
        sed -n 's/^Conflicts: //p' | tr ',' '\n' | grep -v '[(|]' | tr -d ' '); do
        pkg_ok "$c" && { echo "$c"; return 0; }
    done
    return 1
}

# ensure_packages PKG...: install what is missing; never removes a package (--no-remove), so
# a conflict with something already installed is reported rather than resolved.  ERR on failure.
APT_UPDATED=
apt_update() {
    [ -n "$APT_UPDATED" ] && return 0
    apt-get update -qq >&2 && APT_UPDATED=1
}
ensure_packages() {
    local missing=() p c
    for p in "$@"; do pkg_ok "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || { ERR="packages ${missing[*]} (no apt-get to install them)"; return 1; }
    apt_update || { ERR="packages ${missing[*]} (apt-get update failed)"; return 1; }
    for p in "${missing[@]}"; do
        c=$(installed_conflict "$p") &&
            { ERR="package $p, which conflicts with the installed package $c (this script removes nothing)"; return 1; }
    done
    echo "installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-remove \
        "${missing[@]}" >&2 || { ERR="packages ${missing[*]} (apt-get install failed, see above)"; return 1; }
}

is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'; }

# kill_cgroup DIR: kill what runs in DIR and below, then remove the directories
kill_cgroup() {
    local d pid _
    [ -d "$1" ] || return 0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        while IFS= read -r d; do
            while read -r pid; do kill -9 "$pid"; done <"$d/cgroup.procs"
            rmdir "$d"
        done < <(find "$1" -depth -type d)
        [ -d "$1" ] || return 0
        sleep 0.2
    done
}

# v1_memory: the v1 memory mount point of this machine (V1_MP) and our own cgroup path in it
# (V1_OWN); 1 when there is none
v1_memory() {
    V1_OWN=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}:\(.*\)$/\3/p' /proc/self/cgroup)
    V1_MP=$(awk '{ for (i = 7; $i != "-"; i++); if ($(i+1) == "cgroup" && $4 == "/" && ("," $(i+3) ",") ~ /,memory,/) { print $5; exit } }' /proc/self/mountinfo)
    [ -n "$V1_OWN" ] && [ -n "$V1_MP" ] && [ -f "$V1_MP$V1_OWN/memory.limit_in_bytes" ]
}

# ---- the cgroup v2 VM ------------------------------------------------------------------------

# fetch_kernel: the Debian kernel package that linux-image-amd64 depends on (or
# $KUBEMEM_KERNEL_PKG), downloaded -- never installed -- and cached with only its vmlinuz and
# brd.ko unpacked; sets VMLINUZ and BRD_KO, or ERR
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9].*-amd64$/ { print $2; exit }'; }
# (ls -t: the newest of Debian package file names, which have no spaces)
# shellcheck disable=SC2012
fetch_kernel() {
    local pkg=${KUBEMEM_KERNEL_PKG:-} deb dir
    if [ -z "$pkg" ]; then
        deb=$(ls -t "$CACHE"/linux-image-*-amd64_*.deb 2>/dev/null | head -1)
    else
        deb=$(ls -t "$CACHE"/"$pkg"_*.deb 2>/dev/null | head -1)
    fi
    if [ -z "$deb" ]; then
        [ -n "$pkg" ] || pkg=$(kernel_pkg)
        [ -n "$pkg" ] || { apt_update && pkg=$(kernel_pkg); }
        [ -n "$pkg" ] || { ERR="the kernel package linux-image-amd64 depends on (apt-cache depends)"; return 1; }
        echo "downloading $pkg" >&2
        (cd "$CACHE" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) ||
            { ERR="the kernel package $pkg (apt-get download failed)"; return 1; }
        deb=$(ls -t "$CACHE"/"$pkg"_*.deb | head -1)
    fi
    dir=$CACHE/$(basename "$deb" .deb)
    if [ ! -f "$dir/done" ]; then
        rm -rf "$dir" && mkdir -p "$dir"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards './boot/vmlinuz-*' '*/drivers/block/brd.ko*' ||
            { ERR="vmlinuz and brd.ko in $deb"; return 1; }
        touch "$dir/done"
    fi
    VMLINUZ=$(ls "$dir"/boot/vmlinuz-* 2>/dev/null | head -1)
    BRD_KO=$(find "$dir/lib" -name 'brd.ko*' | head -1)
    [ -n "$VMLINUZ" ] || { ERR="a vmlinuz in $deb"; return 1; }
    case $BRD_KO in *.ko) ;; *) ERR="an uncompressed brd.ko in $deb (found ${BRD_KO:-none})"; return 1 ;; esac
}

# fetch_qemu: qemu-system-x86_64 from the Debian packages, downloaded -- never installed, so
# nothing conflicts with an installed qemu-utils or the like and nothing is removed -- and
# unpacked under $CACHE/qemu.  Besides qemu-system-x86 (the binary) it needs at run time
# qemu-system-common (the TCG accelerator module), qemu-system-data (linuxboot_dma.bin,
# kvmvapic.bin) and seabios (BIOS, VGA BIOS); ipxe-qemu (NIC option ROMs) is not needed with
# `-nic none`.  Only the shared libraries qemu-system-x86 depends on are installed; ldd
# checks that none is missing.  Sets QEMU, QEMU_MODDIR and QEMU_FW (-L options), or ERR
QEMU_PKGS=(qemu-system-x86 qemu-system-common qemu-system-data seabios)
qemu_download() {
    (cd "$CACHE/qemu/debs" && apt-get download -q -o APT::Sandbox::User=root "${QEMU_PKGS[@]}" >&2)
}
fetch_qemu() {
    local dir=$CACHE/qemu p deb debs=() libs=() bad
    if [ ! -f "$dir/root/done" ]; then
        mkdir -p "$dir/debs" || { ERR="a writable $dir"; return 1; }
        for p in "${QEMU_PKGS[@]}"; do
            for deb in "$dir/debs/${p}"_*.deb; do [ -f "$deb" ] && debs+=("$deb"); done
        done
        if [ ${#debs[@]} -ne ${#QEMU_PKGS[@]} ]; then
            # all from one apt-get download, so that their versions match
            rm -f "$dir"/debs/*.deb
            echo "downloading ${QEMU_PKGS[*]}" >&2
            if ! qemu_download && ! { apt_update && qemu_download; }; then
                ERR="the packages ${QEMU_PKGS[*]} (apt-get download failed)"
                return 1
            fi
            debs=()
            for p in "${QEMU_PKGS[@]}"; do debs+=("$dir/debs/${p}"_*.deb); done
        fi
        rm -rf "$dir/root" "$dir/root.tmp"
        mkdir -p "$dir/root.tmp" || { ERR="a writable $dir"; return 1; }
        for deb in "${debs[@]}"; do
            dpkg-deb -x "$deb" "$dir/root.tmp" || { ERR="$deb to unpack (dpkg-deb -x)"; return 1; }
        done
        # the libraries: its Depends without the qemu packages, seabios and ipxe-qemu
        dpkg-deb -f "${debs[0]}" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*//; s/:any//; s/[[:space:]]//g' |
            grep -Ev '^(qemu-.*|seabios|ipxe-.*|)$' >"$dir/root.tmp/libraries" ||
            { ERR="the Depends of ${debs[0]}"; return 1; }
        touch "$dir/root.tmp/done"
        mv "$dir/root.tmp" "$dir/root" || { ERR="a writable $dir"; return 1; }
    fi
    mapfile -t libs <"$dir/root/libraries"
    ensure_packages "${libs[@]}" || return 1
    QEMU=$dir/root/usr/bin/qemu-system-x86_64
    [ -x "$QEMU" ] || { ERR="qemu-system-x86_64 in the package qemu-system-x86"; return 1; }
    p=$(find "$dir/root/usr/lib" -name accel-tcg-x86_64.so | head -1)
    [ -n "$p" ] || { ERR="the TCG module accel-tcg-x86_64.so in the package qemu-system-common"; return 1; }
    QEMU_MODDIR=${p%/*}
    bad=$(ldd "$QEMU" "$p" 2>&1 | awk '/not found/ { $1 = $1; if (!seen[$0]++) { printf "%s%s", sep, $0; sep = "; " } }')
    [ -z "$bad" ] || { ERR="the shared libraries of qemu-system-x86_64 (ldd: $bad)"; return 1; }
    QEMU_FW=(-L "$dir/root/usr/share/qemu" -L "$dir/root/usr/share/seabios")
}

# vm_prereqs: busybox-static and cpio installed, qemu and the kernel unpacked (see above)
vm_prereqs() {
    ensure_packages busybox-static cpio && fetch_qemu && fetch_kernel
}

# vm_root DIR: a fresh initramfs tree at DIR with a static busybox and all its applets in
# bin/, and /mounts.sh, which the guest's /init sources first: PATH, /proc, /sys, /dev, a
# tmpfs /tmp and cgroup2 at /sys/fs/cgroup
vm_root() {
    local a
    if ! rm -rf "$1" || ! mkdir -p "$1/bin" "$1/proc" "$1/sys" "$1/dev" "$1/tmp"; then
        ERR="a writable $1"
        return 1
    fi
    cp /bin/busybox "$1/bin/busybox"
    is_static "$1/bin/busybox" || { ERR="a static busybox (busybox-static)"; return 1; }
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$1/bin/$a"; done
    printf '%s\n' 'export PATH=/bin' 'mount -t proc proc /proc' 'mount -t sysfs sysfs /sys' \
        'mount -t devtmpfs devtmpfs /dev' 'mount -t tmpfs tmpfs /tmp' \
        'mount -t cgroup2 cgroup2 /sys/fs/cgroup' >"$1/mounts.sh"
}

# vm_qemu INITRD: the command that boots the kernel with INITRD (its /init runs, the console is
# standard output) into VM_QEMU.  TCG: software emulation (works everywhere; KVM is not
# required).  VM_MEM: its memory (default 512M).  The unpacked qemu finds its module and
# firmware through QEMU_MODULE_DIR and -L; no NIC, so no option ROM.
vm_qemu() {
    VM_QEMU=(env QEMU_MODULE_DIR="$QEMU_MODDIR"
        "$QEMU" "${QEMU_FW[@]}" -M pc -accel tcg -cpu max -m "${VM_MEM:-512M}" -smp 1
        -nographic -no-reboot -nic none -monitor none
        -kernel "$VMLINUZ" -initrd "$1"
        -append "console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init")
}
