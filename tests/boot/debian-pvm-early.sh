#!/bin/bash
# Where KVM emulates guest ring 0 (kvm_pvm): the stock Debian cloud kernel,
# unmodified, gets through hvmm's loader (its LZ4 bzImage unpacked on the
# host), early boot and everything hvmm emulates there (XSAVE family, MXCSR,
# POPCNT, LSL, SMAP, int3) and through its ring-0 vector code: the RNG's
# BLAKE2s (AVX-512VL on these hosts, CONFIG_CRYPTO_BLAKE2S_X86=y), first
# run right after the clocksource switch, then checked against the generic C
# code by lib/crypto/blake2s.c's self-test (device initcall), whose failure
# the kernel would print. We wait for the last late initcall's line (EVM)
# and stop there: past it the kernel spends tens of minutes of emulated
# ring 0 in computation (bignum multiplication, RSA by the look of it, and
# ftrace's kallsyms checks) before /init, too long for CI. If hvmm stops on an instruction it
# does not emulate, the test fails with that report. Not run on hardware
# KVM, where debian-smp1.sh boots this kernel fully.
source "$(dirname "$0")/lib.sh"
need_kvm
[ -e /sys/module/kvm_pvm ] || skip "KVM here is not PVM; debian-smp1.sh covers this kernel"
guest_files debian
rm -f "$OUT/com1.log"
"$HVMM" -k "$KERNEL" -r "$INITRD" -m 1GB --com1 "file=$OUT/com1.log" \
	-c console=ttyS0 >"$OUT/hvmm.log" 2>&1 &
pid=$!
start=$SECONDS
wait_for "$OUT/com1.log" 'evm: HMAC attrs|HVMM-INIT-OK' 2700 "$pid"
reached=$?
elapsed=$((SECONDS - start))
if kill -0 "$pid" 2>/dev/null; then
	kill -INT "$pid" 2>/dev/null # stop at once (SIGTERM would wait for the guest)
	wait "$pid" 2>/dev/null
	st=running
else
	wait "$pid" 2>/dev/null
	st=$?
fi
if grep -q 'instruction not emulated' "$OUT/hvmm.log"; then
	fail "hvmm stopped on an instruction it does not emulate:" \
		"$(grep -m1 'instruction bytes' "$OUT/hvmm.log" | sed 's/.*rip: //'); log $OUT/hvmm.log"
fi
[ "$reached" = 0 ] || [ "$st" = running ] ||
	fail "hvmm exited (status $st) after ${elapsed} s, before the late initcalls;" \
		"log $OUT/hvmm.log, console $OUT/com1.log"
[ "$reached" = 0 ] || fail "did not reach the late initcalls in 2700 s; console in $OUT/com1.log"
grep -q 'Linux version .*-cloud-amd64' "$OUT/com1.log" || fail "no Debian kernel banner"
grep -q 'x86/fpu: Enabled xstate features' "$OUT/com1.log" || fail "did not get past FPU init"
grep -q 'Trying to unpack rootfs image' "$OUT/com1.log" ||
	fail "no line after the first BLAKE2s (clocksource switch, then rootfs unpack)"
if grep -q 'blake2s.*self-test.*FAIL' "$OUT/com1.log"; then
	fail "the kernel's BLAKE2s self-test failed: vector emulation is wrong"
fi
log "ok: past BLAKE2s (vector code emulated, self-test quiet) to the late initcalls in ${elapsed} s"
