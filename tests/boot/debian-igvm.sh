#!/bin/bash
# The stock Debian cloud kernel and its initramfs packed into a NATIVE IGVM
# file by `hvmm-igvm build --kernel --initrd --cmdline` and booted with
# `hvmm --igvm` to the shell: minimal-igvm.sh's checks with GUEST=debian.
# Skipped on PVM (see debian-smp1.sh).
source "$(dirname "$0")/lib.sh"
hvmm_skip_on_pvm "the stock kernel does not reach /init within the CI budget there;" \
	"minimal-igvm.sh covers the IGVM linux-direct path"
HVMM_TEST_NAME=debian-igvm GUEST=debian BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-igvm.sh"
