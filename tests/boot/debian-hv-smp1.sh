#!/bin/bash
# The stock Debian cloud kernel with --hv and 1 vCPU(s): Hyper-V detected,
# the TSC-page clocksource, hv_vmbus connected (minimal-hv.sh's checks with
# GUEST=debian; the Hyper-V modules load from the initramfs).
#
# Skipped where KVM emulates guest ring 0 (kvm_pvm): the stock kernel does
# not reach /init within CI's budget there (see debian-smp1.sh); the same
# checks run on the minimal kernel (minimal-hv*.sh). On hardware KVM this
# test runs.
source "$(dirname "$0")/lib.sh"
hvmm_skip_on_pvm "the stock kernel does not reach /init within the CI budget there" \
	"(ring 0 is emulated); minimal-hv*.sh cover --hv"
HVMM_TEST_NAME=debian-hv-smp1 GUEST=debian NCPU=1 BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-hv.sh"
