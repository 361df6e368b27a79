/*
 * Unit tests of the VSM hypercalls other than the VTL state machine
 * (src/hv/vsm_hcall.c, vsm_msg.c) on the fake platform of test_vsm_fake.h:
 * the dispatcher's control-word, alignment, page and caller-VTL checks;
 * ModifyVtlProtectionMask, InstallIntercept, TranslateVirtualAddress(Ex)
 * over a fake 4-level page table, GetVpIndexFromApicId,
 * AssertVirtualInterrupt, SignalEventDirect/PostMessageDirect and the TLB
 * flush calls, each with its success path and error paths; the intercept
 * messages byte by byte and their delivery (SINT0 or the VP assist page).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "test_vsm_fake.h"

#define IN  0x1000ull
#define OUT 0x3000ull
#define FAST (1ull << 16)
#define REP(n) ((uint64_t)(n) << 32)
#define VARHDR(n) ((uint64_t)(n) << 17)
#define USE_VTL(v) (0x10u | (v))
#define SELF HV_PARTITION_ID_SELF

static uint64_t hc(struct vfake *f, uint32_t vp, uint64_t control, const void *in, size_t len)
{
	memcpy(f->ram + IN, in, len);
	struct vsm_hypercall h = { .control = control, .rdx = IN, .r8 = OUT, .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, vp, &h), VSM_HC_DONE);
	return h.result;
}

static struct vfake *booted(unsigned nvps)
{
	struct vfake *f = vf_new(nvps);
	assert_int_equal(vsm_boot_vtl2(f->vsm), 0);
	return f;
}

static enum vsm_hc_action vtl_return(struct vfake *f)
{
	struct vsm_hypercall h = { .control = HVCALL_VTL_RETURN, .rax = 1, .long_mode = true };
	return vsm_hypercall(f->vsm, 0, &h);
}

static enum vsm_hc_action vtl_call(struct vfake *f)
{
	struct vsm_hypercall h = { .control = HVCALL_VTL_CALL, .long_mode = true };
	return vsm_hypercall(f->vsm, 0, &h);
}

/* A VTL0-only partition (the caller of the access-denied cases). */
static struct vfake *plain(unsigned nvps)
{
	return vf_new(nvps);
}

static void set_partition_config(struct vfake *f, uint64_t cfg)
{
	uint8_t in[48] = { 0 };
	memset(in, 0xff, 8);
	uint32_t self = HV_VP_INDEX_SELF, name = HV_REGISTER_VSM_PARTITION_CONFIG;
	memcpy(in + 8, &self, 4);
	memcpy(in + 16, &name, 4);
	memcpy(in + 32, &cfg, 8);
	assert_int_equal(hc(f, 0, HVCALL_SET_VP_REGISTERS | REP(1), in, sizeof(in)), REP(1));
}

static void test_dispatcher_checks(void **state)
{
	(void)state;
	struct vfake *f = booted(1);
	struct vsm_hypercall h = { .control = 0x5C, .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_NOT_VSM);
	h.control = 0x1234;
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_NOT_VSM);
	h = (struct vsm_hypercall){ .control = HVCALL_INSTALL_INTERCEPT, .cpl = 3, .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_INJECT_UD);
	h = (struct vsm_hypercall){ .control = HVCALL_INSTALL_INTERCEPT, .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, 7, &h), VSM_HC_INJECT_UD);   /* no such VP */

	uint8_t in[24] = { 0 };
	memset(in, 0xff, 8);
	/* Reserved control bits (nested, 44-47, 60-63). */
	assert_int_equal(hc(f, 0, HVCALL_INSTALL_INTERCEPT | 1ull << 31, in, 24),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(hc(f, 0, HVCALL_INSTALL_INTERCEPT | 1ull << 45, in, 24),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Rep count or variable header on a simple call. */
	assert_int_equal(hc(f, 0, HVCALL_INSTALL_INTERCEPT | REP(1), in, 24),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(hc(f, 0, HVCALL_INSTALL_INTERCEPT | VARHDR(1), in, 24),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Rep call with count 0, or start past count. */
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_INDEX_FROM_APIC_ID, in, 16),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_INDEX_FROM_APIC_ID | REP(1) | 1ull << 48, in, 16),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Fast form of a call that has none. */
	assert_int_equal(hc(f, 0, HVCALL_ENABLE_VP_VTL | FAST, in, 24),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* Misaligned, page-crossing and non-RAM input; misaligned output. */
	h = (struct vsm_hypercall){ .control = HVCALL_INSTALL_INTERCEPT, .rdx = IN + 4,
				    .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_DONE);
	assert_int_equal(h.result, HV_STATUS_INVALID_ALIGNMENT);
	h.rdx = IN + 4096 - 16;
	vsm_hypercall(f->vsm, 0, &h);
	assert_int_equal(h.result, HV_STATUS_INVALID_HYPERCALL_INPUT);
	h.rdx = VF_RAM + 0x1000;
	vsm_hypercall(f->vsm, 0, &h);
	assert_int_equal(h.result, HV_STATUS_INVALID_PARAMETER);
	h = (struct vsm_hypercall){ .control = HVCALL_TRANSLATE_VIRTUAL_ADDRESS, .rdx = IN,
				    .r8 = OUT + 2, .long_mode = true };
	vsm_hypercall(f->vsm, 0, &h);
	assert_int_equal(h.result, HV_STATUS_INVALID_ALIGNMENT);
	vf_free(f);
}

struct protect_in {
	uint64_t partition;
	uint32_t flags;
	uint8_t vtl, rsvd[3];
	uint64_t pages[8];
} __attribute__((packed));

static void test_modify_vtl_protection_mask(void **state)
{
	(void)state;
	struct vfake *f = plain(1);
	struct protect_in in = { .partition = SELF, .flags = HV_MAP_GPA_READABLE,
				 .pages = { 0x100 } };
	assert_int_equal(hc(f, 0, HVCALL_MODIFY_VTL_PROTECTION_MASK | REP(1), &in, 24),
			 HV_STATUS_ACCESS_DENIED);   /* from VTL0 */
	vf_free(f);

	f = booted(1);
	assert_int_equal(hc(f, 0, HVCALL_MODIFY_VTL_PROTECTION_MASK | REP(1), &in, 24),
			 HV_STATUS_INVALID_VTL_STATE);   /* enable_vtl_protection not set */
	set_partition_config(f, HV_VSM_CONFIG_ENABLE_VTL_PROTECTION | 0xf << 1);
	in.flags = HV_MAP_GPA_WRITABLE;
	assert_int_equal(hc(f, 0, HVCALL_MODIFY_VTL_PROTECTION_MASK | REP(1), &in, 24),
			 HV_STATUS_INVALID_PARAMETER);   /* write without read */
	in.flags = 0x10;
	assert_int_equal(hc(f, 0, HVCALL_MODIFY_VTL_PROTECTION_MASK | REP(1), &in, 24),
			 HV_STATUS_INVALID_PARAMETER);
	in.flags = HV_MAP_GPA_READABLE;
	in.vtl = USE_VTL(0);
	assert_int_equal(hc(f, 0, HVCALL_MODIFY_VTL_PROTECTION_MASK | REP(1), &in, 24),
			 HV_STATUS_INVALID_PARAMETER);   /* target must be the caller */
	in.vtl = 0;
	in.rsvd[1] = 1;
	assert_int_equal(hc(f, 0, HVCALL_MODIFY_VTL_PROTECTION_MASK | REP(1), &in, 24),
			 HV_STATUS_INVALID_PARAMETER);
	in.rsvd[1] = 0;
	assert_int_equal(f->nprotect, 0);
	/* Runs of pages are coalesced: 0x10-0x12 and 0x20. */
	in.pages[0] = 0x10;
	in.pages[1] = 0x11;
	in.pages[2] = 0x12;
	in.pages[3] = 0x20;
	assert_int_equal(hc(f, 0, HVCALL_MODIFY_VTL_PROTECTION_MASK | REP(4), &in, 48), REP(4));
	assert_int_equal(f->nprotect, 2);
	assert_int_equal(f->protect[0].vtl, 2);
	assert_int_equal(f->protect[0].page, 0x10);
	assert_int_equal(f->protect[0].n, 3);
	assert_int_equal(f->protect[0].flags, HV_MAP_GPA_READABLE);
	assert_int_equal(f->protect[1].page, 0x20);
	assert_int_equal(f->protect[1].n, 1);
	/* A page outside RAM stops the call at its index. */
	in.flags = 0;
	in.pages[1] = VF_RAM / 4096;
	assert_int_equal(hc(f, 0, HVCALL_MODIFY_VTL_PROTECTION_MASK | REP(3), &in, 40),
			 HV_STATUS_INVALID_PARAMETER | REP(1));
	assert_int_equal(f->nprotect, 3);
	assert_int_equal(f->protect[2].flags, 0);
	/* Page numbers beyond 52 bits. */
	in.pages[0] = 1ull << 52;
	assert_int_equal(hc(f, 0, HVCALL_MODIFY_VTL_PROTECTION_MASK | REP(1), &in, 24),
			 HV_STATUS_INVALID_PARAMETER);
	vf_free(f);
}

struct intercept_in {
	uint64_t partition;
	uint32_t access, type;
	uint64_t param;
} __attribute__((packed));

static uint64_t install(struct vfake *f, uint32_t access, uint32_t type, uint64_t param)
{
	struct intercept_in in = { SELF, access, type, param };
	return hc(f, 0, HVCALL_INSTALL_INTERCEPT, &in, sizeof(in));
}

static void test_install_intercept(void **state)
{
	(void)state;
	struct vfake *f = plain(1);
	assert_int_equal(install(f, 2, HV_INTERCEPT_TYPE_X64_IO_PORT, 0x3f8),
			 HV_STATUS_ACCESS_DENIED);
	vf_free(f);

	f = booted(1);
	assert_false(vsm_intercepts_io(f->vsm, 0x3f8, true));
	assert_int_equal(install(f, HV_INTERCEPT_ACCESS_WRITE, HV_INTERCEPT_TYPE_X64_IO_PORT, 0x3f8), 0);
	assert_true(vsm_intercepts_io(f->vsm, 0x3f8, true));
	assert_false(vsm_intercepts_io(f->vsm, 0x3f8, false));
	assert_false(vsm_intercepts_io(f->vsm, 0x3f9, true));
	assert_int_equal(install(f, 3, HV_INTERCEPT_TYPE_X64_IO_PORT_RANGE, 0x60 | 0x64 << 16), 0);
	for (unsigned p = 0x60; p <= 0x64; p++)
		assert_true(vsm_intercepts_io(f->vsm, (uint16_t)p, false));
	assert_false(vsm_intercepts_io(f->vsm, 0x65, false));
	assert_int_equal(install(f, 0, HV_INTERCEPT_TYPE_X64_IO_PORT, 0x62), 0);  /* removes */
	assert_false(vsm_intercepts_io(f->vsm, 0x62, false));
	assert_true(vsm_intercepts_io(f->vsm, 0x63, false));
	assert_int_equal(install(f, 3, HV_INTERCEPT_TYPE_X64_IO_PORT_RANGE, 0x64 | 0x60 << 16),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(install(f, 2, HV_INTERCEPT_TYPE_X64_IO_PORT, 0x10000),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(install(f, 4, HV_INTERCEPT_TYPE_X64_IO_PORT, 0x80),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(install(f, 8, HV_INTERCEPT_TYPE_X64_MSR, 0), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(install(f, 2, 0x55, 0), HV_STATUS_INVALID_PARAMETER);
	assert_false(vsm_intercepts_msr(f->vsm, true));
	assert_int_equal(install(f, 2, HV_INTERCEPT_TYPE_X64_MSR, 0), 0);
	assert_true(vsm_intercepts_msr(f->vsm, true));
	assert_false(vsm_intercepts_msr(f->vsm, false));
	assert_int_equal(install(f, 2, HV_INTERCEPT_TYPE_UNKNOWN_SYNIC_CONNECTION, 0), 0);
	assert_true(vsm_intercepts_unknown_synic(f->vsm));
	/* APIC EOI: without the wiring's EOI exits (no split irqchip) it is refused. */
	assert_int_equal(install(f, 2, HV_INTERCEPT_TYPE_X64_APIC_EOI, 0),
			 HV_STATUS_FEATURE_UNAVAILABLE);
	assert_int_equal(install(f, 1, HV_INTERCEPT_TYPE_X64_APIC_EOI, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_false(vsm_intercepts_apic_eoi(f->vsm));
	/* Fast form: RDX = partition, R8 = access | type << 32; params would need XMM0. */
	struct vsm_hypercall h = { .control = HVCALL_INSTALL_INTERCEPT | FAST, .rdx = SELF,
				   .r8 = 0 | (uint64_t)HV_INTERCEPT_TYPE_X64_APIC_EOI << 32,
				   .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_DONE);
	assert_int_equal(h.result, 0);
	assert_false(vsm_intercepts_apic_eoi(f->vsm));
	vf_free(f);
}

/* APIC EOI intercepts on a platform that reports VTL0's level-triggered EOIs. */
static void test_install_eoi_intercept(void **state)
{
	(void)state;
	struct vfake *f = vf_new_eoi(1);
	assert_int_equal(vsm_boot_vtl2(f->vsm), 0);
	assert_false(vsm_intercepts_apic_eoi(f->vsm));
	/* EOIs are writes: read, execute or mixed masks are refused. */
	assert_int_equal(install(f, 1, HV_INTERCEPT_TYPE_X64_APIC_EOI, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(install(f, 3, HV_INTERCEPT_TYPE_X64_APIC_EOI, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(install(f, 4, HV_INTERCEPT_TYPE_X64_APIC_EOI, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_false(vsm_intercepts_apic_eoi(f->vsm));
	assert_int_equal(install(f, 2, HV_INTERCEPT_TYPE_X64_APIC_EOI, 0), 0);
	assert_true(vsm_intercepts_apic_eoi(f->vsm));
	assert_int_equal(install(f, 0, HV_INTERCEPT_TYPE_X64_APIC_EOI, 0), 0);
	assert_false(vsm_intercepts_apic_eoi(f->vsm));
	vf_free(f);
}

/* Page tables in fake RAM: PML4 0x10000, PDPT 0x11000, PD 0x12000, PT 0x13000. */
#define P 1ull
#define W 2ull
#define U 4ull
#define PS 0x80ull
#define NX (1ull << 63)
static void map(struct vfake *f, uint64_t table, unsigned idx, uint64_t e)
{
	memcpy(f->ram + table + idx * 8, &e, 8);
}

static void page_tables(struct vfake *f)
{
	map(f, 0x10000, 0, 0x11000 | P | W | U);
	map(f, 0x11000, 0, 0x12000 | P | W | U);
	map(f, 0x12000, 2, 0x13000 | P | W | U);       /* 4 MiB.. via PT */
	map(f, 0x13000, 0, 0x50000 | P | W | U);       /* 0x400000 -> 0x50000 */
	map(f, 0x13000, 1, 0x51000 | P | U);           /* 0x401000 read-only */
	map(f, 0x13000, 2, 0x52000 | P | W);           /* 0x402000 supervisor */
	map(f, 0x13000, 3, 0x53000 | P | W | U | NX);  /* 0x403000 no-exec */
	map(f, 0x13000, 4, 0x2000000 | P);             /* table fine, page outside RAM */
	map(f, 0x12000, 4, 0x200000 | P | W | PS);     /* 0x800000: 2 MiB page */
	map(f, 0x12000, 5, 0x202000 | P | W | PS);     /* reserved bit 13 set */
	map(f, 0x12000, 6, 0x4000000 | P | W);         /* 0xc00000: PT outside RAM */
	struct vsm_regs *r = &f->regs[0][0];
	r->cr0 = 0x80010001;   /* PG WP PE */
	r->cr3 = 0x10000;
	r->cr4 = 0x20;
	r->efer = 0xd00;       /* LME LMA NXE */
}

struct translate_in {
	uint64_t partition;
	uint32_t vp, rsvd;
	uint64_t flags, gva_page;
} __attribute__((packed));

static uint64_t translate(struct vfake *f, uint64_t gva, uint64_t flags, uint64_t *res,
			  uint64_t *page)
{
	struct translate_in in = { SELF, HV_VP_INDEX_SELF, 0, flags | (uint64_t)USE_VTL(0) << 56,
				   gva >> 12 };
	memset(f->ram + OUT, 0xAA, 16);
	uint64_t r = hc(f, 0, HVCALL_TRANSLATE_VIRTUAL_ADDRESS, &in, sizeof(in));
	memcpy(res, f->ram + OUT, 8);
	memcpy(page, f->ram + OUT + 8, 8);
	return r;
}

static void test_translate(void **state)
{
	(void)state;
	struct vfake *f = booted(1);
	page_tables(f);
	uint64_t res, page;
	assert_int_equal(translate(f, 0x400000, HV_TRANSLATE_GVA_VALIDATE_READ, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_SUCCESS);
	assert_int_equal(page, 0x50);
	assert_int_equal(translate(f, 0x401000, HV_TRANSLATE_GVA_VALIDATE_WRITE, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_PRIVILEGE_VIOLATION);      /* CR0.WP */
	assert_int_equal(page, 0);
	assert_int_equal(translate(f, 0x401000, HV_TRANSLATE_GVA_VALIDATE_WRITE |
				   HV_TRANSLATE_GVA_PRIVILEGE_EXEMPT, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_SUCCESS);
	assert_int_equal(translate(f, 0x402000, HV_TRANSLATE_GVA_USER_ACCESS, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_PRIVILEGE_VIOLATION);
	assert_int_equal(translate(f, 0x402000, HV_TRANSLATE_GVA_VALIDATE_READ, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_SUCCESS);
	assert_int_equal(page, 0x52);
	assert_int_equal(translate(f, 0x403000, HV_TRANSLATE_GVA_VALIDATE_EXECUTE, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_PRIVILEGE_VIOLATION);
	assert_int_equal(translate(f, 0x405000, 0, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_PAGE_NOT_PRESENT);
	assert_int_equal(translate(f, 0x404000, 0, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_SUCCESS);          /* translation only */
	assert_int_equal(page, 0x2000);
	assert_int_equal(translate(f, 0x8ab000, 0, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_SUCCESS);
	assert_int_equal(page, 0x2ab);
	assert_int_equal(translate(f, 0xa00000, 0, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_INVALID_PAGE_TABLE_FLAGS);
	assert_int_equal(translate(f, 0xc00000, 0, &res, &page), 0);
	assert_int_equal(res, HV_TRANSLATE_GVA_GPA_UNMAPPED);
	/* Setting accessed/dirty bits. */
	assert_int_equal(translate(f, 0x400000, HV_TRANSLATE_GVA_VALIDATE_WRITE |
				   HV_TRANSLATE_GVA_SET_PAGE_TABLE_BITS, &res, &page), 0);
	uint64_t pte;
	memcpy(&pte, f->ram + 0x13000, 8);
	assert_int_equal(pte & 0x60, 0x60);
	memcpy(&pte, f->ram + 0x10000, 8);
	assert_int_equal(pte & 0x60, 0x20);
	/* Paging off: identity. */
	f->regs[0][0].cr0 = 1;
	assert_int_equal(translate(f, 0x123000, 0, &res, &page), 0);
	assert_int_equal(page, 0x123);
	/* Errors: reserved field, unknown flag, VTL above, another VP. */
	struct translate_in in = { SELF, HV_VP_INDEX_SELF, 1, 0, 0 };
	assert_int_equal(hc(f, 0, HVCALL_TRANSLATE_VIRTUAL_ADDRESS, &in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in.rsvd = 0;
	in.flags = 1ull << 20;
	assert_int_equal(hc(f, 0, HVCALL_TRANSLATE_VIRTUAL_ADDRESS, &in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in.flags = 0;
	in.vp = 3;
	assert_int_equal(hc(f, 0, HVCALL_TRANSLATE_VIRTUAL_ADDRESS, &in, sizeof(in)),
			 HV_STATUS_INVALID_VP_INDEX);
	vf_free(f);

	f = vf_new(1);
	in.vp = HV_VP_INDEX_SELF;
	assert_int_equal(hc(f, 0, HVCALL_TRANSLATE_VIRTUAL_ADDRESS, &in, sizeof(in)),
			 HV_STATUS_ACCESS_DENIED);    /* VTL0 caller */
	vf_free(f);
}

static void test_translate_ex(void **state)
{
	(void)state;
	struct vfake *f = booted(1);
	page_tables(f);
	struct translate_in in = { SELF, HV_VP_INDEX_SELF, 0, (uint64_t)USE_VTL(0) << 56,
				   0x400 };
	memset(f->ram + OUT, 0xAA, 64);
	assert_int_equal(hc(f, 0, HVCALL_TRANSLATE_VIRTUAL_ADDRESS_EX, &in, sizeof(in)), 0);
	uint64_t v;
	memcpy(&v, f->ram + OUT, 8);
	assert_int_equal(v, HV_TRANSLATE_GVA_SUCCESS);
	memcpy(&v, f->ram + OUT + 48, 8);
	assert_int_equal(v, 0x50);
	for (unsigned i = 8; i < 48; i++)
		assert_int_equal(f->ram[OUT + i], 0);
	/* Fast: input 32 bytes (RDX, R8, XMM0), output 64 bytes from XMM1. */
	struct vsm_hypercall h = { .control = HVCALL_TRANSLATE_VIRTUAL_ADDRESS_EX | FAST,
				   .rdx = SELF, .r8 = HV_VP_INDEX_SELF, .long_mode = true };
	h.xmm[0] = (uint64_t)USE_VTL(0) << 56;
	h.xmm[1] = 0x401;
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_DONE);
	assert_int_equal(h.result, 0);
	assert_true(h.xmm_dirty);
	assert_int_equal(h.xmm[2], HV_TRANSLATE_GVA_SUCCESS);
	assert_int_equal(h.xmm[8], 0x51);
	vf_free(f);
}

static void test_get_vp_index_from_apic_id(void **state)
{
	(void)state;
	struct vfake *f = booted(2);
	uint8_t in[28] = { 0 };
	memset(in, 0xff, 8);
	in[8] = USE_VTL(0);
	uint32_t ids[3] = { 1, 0, 5 };
	memcpy(in + 16, ids, sizeof(ids));
	memset(f->ram + OUT, 0xAA, 12);
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_INDEX_FROM_APIC_ID | REP(2), in, 24), REP(2));
	uint32_t out[3];
	memcpy(out, f->ram + OUT, 12);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 0xAAAAAAAA);
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_INDEX_FROM_APIC_ID | REP(3), in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER | REP(2));
	in[8] = USE_VTL(1);
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_INDEX_FROM_APIC_ID | REP(1), in, 20),
			 HV_STATUS_INVALID_VTL_STATE);
	in[8] = 0;
	in[9] = 1;
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_INDEX_FROM_APIC_ID | REP(1), in, 20),
			 HV_STATUS_INVALID_PARAMETER);
	vf_free(f);
	f = plain(1);
	in[8] = USE_VTL(2);
	in[9] = 0;
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_INDEX_FROM_APIC_ID | REP(1), in, 20),
			 HV_STATUS_ACCESS_DENIED);
	vf_free(f);
}

struct irq_in {
	uint64_t partition, control, dest;
	uint32_t vector;
	uint8_t vtl, rsvd[3];
} __attribute__((packed));

static void test_assert_virtual_interrupt(void **state)
{
	(void)state;
	struct vfake *f = booted(2);
	struct irq_in in = { SELF, HV_INTERRUPT_TYPE_FIXED | 1ull << 33, 1, 0x41, 0, { 0 } };
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)), 0);
	assert_int_equal(f->nirq, 1);
	assert_int_equal(f->irq[0].vtl, 0);
	assert_int_equal(f->irq[0].type, HV_INTERRUPT_TYPE_FIXED);
	assert_int_equal(f->irq[0].dest, 1);
	assert_true(f->irq[0].logical);
	assert_int_equal(f->irq[0].vector, 0x41);
	in.control = HV_INTERRUPT_TYPE_NMI;
	in.vector = 2;
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)), 0);
	in.control = HV_INTERRUPT_TYPE_FIXED;
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);      /* vector 2 */
	in.vector = 0x30;
	in.control = 2;   /* SMI */
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in.control = HV_INTERRUPT_TYPE_NMI | 1ull << 32;  /* level NMI */
	in.vector = 2;
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in.vector = 0x30;
	in.control = HV_INTERRUPT_TYPE_FIXED | 1ull << 32;  /* level fixed: passed on */
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)), 0);
	assert_int_equal(f->nirq, 3);
	assert_true(f->irq[2].level);
	assert_false(f->irq[0].level);
	in.control = 1ull << 34;  /* reserved control bit */
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in.control = 0;
	in.vector = 0x100;
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in.vector = 0x30;
	in.vtl = 1;
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)),
			 HV_STATUS_INVALID_VTL_STATE);
	assert_int_equal(f->nirq, 3);
	vf_free(f);
	f = plain(1);
	in.vtl = 0;
	assert_int_equal(hc(f, 0, HVCALL_ASSERT_VIRTUAL_INTERRUPT, &in, sizeof(in)),
			 HV_STATUS_ACCESS_DENIED);
	vf_free(f);
}

struct signal_in {
	uint64_t partition;
	uint32_t vp;
	uint8_t vtl, sint;
	uint16_t flag;
} __attribute__((packed));

static void test_signal_event_direct(void **state)
{
	(void)state;
	struct vfake *f = booted(2);
	struct signal_in in = { SELF, 1, 0, 2, 13 };
	memset(f->ram + OUT, 0xAA, 8);
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &in, sizeof(in)), 0);
	assert_int_equal(f->nevent, 1);
	assert_int_equal(f->event[0].vp, 1);
	assert_int_equal(f->event[0].vtl, 0);
	assert_int_equal(f->event[0].sint, 2);
	assert_int_equal(f->event[0].flag, 13);
	assert_int_equal(f->ram[OUT], 1);   /* newly signaled (the fake: odd flags) */
	for (unsigned i = 1; i < 8; i++)
		assert_int_equal(f->ram[OUT + i], 0);
	in.sint = 16;
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in.sint = 2;
	in.flag = 2048;
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in.flag = 1;
	in.vp = 2;
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &in, sizeof(in)),
			 HV_STATUS_INVALID_VP_INDEX);
	in.vp = 1;
	in.vtl = 2;   /* VP 1 has no VTL2 */
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &in, sizeof(in)),
			 HV_STATUS_INVALID_VTL_STATE);
	in.vtl = 0;
	f->status = HV_STATUS_INVALID_SYNIC_STATE;
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &in, sizeof(in)),
			 HV_STATUS_INVALID_SYNIC_STATE);
	assert_int_equal(f->nevent, 2);
	vf_free(f);
	f = plain(1);
	in.vp = 0;
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &in, sizeof(in)),
			 HV_STATUS_ACCESS_DENIED);
	vf_free(f);
}

static void test_post_message_direct(void **state)
{
	(void)state;
	struct vfake *f = booted(1);
	uint8_t in[276] = { 0 };
	memset(in, 0xff, 8);
	in[12] = 0;      /* VTL */
	in[16] = 5;      /* SINT */
	uint32_t type = 0x1234;
	memcpy(in + 20, &type, 4);
	in[24] = 3;      /* payload size */
	in[36] = 0x77;   /* payload[0] */
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE_DIRECT, in, sizeof(in)), 0);
	assert_int_equal(f->nmsg, 1);
	assert_int_equal(f->msg[0].vp, 0);
	assert_int_equal(f->msg[0].vtl, 0);
	assert_int_equal(f->msg[0].sint, 5);
	assert_memory_equal(f->msg[0].msg, in + 20, 256);
	in[24] = 241;
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE_DIRECT, in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in[24] = 3;
	memset(in + 20, 0, 4);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE_DIRECT, in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);   /* type 0 */
	memcpy(in + 20, &type, 4);
	in[16] = 16;
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE_DIRECT, in, sizeof(in)),
			 HV_STATUS_INVALID_PARAMETER);
	in[16] = 5;
	f->status = HV_STATUS_INSUFFICIENT_BUFFERS;
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE_DIRECT, in, sizeof(in)),
			 HV_STATUS_INSUFFICIENT_BUFFERS);
	vf_free(f);
}

static void test_flush(void **state)
{
	(void)state;
	struct vfake *f = plain(1);
	uint64_t in[8] = { 0, 0x3, 0, 0 };
	assert_int_equal(hc(f, 0, HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE, in, 24), 0);
	assert_int_equal(hc(f, 0, HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST | REP(3), in, 48), REP(3));
	in[1] = 1ull << 12;
	assert_int_equal(hc(f, 0, HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE, in, 24),
			 HV_STATUS_INVALID_PARAMETER);
	/* Ex: sparse set with valid_banks_mask 0b101 needs 2 banks in the variable header. */
	in[1] = 0;
	in[2] = 0;
	in[3] = 5;
	assert_int_equal(hc(f, 0, HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX | VARHDR(2), in, 48), 0);
	assert_int_equal(hc(f, 0, HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX | VARHDR(1), in, 40),
			 HV_STATUS_INVALID_PARAMETER);
	in[2] = 2;   /* unknown format */
	assert_int_equal(hc(f, 0, HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX, in, 32),
			 HV_STATUS_INVALID_PARAMETER);
	in[2] = 1;   /* all processors */
	assert_int_equal(hc(f, 0, HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX | REP(2), in, 48), REP(2));
	/* Fast simple flush: RDX, R8 and XMM0 low. */
	struct vsm_hypercall h = { .control = HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE | FAST,
				   .r8 = 1, .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_DONE);
	assert_int_equal(h.result, 0);
	assert_false(h.xmm_dirty);
	vf_free(f);
}

/* ---- Intercept messages ---- */

static struct vsm_regs msg_regs(void)
{
	struct vsm_regs r;
	memset(&r, 0, sizeof(r));
	r.rip = 0x1122334455667788ull;
	r.rflags = 0x246;
	r.cr0 = 0x80050033;  /* PG AM WP NE ET MP PE */
	r.cr8 = 5;
	r.efer = 0xd00;
	r.cs = (struct hv_x64_segment){ 0, 0xffffffff, 0x10, 0xa09b };
	r.ds = (struct hv_x64_segment){ 0x1000, 0xfff, 0x18, 0xc093 };
	r.es = (struct hv_x64_segment){ 0x2000, 0xeee, 0x20, 0xc093 };
	for (unsigned i = 0; i < 16; i++)
		r.gpr[i] = 0x100 + i;
	return r;
}

static uint64_t u64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t u32_at(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t u16_at(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* The 40-byte header at message offset 16. */
static void check_header(const uint8_t *m, uint8_t insn_len, uint8_t access)
{
	const uint8_t *h = m + 16;
	assert_int_equal(u32_at(h + 0), 1);                 /* vp index */
	assert_int_equal(h[4], insn_len | 5 << 4);          /* length, CR8 */
	assert_int_equal(h[5], access);
	/* cpl 3, PE, AM, LMA, interruption pending, VTL 0, interrupt shadow */
	assert_int_equal(u16_at(h + 6), 3 | 1 << 2 | 1 << 3 | 1 << 4 | 1 << 6 | 1 << 12);
	assert_int_equal(u64_at(h + 8), 0);                 /* CS base */
	assert_int_equal(u32_at(h + 16), 0xffffffff);
	assert_int_equal(u16_at(h + 20), 0x10);
	assert_int_equal(u16_at(h + 22), 0xa09b);
	assert_int_equal(u64_at(h + 24), 0x1122334455667788ull);
	assert_int_equal(u64_at(h + 32), 0x246);
}

static void test_intercept_messages(void **state)
{
	(void)state;
	struct vsm_regs r = msg_regs();
	struct vsm_intercept_ctx c = { .vp = 1, .vtl = 0, .cpl = 3, .insn_len = 2,
				       .access = HV_INTERCEPT_ACCESS_TYPE_WRITE,
				       .interruption_pending = true, .interrupt_shadow = true,
				       .regs = &r, .insn = { 0xE6, 0x80 }, .insn_count = 2 };
	uint8_t m[HV_MESSAGE_SIZE];
	memset(m, 0xAA, sizeof(m));
	vsm_msg_io_port(m, &c, 0x80, 1, false, false, 0x55);
	assert_int_equal(u32_at(m), HV_MESSAGE_TYPE_X64_IO_PORT_INTERCEPT);
	assert_int_equal(m[4], 128);
	assert_int_equal(m[5], 0);
	assert_int_equal(u64_at(m + 8), 0);
	check_header(m, 2, 1);
	const uint8_t *p = m + 16;
	assert_int_equal(u16_at(p + 40), 0x80);
	assert_int_equal(p[42], 1);
	assert_int_equal(p[43], 2);
	assert_int_equal(u64_at(p + 48), 0x55);
	assert_int_equal(p[56], 0xE6);
	assert_int_equal(p[57], 0x80);
	assert_int_equal(p[58], 0);
	assert_int_equal(u64_at(p + 72), 0x1000);           /* DS base */
	assert_int_equal(u16_at(p + 84), 0x18);
	assert_int_equal(u64_at(p + 88), 0x2000);           /* ES base */
	assert_int_equal(u64_at(p + 104), 0x101);           /* RCX */
	assert_int_equal(u64_at(p + 112), 0x106);           /* RSI */
	assert_int_equal(u64_at(p + 120), 0x107);           /* RDI */
	for (unsigned i = 16 + 128; i < HV_MESSAGE_SIZE; i++)
		assert_int_equal(m[i], 0);
	vsm_msg_io_port(m, &c, 0x3f8, 4, true, true, 0);
	assert_int_equal(m[16 + 42], 4 | 8 | 16);

	c.access = HV_INTERCEPT_ACCESS_TYPE_READ;
	vsm_msg_msr(m, &c, 0xC0000080, 0x1, 0x2);
	assert_int_equal(u32_at(m), HV_MESSAGE_TYPE_MSR_INTERCEPT);
	assert_int_equal(m[4], 64);
	check_header(m, 2, 0);
	assert_int_equal(u32_at(m + 16 + 40), 0xC0000080);
	assert_int_equal(u32_at(m + 16 + 44), 0);
	assert_int_equal(u64_at(m + 16 + 48), 1);
	assert_int_equal(u64_at(m + 16 + 56), 2);

	c.access = HV_INTERCEPT_ACCESS_TYPE_WRITE;
	vsm_msg_memory(m, &c, false, 0xfee00030, 0xffffffffff5fe030ull, true);
	assert_int_equal(u32_at(m), HV_MESSAGE_TYPE_GPA_INTERCEPT);
	assert_int_equal(m[4], 80);
	check_header(m, 2, 1);
	p = m + 16;
	assert_int_equal(u32_at(p + 40), 6);     /* WB */
	assert_int_equal(p[44], 2);              /* instruction bytes */
	assert_int_equal(p[45], 3);              /* gva valid, gva/gpa valid */
	assert_int_equal(p[46], 5);              /* TPR */
	assert_int_equal(u64_at(p + 48), 0xffffffffff5fe030ull);
	assert_int_equal(u64_at(p + 56), 0xfee00030);
	assert_int_equal(p[64], 0xE6);
	vsm_msg_memory(m, &c, true, 0x1000, 0, false);
	assert_int_equal(u32_at(m), HV_MESSAGE_TYPE_UNMAPPED_GPA);
	assert_int_equal(m[16 + 45], 0);
	assert_int_equal(u64_at(m + 16 + 48), 0);

	uint64_t xmm[12];
	for (unsigned i = 0; i < 12; i++)
		xmm[i] = 0xA0 + i;
	vsm_msg_hypercall(m, &c, xmm);
	assert_int_equal(u32_at(m), HV_MESSAGE_TYPE_HYPERCALL_INTERCEPT);
	assert_int_equal(m[4], 208);
	p = m + 16;
	assert_int_equal(u64_at(p + 40), 0x100);  /* RAX */
	assert_int_equal(u64_at(p + 48), 0x103);  /* RBX */
	assert_int_equal(u64_at(p + 56), 0x101);  /* RCX */
	assert_int_equal(u64_at(p + 64), 0x102);  /* RDX */
	assert_int_equal(u64_at(p + 72), 0x108);  /* R8 */
	assert_int_equal(u64_at(p + 80), 0x106);  /* RSI */
	assert_int_equal(u64_at(p + 88), 0x107);  /* RDI */
	assert_int_equal(u64_at(p + 96), 0xA0);
	assert_int_equal(u64_at(p + 184), 0xAB);
	assert_int_equal(u32_at(p + 192), 0);

	memset(m, 0x5A, sizeof(m));
	vsm_msg_apic_eoi(m, 3, 0xA1);
	assert_int_equal(u32_at(m), HV_MESSAGE_TYPE_X64_APIC_EOI);
	assert_int_equal(m[4], 8);
	assert_int_equal(u32_at(m + 16), 3);      /* vp_index */
	assert_int_equal(u32_at(m + 20), 0xA1);   /* interrupt_vector */
	for (unsigned i = 24; i < HV_MESSAGE_SIZE; i++)
		assert_int_equal(m[i], 0);
}

static void test_deliver_intercept(void **state)
{
	(void)state;
	struct vfake *f = vf_new(2);
	uint8_t m[HV_MESSAGE_SIZE];
	memset(m, 0x5A, sizeof(m));
	/* No VTL2 anywhere. */
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), HV_STATUS_INVALID_VTL_STATE);
	vf_free(f);

	f = booted(2);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_VP_ASSIST_PAGE, 0xa000 | 1), 0);
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);        /* VP 0 now runs VTL0 */
	/* Default: VTL2's SINT0. Without VTL2's SynIC: INVALID_SYNIC_STATE, no switch. */
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), HV_STATUS_INVALID_SYNIC_STATE);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SCONTROL, 1), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SIMP, 0xb000 | 1), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SINT0, 0x50), 0);
	/* Into SIMP slot 0, SINT0's vector to VTL2's APIC, VP 0 runs VTL2 (INTERRUPT). */
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), 0);
	assert_int_equal(f->nmsg, 0);
	assert_memory_equal(f->ram + 0xb000, m, sizeof(m));
	assert_int_equal(f->nirq, 1);
	assert_int_equal(f->irq[0].vtl, 2);
	assert_int_equal(f->irq[0].type, HV_INTERRUPT_TYPE_FIXED);
	assert_int_equal(f->irq[0].dest, 0);
	assert_int_equal(f->irq[0].vector, 0x50);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 2);
	assert_int_equal(u32_at(f->ram + 0xa000 + HV_VP_ASSIST_VTL_ENTRY_REASON),
			 HV_VTL_ENTRY_INTERRUPT);
	/* A busy slot: message_pending set, the status comes back, the VP stays in VTL0. */
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	f->ram[0xb000 + 5] = 0;
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(f->ram[0xb000 + 5] & 1, 1);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 0);
	assert_int_equal(f->nirq, 1);
	/* Freed (EOM'd) and masked: delivered without an interrupt. */
	memset(f->ram + 0xb000, 0, HV_MESSAGE_SIZE);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SINT0, 0x50 | 1u << 16), 0);
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), 0);
	assert_int_equal(f->nirq, 1);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 2);
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	/* VP 1 has no VTL2; VP 9 does not exist. */
	assert_int_equal(vsm_deliver_intercept(f->vsm, 1, m), HV_STATUS_INVALID_VTL_STATE);
	assert_int_equal(vsm_deliver_intercept(f->vsm, 9, m), HV_STATUS_INVALID_VP_INDEX);
	/* intercept_page: into VTL2's assist page at 112, entry reason INTERCEPT. */
	assert_int_equal(vtl_call(f), VSM_HC_SWITCHED);
	set_partition_config(f, HV_VSM_CONFIG_INTERCEPT_PAGE);
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), 0);
	assert_int_equal(f->nmsg, 0);
	assert_memory_equal(f->ram + 0xa000 + HV_VP_ASSIST_INTERCEPT_MESSAGE, m, sizeof(m));
	assert_int_equal(u32_at(f->ram + 0xa000 + HV_VP_ASSIST_VTL_ENTRY_REASON),
			 HV_VTL_ENTRY_INTERCEPT);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 2);
	vf_free(f);
}

/* SetVpRegisters of one register (input VTL byte `vtl`) by VP 0: the result. */
static uint64_t set_one(struct vfake *f, uint8_t vtl, uint32_t name, uint64_t value)
{
	uint8_t in[48];
	vf_one_register(in, vtl, name, value);
	return hc(f, 0, HVCALL_SET_VP_REGISTERS | REP(1), in, sizeof(in));
}

/*
 * VTL2's register page: VTL0's registers at each intercept (valid, VTL 0),
 * the dirty RIP/RSP/RFLAGS/segments applied by the next VtlReturn, nothing
 * without dirty flags, not valid after a VtlCall entry; VTL0 cannot have
 * one; reserved bits refused.
 */
static void test_register_page(void **state)
{
	(void)state;
	enum { PAGE = 0xc000 };
	struct vfake *f = booted(1);
	uint8_t *pg = f->ram + PAGE;
	uint8_t m[HV_MESSAGE_SIZE] = { 0 };
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_VP_ASSIST_PAGE, 0xa000 | 1), 0);
	set_partition_config(f, HV_VSM_CONFIG_INTERCEPT_PAGE);
	assert_int_equal(set_one(f, 0, HV_REGISTER_REGISTER_PAGE, PAGE | 2),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	assert_int_equal(set_one(f, USE_VTL(0), HV_REGISTER_REGISTER_PAGE, PAGE | 1),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(set_one(f, 0, HV_REGISTER_REGISTER_PAGE, PAGE | 1), REP(1));
	struct vsm_regs *r0 = &f->regs[0][0];
	r0->rip = 0x1234;
	r0->rflags = 0x202;
	r0->gpr[0] = 0xaa;
	r0->gpr[VSM_GPR_RSP] = 0x8000;
	r0->cs.selector = 0x10;
	r0->cr3 = 0x5000;
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	r0->gpr[0] = 0xaa;   /* the switch brought VTL2's shared GPRs */

	/* An intercept: VTL0 in the page, valid. */
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), 0);
	assert_int_equal(u16_at(pg), 1);                  /* version */
	assert_int_equal(pg[2], 1);                       /* is_valid */
	assert_int_equal(pg[3], 0);                       /* vtl */
	assert_int_equal(u32_at(pg + 4), 0);              /* dirty */
	assert_int_equal(u64_at(pg + 8), 0xaa);           /* RAX */
	assert_int_equal(u64_at(pg + 8 + 8 * VSM_GPR_RSP), 0x8000);
	assert_int_equal(u64_at(pg + 136), 0x1234);       /* RIP */
	assert_int_equal(u64_at(pg + 144), 0x202);        /* RFLAGS */
	assert_int_equal(u16_at(pg + 256 + 16 + 12), 0x10);   /* CS selector */
	assert_int_equal(u64_at(pg + 360), 0x5000);       /* CR3 */
	/* VTL2 advances RIP and moves RSP through the page: the return applies them. */
	uint64_t rip = 0x1236, rsp = 0x7ff8, junk = 0x5555;
	memcpy(pg + 136, &rip, 8);
	memcpy(pg + 8 + 8 * VSM_GPR_RSP, &rsp, 8);
	memcpy(pg + 8, &junk, 8);                        /* RAX: shared, not applied */
	pg[4] = 1 | 2;                                   /* general purpose, instruction pointer */
	unsigned nswitch = f->nswitch;
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	assert_int_equal(f->nswitch, nswitch + 1);
	assert_int_equal(r0->rip, 0x1236);
	assert_int_equal(r0->gpr[VSM_GPR_RSP], 0x7ff8);
	assert_int_not_equal(r0->gpr[0], 0x5555);
	assert_int_equal(pg[2], 0);                       /* consumed */
	assert_int_equal(r0->rflags, 0x202);

	/* No dirty flags: nothing changes. RFLAGS with reserved bits: ignored. */
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), 0);
	rip = 0x9999;
	memcpy(pg + 136, &rip, 8);
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	assert_int_equal(r0->rip, 0x1236);
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), 0);
	uint64_t fl = 1ull << 40 | 0x2;
	memcpy(pg + 144, &fl, 8);
	pg[4] = 1u << 4;                                 /* flags */
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	assert_int_equal(r0->rflags, 0x202);
	/* Segments: all six from the page. */
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), 0);
	uint16_t sel = 0x2b;
	memcpy(pg + 256 + 5 * 16 + 12, &sel, 2);         /* GS selector */
	pg[4] = 1u << 3;
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	assert_int_equal(r0->gs.selector, 0x2b);
	assert_int_equal(r0->cs.selector, 0x10);
	/* A page for another VTL is not applied. */
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), 0);
	pg[3] = 1;
	pg[4] = 2;
	memcpy(pg + 136, &rip, 8);
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	assert_int_equal(r0->rip, 0x1236);
	/* A VtlCall entry: the page does not describe VTL0 then. */
	pg[2] = 1;
	assert_int_equal(vtl_call(f), VSM_HC_SWITCHED);
	assert_int_equal(pg[2], 0);
	/* Read back; disabled: intercepts leave the page alone. */
	uint8_t in[48];
	vf_one_register(in, 0, HV_REGISTER_REGISTER_PAGE, 0);
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_REGISTERS | REP(1), in, 20), REP(1));
	assert_int_equal(u64_at(f->ram + OUT), PAGE | 1);
	assert_int_equal(set_one(f, 0, HV_REGISTER_REGISTER_PAGE, 0), REP(1));
	assert_int_equal(vtl_return(f), VSM_HC_SWITCHED);
	assert_int_equal(vsm_deliver_intercept(f->vsm, 0, m), 0);
	assert_int_equal(pg[2], 0);
	vf_free(f);
}

/* PostMessageDirect / SignalEventDirect to a VTL2 SynIC: vsm writes its pages. */
static void test_synic_vtl2(void **state)
{
	(void)state;
	struct vfake *f = booted(1);
	uint8_t in[276] = { 0 };
	memset(in, 0xff, 8);
	uint32_t self_vp = HV_VP_INDEX_SELF;
	memcpy(in + 8, &self_vp, 4);
	in[12] = 2;      /* VTL2 */
	in[16] = 3;      /* SINT */
	uint32_t type = 0x4321;
	memcpy(in + 20, &type, 4);
	in[24] = 2;
	in[36] = 0x99;
	/* No SynIC yet. */
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE_DIRECT, in, sizeof(in)),
			 HV_STATUS_INVALID_SYNIC_STATE);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SCONTROL, 1), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SIMP, 0xc000 | 1), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SIEFP, 0xd000 | 1), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SINT0 + 3, 0x63), 0);
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE_DIRECT, in, sizeof(in)), 0);
	assert_int_equal(f->nmsg, 0);
	assert_memory_equal(f->ram + 0xc000 + 3 * 256, in + 20, 256);
	assert_int_equal(f->nirq, 1);
	assert_int_equal(f->irq[0].vtl, 2);
	assert_int_equal(f->irq[0].vector, 0x63);
	/* Slot busy. */
	assert_int_equal(hc(f, 0, HVCALL_POST_MESSAGE_DIRECT, in, sizeof(in)),
			 HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(f->nirq, 1);
	/* Event flag 10 of SINT 3: set once (newly 1, interrupt), then again (newly 0). */
	struct { uint64_t part; uint32_t vp; uint8_t vtl, sint; uint16_t flag; } __attribute__((packed))
		ev = { SELF, 0xFFFFFFFEu, 2, 3, 10 };
	memset(f->ram + OUT, 0xAA, 8);
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &ev, sizeof(ev)), 0);
	assert_int_equal(f->ram[OUT], 1);
	assert_int_equal(f->ram[0xd000 + 3 * 256 + 1], 1u << 2);
	assert_int_equal(f->nirq, 2);
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &ev, sizeof(ev)), 0);
	assert_int_equal(f->ram[OUT], 0);
	assert_int_equal(f->nirq, 2);
	assert_int_equal(f->nevent, 0);
	/* VTL0 targets still go to the platform (hv's SynIC). */
	ev.vtl = 0;
	assert_int_equal(hc(f, 0, HVCALL_SIGNAL_EVENT_DIRECT, &ev, sizeof(ev)), 0);
	assert_int_equal(f->nevent, 1);
	vf_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatcher_checks),
		cmocka_unit_test(test_modify_vtl_protection_mask),
		cmocka_unit_test(test_install_intercept),
		cmocka_unit_test(test_install_eoi_intercept),
		cmocka_unit_test(test_register_page),
		cmocka_unit_test(test_translate),
		cmocka_unit_test(test_translate_ex),
		cmocka_unit_test(test_get_vp_index_from_apic_id),
		cmocka_unit_test(test_assert_virtual_interrupt),
		cmocka_unit_test(test_signal_event_direct),
		cmocka_unit_test(test_post_message_direct),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_intercept_messages),
		cmocka_unit_test(test_deliver_intercept),
		cmocka_unit_test(test_synic_vtl2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
