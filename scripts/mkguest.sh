#!/usr/bin/env bash
# mkguest.sh: the default hvmm guest, from Debian's packages.
#
#   scripts/mkguest.sh
#
# Resolves the kernel that linux-image-cloud-amd64 currently depends on (the
# ABI is never hard-coded), downloads it and busybox-static into $CACHE/debs,
# and writes to $CACHE/guest/debian: vmlinuz, config, release (the kernel's
# uname -r) and initrd.img (mkinitramfs.sh with the Hyper-V modules).
# Skips everything when the resolved versions and the scripts are unchanged.
# Env: HVMM_CACHE (cache dir), HVMM_INITRD_COMPRESS (see mkinitramfs.sh).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

META_PKG="linux-image-cloud-amd64"
BUSYBOX_PKG="busybox-static"
OUT="$CACHE/guest/debian"
DEBS="$CACHE/debs"

[[ $# -eq 0 ]] || die "usage: $PROG (no arguments)"
need_cmd apt-get apt-cache dpkg-deb dpkg depmod:kmod

# resolve PKG: print PKG's candidate version, refreshing the lists if needed.
resolve() {
    local ver
    ver=$(apt_candidate "$1")
    if [[ -z $ver ]]; then
        apt_update
        ver=$(apt_candidate "$1")
    fi
    [[ -n $ver ]] || die "apt knows no package $1 (check /etc/apt/sources.list)"
    printf '%s\n' "$ver"
}

meta_ver=$(resolve "$META_PKG")
depends=$(apt-cache show --no-all-versions "$META_PKG=$meta_ver" | sed -n 's/^Depends: //p')
# e.g. "linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)"
IMAGE_PKG=$(grep -oE 'linux-image-[0-9][^ ,]*-cloud-amd64' <<<"$depends" | head -n1 || true)
[[ -n $IMAGE_PKG ]] || die "cannot find the kernel package in $META_PKG's Depends: '$depends'"
IMAGE_VER=$(sed -nE "s/.*$IMAGE_PKG \(= ([^)]+)\).*/\1/p" <<<"$depends")
[[ -n $IMAGE_VER ]] || IMAGE_VER=$(resolve "$IMAGE_PKG")
BUSYBOX_VER=$(resolve "$BUSYBOX_PKG")
log "resolved $META_PKG $meta_ver -> $IMAGE_PKG $IMAGE_VER; $BUSYBOX_PKG $BUSYBOX_VER"

KEY=$(hash_inputs "$SELF" "$COMMON_SH" "$ROOT/scripts/mkinitramfs.sh" \
    "$ROOT/scripts/guest/init" "$ROOT/scripts/guest/profile" \
    "$IMAGE_PKG=$IMAGE_VER" "$BUSYBOX_PKG=$BUSYBOX_VER" \
    "compress=${HVMM_INITRD_COMPRESS:-gzip}")

print_paths() {
    echo "Debian guest ($IMAGE_PKG $IMAGE_VER, kernel $(cat "$OUT/release")):"
    echo "  vmlinuz   $OUT/vmlinuz"
    echo "  initrd    $OUT/initrd.img"
    echo "  initrd    $OUT/initrd-tools.img (with mke2fs)"
    echo "  config    $OUT/config"
}

if stamp_ok "$OUT/guest.stamp" "$KEY" "$OUT/vmlinuz" "$OUT/initrd.img" "$OUT/initrd-tools.img" "$OUT/release"; then
    log "Debian guest up to date"
    print_paths
    exit 0
fi
rm -f "$OUT/guest.stamp"

kernel_deb=$(apt_fetch "$IMAGE_PKG" "$IMAGE_VER" "$DEBS")
busybox_deb=$(apt_fetch "$BUSYBOX_PKG" "$BUSYBOX_VER" "$DEBS")

mkdir -p "$CACHE/tmp" "$OUT"
WORK=$(mktemp -d "$CACHE/tmp/debian.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "unpacking $(basename "$kernel_deb") and $(basename "$busybox_deb")"
dpkg-deb -x "$kernel_deb" "$WORK/kernel" || die "cannot unpack $kernel_deb"
dpkg-deb -x "$busybox_deb" "$WORK/busybox" || die "cannot unpack $busybox_deb"

# Newer packages ship /usr/lib/modules (merged /usr); bookworm ships /lib.
shopt -s nullglob
vmlinuz=("$WORK"/kernel/boot/vmlinuz-*)
moddirs=("$WORK"/kernel/lib/modules/* "$WORK"/kernel/usr/lib/modules/*)
busybox=("$WORK"/busybox/bin/busybox "$WORK"/busybox/usr/bin/busybox)
shopt -u nullglob
((${#vmlinuz[@]} == 1)) || die "expected one boot/vmlinuz-* in $kernel_deb, found ${#vmlinuz[@]}"
((${#moddirs[@]} == 1)) || die "expected one lib/modules/<version> in $kernel_deb, found ${#moddirs[@]}"
((${#busybox[@]} >= 1)) || die "no busybox binary in $busybox_deb"
release=${moddirs[0]##*/}
# modules.dep is made by the package's postinst, so make it here.
[[ -f ${moddirs[0]}/modules.dep ]] ||
    depmod -b "${moddirs[0]%/lib/modules/*}" "$release" ||
    die "depmod failed for $release"

cp "${vmlinuz[0]}" "$OUT/vmlinuz.tmp"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
cp "$WORK/kernel/boot/config-$release" "$OUT/config" 2>/dev/null ||
    log "warning: no boot/config-$release in $kernel_deb"
echo "$release" >"$OUT/release"
HVMM_BUSYBOX=${busybox[0]} "$ROOT/scripts/mkinitramfs.sh" "$OUT/initrd.img" "${moddirs[0]}"
# The same plus mke2fs, for the disk tests (debian-mkfs.sh).
HVMM_GUEST_TOOLS="mke2fs" HVMM_BUSYBOX=${busybox[0]} \
    "$ROOT/scripts/mkinitramfs.sh" "$OUT/initrd-tools.img" "${moddirs[0]}"

stamp_write "$OUT/guest.stamp" "$KEY"
print_paths
