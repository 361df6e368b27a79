/*
 * Virtual Secure Mode: Virtual Trust Levels of one partition (TLFS "Virtual
 * Secure Mode", hypercalls HvCallEnablePartitionVtl ... HvCallPostMessageDirect;
 * facts in shared/docs/igvm-and-vsm.md parts B and C). This layer is pure
 * logic: which VTLs are enabled on the partition and on each VP, which VTL
 * each VP runs, the per-(VP, VTL) synthetic state (hypercall page, VP assist
 * page, SynIC registers, VINA), the VTL-2 intercept and protection requests,
 * and the VSM hypercalls with their argument checks and TLFS status codes.
 * Everything that touches the machine goes through `struct vsm_ops`, which
 * the KVM wiring (one KVM VM per VTL, docs/ARCHITECTURE.md "Virtual Trust
 * Levels") implements and the unit tests fake.
 *
 * Locking: one mutex per partition (vsm->lock), held across a whole
 * hypercall. The ops are called with it held and must not call back into
 * vsm. Guest memory is only reached through ops->read_gpa/write_gpa.
 */
#ifndef HVMM_HV_VSM_H
#define HVMM_HV_VSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/hv.h"
#include "x86/regs.h"

/* VTLs hvmm models: 0 (the guest) up to 2 (the paravisor). */
#define VSM_MAX_VTL   2
#define VSM_NUM_VTLS  (VSM_MAX_VTL + 1)
#define VSM_MAX_VPS   1024
#define HV_PAGE_SIZE_VSM 4096u

/* ---- Status codes beyond hv.h (TLFS HV_STATUS) ---- */
#define HV_STATUS_INVALID_PARTITION_ID      0x000D
#define HV_STATUS_INVALID_VP_INDEX          0x000E
#define HV_STATUS_INVALID_REGISTER_VALUE    0x0050
#define HV_STATUS_INVALID_VTL_STATE         0x0051
#define HV_STATUS_FEATURE_UNAVAILABLE       0x001E
#define HV_STATUS_VTL_ALREADY_ENABLED       0x0086

/* ---- Hypercall codes (TLFS; shared/docs/igvm-and-vsm.md §C.2) ---- */
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE     0x0002
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST      0x0003
#define HVCALL_MODIFY_VTL_PROTECTION_MASK      0x000C
#define HVCALL_ENABLE_PARTITION_VTL            0x000D
#define HVCALL_ENABLE_VP_VTL                   0x000F
#define HVCALL_VTL_CALL                        0x0011
#define HVCALL_VTL_RETURN                      0x0012
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX  0x0013
#define HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX   0x0014
#define HVCALL_INSTALL_INTERCEPT               0x004D
#define HVCALL_GET_VP_REGISTERS                0x0050
#define HVCALL_SET_VP_REGISTERS                0x0051
#define HVCALL_TRANSLATE_VIRTUAL_ADDRESS       0x0052
#define HVCALL_ASSERT_VIRTUAL_INTERRUPT        0x0094
#define HVCALL_START_VIRTUAL_PROCESSOR         0x0099
#define HVCALL_GET_VP_INDEX_FROM_APIC_ID       0x009A
#define HVCALL_TRANSLATE_VIRTUAL_ADDRESS_EX    0x00AC
#define HVCALL_SIGNAL_EVENT_DIRECT             0x00C0
#define HVCALL_POST_MESSAGE_DIRECT             0x00C1

#define HV_PARTITION_ID_SELF  UINT64_MAX
#define HV_VP_INDEX_SELF      0xFFFFFFFEu

/* HV_INPUT_VTL */
#define HV_INPUT_VTL_TARGET(v)  ((unsigned)((v) & 0xf))
#define HV_INPUT_VTL_USE_TARGET 0x10u
#define HV_INPUT_VTL_RESERVED   0xe0u

/* ---- Register names (HV_REGISTER_NAME, x64) ---- */
#define HV_X64_REGISTER_RAX        0x00020000u  /* .. R15 = 0x2000F */
#define HV_X64_REGISTER_RSP        0x00020004u
#define HV_X64_REGISTER_RIP        0x00020010u
#define HV_X64_REGISTER_RFLAGS     0x00020011u
#define HV_X64_REGISTER_CR0        0x00040000u
#define HV_X64_REGISTER_CR2        0x00040001u
#define HV_X64_REGISTER_CR3        0x00040002u
#define HV_X64_REGISTER_CR4        0x00040003u
#define HV_X64_REGISTER_CR8        0x00040004u
#define HV_X64_REGISTER_DR7        0x00050005u
#define HV_X64_REGISTER_ES         0x00060000u  /* CS SS DS FS GS LDTR TR follow */
#define HV_X64_REGISTER_CS         0x00060001u
#define HV_X64_REGISTER_TR         0x00060007u
#define HV_X64_REGISTER_IDTR       0x00070000u
#define HV_X64_REGISTER_GDTR       0x00070001u
#define HV_X64_REGISTER_EFER       0x00080001u
#define HV_X64_REGISTER_KERNEL_GS_BASE 0x00080002u
#define HV_X64_REGISTER_APIC_BASE  0x00080003u
#define HV_X64_REGISTER_PAT        0x00080004u
#define HV_X64_REGISTER_SYSENTER_CS  0x00080005u
#define HV_X64_REGISTER_SYSENTER_EIP 0x00080006u
#define HV_X64_REGISTER_SYSENTER_ESP 0x00080007u
#define HV_X64_REGISTER_STAR       0x00080008u
#define HV_X64_REGISTER_LSTAR      0x00080009u
#define HV_X64_REGISTER_CSTAR      0x0008000Au
#define HV_X64_REGISTER_SFMASK     0x0008000Bu
#define HV_X64_REGISTER_TSC_AUX    0x0008007Bu
#define HV_REGISTER_HYPERCALL      0x00090001u
#define HV_REGISTER_GUEST_OS_ID    0x00090002u
#define HV_REGISTER_VP_INDEX       0x00090003u
#define HV_REGISTER_VP_ASSIST_PAGE 0x00090013u
#define HV_REGISTER_SINT0          0x000A0000u
#define HV_REGISTER_SINT15         0x000A000Fu
#define HV_REGISTER_SCONTROL       0x000A0010u
#define HV_REGISTER_SVERSION       0x000A0011u
#define HV_REGISTER_SIFP           0x000A0012u
#define HV_REGISTER_SIPP           0x000A0013u
#define HV_REGISTER_EOM            0x000A0014u
#define HV_REGISTER_VSM_CODE_PAGE_OFFSETS   0x000D0002u
#define HV_REGISTER_VSM_VP_STATUS           0x000D0003u
#define HV_REGISTER_VSM_PARTITION_STATUS    0x000D0004u
#define HV_REGISTER_VSM_VINA                0x000D0005u
#define HV_REGISTER_VSM_CAPABILITIES        0x000D0006u
#define HV_REGISTER_VSM_PARTITION_CONFIG    0x000D0007u
#define HV_REGISTER_VSM_VP_SECURE_CONFIG_VTL0 0x000D0010u
#define HV_REGISTER_REGISTER_PAGE           0x0009001Cu  /* HvX64RegisterPage, VTL2's */
#define HV_REGISTER_PAGE_ENABLE             1ull         /* bits 1-11 reserved, GPN 12-63 */

/* HvRegisterVsmPartitionConfig bits */
#define HV_VSM_CONFIG_ENABLE_VTL_PROTECTION   (1ull << 0)
#define HV_VSM_CONFIG_DEFAULT_MASK(c)         (((c) >> 1) & 0xf)
#define HV_VSM_CONFIG_DENY_LOWER_VTL_STARTUP  (1ull << 6)
#define HV_VSM_CONFIG_INTERCEPT_PAGE          (1ull << 12)
#define HV_VSM_CONFIG_VALID                   0xffffull
/* HvRegisterVsmCapabilities bits hvmm reports */
#define HV_VSM_CAP_DENY_LOWER_VTL_STARTUP     (1ull << 17)
#define HV_VSM_CAP_INTERCEPT_PAGE_AVAILABLE   (1ull << 27)
#define HV_VSM_CAP_RETURN_ACTION_AVAILABLE    (1ull << 28)
/* HvRegisterVsmVina */
#define HV_VSM_VINA_VECTOR(v)    ((uint8_t)((v) & 0xff))
#define HV_VSM_VINA_ENABLED      (1ull << 8)
#define HV_VSM_VINA_AUTO_RESET   (1ull << 9)
#define HV_VSM_VINA_AUTO_EOI     (1ull << 10)
#define HV_VSM_VINA_VALID        0x7ffull

/* HV_MAP_GPA flags (ModifyVtlProtectionMask) */
#define HV_MAP_GPA_READABLE      0x1u
#define HV_MAP_GPA_WRITABLE      0x2u
#define HV_MAP_GPA_KERNEL_EXEC   0x4u
#define HV_MAP_GPA_USER_EXEC     0x8u
#define HV_MAP_GPA_ALL           0xfu

/* Intercept types (HV_INTERCEPT_TYPE) and access bits */
#define HV_INTERCEPT_TYPE_X64_IO_PORT              0x00
#define HV_INTERCEPT_TYPE_X64_MSR                  0x01
#define HV_INTERCEPT_TYPE_UNKNOWN_SYNIC_CONNECTION 0x0D
#define HV_INTERCEPT_TYPE_X64_APIC_EOI             0x0E
#define HV_INTERCEPT_TYPE_RETARGET_UNKNOWN_DEVICE  0x0F
#define HV_INTERCEPT_TYPE_X64_IO_PORT_RANGE        0x11
#define HV_INTERCEPT_ACCESS_READ    0x1u
#define HV_INTERCEPT_ACCESS_WRITE   0x2u
#define HV_INTERCEPT_ACCESS_EXECUTE 0x4u

/* Interrupt types (AssertVirtualInterrupt) */
#define HV_INTERRUPT_TYPE_FIXED   0
#define HV_INTERRUPT_TYPE_LOWEST  1
#define HV_INTERRUPT_TYPE_NMI     4
#define HV_INTERRUPT_TYPE_INIT    5
#define HV_INTERRUPT_TYPE_SIPI    6

/* VP assist page (HV_VP_ASSIST_PAGE) offsets */
#define HV_VP_ASSIST_VTL_ENTRY_REASON   8
#define HV_VP_ASSIST_VINA_STATUS        12
#define HV_VP_ASSIST_VTL_RETURN_RAX     16
#define HV_VP_ASSIST_VTL_RETURN_RCX     24
#define HV_VP_ASSIST_INTERCEPT_MESSAGE  112
#define HV_VP_ASSIST_VTL_RETURN_ACTIONS 368
#define HV_VP_ASSIST_RETURN_ACTIONS_SIZE 256
/* HV_VTL_ENTRY_REASON */
#define HV_VTL_ENTRY_RESERVED   0
#define HV_VTL_ENTRY_VTL_CALL   1
#define HV_VTL_ENTRY_INTERRUPT  2
#define HV_VTL_ENTRY_INTERCEPT  3

/*
 * The hvmm hypercall page for a VSM partition: the ordinary stub at 0
 * (hv_msr.c's `endbr64; out 0x9E, al; ret`), then a 64-bit VTL call and a
 * 64-bit VTL return stub (`endbr64; mov rax, rcx; mov ecx, code; out 0x9E,
 * al; ret`) at the offsets HvRegisterVsmCodePageOffsets reports.
 */
#define VSM_CODE_VTL_CALL_OFFSET    0x10
#define VSM_CODE_VTL_RETURN_OFFSET  0x30

/* HV_X64_SEGMENT_REGISTER / HV_X64_TABLE_REGISTER (16 bytes each). */
struct hv_x64_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint16_t attributes;   /* VMX-style: type 0-3, s 4, dpl 5-6, p 7, avl 12, l 13, db 14, g 15 */
} __attribute__((packed));
_Static_assert(sizeof(struct hv_x64_segment) == 16, "HV_X64_SEGMENT_REGISTER");

struct hv_x64_table {
	uint16_t pad[3];
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_x64_table) == 16, "HV_X64_TABLE_REGISTER");

/* HV_INITIAL_VP_CONTEXT (EnableVpVtl, StartVirtualProcessor). */
struct hv_initial_vp_context {
	uint64_t rip, rsp, rflags;
	struct hv_x64_segment cs, ds, es, fs, gs, ss, tr, ldtr;
	struct hv_x64_table idtr, gdtr;
	uint64_t efer, cr0, cr3, cr4, msr_cr_pat;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_initial_vp_context) == 224, "HV_INITIAL_VP_CONTEXT");

/*
 * One VP's architectural registers as one VTL sees them: what ops get/set
 * move. The shared part (GPRs except RSP, CR2, DR0-3/6) is the same in every
 * VTL of a VP; the rest is private to the VTL (TLFS "VSM: private and shared
 * state", shared/docs/igvm-and-vsm.md §C.6). XMM/x87 are shared too and are
 * not in this block: the backend carries them on a switch.
 */
struct vsm_regs {
	/* shared */
	uint64_t gpr[16];       /* RAX RCX RDX RBX RSP RBP RSI RDI R8..R15 (HV order); RSP private */
	uint64_t cr2;
	uint64_t dr[4], dr6;
	/* private */
	uint64_t rip, rflags;
	uint64_t cr0, cr3, cr4, cr8, efer, dr7;
	struct hv_x64_segment es, cs, ss, ds, fs, gs, ldtr, tr;   /* HV register order */
	struct hv_x64_table idtr, gdtr;
	uint64_t kernel_gs_base, apic_base, pat;
	uint64_t sysenter_cs, sysenter_eip, sysenter_esp;
	uint64_t star, lstar, cstar, sfmask, tsc_aux;
	/*
	 * The optional parts this block holds besides the rest (GPRs, RIP,
	 * RFLAGS, CR0/2/3/4/8, EFER, APIC base, segments, tables): each costs
	 * the backend a call of its own, so vsm loads one only when a register
	 * of it is named (vsm_ops.get_regs_part) and set_regs writes only the
	 * parts named here.
	 */
	uint32_t parts;
};
#define VSM_GPR_RSP 4
#define VSM_REGS_MSRS  0x1u   /* KERNEL_GS_BASE, PAT, SYSENTER_*, STAR..SFMASK, TSC_AUX */
#define VSM_REGS_DEBUG 0x2u   /* DR0-3, DR6, DR7 */
#define VSM_REGS_ALL   (VSM_REGS_MSRS | VSM_REGS_DEBUG)

/* Copies the registers shared between VTLs from src to dst (a VTL switch). */
void vsm_regs_copy_shared(struct vsm_regs *dst, const struct vsm_regs *src);
/* Copies the fields of the optional parts `parts` (VSM_REGS_*) from src to dst. */
void vsm_regs_copy_parts(struct vsm_regs *dst, const struct vsm_regs *src, uint32_t parts);
/* Loads an HV_INITIAL_VP_CONTEXT into the private part of r. */
void vsm_regs_from_context(struct vsm_regs *r, const struct hv_initial_vp_context *c);
/*
 * Between vsm_regs and the accelerator's x86_regs/x86_sregs (GPRs, RIP,
 * RFLAGS, control registers, EFER, APIC base, segments, tables). The MSRs
 * and debug registers are not in x86_*: the backend moves them itself.
 * HV segment attributes: type 0-3, S 4, DPL 5-6, P 7, AVL 12, L 13, DB 14,
 * G 15; a segment without P is unusable.
 */
void vsm_regs_from_x86(struct vsm_regs *v, const struct x86_regs *r, const struct x86_sregs *s);
void vsm_regs_to_x86(const struct vsm_regs *v, struct x86_regs *r, struct x86_sregs *s);
uint16_t vsm_seg_attributes(const struct x86_segment *s);
void vsm_seg_to_x86(const struct hv_x64_segment *h, struct x86_segment *s);

/*
 * What the platform does for vsm. Every op returns 0 or an HV_STATUS_* code
 * (or -1 for the memory ops when the range is not RAM).
 */
struct vsm_ops {
	/* Guest physical memory as the hypervisor sees it (no VTL protections). */
	int (*read_gpa)(void *o, uint64_t gpa, void *buf, size_t len);
	int (*write_gpa)(void *o, uint64_t gpa, const void *buf, size_t len);
	/*
	 * A VP's register block for one VTL (its KVM vCPU fd for that VTL).
	 * get_regs fills r and sets r->parts to the optional parts it filled
	 * too; get_regs_part (optional: NULL means get_regs fills them all)
	 * adds parts to a block get_regs just filled. set_regs writes r's
	 * registers and the parts in r->parts.
	 */
	int (*get_regs)(void *o, uint32_t vp, unsigned vtl, struct vsm_regs *r);
	int (*get_regs_part)(void *o, uint32_t vp, unsigned vtl, struct vsm_regs *r,
			     uint32_t parts);
	int (*set_regs)(void *o, uint32_t vp, unsigned vtl, const struct vsm_regs *r);
	/*
	 * Makes `to` the running VTL of vp: carry the shared registers (and
	 * XMM/x87) over from `from`. Called on vp's own thread.
	 */
	int (*switch_vtl)(void *o, uint32_t vp, unsigned from, unsigned to);
	/*
	 * Applies HV_MAP_GPA flags to lower VTLs' view of pages
	 * [gpa_page, gpa_page + npages) as requested by VTL `vtl`.
	 * HV_STATUS_INVALID_PARAMETER if a page is not RAM.
	 */
	int (*protect)(void *o, unsigned vtl, uint64_t gpa_page, uint64_t npages, uint32_t flags);
	/* Lets a stopped VP run `vtl` (its registers are already set). */
	int (*start_vp)(void *o, uint32_t vp, unsigned vtl);
	/*
	 * An interrupt for (dest, target VTL): type HV_INTERRUPT_TYPE_*; level
	 * (fixed and lowest priority only): level-triggered, so its EOI in
	 * VTL0 is an APIC EOI intercept when VTL2 installed one.
	 */
	int (*interrupt)(void *o, unsigned vtl, unsigned type, uint64_t dest, bool logical,
			 bool level, uint8_t vector);
	/*
	 * VTL0's SynIC (hv's) of vp: a 256-byte HV_MESSAGE into SINT `sint`;
	 * an event flag. The SynICs of higher VTLs are vsm's own (it writes
	 * their SIMP/SIEF pages and calls `interrupt` for the SINT's vector).
	 */
	int (*post_message)(void *o, uint32_t vp, unsigned vtl, unsigned sint, const void *msg);
	int (*signal_event)(void *o, uint32_t vp, unsigned vtl, unsigned sint, unsigned flag,
			    bool *newly_signaled);
	/*
	 * The partition's reference time (100 ns units, TIME_REF_COUNT); NULL:
	 * higher VTLs have no synthetic timers (their STIMER MSRs are not
	 * vsm's). stimer_changed (optional): a higher VTL's timer was armed,
	 * the wiring's poller must call vsm_stimer_poll again (called with the
	 * lock held: only wake the poller).
	 */
	uint64_t (*ref_time)(void *o);
	void (*stimer_changed)(void *o);
	void *opaque;
};

struct vsm_config {
	unsigned nvps;             /* VP index i has APIC id i */
	unsigned max_vtl;          /* highest VTL of the IGVM file: 2 (0 disables VSM) */
	/*
	 * The wiring sees VTL0's EOIs of level-triggered interrupts (a split
	 * irqchip) and asks vsm_intercepts_apic_eoi(): VTL2 may install APIC
	 * EOI intercepts (else FEATURE_UNAVAILABLE).
	 */
	bool eoi_intercepts;
	struct vsm_ops ops;
};

struct vsm;

/* 0 or -errno. The config is copied. All VPs start with VTL0 only, VP 0 running. */
int vsm_create(const struct vsm_config *cfg, struct vsm **out);
void vsm_destroy(struct vsm *vsm);

/*
 * The loader's boot state (shared/docs/igvm-and-vsm.md §B.5): VTL2 enabled
 * on the partition and on the BSP, which runs VTL2; VTL0 of the BSP waits
 * until VTL2 returns to it; APs stay stopped until StartVirtualProcessor.
 */
int vsm_boot_vtl2(struct vsm *vsm);

/* State readers for the wiring (lock taken inside). */
unsigned vsm_active_vtl(struct vsm *vsm, uint32_t vp);
uint16_t vsm_vp_enabled_vtls(struct vsm *vsm, uint32_t vp);
uint16_t vsm_partition_enabled_vtls(struct vsm *vsm);
bool vsm_vp_started(struct vsm *vsm, uint32_t vp);

/*
 * An interrupt became pending for (vp, vtl) (the wiring delivered it to
 * that VTL's APIC). If vtl is above the VTL vp runs, vp switches to it now
 * (ops->switch_vtl, entry reason INTERRUPT) and 1 is returned: run that
 * VTL. If vtl is below the running VTL and the running VTL's VsmVina is
 * enabled and its assist page's vina_status is clear, vina_status is set
 * and 2 is returned with *vector: inject it (edge) into the running VTL.
 * Otherwise 0: the interrupt waits until the VP returns to vtl.
 */
int vsm_interrupt_pending(struct vsm *vsm, uint32_t vp, unsigned vtl, uint8_t *vector);
/*
 * Whether vp runs a VTL above 0 whose VsmVina is enabled with its assist
 * page's vina_status clear: a VTL0 interrupt would raise VINA now (the
 * wiring then asks VTL0's APIC whether one is requested). Lock taken inside:
 * not from an op.
 */
bool vsm_vina_armed(struct vsm *vsm, uint32_t vp);

/* ---- Hypercalls (vsm_hcall.c) ---- */
struct vsm_hypercall {
	/* in: the caller's registers at the hypercall page's exit */
	uint64_t control;   /* RCX */
	uint64_t rax;       /* VtlCall/VtlReturn input */
	uint64_t rdx, r8;
	uint64_t xmm[12];   /* XMM0-5 (lo, hi), fast calls with more than 16 bytes */
	unsigned cpl;
	bool long_mode;
	/* out */
	uint64_t result;    /* RAX when VSM_HC_DONE */
	bool xmm_dirty;     /* fast output written into xmm[] */
};
enum vsm_hc_action {
	VSM_HC_NOT_VSM,     /* not a VSM hypercall: hand it to hv_hypercall() */
	VSM_HC_DONE,        /* write result to RAX (and xmm[] if xmm_dirty) */
	VSM_HC_INJECT_UD,   /* inject #UD, leave registers */
	VSM_HC_SWITCHED,    /* VtlCall/VtlReturn: the VP now runs another VTL; RAX untouched */
};
enum vsm_hc_action vsm_hypercall(struct vsm *vsm, uint32_t vp, struct vsm_hypercall *hc);

/* Synthetic MSRs kept per VTL (hypercall, VP assist, guest OS id, SynIC
 * registers): 0, or -ENOENT when vsm does not keep that MSR. VTL > 0 only
 * in the wiring; VTL0's stay with hv. A hypercall page write fills the page
 * with vsm_hypercall_page(). */
int vsm_msr_read(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index, uint64_t *val);
int vsm_msr_write(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index, uint64_t val);
/* The hypercall page's contents (4096 bytes). */
void vsm_hypercall_page(uint8_t *page);

/*
 * Synthetic timers of the higher VTLs (vsm_stimer.c; STIMER0-3 MSRs are
 * private per VTL, through vsm_msr_read/write): fires those due at
 * reference time `now` (message mode: HvMessageTimerExpired into the VTL's
 * SIMP slot of its SINT, dropped while the slot is busy; direct mode: the
 * vector through ops->interrupt) and returns the reference time of the next
 * expiry (UINT64_MAX: none). Any thread; lock taken inside.
 */
uint64_t vsm_stimer_poll(struct vsm *vsm, uint64_t now);

/* Intercept requests installed by VTL2 (InstallIntercept). */
bool vsm_intercepts_io(struct vsm *vsm, uint16_t port, bool write);
bool vsm_intercepts_msr(struct vsm *vsm, bool write);
bool vsm_intercepts_unknown_synic(struct vsm *vsm);
/* Whether VTL2 installed the RetargetUnknownDeviceId intercept (lock taken inside). */
bool vsm_intercepts_retarget_unknown_device(struct vsm *vsm);
/* Always false: InstallIntercept APIC EOI is refused with FEATURE_UNAVAILABLE. */
bool vsm_intercepts_apic_eoi(struct vsm *vsm);

/*
 * Hands an intercept message about vp's lower VTL to VTL2: into VTL2's VP
 * assist page at offset 112 with entry reason INTERCEPT when VTL2's
 * VsmPartitionConfig has intercept_page (and the page is enabled), else
 * as a message in VTL2's SIMP slot 0 with SINT0's vector to VTL2's APIC
 * (ops->interrupt; entry reason INTERRUPT; HV_STATUS_INVALID_SYNIC_STATE
 * without SynIC, INSUFFICIENT_BUFFERS while the slot is busy). Then vp switches to VTL2 if it ran a lower VTL; the lower
 * VTL's RIP is left for VTL2 to advance. 0 (vp now runs VTL2) or an HV
 * status (e.g. the SINT0 slot is busy: retry later).
 */
int vsm_deliver_intercept(struct vsm *vsm, uint32_t vp, const uint8_t msg[HV_MESSAGE_SIZE]);

/* ---- Guest page-table walk (vsm_msg.c) ---- */
/* HV_TRANSLATE_GVA_RESULT_CODE */
#define HV_TRANSLATE_GVA_SUCCESS                0
#define HV_TRANSLATE_GVA_PAGE_NOT_PRESENT       1
#define HV_TRANSLATE_GVA_PRIVILEGE_VIOLATION    2
#define HV_TRANSLATE_GVA_INVALID_PAGE_TABLE_FLAGS 3
#define HV_TRANSLATE_GVA_GPA_UNMAPPED           4
/* control flags */
#define HV_TRANSLATE_GVA_VALIDATE_READ     (1ull << 0)
#define HV_TRANSLATE_GVA_VALIDATE_WRITE    (1ull << 1)
#define HV_TRANSLATE_GVA_VALIDATE_EXECUTE  (1ull << 2)
#define HV_TRANSLATE_GVA_PRIVILEGE_EXEMPT  (1ull << 3)
#define HV_TRANSLATE_GVA_SET_PAGE_TABLE_BITS (1ull << 4)
#define HV_TRANSLATE_GVA_TLB_FLUSH_INHIBIT (1ull << 5)
#define HV_TRANSLATE_GVA_SUPERVISOR_ACCESS (1ull << 6)
#define HV_TRANSLATE_GVA_USER_ACCESS       (1ull << 7)
#define HV_TRANSLATE_GVA_FLAGS_VALID       0xffull
/*
 * Walks the 4-level page tables of r (CR3/CR0/CR4/EFER) for gva with the
 * checks `flags` asks for; result code as above, *gpa the translated
 * address. Paging off: identity. Not 4-level long mode: INVALID_PAGE_TABLE_FLAGS.
 */
unsigned vsm_translate_gva(const struct vsm_ops *ops, const struct vsm_regs *r,
			   uint64_t gva, uint64_t flags, uint64_t *gpa);

/* ---- Intercept messages (vsm_msg.c): HV_MESSAGE builders ---- */
#define HV_MESSAGE_TYPE_GPA_INTERCEPT        0x80000001u
#define HV_MESSAGE_TYPE_UNMAPPED_GPA         0x80000000u
#define HV_MESSAGE_TYPE_HYPERCALL_INTERCEPT  0x80000050u
#define HV_MESSAGE_TYPE_X64_IO_PORT_INTERCEPT 0x80010000u
#define HV_MESSAGE_TYPE_MSR_INTERCEPT        0x80010001u
#define HV_MESSAGE_TYPE_X64_APIC_EOI         0x80010004u

/* HV_X64_INTERCEPT_MESSAGE_HEADER (40 bytes) */
struct hv_x64_intercept_header {
	uint32_t vp_index;
	uint8_t instruction_length_cr8;   /* bits 0-3 length, 4-7 CR8 */
	uint8_t intercept_access_type;    /* 0 read, 1 write, 2 execute */
	uint16_t execution_state;
	struct hv_x64_segment cs;
	uint64_t rip;
	uint64_t rflags;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_x64_intercept_header) == 40, "HV_X64_INTERCEPT_MESSAGE_HEADER");

/* What the builders need to know about the intercepted VP and access. */
struct vsm_intercept_ctx {
	uint32_t vp;
	unsigned vtl;             /* the intercepted (lower) VTL */
	unsigned cpl;
	uint8_t insn_len;         /* 0-15 */
	uint8_t access;           /* 0 read, 1 write, 2 execute */
	bool interruption_pending, interrupt_shadow;
	const struct vsm_regs *regs;
	uint8_t insn[16];
	uint8_t insn_count;       /* valid bytes in insn */
};
#define HV_INTERCEPT_ACCESS_TYPE_READ  0
#define HV_INTERCEPT_ACCESS_TYPE_WRITE 1
#define HV_INTERCEPT_ACCESS_TYPE_EXECUTE 2

/* Each fills the 256-byte HV_MESSAGE (header + payload). */
void vsm_msg_io_port(uint8_t msg[HV_MESSAGE_SIZE], const struct vsm_intercept_ctx *c,
		     uint16_t port, uint8_t size, bool string, bool rep, uint64_t rax);
void vsm_msg_msr(uint8_t msg[HV_MESSAGE_SIZE], const struct vsm_intercept_ctx *c,
		 uint32_t msr, uint64_t rdx, uint64_t rax);
void vsm_msg_memory(uint8_t msg[HV_MESSAGE_SIZE], const struct vsm_intercept_ctx *c,
		    bool unmapped, uint64_t gpa, uint64_t gva, bool gva_valid);
/* A VTL0 HvPostMessage/HvSignalEvent to an unknown connection, or
 * HvRetargetDeviceInterrupt of an unknown device, reflected to VTL2 as a
 * hypercall intercept. */
void vsm_msg_hypercall(uint8_t msg[HV_MESSAGE_SIZE], const struct vsm_intercept_ctx *c,
		       const uint64_t xmm[12]);
/* HV_X64_APIC_EOI_MESSAGE: VTL0 of vp retired level-triggered `vector`. */
void vsm_msg_apic_eoi(uint8_t msg[HV_MESSAGE_SIZE], uint32_t vp, uint8_t vector);

#endif
