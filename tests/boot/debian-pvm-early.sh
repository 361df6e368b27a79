#!/bin/bash
# Where KVM emulates guest ring 0 (kvm_pvm): the stock Debian cloud kernel,
# unmodified, gets through hvmm's loader (its LZ4 bzImage unpacked on the
# host), early boot and everything hvmm emulates there (XSAVE family, MXCSR,
# POPCNT, LSL, SMAP, int3), up to its first vector instruction in ring 0
# (the RNG's BLAKE2s, AVX-512 on these hosts), which hvmm cannot emulate
# yet. hvmm must then stop with a clear report of that instruction —
# bytes, RIP and registers, exit status 1 — not hang or crash. When vector
# emulation exists this test should become a full boot (debian-smp1.sh).
# Not run on hardware KVM, where debian-smp1.sh boots this kernel fully.
source "$(dirname "$0")/lib.sh"
need_kvm
[ -e /sys/module/kvm_pvm ] || skip "KVM here is not PVM; debian-smp1.sh covers this kernel"
guest_files debian
timeout 3000 "$HVMM" -k "$KERNEL" -r "$INITRD" -m 1GB --com1 "file=$OUT/com1.log" \
	-c console=ttyS0 >"$OUT/hvmm.log" 2>&1
st=$?
[ "$st" != 124 ] || fail "hvmm hung (killed after 3000 s); console in $OUT/com1.log"
grep -q 'Linux version .*-cloud-amd64' "$OUT/com1.log" || fail "no Debian kernel banner"
grep -q 'x86/fpu: Enabled xstate features' "$OUT/com1.log" || fail "did not get past FPU init"
grep -q 'Switched to clocksource' "$OUT/com1.log" || fail "did not reach the clocksource switch"
if grep -q '^HVMM-INIT-OK' "$OUT/com1.log"; then
	log "the kernel reached /init: vector instructions must be emulated now;" \
		"make this test a full boot"
	exit 0
fi
[ "$st" = 1 ] || fail "hvmm exited $st, expected 1 with a report"
grep -q 'stopped: KVM internal error.*instruction not emulated' "$OUT/hvmm.log" ||
	fail "no clear stop report in $OUT/hvmm.log"
grep -q 'instruction bytes at rip:' "$OUT/hvmm.log" || fail "report lacks instruction bytes"
grep -q 'rip=ffffffff' "$OUT/hvmm.log" || fail "report lacks registers"
log "ok: stopped at $(grep -m1 'instruction bytes' "$OUT/hvmm.log" | sed 's/.*rip: //') with a full report"
