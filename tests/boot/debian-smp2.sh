#!/bin/bash
# The stock Debian cloud kernel with 2 vCPUs and 1 GB (see minimal-smp1.sh).
#
# Where KVM emulates guest ring 0 (kvm_pvm) the test steers the kernel away
# from vector code in ring 0 with clearcpuid= (the one thing hvmm cannot
# emulate there yet; see debian-smp1.sh) so that the rest of the stock
# kernel's boot is still proven on such hosts. The test says so in its log.
# On hardware KVM no parameter is added.
EXTRA=()
if [ -e /sys/module/kvm_pvm ]; then
	echo "[debian-smp2] note: PVM host: adding clearcpuid=ssse3,avx,avx2,avx512f" \
		"(the kernel would otherwise run AVX-512 BLAKE2s in ring 0)" >&2
	EXTRA=(-c clearcpuid=ssse3,avx,avx2,avx512f)
fi
HVMM_TEST_NAME=debian-smp2 GUEST=debian NCPU=2 MEM_MB=1024 BOOT_TIMEOUT=4200 \
	HVMM_EXTRA_ARGS="${EXTRA[*]}" exec bash "$(dirname "$0")/minimal-smp1.sh"
