#!/bin/bash
# The stock Debian cloud kernel with 2 vCPUs (see minimal-smp1.sh).
HVMM_TEST_NAME=debian-smp2 GUEST=debian NCPU=2 MEM_MB=1024 BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-smp1.sh"
