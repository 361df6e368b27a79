#!/bin/bash
# The stock Debian cloud kernel and its initramfs packed into a NATIVE IGVM
# file by `hvmm-igvm build --kernel --initrd --cmdline` and booted with
# `hvmm --igvm` to the shell: minimal-igvm.sh's checks with GUEST=debian.
# Skipped on PVM (see debian-smp1.sh).
if [ -e /sys/module/kvm_pvm ]; then
	echo "[debian-igvm] SKIP: KVM here is PVM; the stock kernel does not reach /init" \
		"within the CI budget there; minimal-igvm.sh covers the IGVM linux-direct path" >&2
	exit 77
fi
HVMM_TEST_NAME=debian-igvm GUEST=debian BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-igvm.sh"
