#!/bin/bash
# The stock Debian cloud kernel with --hv: its hv_netvsc (a module, loaded
# from the initramfs) on netvsp + consomme: DHCP, guest -> host and host ->
# guest transfers compared end to end (minimal-net.sh's checks with
# GUEST=debian). Skipped on PVM (see debian-smp1.sh).
source "$(dirname "$0")/lib.sh"
hvmm_skip_on_pvm "the stock kernel does not reach /init within the CI budget there;" \
	"minimal-net.sh covers netvsp and consomme"
HVMM_TEST_NAME=debian-net GUEST=debian BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-net.sh"
