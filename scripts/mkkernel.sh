#!/usr/bin/env bash
# mkkernel.sh: build hvmm's minimal guest kernel from Debian's linux-source-6.1.
#
#   scripts/mkkernel.sh
#
# tinyconfig (x86_64) + scripts/kernel/minimal.config (Hyper-V VMBus drivers,
# NVMe, 8250 console, ACPI, PVH entry, LZ4 bzImage, built in, no modules),
# then a busybox initramfs (mkinitramfs.sh). Outputs in $CACHE/guest/minimal:
# bzImage, vmlinux (for PVH / ELF loading), config, initrd.img and
# initrd-tools.img (initrd.img plus the host programs some tests need).
# The source is unpacked once into $CACHE/kernel/src-<version> and built out
# of tree in $CACHE/kernel/build-<version>. The kernel is rebuilt only when
# the fragment, this script, the source package or the compiler change.
# Env: HVMM_CACHE (cache dir), HVMM_JOBS (make -j, default nproc).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

SRC_PKG=linux-source-6.1
TARBALL=/usr/src/linux-source-6.1.tar.xz
FRAGMENT="$ROOT/scripts/kernel/minimal.config"
OUT="$CACHE/guest/minimal"
JOBS=${HVMM_JOBS:-$(nproc)}

[[ $# -eq 0 ]] || die "usage: $PROG (no arguments)"
need_cmd make gcc flex bison bc perl xz lz4 tar
[[ -f $FRAGMENT ]] || die "missing config fragment $FRAGMENT"

if [[ ! -f $TARBALL ]]; then
    log "$TARBALL missing: installing $SRC_PKG"
    apt-get install -y -qq "$SRC_PKG" >&2 ||
        { apt_update; apt-get install -y -qq "$SRC_PKG" >&2; } ||
        die "cannot install $SRC_PKG"
    [[ -f $TARBALL ]] || die "$SRC_PKG installed but $TARBALL is still missing"
fi
SRC_VER=$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null) ||
    die "$SRC_PKG is not installed (dpkg-query failed)"
SRC="$CACHE/kernel/src-$SRC_VER"
BUILD="$CACHE/kernel/build-$SRC_VER"
KMAKE=(make -C "$SRC" O="$BUILD" ARCH=x86_64)

# unpack_source: extract the tarball once; the marker tells a complete tree
# from one a killed run left behind.
unpack_source() {
    [[ -f $SRC/.hvmm-unpacked ]] && return 0
    log "unpacking $TARBALL into $SRC"
    rm -rf "$SRC" "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    tar -xJf "$TARBALL" -C "$SRC.tmp" --strip-components=1 || die "cannot unpack $TARBALL"
    touch "$SRC.tmp/.hvmm-unpacked"
    mv "$SRC.tmp" "$SRC"
}

# check_config: every "=y" line of the fragment must be in .config (olddefconfig
# silently drops options whose dependencies are unmet); other differences
# (values, options meant to be off) only warn.
check_config() {
    local cfg="$BUILD/.config" line sym val missing=() got
    while IFS= read -r line; do
        if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
            sym=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
            got=$(grep -E "^$sym=" "$cfg" | cut -d= -f2- || true)
            if [[ $val == y && $got != y ]]; then
                missing+=("$sym")
            elif [[ $got != "$val" ]]; then
                log "warning: $sym=$val requested, .config has ${got:-it unset}"
            fi
        elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set ]]; then
            sym=${BASH_REMATCH[1]}
            grep -qE "^$sym=" "$cfg" &&
                log "warning: $sym requested off, but .config has $(grep -E "^$sym=" "$cfg")"
        fi
    done <"$FRAGMENT"
    ((${#missing[@]} == 0)) ||
        die "options from ${FRAGMENT#"$ROOT"/} lost in .config (unmet dependencies or unknown symbols): ${missing[*]}"
}

build_kernel() {
    unpack_source
    mkdir -p "$BUILD" "$OUT"
    log "configuring (tinyconfig + ${FRAGMENT#"$ROOT"/}) in $BUILD"
    local clog="$BUILD/config.log"
    "${KMAKE[@]}" -s tinyconfig >"$clog" 2>&1 || die "make tinyconfig failed (see $clog)"
    (cd "$SRC" && scripts/kconfig/merge_config.sh -m -O "$BUILD" "$BUILD/.config" "$FRAGMENT") \
        >>"$clog" 2>&1 || die "merge_config.sh failed (see $clog)"
    "${KMAKE[@]}" -s olddefconfig >>"$clog" 2>&1 || die "make olddefconfig failed (see $clog)"
    check_config
    log "building bzImage with -j$JOBS (takes a while)"
    nice -n 10 "${KMAKE[@]}" -j"$JOBS" bzImage >&2 || die "kernel build failed"
    cp "$BUILD/arch/x86/boot/bzImage" "$OUT/bzImage.tmp"
    cp "$BUILD/vmlinux" "$OUT/vmlinux.tmp"
    cp "$BUILD/.config" "$OUT/config"
    mv "$OUT/bzImage.tmp" "$OUT/bzImage"
    mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
}

KEY=$(hash_inputs "$SELF" "$COMMON_SH" "$FRAGMENT" "$SRC_PKG=$SRC_VER" "$(gcc --version | head -n1)")
if stamp_ok "$OUT/kernel.stamp" "$KEY" "$OUT/bzImage" "$OUT/vmlinux"; then
    log "kernel up to date ($SRC_PKG $SRC_VER)"
else
    rm -f "$OUT/kernel.stamp"
    start=$SECONDS
    build_kernel
    stamp_write "$OUT/kernel.stamp" "$KEY"
    log "kernel built in $((SECONDS - start)) s"
fi

"$ROOT/scripts/mkinitramfs.sh" "$OUT/initrd.img"
# The same plus host programs some tests need (KVP daemon, mkfs.ext4, iperf3,
# socat for vsock).
HVMM_GUEST_TOOLS="hv_kvp_daemon mke2fs iperf3 socat" \
    "$ROOT/scripts/mkinitramfs.sh" "$OUT/initrd-tools.img"

echo "minimal kernel ($SRC_PKG $SRC_VER):"
echo "  bzImage   $OUT/bzImage"
echo "  vmlinux   $OUT/vmlinux"
echo "  initrd    $OUT/initrd.img"
echo "  initrd    $OUT/initrd-tools.img (with hv_kvp_daemon, mke2fs, iperf3, socat)"
