/*
 * Freestanding VTL2 runtime for test payloads and the future paravisor
 * (TLFS "Virtual Secure Mode": SetVpRegisters of a lower VTL, VtlReturn,
 * ModifyVtlProtectionMask, EnableVpVtl/StartVirtualProcessor's
 * HV_INITIAL_VP_CONTEXT, intercept messages in the VP assist page or the
 * SIMP; shared/docs/igvm-and-vsm.md B-C): enable VTL2's hypercall page,
 * bring up VTL0 in long mode (on page tables and a GDT VTL2 builds in
 * VTL0-visible memory, or on VTL2's own), return to it with its general
 * registers restored and get them back at the next entry (VtlCall,
 * intercept or interrupt), protect VTL0's pages, decode intercept messages.
 *
 * Ring 0 of VTL2, one VP (the state below is global). Needs hvcall_lib.
 */
#ifndef GUEST_VTL2_RT_H
#define GUEST_VTL2_RT_H

#include "hvcall_lib.h"
#include "x86.h"

/* VTL2's hypercall page, the input/output pages of its calls, its VP assist page. */
extern u8 vtl2_rt_hc_page[4096], vtl2_rt_hc_in[4096], vtl2_rt_hc_out[4096];
extern u8 vtl2_rt_assist[4096];

/*
 * hvcall_init on the pages above (guest OS id 0x8100000000000001), then
 * hvcall_vsm_init. Returns -1 when the hypercall page did not appear (as
 * hvcall_init; *vsm_status 0xffff then), else 0 with *vsm_status the
 * status of reading HvRegisterVsmCodePageOffsets.
 */
int vtl2_rt_hvcall_init(struct hvcall *h, u16 *vsm_status);
/* Enables vtl2_rt_assist as this VP's assist page (HV_X64_MSR_VP_ASSIST_PAGE). */
void vtl2_rt_enable_assist(void);
/*
 * The usual start of a VTL2 payload, in its current test: the hypercall
 * page (guest_abort without a VTL return stub), the VP assist page, and
 * VsmPartitionConfig = config (1 << 12: intercept messages in the assist
 * page). The status of the VsmPartitionConfig write (checked here too).
 */
u16 vtl2_rt_begin(struct hvcall *h, u64 config);

/*
 * VTL0's first instructions, as an asm string for a payload's VTL0 code:
 * guest OS id 0x8100000000000001 (HV_X64_MSR_GUEST_OS_ID), then the
 * hypercall page at `page` (an asm immediate: a page-aligned symbol or
 * number below 4 GiB) enabled (HV_X64_MSR_HYPERCALL). Clobbers EAX, ECX, EDX.
 */
#define VTL2_RT_VTL0_HV_INIT_ASM(page)                                            \
	"	mov $0x40000000, %ecx\n"      /* HV_X64_MSR_GUEST_OS_ID */           \
	"	mov $1, %eax\n"                                                       \
	"	mov $0x8100, %edx\n"                                                  \
	"	wrmsr\n"                                                              \
	"	mov $0x40000001, %ecx\n"      /* HV_X64_MSR_HYPERCALL, enabled */    \
	"	mov $" page ", %eax\n"                                                \
	"	or $1, %eax\n"                                                        \
	"	xor %edx, %edx\n"                                                     \
	"	wrmsr\n"

/* VTL0's general registers as it left VTL2's last entry: RBX RDX RSI RDI RBP R8-R15. */
enum { VTL2_RT_RBX, VTL2_RT_RDX, VTL2_RT_RSI, VTL2_RT_RDI, VTL2_RT_RBP, VTL2_RT_R8,
       VTL2_RT_R9, VTL2_RT_R10, VTL2_RT_R11, VTL2_RT_R12, VTL2_RT_R13, VTL2_RT_R14,
       VTL2_RT_R15, VTL2_RT_NGPRS };
extern u64 vtl2_rt_vtl0_gprs[VTL2_RT_NGPRS];

/*
 * VtlReturn through h's return stub (needs hvcall_vsm_init) with VTL0's
 * registers from vtl2_rt_vtl0_gprs. fast: RAX/RCX are the return's own
 * (RCX 1); slow (RCX 0): VTL0 gets RAX/RCX from the assist page's
 * vtl_return_rax/rcx. Returns at the next entry into VTL2 with VTL0's
 * registers saved there again.
 */
void vtl2_rt_return(const struct hvcall *h, bool fast);

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
#define VTL2_RT_REG_CR0    0x00040000u
#define VTL2_RT_REG_CR3    0x00040002u
#define VTL2_RT_REG_CR4    0x00040003u
#define VTL2_RT_REG_EFER   0x00080001u
#define VTL2_RT_REG_LSTAR  0x00080009u
#define VTL2_RT_REG_ES     0x00060000u
#define VTL2_RT_REG_CS     0x00060001u
#define VTL2_RT_REG_SS     0x00060002u
#define VTL2_RT_REG_DS     0x00060003u
#define VTL2_RT_REG_TR     0x00060007u
#define VTL2_RT_REG_IDTR   0x00070000u
#define VTL2_RT_REG_GDTR   0x00070001u
/* SetVpRegisters of VTL0 with r[0..n) in one call (taken as a whole). Status. */
u16 vtl2_rt_set_vtl0(const struct hvcall *h, const struct vtl2_rt_reg *r, u16 n);

/*
 * Builds VTL0's long-mode world in 4 pages at `area` (identity-mapped,
 * VTL0-visible): page tables identity-mapping the first 1 GiB in 2 MiB
 * pages, user-accessible (area, +0x1000, +0x2000) and a copy of VTL2's GDT (+0x3000); then
 * SetVpRegisters of VTL0: those, no IDT, VTL2's CR0/CR4/EFER and segment
 * selectors, RIP `entry`, RSP `stack_top`, RFLAGS 2. Status.
 */
u16 vtl2_rt_setup_vtl0(const struct hvcall *h, u64 area, u64 entry, u64 stack_top);
/*
 * The same SetVpRegisters of VTL0 on VTL2's own CR3, GDT and IDT (VTL0
 * code linked into VTL2's image, for payloads that do not hide it). Status.
 */
u16 vtl2_rt_setup_vtl0_shared(const struct hvcall *h, u64 entry, u64 stack_top);

/*
 * HV_INITIAL_VP_CONTEXT (224 bytes at ctx) for EnableVpVtl and
 * StartVirtualProcessor: RIP `rip`, RSP `rsp`, RFLAGS 2, VTL2's own
 * segments, GDT, IDT, EFER, CR0/CR3/CR4 and the default PAT.
 */
#define VTL2_RT_VP_CONTEXT_SIZE 224u
void vtl2_rt_vp_context(u8 *ctx, u64 rip, u64 rsp);

/*
 * ModifyVtlProtectionMask for VTL0: pages [first_page, first_page + n)
 * (n <= 64) get HV_MAP_GPA flags `flags`. Status.
 */
#define VTL2_RT_MAP_READ  0x1u
#define VTL2_RT_MAP_WRITE 0x2u
#define VTL2_RT_MAP_KX    0x4u
#define VTL2_RT_MAP_UX    0x8u
u16 vtl2_rt_protect(const struct hvcall *h, u64 first_page, u16 n, u32 flags);

/*
 * InstallIntercept (HV_INPUT_INSTALL_INTERCEPT) for this partition:
 * access mask (1 read, 2 write, 4 execute), intercept type (0
 * X64_IO_PORT, 1 X64_MSR, ...) and its parameter (the port, the MSR). Status.
 */
u16 vtl2_rt_install_intercept(const struct hvcall *h, u32 access, u32 type, u64 param);

/*
 * AssertVirtualInterrupt for this partition: a fixed interrupt, `vector`,
 * to APIC 0 (the BSP) of `vtl`, level-triggered if `level`. Status.
 */
u16 vtl2_rt_assert_interrupt(const struct hvcall *h, u8 vtl, u32 vector, bool level);

/* HV message types of the intercepts decoded below. */
#define VTL2_RT_MSG_UNMAPPED_GPA   0x80000000u
#define VTL2_RT_MSG_GPA_INTERCEPT  0x80000001u
#define VTL2_RT_MSG_HYPERCALL      0x80000050u
#define VTL2_RT_MSG_IO_PORT        0x80010000u
#define VTL2_RT_MSG_MSR            0x80010001u
/* The assist page's VTL entry reasons. */
#define VTL2_RT_ENTRY_VTL_CALL  1u
#define VTL2_RT_ENTRY_INTERRUPT 2u
#define VTL2_RT_ENTRY_INTERCEPT 3u

/* An intercept message, decoded: the header, then the fields of its type (others 0). */
struct vtl2_rt_intercept {
	u32 entry_reason;    /* the assist page's VTL entry reason (vtl2_rt_read_intercept) */
	u32 type;            /* HV message type */
	u8 access;           /* 0 read, 1 write, 2 execute */
	u8 insn_len;
	u8 cpl;              /* execution state bits 0-1 */
	u16 cs;              /* CS selector */
	u64 rip;
	/* memory intercepts (GPA_INTERCEPT, UNMAPPED_GPA) */
	u8 access_info;      /* bit 0 GVA valid */
	u64 gva, gpa;
	/*
	 * I/O port (port, io_info, rax, rcx, rsi, rdi), MSR (msr, rdx, rax),
	 * hypercall (rcx, rdx, r8, rsi, rdi)
	 */
	u16 port;
	u8 io_info;          /* bits 0-2 access size, 3 string, 4 rep */
	u32 msr;
	u64 rax, rcx, rdx, r8, rsi, rdi;
	/* I/O port and memory intercepts: the instruction bytes VTL2 got */
	u8 insn_count;
	u8 insn[16];
};
/* Decodes the HV_MESSAGE at msg (an assist page's or a SIMP slot's); entry_reason 0. */
void vtl2_rt_decode_message(const u8 *msg, struct vtl2_rt_intercept *m);
/* The message in the assist page (offset 112) and the page's entry reason. */
void vtl2_rt_read_intercept(const u8 *assist, struct vtl2_rt_intercept *m);
/* The assist page's VTL entry reason. */
u32 vtl2_rt_entry_reason(const u8 *assist);

#endif
