#!/bin/bash
# --vtl2 string port I/O, page-crossing and retarget intercepts: the vtl2_io
# payload (tests/guests/vtl2_io.c) built by `hvmm-igvm build --vsm` starts in
# VTL2, intercepts VTL0's `rep outsb`, `outsb`, `rep insb` and `insb`
# (message with the string/rep bits, RCX/RSI/RDI and RIP as before the
# instruction, the INS destination untouched; VTL2 emulates and VTL0 finds
# the registers and bytes VTL2 gave), an `out imm8` whose first byte is the
# last of a page (both instruction bytes, length 2; VTL2's register page
# shows VTL0 there and moves it past), and HvRetargetDeviceInterrupt
# of an unknown device (hypercall intercept with RCX/RDX/R8, completed by
# VTL2; INVALID_DEVICE_ID once the intercept is removed). PASS/FAIL lines and
# GUEST-RESULT on COM3; -p 1 and -p 2.
source "$(dirname "$0")/lib.sh"
need_kvm
vtl2_guest_build vtl2_io
checks() {
	grep -qa 'rep outsb: entry 3 message 0x80010000 access 1 port 0x5b0 info 0x19 rcx 4 ' "$LOG" &&
		grep -qa 'rep insb: destination at the intercept ee ee ee ee' "$LOG" &&
		grep -qa 'page-crossing out: entry 3 message 0x80010000 port 0x7a rip 0x[0-9a-f]*fff+2 bytes 16 \[e6 7a\]' "$LOG" &&
		grep -qa "register page: valid 1 vtl 0 rip at the out rsp VTL0's cs 0x" "$LOG" &&
		grep -qa 'retarget: entry 3 message 0x80000050 rcx 0x7e ' "$LOG" &&
		grep -qa 'VTL0 saw: entry 1, rep outsb RSI +4 RCX 0, outsb RSI +5, rep insb RDI +4 RCX 0, insb RDI +1, buffers a1 a2 a3 a4 / 5c, retarget 0x0 then 0x57' "$LOG"
}
rc=0
for p in 1 2; do
	vtl2_guest_run p$p -p $p
	vtl2_guest_verdict "-p $p" 8 checks "$(grep -a 'VTL0 saw' "$LOG")" || rc=1
done
exit $rc
