/*
 * Hypercall wrappers for freestanding guests and the VTL2 test payload
 * (TLFS "Hypercall Interface" and "Virtual Secure Mode"; hvmm's VSM layer is
 * src/hv/vsm*.c). Memory-form calls use one input and one output page the
 * caller provides; rep calls loop on "reps completed" as Linux does; fast
 * calls pass RDX and R8 only (XMM input would need SSE in ring 0, which a
 * PVM host does not emulate). hvcall_vsm_init reads where the hypercall
 * page's VTL call/return stubs are (HvRegisterVsmCodePageOffsets); VTL2's
 * VtlReturn, which must save and restore the lower VTL's registers, is
 * vtl2_rt_return (vtl2_rt.h).
 *
 * Ring 0 only (TLFS: hypercalls from CPL > 0 raise #UD). Not thread-safe:
 * one struct hvcall per processor.
 */
#ifndef GUEST_HVCALL_LIB_H
#define GUEST_HVCALL_LIB_H

#include "x86.h"

#define HVL_MSR_GUEST_OS_ID     0x40000000u
#define HVL_MSR_HYPERCALL       0x40000001u
#define HVL_MSR_VP_INDEX        0x40000002u
#define HVL_MSR_VP_ASSIST_PAGE  0x40000073u

#define HVL_STATUS_SUCCESS              0x0000
#define HVL_STATUS_INVALID_HYPERCALL_INPUT 0x0003
#define HVL_STATUS_INVALID_PARAMETER    0x0005
#define HVL_STATUS_ACCESS_DENIED        0x0006
#define HVL_STATUS_TIMEOUT              0x0078

#define HVL_CALL_ENABLE_PARTITION_VTL   0x000D
#define HVL_CALL_ENABLE_VP_VTL          0x000F
#define HVL_CALL_MODIFY_VTL_PROTECTION_MASK 0x000C
#define HVL_CALL_INSTALL_INTERCEPT      0x004D
#define HVL_CALL_ASSERT_VIRTUAL_INTERRUPT 0x0094
#define HVL_CALL_GET_VP_REGISTERS       0x0050
#define HVL_CALL_SET_VP_REGISTERS       0x0051
#define HVL_CALL_TRANSLATE_VIRTUAL_ADDRESS 0x0052
#define HVL_CALL_START_VIRTUAL_PROCESSOR 0x0099
#define HVL_CALL_GET_VP_INDEX_FROM_APIC_ID 0x009A

#define HVL_PARTITION_SELF  0xFFFFFFFFFFFFFFFFull
#define HVL_VP_SELF         0xFFFFFFFEu
/* HV_INPUT_VTL naming VTL v explicitly. */
#define HVL_VTL(v)          ((u8)(0x10 | (v)))
#define HVL_VTL_CURRENT     ((u8)0)

#define HVL_REG_VSM_CODE_PAGE_OFFSETS 0x000D0002u
#define HVL_REG_VSM_VP_STATUS         0x000D0003u
#define HVL_REG_VSM_PARTITION_CONFIG  0x000D0007u

struct hvcall {
	u8 *page;        /* the hypercall page (4 KiB, executable) */
	u8 *in, *out;    /* input and output pages (4 KiB each) */
	u64 in_gpa, out_gpa;
	u16 vtl_call_offset, vtl_return_offset;   /* 0 until hvcall_vsm_init */
};

/*
 * Writes the guest OS id (os_id != 0) and enables the hypercall page at
 * page_gpa. Returns 0, or -1 when the page did not appear (its first byte
 * is still 0 or the MSR does not read back enabled).
 */
int hvcall_init(struct hvcall *h, void *page, u64 page_gpa, void *in, u64 in_gpa, void *out,
		u64 out_gpa, u64 os_id);

/* RAX of one call through the page: status in bits 0-15, reps done 32-43. */
u64 hvcall_raw(const struct hvcall *h, u64 control, u64 rdx, u64 r8);

/* Memory-form simple call: input already in h->in; status. */
u16 hvcall_simple(const struct hvcall *h, u16 code);
/* Fast call with two 64-bit input words; status. */
u16 hvcall_fast(const struct hvcall *h, u16 code, u64 a, u64 b);
/*
 * Memory-form rep call of `count` elements (varhdr qwords of variable
 * header), restarted from "reps completed" until done or an error (at most
 * count + 16 tries). *done (optional) gets the reps completed; status.
 */
u16 hvcall_rep(const struct hvcall *h, u16 code, u16 count, u16 varhdr, u16 *done);

/* ---- VSM helpers (memory form, h->in/h->out are overwritten) ---- */
/* The 16-byte Get/SetVpRegisters header in h->in: this partition, this VP, `vtl`. */
void hvcall_regs_header(const struct hvcall *h, u8 vtl);
/* One register of (self VP, vtl); 16-byte value in lo/hi (hi may be NULL). */
u16 hvcall_get_vp_register(const struct hvcall *h, u8 vtl, u32 name, u64 *lo, u64 *hi);
u16 hvcall_set_vp_register(const struct hvcall *h, u8 vtl, u32 name, u64 lo, u64 hi);
/* Reads HvRegisterVsmCodePageOffsets into h (call once, from a VTL > 0). */
u16 hvcall_vsm_init(struct hvcall *h);

#endif
