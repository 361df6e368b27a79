#!/bin/bash
# The stock Debian cloud kernel with --hv: its hv_netvsc (a module, loaded
# from the initramfs) on netvsp + consomme: DHCP, guest -> host and host ->
# guest transfers compared end to end (minimal-net.sh's checks with
# GUEST=debian). Skipped on PVM (see debian-smp1.sh).
if [ -e /sys/module/kvm_pvm ]; then
	echo "[debian-net] SKIP: KVM here is PVM; the stock kernel does not reach /init" \
		"within the CI budget there; minimal-net.sh covers netvsp and consomme" >&2
	exit 77
fi
HVMM_TEST_NAME=debian-net GUEST=debian BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-net.sh"
