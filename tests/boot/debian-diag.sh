#!/bin/bash
# The stock Debian cloud kernel with --hv running hvmm-agent over its
# hv_sock module: minimal-diag.sh's checks (kmsg shows the boot log, `run
# uname -r` gives the release and status, `file -p /proc/cpuinfo`, shell,
# reconnect across a reboot) with GUEST=debian, whose initramfs gets this
# build's agent appended (lib.sh agent_initrd). Skipped on PVM (see
# debian-smp1.sh).
source "$(dirname "$0")/lib.sh"
hvmm_skip_on_pvm "the stock kernel does not reach /init within the CI budget there;" \
	"minimal-diag.sh covers the agent and hvmm-diag"
HVMM_TEST_NAME=debian-diag GUEST=debian BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-diag.sh"
