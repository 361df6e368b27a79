#!/bin/bash
# The stock Debian cloud kernel (linux-image-cloud-amd64), unmodified, with
# 1 vCPU (see minimal-smp1.sh). Slow where KVM emulates guest ring 0.
HVMM_TEST_NAME=debian-smp1 GUEST=debian NCPU=1 MEM_MB=1024 BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-smp1.sh"
