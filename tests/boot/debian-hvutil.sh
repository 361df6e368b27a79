#!/bin/bash
# The stock Debian cloud kernel with --hv: hv_utils (a module, loaded from
# the initramfs) binds the shutdown, heartbeat and time-sync channels and
# SIGTERM powers the guest off through the shutdown service (minimal-
# hvutil.sh's checks with GUEST=debian). Skipped on PVM (see debian-smp1.sh).
source "$(dirname "$0")/lib.sh"
hvmm_skip_on_pvm "the stock kernel does not reach /init within the CI budget there;" \
	"minimal-hvutil.sh covers the utility devices"
HVMM_TEST_NAME=debian-hvutil GUEST=debian BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-hvutil.sh"
