#!/usr/bin/env bash
# mkinitramfs.sh: build the initramfs of hvmm's test guests.
#
#   scripts/mkinitramfs.sh OUT.img [KERNEL_MODULES_DIR]
#
# A gzip'd "newc" cpio with a static busybox (and a symlink per applet), the
# usual top-level dirs, /dev/console and /dev/null, /etc/profile and /init
# (scripts/guest/init). With KERNEL_MODULES_DIR (an unpacked
# lib/modules/<version> tree), the Hyper-V modules below and everything they
# depend on (from modules.dep) are added, decompressed so busybox insmod can
# load them, with a load-order file (dependencies first) that /init follows.
# Skips the work when OUT.img.stamp matches the hash of all inputs.
# Env: HVMM_BUSYBOX (static busybox, default /bin/busybox),
#      HVMM_INITRD_COMPRESS (gzip, the default, or none: an uncompressed
#      cpio saves the guest its slowest boot step under PVM),
#      HVMM_GUEST_TOOLS (host programs to add, space-separated, e.g.
#      "hv_kvp_daemon mke2fs iperf3": each is copied to the same path with
#      the shared libraries and loader it needs; the default is none, so the
#      plain image stays small for the many boots that need only busybox),
#      HVMM_GUEST_AGENT (a static hvmm-agent to install as /usr/sbin/hvmm-agent,
#      which /init starts on Hyper-V; default build/src/agent/hvmm-agent when
#      that exists and is static; "none" leaves it out).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

# sd_mod and sr_mod: the SCSI disk and CD-ROM drivers storvsc's LUNs need.
GUEST_MODULES=(hv_vmbus hv_storvsc sd_mod sr_mod hv_netvsc hv_utils hv_sock vsock)
INIT="$ROOT/scripts/guest/init"
PROFILE="$ROOT/scripts/guest/profile"
UDHCPC_SCRIPT="$ROOT/scripts/guest/udhcpc.script"
BUSYBOX=${HVMM_BUSYBOX:-/bin/busybox}
COMPRESS=${HVMM_INITRD_COMPRESS:-gzip}
read -r -a TOOLS <<<"${HVMM_GUEST_TOOLS:-}"
AGENT=${HVMM_GUEST_AGENT:-$ROOT/build/src/agent/hvmm-agent}

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $PROG OUT.img [KERNEL_MODULES_DIR]"
OUT=$(realpath -m "$1")
MODDIR=${2:+$(realpath -m "$2")}
need_cmd cpio:cpio gzip:gzip readelf:binutils xz:xz-utils zstd:zstd
[[ $COMPRESS == gzip || $COMPRESS == none ]] ||
    die "HVMM_INITRD_COMPRESS must be gzip or none, not '$COMPRESS'"
[[ -x $BUSYBOX ]] || die "no busybox at $BUSYBOX (apt-get install busybox-static, or set HVMM_BUSYBOX)"
readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'Requesting program interpreter' &&
    die "$BUSYBOX is dynamically linked; the initramfs has no libc (use busybox-static)"
[[ $EUID -eq 0 ]] || die "must run as root (mknod of /dev/console and /dev/null)"

# --- Module selection: transitive closure over modules.dep, deps first -------

declare -A MOD_PATH=() MOD_DEPS=() MOD_STATE=()
LOAD_ORDER=()

# mod_name PATH: module name of a .ko path (as modprobe spells it) in $REPLY.
mod_name() {
    REPLY=${1##*/}
    REPLY=${REPLY%%.ko*}
    REPLY=${REPLY//-/_}
}

read_modules_dep() {
    local line path
    [[ -f $MODDIR/modules.dep ]] || die "$MODDIR/modules.dep not found (not a lib/modules/<version> dir?)"
    while IFS= read -r line; do
        path=${line%%:*}
        mod_name "$path"
        MOD_PATH[$REPLY]=$path
        MOD_DEPS[$REPLY]=${line#*:}
    done <"$MODDIR/modules.dep"
}

# visit NAME: append NAME to LOAD_ORDER after all of its dependencies.
visit() {
    local name=$1 dep
    case ${MOD_STATE[$name]:-} in
    "done") return 0 ;;
    "active") die "dependency cycle in modules.dep at $name" ;;
    esac
    MOD_STATE[$name]="active"
    for dep in ${MOD_DEPS[$name]}; do
        mod_name "$dep"
        [[ -n ${MOD_PATH[$REPLY]:-} ]] || die "$name needs $dep, which modules.dep does not list"
        visit "$REPLY"
    done
    MOD_STATE[$name]="done"
    LOAD_ORDER+=("$name")
}

select_modules() {
    local m
    read_modules_dep
    for m in "${GUEST_MODULES[@]}"; do
        if [[ -n ${MOD_PATH[$m]:-} ]]; then
            visit "$m"
        elif grep -qE "(^|/)${m//_/[-_]}\.ko$" "$MODDIR/modules.builtin" 2>/dev/null; then
            log "$m is built into the kernel"
        else
            die "module $m not found in $MODDIR/modules.dep"
        fi
    done
}

# Path of a module inside the image: compression suffix dropped.
image_path() { REPLY=${1%.xz}; REPLY=${REPLY%.zst}; REPLY=${REPLY%.gz}; }

install_modules() {
    local stage=$1 kdir name src
    kdir="$stage/lib/modules/${MODDIR##*/}"
    mkdir -p "$kdir"
    : >"$kdir/load-order"
    for name in "${LOAD_ORDER[@]}"; do
        src="$MODDIR/${MOD_PATH[$name]}"
        image_path "${MOD_PATH[$name]}"
        mkdir -p "$(dirname "$kdir/$REPLY")"
        case $src in
        *.ko) cp "$src" "$kdir/$REPLY" ;;
        *.ko.xz) xz -dc "$src" >"$kdir/$REPLY" ;;
        *.ko.zst) zstd -qdc "$src" >"$kdir/$REPLY" ;;
        *.ko.gz) gzip -dc "$src" >"$kdir/$REPLY" ;;
        *) die "unknown module format: $src" ;;
        esac || die "cannot decompress $src"
        echo "$REPLY" >>"$kdir/load-order"
    done
}

# --- Host programs with their libraries -------------------------------------

declare -A TOOL_PATH=()

# resolve_tools: full path of each tool in TOOL_PATH[name]; dies naming the
# Debian package to install when one is missing.
resolve_tools() {
    local t p
    for t in "${TOOLS[@]}"; do
        p=$(PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v "$t" || true)
        [[ -n $p && -x $p ]] || die "guest tool $t not found on the host (hv_kvp_daemon: hyperv-daemons, mke2fs: e2fsprogs, iperf3: iperf3)"
        TOOL_PATH[$t]=$(realpath "$p")
    done
}

# tool_files: every file the tools need (programs, libraries, the loader).
tool_files() {
    local t lib
    for t in "${TOOLS[@]}"; do
        echo "${TOOL_PATH[$t]}"
        # ldd prints "name => /path (addr)" and "/lib64/ld-linux... (addr)".
        ldd "${TOOL_PATH[$t]}" 2>/dev/null | while read -r lib; do
            lib=${lib#*=> }
            lib=${lib%% (*}
            [[ $lib == /* ]] && echo "$lib"
        done
    done | LC_ALL=C sort -u
}

install_tools() {
    local stage=$1 f t
    while IFS= read -r f; do
        mkdir -p "$stage$(dirname "$f")"
        cp -L "$f" "$stage$f"
    done < <(tool_files)
    # The loader where the programs' PT_INTERP looks for it.
    [[ -e $stage/lib64/ld-linux-x86-64.so.2 ]] || {
        mkdir -p "$stage/lib64"
        cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"
    }
    # Also under the name it is called by (mkfs.ext4 is mke2fs), in /usr/sbin.
    for t in "${TOOLS[@]}"; do
        [[ -e $stage/usr/sbin/$t || -e $stage/usr/bin/$t ]] ||
            ln -sfn "${TOOL_PATH[$t]}" "$stage/usr/sbin/$t"
    done
    [[ " ${TOOLS[*]} " != *" mke2fs "* ]] || ln -sfn "${TOOL_PATH[mke2fs]}" "$stage/usr/sbin/mkfs.ext4"
}

# --- Image --------------------------------------------------------------------

populate() {
    local stage=$1 applet
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,root,etc,lib}
    install -d -m 1777 "$stage/tmp"
    chmod 0700 "$stage/root"
    install -m 0755 "$BUSYBOX" "$stage/bin/busybox"
    # One symlink per applet, where busybox's own build would put it.
    while IFS= read -r applet; do
        case $applet in
        "" | linuxrc | bin/busybox) continue ;;
        esac
        mkdir -p "$stage/$(dirname "$applet")"
        ln -sfn /bin/busybox "$stage/$applet"
    done < <("$BUSYBOX" --list-full)
    [[ -L $stage/bin/sh ]] || die "$BUSYBOX has no sh applet"
    mknod -m 0600 "$stage/dev/console" c 5 1
    mknod -m 0666 "$stage/dev/null" c 1 3
    install -m 0755 "$INIT" "$stage/init"
    install -m 0644 "$PROFILE" "$stage/etc/profile"
    # busybox udhcpc applies a lease only through this script (Debian's busybox
    # looks for it at /etc/udhcpc/default.script).
    install -D -m 0755 "$UDHCPC_SCRIPT" "$stage/etc/udhcpc/default.script"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
    echo 'root:x:0:' >"$stage/etc/group"
    echo 'hvmm-guest' >"$stage/etc/hostname"
    # What a distro's /etc gives its programs (hv_kvp_daemon reports the
    # host name via getaddrinfo and the OS from os-release).
    printf '127.0.0.1\tlocalhost\n127.0.1.1\thvmm-guest\n' >"$stage/etc/hosts"
    echo 'hosts: files dns' >"$stage/etc/nsswitch.conf"
    printf 'NAME="hvmm test guest"\nID=hvmm\nVERSION_ID="1.0"\nPRETTY_NAME="hvmm test guest (busybox)"\n' \
        >"$stage/etc/os-release"
    [[ -z $MODDIR ]] || install_modules "$stage"
    [[ ${#TOOLS[@]} -eq 0 ]] || install_tools "$stage"
    [[ -z $AGENT ]] || install -s -m 0755 "$AGENT" "$stage/usr/sbin/hvmm-agent"
}

write_cpio() {
    local stage=$1 out=$2
    # Fixed owners and times: the same inputs give the same image.
    find "$stage" -exec touch -h -d @0 {} +
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 --reproducible) >"$out.cpio" ||
        die "cpio failed"
    if [[ $COMPRESS == gzip ]]; then
        gzip -9 -n <"$out.cpio" >"$out" || die "gzip failed"
        rm -f "$out.cpio"
    else
        mv "$out.cpio" "$out"
    fi
}

# Busybox and modules count by content, not by where they were unpacked.
inputs=("$SELF" "$COMMON_SH" "$INIT" "$PROFILE" "$UDHCPC_SCRIPT" "compress=$COMPRESS"
    "busybox=$(sha256sum <"$BUSYBOX" | cut -d' ' -f1)")
if [[ ${#TOOLS[@]} -gt 0 ]]; then
    need_cmd ldd:libc-bin
    resolve_tools
    inputs+=("tools=${TOOLS[*]} $(tool_files | xargs -r sha256sum | sha256sum)")
fi
# The agent must run without a libc in the image: static only.
if [[ $AGENT == none || ! -f $AGENT ]]; then
    [[ $AGENT == none || -z ${HVMM_GUEST_AGENT:-} ]] || die "no hvmm-agent at $AGENT"
    AGENT=
elif readelf -l "$AGENT" 2>/dev/null | grep -q 'Requesting program interpreter'; then
    [[ -z ${HVMM_GUEST_AGENT:-} ]] || die "$AGENT is dynamically linked (a sanitized build?)"
    log "leaving out $AGENT: dynamically linked"
    AGENT=
fi
[[ -z $AGENT ]] || inputs+=("agent=$(sha256sum <"$AGENT" | cut -d' ' -f1)")
if [[ -n $MODDIR ]]; then
    select_modules
    paths=()
    for name in "${LOAD_ORDER[@]}"; do paths+=("${MOD_PATH[$name]}"); done
    inputs+=("modules=${MODDIR##*/} $(cd "$MODDIR" &&
        printf '%s\0' "${paths[@]}" | xargs -0r sha256sum | sha256sum)")
fi
KEY=$(hash_inputs "${inputs[@]}")
if stamp_ok "$OUT.stamp" "$KEY" "$OUT"; then
    log "$OUT up to date"
    exit 0
fi

rm -f "$OUT.stamp"
mkdir -p "$CACHE/tmp" "$(dirname "$OUT")"
STAGE=$(mktemp -d "$CACHE/tmp/initramfs.XXXXXX")
trap 'rm -rf "$STAGE" "$OUT.tmp" "$OUT.tmp.cpio"' EXIT
populate "$STAGE"
write_cpio "$STAGE" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
stamp_write "$OUT.stamp" "$KEY"
log "wrote $OUT ($(du -k "$OUT" | cut -f1) KiB, ${#LOAD_ORDER[@]} modules)"
