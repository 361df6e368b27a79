#!/bin/bash
# The stock Debian cloud kernel (linux-image-cloud-amd64), unmodified and
# with no extra kernel parameters, 1 vCPU (see minimal-smp1.sh).
#
# Skipped where KVM emulates guest ring 0 (kvm_pvm): there the host's vector
# extensions stay visible to the guest whatever CPUID hvmm sets, the kernel's
# x86 BLAKE2s (CONFIG_CRYPTO_BLAKE2S_X86=y, used by the RNG at boot) runs
# AVX-512/SSSE3 code in ring 0, and hvmm does not emulate vector
# instructions yet. debian-smp2.sh covers the rest of this kernel's boot
# there. On hardware KVM this test runs.
if [ -e /sys/module/kvm_pvm ]; then
	echo "[debian-smp1] SKIP: KVM here is PVM; the stock kernel executes AVX-512 in" \
		"ring 0 (BLAKE2s) and hvmm does not emulate vector instructions yet" >&2
	exit 77
fi
HVMM_TEST_NAME=debian-smp1 GUEST=debian NCPU=1 MEM_MB=1024 BOOT_TIMEOUT=3600 \
	exec bash "$(dirname "$0")/minimal-smp1.sh"
