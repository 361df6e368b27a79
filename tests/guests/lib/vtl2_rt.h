/*
 * Freestanding VTL2 runtime for test payloads and the future paravisor
 * (TLFS "Virtual Secure Mode": SetVpRegisters of a lower VTL, VtlReturn,
 * ModifyVtlProtectionMask, VP assist page intercept messages;
 * shared/docs/igvm-and-vsm.md B-C): bring up VTL0 in long mode on page
 * tables and a GDT VTL2 builds in VTL0-visible memory, return to it with
 * its general registers restored and get them back at the next entry
 * (VtlCall or intercept), protect VTL0's pages, read intercept messages.
 *
 * Ring 0 of VTL2, one VP (the state below is global). Needs hvcall_lib.
 */
#ifndef GUEST_VTL2_RT_H
#define GUEST_VTL2_RT_H

#include "hvcall_lib.h"
#include "x86.h"

/* VTL0's general registers as it left VTL2's last entry: RBX RDX RSI RDI RBP R8-R15. */
enum { VTL2_RT_RBX, VTL2_RT_RDX, VTL2_RT_RSI, VTL2_RT_RDI, VTL2_RT_RBP, VTL2_RT_R8,
       VTL2_RT_R9, VTL2_RT_R10, VTL2_RT_R11, VTL2_RT_R12, VTL2_RT_R13, VTL2_RT_R14,
       VTL2_RT_R15, VTL2_RT_NGPRS };
extern u64 vtl2_rt_vtl0_gprs[VTL2_RT_NGPRS];

/*
 * Fast VtlReturn through the hypercall page's return stub with VTL0's
 * registers from vtl2_rt_vtl0_gprs (RAX/RCX: the return's own); returns at
 * the next entry into VTL2 with VTL0's registers saved there again.
 */
void vtl2_rt_return(void *stub);

/* HV_X64_SEGMENT_REGISTER's second word: limit | selector << 32 | attributes << 48. */
u64 vtl2_rt_seg(u32 limit, u16 sel, u16 attr);

/* One register for SetVpRegisters: HV register name, 128-bit value. */
struct vtl2_rt_reg {
	u32 name;
	u64 lo, hi;
};
#define VTL2_RT_REG_RIP    0x00020010u
#define VTL2_RT_REG_RSP    0x00020004u
#define VTL2_RT_REG_RFLAGS 0x00020011u
#define VTL2_RT_REG_CS     0x00060001u
#define VTL2_RT_REG_SS     0x00060002u
/* SetVpRegisters of VTL0 with r[0..n) in one call (taken as a whole). Status. */
u16 vtl2_rt_set_vtl0(const struct hvcall *h, const struct vtl2_rt_reg *r, u16 n);

/*
 * Builds VTL0's long-mode world in 4 pages at `area` (identity-mapped,
 * VTL0-visible): page tables identity-mapping the first 1 GiB in 2 MiB
 * pages, user-accessible (area, +0x1000, +0x2000) and a copy of VTL2's GDT (+0x3000); then
 * SetVpRegisters of VTL0: those, VTL2's CR0/CR4/EFER and segment
 * selectors, RIP `entry`, RSP `stack_top`, RFLAGS 2. Status.
 */
u16 vtl2_rt_setup_vtl0(const struct hvcall *h, u64 area, u64 entry, u64 stack_top);

/*
 * ModifyVtlProtectionMask for VTL0: pages [first_page, first_page + n)
 * (n <= 64) get HV_MAP_GPA flags `flags`. Status.
 */
#define VTL2_RT_MAP_READ  0x1u
#define VTL2_RT_MAP_WRITE 0x2u
#define VTL2_RT_MAP_KX    0x4u
#define VTL2_RT_MAP_UX    0x8u
u16 vtl2_rt_protect(const struct hvcall *h, u64 first_page, u16 n, u32 flags);

/* The intercept message in VTL2's VP assist page (offset 112), decoded. */
struct vtl2_rt_intercept {
	u32 entry_reason;    /* the assist page's VTL entry reason (3: intercept) */
	u32 type;            /* HV message type */
	u8 access;           /* 0 read, 1 write, 2 execute */
	u8 insn_len;
	u8 cpl;              /* execution state bits 0-1 */
	u16 cs;              /* CS selector */
	u64 rip;
	/* memory intercepts */
	u8 access_info;      /* bit 0 GVA valid */
	u64 gva, gpa;
};
void vtl2_rt_read_intercept(const u8 *assist, struct vtl2_rt_intercept *m);

#endif
