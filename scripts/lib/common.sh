# Shared helpers for the guest-preparation scripts (mkinitramfs.sh,
# mkguest.sh, mkkernel.sh, guest.sh). Sourced, never run. Defines ROOT (the
# repository), CACHE (build outputs: $HVMM_CACHE or $ROOT/.cache, never
# committed), PROG and SELF (the calling script's name and absolute path),
# and small helpers for errors, input hashing, stamp files and apt.
# shellcheck shell=bash disable=SC2034  # the variables are for the sourcing scripts

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=$(realpath -m "${HVMM_CACHE:-$ROOT/.cache}")
PROG=$(basename "$0")
COMMON_SH="$ROOT/scripts/lib/common.sh"
SELF=$(realpath "$0")

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

# need_cmd CMD[:PACKAGE]...: fail early, naming the Debian package to install.
need_cmd() {
    local spec
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null 2>&1 ||
            die "'${spec%%:*}' not found (apt-get install ${spec#*:})"
    done
}

# hash_inputs ARG...: one sha256 over every input. An ARG naming an existing
# file contributes its (repo-relative) path and contents; any other ARG is taken literally
# (package versions, tool versions, option values).
hash_inputs() {
    local a
    for a in "$@"; do
        if [[ -f $a ]]; then
            printf 'file %s %s\n' "${a#"$ROOT"/}" "$(sha256sum <"$a" | cut -d' ' -f1)"
        else
            printf 'value %s\n' "$a"
        fi
    done | sha256sum | cut -d' ' -f1
}

# stamp_ok STAMP HASH OUTPUT...: true if STAMP holds HASH and every OUTPUT
# exists, i.e. the work the stamp stands for need not be redone.
stamp_ok() {
    local stamp=$1 hash=$2 f
    shift 2
    [[ -f $stamp && "$(cat "$stamp")" == "$hash" ]] || return 1
    for f in "$@"; do [[ -e $f ]] || return 1; done
}

# stamp_write STAMP HASH: record finished work (last step of a build).
stamp_write() { printf '%s\n' "$2" >"$1"; }

# apt_update: refresh the package lists, once per run.
APT_UPDATED=0
apt_update() {
    ((APT_UPDATED)) && return 0
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
}

# apt_candidate PKG: print PKG's candidate version ("" if apt does not know it).
apt_candidate() {
    apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}

# apt_fetch PKG VERSION DIR: download PKG=VERSION's .deb into DIR (kept as a
# cache) and print its path. Refreshes the package lists only when the first
# attempt fails.
apt_fetch() {
    local pkg=$1 ver=$2 dir=$3 deb
    mkdir -p "$dir"
    deb="$dir/${pkg}_${ver//:/%3a}_$(dpkg --print-architecture).deb"
    if [[ ! -s $deb ]]; then
        # Downloads run as root into a root-owned dir: no _apt sandbox.
        if ! (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2); then
            apt_update
            (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
                die "apt-get download $pkg=$ver failed"
        fi
    fi
    # Depending on the apt version, all-arch packages are named _all.deb.
    if [[ ! -s $deb ]]; then
        local found=("$dir/${pkg}_${ver//:/%3a}_"*.deb)
        deb=${found[0]}
    fi
    [[ -s $deb ]] || die "downloaded $pkg=$ver but cannot find its .deb in $dir"
    printf '%s\n' "$deb"
}
