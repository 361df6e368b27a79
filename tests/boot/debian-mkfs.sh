#!/bin/bash
# The stock Debian cloud kernel with --hv: its hv_storvsc (a module, loaded
# from the initramfs) and built-in nvme driver partition and format a disk
# each, and the host checks the files in the images (minimal-mkfs.sh's
# checks with GUEST=debian-tools). Skipped on PVM (see debian-smp1.sh).
source "$(dirname "$0")/lib.sh"
hvmm_skip_on_pvm "the stock kernel does not reach /init within the CI budget there;" \
	"minimal-mkfs.sh covers storvsc and NVMe"
HVMM_TEST_NAME=debian-mkfs GUEST=debian-tools BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-mkfs.sh"
