#!/bin/bash
# The stock Debian cloud kernel with --hv: its hv_storvsc (a module, loaded
# from the initramfs) and built-in nvme driver partition and format a disk
# each, and the host checks the files in the images (minimal-mkfs.sh's
# checks with GUEST=debian-tools). Skipped on PVM (see debian-smp1.sh).
if [ -e /sys/module/kvm_pvm ]; then
	echo "[debian-mkfs] SKIP: KVM here is PVM; the stock kernel does not reach /init" \
		"within the CI budget there; minimal-mkfs.sh covers storvsc and NVMe" >&2
	exit 77
fi
HVMM_TEST_NAME=debian-mkfs GUEST=debian-tools BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-mkfs.sh"
