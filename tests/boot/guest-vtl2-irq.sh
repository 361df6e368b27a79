#!/bin/bash
# --vtl2 APIC EOI intercepts and VTL0's IOAPIC: the vtl2_irq payload
# (tests/guests/vtl2_irq.c) built by `hvmm-igvm build --vsm` starts in VTL2,
# installs the ApicEoi intercept (write mask only), asserts a
# level-triggered interrupt into VTL0 and gets VTL0's EOI of it as
# HV_X64_APIC_EOI_MESSAGE (VP 0, vector 0x51); edge-triggered vectors' EOIs,
# and level ones once the intercept is removed, stay VTL0's. The MTRRs are
# shared: each VTL reads what the other wrote. VTL0 reads
# hvmm's IOAPIC (version 0x00170020, not KVM's) and takes several RTC
# interrupts through pin 8 level-triggered, which needs each EOI to clear
# the pin's remote IRR (KVM's EOI exit to hvmm). PASS/FAIL lines and
# GUEST-RESULT on COM3; -p 1 and -p 2.
source "$(dirname "$0")/lib.sh"
need_kvm
vtl2_guest_build vtl2_irq
checks() {
	grep -qa 'InstallIntercept ApicEoi: read 0x5, write 0x0' "$LOG" &&
		grep -qa 'level 0x51: entry 3 message 0x80010004 vp 0 vector 0x51, VTL0 took 1 ' "$LOG" &&
		grep -qa 'edge 0x52 then edge 0x51: entries 1 1, VTL0 took 2 then 3 (last 0x51)' "$LOG" &&
		grep -qa 'intercept removed, level 0x51: entry 1, VTL0 took 4' "$LOG" &&
		grep -qa 'shared MTRRs: VTL0 read MTRR_DEF_TYPE 0xc06 (was 0x[0-9a-f]*), VTL2 reads PhysBase0 0x80000006' "$LOG" &&
		grep -qa 'VTL0 IOAPIC: version 0x170020, RTC interrupts through pin 8 (level): [4-9]' "$LOG"
}
rc=0
for p in 1 2; do
	vtl2_guest_run p$p -p $p
	vtl2_guest_verdict "-p $p" 7 checks "$(grep -a 'VTL0 IOAPIC' "$LOG")" || rc=1
done
exit $rc
