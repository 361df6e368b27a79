#!/bin/bash
# Installs the Debian 12 packages hvmm needs to build, test and benchmark,
# if any are missing. Uses sudo when not root.
set -euo pipefail
PKGS=(
	build-essential clang meson ninja-build pkg-config
	liblz4-dev libzstd-dev liblzma-dev zlib1g-dev libcmocka-dev liburing-dev
	libclang-rt-14-dev llvm
	acpica-tools busybox-static cpio lz4 zstd xz-utils kmod
	linux-source-6.1 flex bison bc libelf-dev libssl-dev
	qemu-system-x86 socat
	hyperv-daemons iperf3 e2fsprogs libslirp-dev python3
	libprotobuf-c-dev protobuf-c-compiler
)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
