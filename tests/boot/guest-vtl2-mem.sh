#!/bin/bash
# --vtl2 memory: the vtl2_mem payload (tests/guests/vtl2_mem.c) built by
# `hvmm-igvm build --vsm --relocatable` (its image is VTL2-protectable
# REQUIRED_MEMORY, which hvmm hides from VTL0) protects a page of VTL0's
# with ModifyVtlProtectionMask (read-only on every other page of 128 stops
# at the 64-slot cap with INSUFFICIENT_MEMORY): VTL0 reads it read-only, its write and then
# (no access) its read come to VTL2 as GPA intercepts in the VP assist page
# with GPA, access type, GVA and instruction length (REP STOS, LOCK ADD and
# XCHG too, put back at their start: RDI/EDI as before them; a LOCK ADD to
# the no-access page comes as its read, length 4); VTL0's read of VTL2's
# image too, and its read of a GPA that is neither RAM nor a device comes
# as UNMAPPED_GPA; from ring 3 (KVM on PVM: native, shadow-paging faults) its
# read of the no-access page and write of the read-only page come with CPL
# 3; VTL2 advances VTL0's RIP each time (PASS/FAIL lines and GUEST-RESULT
# on COM3). One VP. Fails if protections or the VTL2 carve-out are not
# enforced (an access goes through and the next entry is not the intercept).
source "$(dirname "$0")/lib.sh"
need_kvm
vtl2_guest_build vtl2_mem --relocatable
checks() {
	grep -qa 'sparse read-only pages: status 0xb after' "$LOG" &&
		grep -qa 'write to read-only: entry 3 message 0x80000001 access 1 gpa 0x807000' "$LOG" &&
		grep -qa 'rep stos to read-only: entry 3 message 0x80000001 access 1 gpa 0x807000 gva 0x807000 (info 3) rip 0x[0-9a-f]*+2 ' "$LOG" &&
		grep -qa 'lock add to read-only: entry 3 message 0x80000001 access 1 gpa 0x807000' "$LOG" &&
		grep -qa 'xchg with read-only: entry 3 message 0x80000001 access 1 gpa 0x807000' "$LOG" &&
		grep -qa 'read of no-access: entry 3 message 0x80000001 access 0 gpa 0x807000' "$LOG" &&
		grep -qa 'lock add to no-access: entry 3 message 0x80000001 access 0 gpa 0x807000 gva 0x807000 (info 3) rip 0x[0-9a-f]*+4 ' "$LOG" &&
		grep -qa "read of VTL2's memory: entry 3 message 0x80000001 access 0" "$LOG" &&
		grep -qa 'read of an unmapped GPA: entry 3 message 0x80000000 access 0 gpa 0x20000000' "$LOG" &&
		grep -qa 'ring 3 write to read-only: entry 3 message 0x80000001 access 1 gpa 0x807000 .* cpl 3' "$LOG"
}
vtl2_guest_run p1 -p 1
vtl2_guest_verdict "" 10 checks "$(grep -a "read of VTL2's memory" "$LOG")"
