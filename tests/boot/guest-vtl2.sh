#!/bin/bash
# --vtl2 (phase 1): the vtl2 test payload (tests/guests/vtl2.c) built into a
# VSM_ISOLATION IGVM file by `hvmm-igvm build --vsm` starts in VTL2 of a
# second KVM partition over the same RAM, checks VSM hypercalls, sets up
# VTL0 with SetVpRegisters, VtlReturns into it and gets a VtlCall back with
# a value and the status of a call VTL0 may not make, after VTL2 has
# intercepted its port write and advanced its RIP, then its port read
# (value through the assist page's vtl_return_rax, slow VtlReturn) and its
# RDMSR/WRMSR of an MSR KVM does not know, and finds VTL0's XMM3 and MXCSR
# after its VtlCall and a fast hypercall's XMM output (PASS/FAIL lines and
# GUEST-RESULT on COM3, where OpenHCL logs); with -p 2 it also starts VP 1 in VTL2
# (EnableVpVtl + StartVirtualProcessor), with -p 1 that is INVALID_VP_INDEX;
# with -p 3 VTL0's INIT/SIPI to APIC 2 must not start VP 2; VINA also comes
# for an interrupt VTL0's APIC requests (its self-IPI); VTL2's own STIMER0
# (direct) preempts VTL0 and STIMER1 (message) fills VTL2's SIMP slot. Also: the same file without
# --vtl2, and a NATIVE file with --vtl2, are one-line loader errors.
source "$(dirname "$0")/lib.sh"
need_kvm
vtl2_guest_build vtl2
"$TOOL" build -o "$OUT/native.igvm" --elf "$BUILD/tests/guests/vtl2.elf" || fail "hvmm-igvm build failed"
checks() {
	grep -qa 'VTL0 called back: RBX 0x5a5a1234' "$LOG" && grep -qa "$want" "$LOG" &&
		grep -qa 'intercept: entry reason 3, message 0x80010000, port 0x5a5, rax 0x77' "$LOG" &&
		grep -qa 'VTL0 read port 0x5a6: 0xc3, MSR 0xabc0de: 0x123456789abcdef' "$LOG" &&
		grep -qa 'after VtlCall: XMM3 0x1122334455667788 MXCSR 0x7f80' "$LOG" &&
		grep -qa "$held" "$LOG" &&
		grep -qa "VINA for VTL0's pending self-IPI: vina_status 1" "$LOG" &&
		grep -qa "VTL2 STIMER0 (direct 0x63): entry reason 2" "$LOG" &&
		grep -qa "VTL2 STIMER1 message: type 0x80000010, timer 1, expiration as armed" "$LOG" &&
		grep -qa "VTL2 reference TSC page: sequence [1-9][0-9]*, page time brackets" "$LOG"
}
held='VP 2 after VTL0.s INIT/SIPI: not started'
rc=0
for p in 1 2 3; do
	vtl2_guest_run p$p -p $p
	want="one VP: EnableVpVtl of VP 1 is INVALID_VP_INDEX"
	[ $p != 1 ] && want="VP 1 started in VTL2"
	vtl2_guest_verdict "-p $p" 21 checks "$(grep -a 'VTL0 called back' "$LOG"); $want" || rc=1
done
one_error() { # regex args...
	local re=$1
	shift
	hvmm_one_error "$re" "$@" -m 64MB --com1 none || rc=1
}
one_error "no NATIVE platform \(the file has VSM_ISOLATION\); VSM_ISOLATION needs --vtl2" \
	--igvm "$OUT/vtl2.igvm" --hv
one_error "no VSM_ISOLATION platform for --vtl2 \(the file has NATIVE\)" \
	--igvm "$OUT/native.igvm" --hv --vtl2
exit $rc
