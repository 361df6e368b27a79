/*
 * Unit tests of the VSM state machine (src/hv/vsm.c, vsm_regs.c and the
 * enable/start/call/return hypercalls of vsm_hcall.c) against the fake
 * platform of test_vsm_fake.h: enabling VTLs on the partition and on VPs
 * with the TLFS ordering rules and status codes, VtlCall and VtlReturn
 * (fast and slow, return actions, VINA auto-reset, every #UD case), the
 * loader's VTL2 boot state, StartVirtualProcessor, Get/SetVpRegisters
 * access rules and values (VSM registers and VTL0's architectural
 * registers from VTL2), per-VTL synthetic MSRs and the hypercall page,
 * interrupts across VTLs (preemption, VINA) and the register conversion
 * to the accelerator's structs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "test_vsm_fake.h"

#define IN  0x1000ull
#define OUT 0x3000ull
#define REP(n) ((uint64_t)(n) << 32)
#define REP_START(n) ((uint64_t)(n) << 48)
#define USE_VTL(v) (0x10u | (v))
#define CR0_PE 1ull

/* A memory-form hypercall with `in` copied to IN; returns RAX. */
static uint64_t hc(struct vfake *f, uint32_t vp, uint64_t control, const void *in, size_t len)
{
	memcpy(f->ram + IN, in, len);
	struct vsm_hypercall h = { .control = control, .rdx = IN, .r8 = OUT, .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, vp, &h), VSM_HC_DONE);
	return h.result;
}

static enum vsm_hc_action vtl_switch(struct vfake *f, uint32_t vp, uint64_t control,
				     uint64_t rax)
{
	struct vsm_hypercall h = { .control = control, .rax = rax, .long_mode = true };
	return vsm_hypercall(f->vsm, vp, &h);
}

struct enable_vp {
	uint64_t partition;
	uint32_t vp;
	uint8_t vtl, rsvd[3];
	struct hv_initial_vp_context ctx;
} __attribute__((packed));

static uint64_t enable_partition(struct vfake *f, uint32_t vp, uint8_t vtl, uint8_t flags)
{
	uint8_t in[16] = { 0 };
	memset(in, 0xff, 8);
	in[8] = vtl;
	in[9] = flags;
	return hc(f, vp, HVCALL_ENABLE_PARTITION_VTL, in, sizeof(in));
}

static uint64_t enable_vp(struct vfake *f, uint32_t caller, uint32_t vp, uint8_t vtl,
			  uint64_t rip, uint64_t cr0)
{
	struct enable_vp in = { .partition = HV_PARTITION_ID_SELF, .vp = vp, .vtl = vtl };
	in.ctx.rip = rip;
	in.ctx.cr0 = cr0;
	in.ctx.cs.selector = 0x08;
	return hc(f, caller, HVCALL_ENABLE_VP_VTL, &in, sizeof(in));
}

static uint64_t start_vp(struct vfake *f, uint32_t caller, uint32_t vp, uint8_t vtl,
			 uint64_t rip)
{
	struct enable_vp in = { .partition = HV_PARTITION_ID_SELF, .vp = vp, .vtl = vtl };
	in.ctx.rip = rip;
	in.ctx.cr0 = CR0_PE;
	return hc(f, caller, HVCALL_START_VIRTUAL_PROCESSOR, &in, sizeof(in));
}

/* Get one register of (self, vtl) from vp. */
static uint64_t get_reg(struct vfake *f, uint32_t vp, uint8_t vtl, uint32_t name, uint64_t *val)
{
	uint8_t in[48];
	vf_one_register(in, vtl, name, 0);
	memset(f->ram + OUT, 0xAA, 16);
	uint64_t r = hc(f, vp, HVCALL_GET_VP_REGISTERS | REP(1), in, 20);
	if (val)
		memcpy(val, f->ram + OUT, 8);
	/* Status only; a success has done its one rep. */
	if ((r & 0xffff) == 0)
		assert_int_equal(r, REP(1));
	return r & 0xffff;
}

static uint64_t set_reg(struct vfake *f, uint32_t vp, uint8_t vtl, uint32_t name, uint64_t val)
{
	uint8_t in[48];
	vf_one_register(in, vtl, name, val);
	uint64_t r = hc(f, vp, HVCALL_SET_VP_REGISTERS | REP(1), in, sizeof(in));
	if ((r & 0xffff) == 0)
		assert_int_equal(r, REP(1));
	return r & 0xffff;
}

/* A partition booted the loader's way: VTL2 on VP 0, running it. */
static struct vfake *booted(unsigned nvps)
{
	struct vfake *f = vf_new(nvps);
	assert_int_equal(vsm_boot_vtl2(f->vsm), 0);
	return f;
}

static void test_create(void **state)
{
	(void)state;
	struct vsm *v;
	struct vsm_config c = { .nvps = 1, .max_vtl = 2 };
	assert_int_not_equal(vsm_create(&c, &v), 0);   /* ops missing */
	struct vfake *f = vf_new(2);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 0);
	assert_int_equal(vsm_partition_enabled_vtls(f->vsm), 1);
	assert_int_equal(vsm_vp_enabled_vtls(f->vsm, 1), 1);
	assert_true(vsm_vp_started(f->vsm, 0));
	assert_false(vsm_vp_started(f->vsm, 1));
	vf_free(f);
}

static void test_boot_vtl2(void **state)
{
	(void)state;
	struct vfake *f = booted(2);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 2);
	assert_int_equal(vsm_partition_enabled_vtls(f->vsm), 5);
	assert_int_equal(vsm_vp_enabled_vtls(f->vsm, 0), 5);
	assert_int_equal(vsm_vp_enabled_vtls(f->vsm, 1), 1);
	uint64_t v;
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VSM_VP_STATUS, &v), 0);
	assert_int_equal(v, 2 | 5 << 16);
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VSM_PARTITION_STATUS, &v), 0);
	assert_int_equal(v, 5 | 2 << 16);
	vf_free(f);
}

static void test_enable_partition_vtl(void **state)
{
	(void)state;
	struct vfake *f = vf_new(2);
	assert_int_equal(enable_partition(f, 0, 0, 0), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(enable_partition(f, 0, 3, 0), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(enable_partition(f, 0, 2, 1), HV_STATUS_INVALID_PARAMETER); /* MBEC */
	uint8_t in[16] = { 0 };
	in[8] = 2;   /* partition id 0: not self */
	assert_int_equal(hc(f, 0, HVCALL_ENABLE_PARTITION_VTL, in, 16),
			 HV_STATUS_INVALID_PARTITION_ID);
	memset(in, 0xff, 8);
	in[15] = 1;  /* reserved */
	assert_int_equal(hc(f, 0, HVCALL_ENABLE_PARTITION_VTL, in, 16),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(vsm_partition_enabled_vtls(f->vsm), 1);
	/* VTL1 first; then VTL0 is no longer the highest below 2. */
	assert_int_equal(enable_partition(f, 0, 1, 0), 0);
	assert_int_equal(enable_partition(f, 0, 2, 0), HV_STATUS_ACCESS_DENIED);
	assert_int_equal(enable_partition(f, 0, 1, 0), HV_STATUS_VTL_ALREADY_ENABLED);
	vf_free(f);

	f = vf_new(1);
	assert_int_equal(enable_partition(f, 0, 2, 0), 0);
	assert_int_equal(vsm_partition_enabled_vtls(f->vsm), 5);
	assert_int_equal(enable_partition(f, 0, 2, 0), HV_STATUS_VTL_ALREADY_ENABLED);
	/* Fast form: RDX = partition id, R8 = target VTL. */
	struct vsm_hypercall h = { .control = HVCALL_ENABLE_PARTITION_VTL | (1ull << 16),
				   .rdx = HV_PARTITION_ID_SELF, .r8 = 1, .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_DONE);
	assert_int_equal(h.result, 0);
	assert_int_equal(vsm_partition_enabled_vtls(f->vsm), 7);
	vf_free(f);
}

static void test_enable_vp_vtl(void **state)
{
	(void)state;
	struct vfake *f = vf_new(2);
	assert_int_equal(enable_vp(f, 0, 0, 2, 0x1000, CR0_PE), HV_STATUS_INVALID_VTL_STATE);
	assert_int_equal(enable_partition(f, 0, 2, 0), 0);
	assert_int_equal(enable_vp(f, 0, 0, 2, 0x1000, 0), HV_STATUS_INVALID_PARAMETER); /* real mode */
	assert_int_equal(enable_vp(f, 0, 7, 2, 0x1000, CR0_PE), HV_STATUS_INVALID_VP_INDEX);
	assert_int_equal(enable_vp(f, 0, 0, 0, 0x1000, CR0_PE), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(enable_vp(f, 0, HV_VP_INDEX_SELF, 2, 0xabc000, CR0_PE), 0);
	assert_int_equal(vsm_vp_enabled_vtls(f->vsm, 0), 5);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 0);   /* no switch */
	assert_int_equal(f->nswitch, 0);
	assert_int_equal(f->regs[0][2].rip, 0xabc000);
	assert_int_equal(f->regs[0][2].cs.selector, 0x08);
	assert_int_equal(f->regs[0][0].rip, 0);
	assert_int_equal(enable_vp(f, 0, 0, 2, 0x1000, CR0_PE), HV_STATUS_VTL_ALREADY_ENABLED);
	vf_free(f);
}

static void test_vtl_call_return(void **state)
{
	(void)state;
	struct vfake *f = vf_new(1);
	assert_int_equal(enable_partition(f, 0, 2, 0), 0);
	assert_int_equal(enable_vp(f, 0, 0, 2, 0x2000, CR0_PE), 0);
	/* VTL2 sets up its VP assist page through its own MSR. */
	uint64_t assist = 0x8000;
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_VP_ASSIST_PAGE, assist | 1), 0);

	f->regs[0][0].gpr[3] = 0x1234;     /* RBX: shared */
	f->regs[0][0].gpr[4] = 0x7000;     /* RSP: private */
	f->regs[0][0].rip = 0x400123;
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL, 0), VSM_HC_SWITCHED);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 2);
	assert_int_equal(f->switch_from, 0);
	assert_int_equal(f->switch_to, 2);
	assert_int_equal(f->regs[0][2].gpr[3], 0x1234);
	assert_int_not_equal(f->regs[0][2].gpr[4], 0x7000);
	assert_int_equal(f->regs[0][2].rip, 0x2000);
	uint32_t reason;
	memcpy(&reason, f->ram + assist + HV_VP_ASSIST_VTL_ENTRY_REASON, 4);
	assert_int_equal(reason, HV_VTL_ENTRY_VTL_CALL);
	/* No VTL above 2: a second call is #UD. */
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL, 0), VSM_HC_INJECT_UD);

	/* Slow return: VTL0's RAX/RCX come from VTL2's assist page. */
	uint64_t ctl[2] = { 0x1111, 0x2222 };
	memcpy(f->ram + assist + HV_VP_ASSIST_VTL_RETURN_RAX, ctl, sizeof(ctl));
	f->regs[0][2].gpr[0] = 0x9999;
	f->regs[0][2].gpr[5] = 0x5555;     /* RBP: shared, carried back */
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_RETURN, 0), VSM_HC_SWITCHED);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 0);
	assert_int_equal(f->regs[0][0].gpr[0], 0x1111);
	assert_int_equal(f->regs[0][0].gpr[1], 0x2222);
	assert_int_equal(f->regs[0][0].gpr[5], 0x5555);
	assert_int_equal(f->regs[0][0].gpr[4], 0x7000);
	assert_int_equal(f->regs[0][0].rip, 0x400123);

	/* Fast return: RAX/RCX are VTL2's. */
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL, 0), VSM_HC_SWITCHED);
	f->regs[0][2].gpr[0] = 0x9999;
	f->regs[0][2].gpr[1] = 0x8888;
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_RETURN, 1), VSM_HC_SWITCHED);
	assert_int_equal(f->regs[0][0].gpr[0], 0x9999);
	assert_int_equal(f->regs[0][0].gpr[1], 0x8888);
	assert_int_equal(f->nswitch, 4);
	vf_free(f);
}

static void test_vtl_call_return_ud(void **state)
{
	(void)state;
	struct vfake *f = vf_new(1);
	/* Only VTL0: nothing to call, nothing to return to. */
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL, 0), VSM_HC_INJECT_UD);
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_RETURN, 0), VSM_HC_INJECT_UD);
	assert_int_equal(enable_partition(f, 0, 2, 0), 0);
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL, 0), VSM_HC_INJECT_UD); /* VP lacks VTL2 */
	assert_int_equal(enable_vp(f, 0, 0, 2, 0x2000, CR0_PE), 0);
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL, 1), VSM_HC_INJECT_UD);       /* input */
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL | (1ull << 16), 0), VSM_HC_INJECT_UD);
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL | REP(1), 0), VSM_HC_INJECT_UD);
	struct vsm_hypercall h = { .control = HVCALL_VTL_CALL, .cpl = 3, .long_mode = true };
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_INJECT_UD);
	h = (struct vsm_hypercall){ .control = HVCALL_VTL_CALL, .long_mode = false };
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_INJECT_UD);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 0);
	assert_int_equal(f->nswitch, 0);
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL, 0), VSM_HC_SWITCHED);
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_RETURN, 2), VSM_HC_INJECT_UD);
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_RETURN | (1ull << 17), 0), VSM_HC_INJECT_UD);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 2);
	vf_free(f);
}

static void test_return_actions_and_vina(void **state)
{
	(void)state;
	struct vfake *f = booted(2);
	uint64_t assist = 0x9000;
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_VP_ASSIST_PAGE, assist | 1), 0);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_VINA,
				 0x30 | HV_VSM_VINA_ENABLED | HV_VSM_VINA_AUTO_RESET), 0);
	f->ram[assist + HV_VP_ASSIST_VINA_STATUS] = 1;
	/* Two signal-event actions (VP 1 VTL0 SINT 2 flag 7; VP 0 SINT 3 flag 9), then end. */
	uint8_t *a = f->ram + assist + HV_VP_ASSIST_VTL_RETURN_ACTIONS;
	uint64_t one = 1;
	memcpy(a, &one, 8);
	uint32_t vp1 = 1;
	memcpy(a + 8, &vp1, 4);
	a[12] = 0;
	a[13] = 2;
	a[14] = 7;
	memcpy(a + 16, &one, 8);
	a[29] = 3;
	a[30] = 9;
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_RETURN, 1), VSM_HC_SWITCHED);
	assert_int_equal(f->nevent, 2);
	assert_int_equal(f->event[0].vp, 1);
	assert_int_equal(f->event[0].sint, 2);
	assert_int_equal(f->event[0].flag, 7);
	assert_int_equal(f->event[1].vp, 0);
	assert_int_equal(f->event[1].sint, 3);
	assert_int_equal(f->event[1].flag, 9);
	for (unsigned i = 0; i < HV_VP_ASSIST_RETURN_ACTIONS_SIZE; i++)
		assert_int_equal(a[i], 0);
	assert_int_equal(f->ram[assist + HV_VP_ASSIST_VINA_STATUS], 0);
	vf_free(f);
}

static void test_start_virtual_processor(void **state)
{
	(void)state;
	struct vfake *f = booted(3);
	/* From VTL2 on VP 0. VP 1 has no VTL2 yet. */
	assert_int_equal(start_vp(f, 0, 1, 2, 0x5000), HV_STATUS_INVALID_VP_STATE);
	assert_int_equal(start_vp(f, 0, 0, 2, 0x5000), HV_STATUS_INVALID_VP_STATE); /* self */
	assert_int_equal(start_vp(f, 0, 9, 2, 0x5000), HV_STATUS_INVALID_VP_INDEX);
	assert_int_equal(enable_vp(f, 0, 1, 2, 0x1000, CR0_PE), 0);
	assert_false(vsm_vp_started(f->vsm, 1));
	assert_int_equal(start_vp(f, 0, 1, 2, 0x5000), 0);
	assert_int_equal(f->nstart, 1);
	assert_int_equal(f->start_vp, 1);
	assert_int_equal(f->start_vtl, 2);
	assert_int_equal(f->regs[1][2].rip, 0x5000);
	assert_true(vsm_vp_started(f->vsm, 1));
	assert_int_equal(vsm_active_vtl(f->vsm, 1), 2);
	assert_int_equal(start_vp(f, 0, 1, 2, 0x5000), HV_STATUS_INVALID_VP_STATE); /* running */
	/* VTL2 may start VP 2 straight in VTL0. */
	assert_int_equal(start_vp(f, 0, 2, 0, 0x6000), 0);
	assert_int_equal(vsm_active_vtl(f->vsm, 2), 0);
	assert_int_equal(f->regs[2][0].rip, 0x6000);
	vf_free(f);

	/* A VTL0 caller may not start in VTL2, nor at all once VTL2 denies it. */
	f = vf_new(2);
	assert_int_equal(start_vp(f, 0, 1, 2, 0x5000), HV_STATUS_ACCESS_DENIED); /* above caller */
	assert_int_equal(enable_partition(f, 0, 2, 0), 0);
	assert_int_equal(enable_vp(f, 0, 0, 2, 0x2000, CR0_PE), 0);
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_CALL, 0), VSM_HC_SWITCHED);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_PARTITION_CONFIG,
				 HV_VSM_CONFIG_DENY_LOWER_VTL_STARTUP), 0);
	assert_int_equal(vtl_switch(f, 0, HVCALL_VTL_RETURN, 1), VSM_HC_SWITCHED);
	assert_int_equal(start_vp(f, 0, 1, 0, 0x5000), HV_STATUS_ACCESS_DENIED);
	assert_int_equal(f->nstart, 0);
	vf_free(f);
}

/*
 * On a platform where the MSRs and debug registers cost a call each, vsm
 * asks for them only when one is named, and set_regs writes only the parts
 * the hypercall loaded: a RIP-only SetVpRegisters (an intercept's advance)
 * touches neither.
 */
static void test_register_parts(void **state)
{
	(void)state;
	struct vfake *f = vf_new_lazy(2);
	assert_int_equal(vsm_boot_vtl2(f->vsm), 0);
	f->regs[0][0].lstar = 0xffffffff81000000ull;
	f->regs[0][0].dr[2] = 0x4000;
	f->regs[0][0].dr7 = 0x400;
	uint64_t v;
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_RIP, 0x1234), 0);
	assert_int_equal(get_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_RIP, &v), 0);
	assert_int_equal(v, 0x1234);
	assert_int_equal(f->npart_calls, 0);
	assert_int_equal(f->set_parts, 0);
	/* The MSRs stayed as they were although the set block had them zero. */
	assert_int_equal(f->regs[0][0].lstar, 0xffffffff81000000ull);
	assert_int_equal(f->regs[0][0].dr7, 0x400);
	assert_int_equal(get_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_LSTAR, &v), 0);
	assert_int_equal(v, 0xffffffff81000000ull);
	assert_int_equal(f->npart_calls, 1);
	assert_int_equal(f->parts_asked, VSM_REGS_MSRS);
	assert_int_equal(get_reg(f, 0, USE_VTL(0), 0x00050002u /* DR2 */, &v), 0);
	assert_int_equal(v, 0x4000);
	assert_int_equal(get_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_DR7, &v), 0);
	assert_int_equal(v, 0x400);
	assert_int_equal(f->parts_asked, VSM_REGS_ALL);
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_DR7, 0x401), 0);
	assert_int_equal(f->set_parts, VSM_REGS_DEBUG);
	assert_int_equal(f->regs[0][0].dr7, 0x401);
	assert_int_equal(f->regs[0][0].dr[2], 0x4000);
	assert_int_equal(f->regs[0][0].lstar, 0xffffffff81000000ull);
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_SFMASK, 0x47700), 0);
	assert_int_equal(f->set_parts, VSM_REGS_MSRS);
	assert_int_equal(f->regs[0][0].sfmask, 0x47700);
	assert_int_equal(f->regs[0][0].lstar, 0xffffffff81000000ull);
	/* DR6/DR7 are 32-bit values. */
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_DR7, 1ull << 32),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	vf_free(f);
}

static void test_vtl0_registers_from_vtl2(void **state)
{
	(void)state;
	struct vfake *f = booted(2);
	f->regs[0][0].cr3 = 0x77000;
	uint64_t v;
	assert_int_equal(get_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_CR3, &v), 0);
	assert_int_equal(v, 0x77000);
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_RIP, 0xfff0), 0);
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_CR0, 0x80000011), 0);
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_LSTAR, 0xffffffff81000000ull), 0);
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_RAX + 13, 0x13), 0);
	assert_int_equal(f->regs[0][0].rip, 0xfff0);
	assert_int_equal(f->regs[0][0].cr0, 0x80000011);
	assert_int_equal(f->regs[0][0].lstar, 0xffffffff81000000ull);
	assert_int_equal(f->regs[0][0].gpr[13], 0x13);
	assert_int_equal(f->regs[0][2].rip, 0);
	/* A segment register, 16 bytes. */
	uint8_t in[48] = { 0 };
	memset(in, 0xff, 8);
	uint32_t self = HV_VP_INDEX_SELF, name = HV_X64_REGISTER_CS;
	memcpy(in + 8, &self, 4);
	in[12] = USE_VTL(0);
	memcpy(in + 16, &name, 4);
	struct hv_x64_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x10,
				     .attributes = 0xa09b };
	memcpy(in + 32, &cs, 16);
	assert_int_equal(hc(f, 0, HVCALL_SET_VP_REGISTERS | REP(1), in, sizeof(in)), REP(1));
	assert_int_equal(f->regs[0][0].cs.selector, 0x10);
	assert_int_equal(f->regs[0][0].cs.attributes, 0xa09b);
	assert_int_equal(get_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_CS, NULL), 0);
	assert_memory_equal(f->ram + OUT, &cs, 16);
	/* Bad values. */
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_EFER, 1ull << 20),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_CR0, 0x80000000),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	assert_int_equal(set_reg(f, 0, USE_VTL(0), HV_X64_REGISTER_CR8, 16),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	/* VTL2's own architectural registers are not reachable this way. */
	assert_int_equal(get_reg(f, 0, 0, HV_X64_REGISTER_RIP, NULL), HV_STATUS_ACCESS_DENIED);
	assert_int_equal(set_reg(f, 0, USE_VTL(2), HV_X64_REGISTER_RIP, 1), HV_STATUS_ACCESS_DENIED);
	/* Unknown register, reserved HV_INPUT_VTL bits, another VP, VTL1 not enabled. */
	assert_int_equal(get_reg(f, 0, USE_VTL(0), 0x12345, NULL), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(get_reg(f, 0, 0x20, HV_X64_REGISTER_RIP, NULL),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(get_reg(f, 0, USE_VTL(1), HV_X64_REGISTER_RIP, NULL),
			 HV_STATUS_INVALID_VTL_STATE);
	uint8_t g[20] = { 0 };
	memset(g, 0xff, 8);
	uint32_t other = 1, rip = HV_X64_REGISTER_RIP;
	memcpy(g + 8, &other, 4);
	memcpy(g + 16, &rip, 4);
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_REGISTERS | REP(1), g, sizeof(g)),
			 HV_STATUS_ACCESS_DENIED);
	vf_free(f);
}

static void test_vtl0_cannot_reach_vtl2(void **state)
{
	(void)state;
	struct vfake *f = vf_new(1);
	assert_int_equal(enable_partition(f, 0, 2, 0), 0);
	assert_int_equal(enable_vp(f, 0, 0, 2, 0x2000, CR0_PE), 0);
	assert_int_equal(get_reg(f, 0, USE_VTL(2), HV_X64_REGISTER_RIP, NULL),
			 HV_STATUS_ACCESS_DENIED);
	assert_int_equal(get_reg(f, 0, USE_VTL(2), HV_REGISTER_VSM_PARTITION_CONFIG, NULL),
			 HV_STATUS_ACCESS_DENIED);
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VSM_PARTITION_CONFIG, NULL),
			 HV_STATUS_ACCESS_DENIED);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_VP_SECURE_CONFIG_VTL0, 0),
			 HV_STATUS_ACCESS_DENIED);
	assert_int_equal(get_reg(f, 0, 0, HV_X64_REGISTER_RIP, NULL), HV_STATUS_ACCESS_DENIED);
	/* Read-only VSM registers are readable from VTL0. */
	uint64_t v;
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VSM_VP_STATUS, &v), 0);
	assert_int_equal(v, 0 | 5 << 16);
	vf_free(f);
}

static void test_vsm_registers(void **state)
{
	(void)state;
	struct vfake *f = booted(1);
	uint64_t v;
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VSM_CODE_PAGE_OFFSETS, &v), 0);
	assert_int_equal(v & 0xfff, VSM_CODE_VTL_CALL_OFFSET);
	assert_int_equal((v >> 12) & 0xfff, VSM_CODE_VTL_RETURN_OFFSET);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_CODE_PAGE_OFFSETS, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_VP_STATUS, 0), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_CAPABILITIES, 0),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VSM_CAPABILITIES, &v), 0);
	assert_true(v & HV_VSM_CAP_INTERCEPT_PAGE_AVAILABLE);
	assert_true(v & HV_VSM_CAP_RETURN_ACTION_AVAILABLE);
	assert_false(v & 0x1ffff);   /* no DR6 sharing, no MBEC */

	/* VsmPartitionConfig: reserved bits, default mask, write-once protection. */
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_PARTITION_CONFIG, 1ull << 16),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_PARTITION_CONFIG, 1 | 0x3 << 1),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	uint64_t cfg = HV_VSM_CONFIG_ENABLE_VTL_PROTECTION | 0xf << 1 | HV_VSM_CONFIG_INTERCEPT_PAGE;
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_PARTITION_CONFIG, cfg), 0);
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VSM_PARTITION_CONFIG, &v), 0);
	assert_int_equal(v, cfg);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_PARTITION_CONFIG, 0xf << 1),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	assert_int_equal(get_reg(f, 0, USE_VTL(0), HV_REGISTER_VSM_PARTITION_CONFIG, NULL),
			 HV_STATUS_ACCESS_DENIED);

	/* Secure config of VTL0 held by VTL2; not of VTL2 itself. */
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_VP_SECURE_CONFIG_VTL0, 2), 0);
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VSM_VP_SECURE_CONFIG_VTL0, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_VP_SECURE_CONFIG_VTL0, 1),
			 HV_STATUS_INVALID_REGISTER_VALUE);     /* MBEC */
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VSM_VP_SECURE_CONFIG_VTL0 + 2, NULL),
			 HV_STATUS_ACCESS_DENIED);

	/* VINA. */
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_VINA, HV_VSM_VINA_ENABLED | 5),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_VINA, 1ull << 11),
			 HV_STATUS_INVALID_REGISTER_VALUE);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_VINA, HV_VSM_VINA_ENABLED | 0xec), 0);

	/* Synthetic per-VTL registers. */
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VP_ASSIST_PAGE, 0x5001), 0);
	assert_int_equal(vsm_msr_read(f->vsm, 0, 2, HV_X64_MSR_VP_ASSIST_PAGE, &v), 0);
	assert_int_equal(v, 0x5001);
	assert_int_equal(vsm_msr_read(f->vsm, 0, 0, HV_X64_MSR_VP_ASSIST_PAGE, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(get_reg(f, 0, 0, HV_REGISTER_VP_INDEX, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VP_INDEX, 3), HV_STATUS_INVALID_REGISTER_VALUE);
	vf_free(f);
}

static void test_register_reps(void **state)
{
	(void)state;
	struct vfake *f = booted(1);
	f->regs[0][0].rip = 0x1111;
	f->regs[0][0].rflags = 0x202;
	f->regs[0][0].cr4 = 0x20;
	/* Three names; start at 1, so only the last two are read and written. */
	uint8_t in[28] = { 0 };
	memset(in, 0xff, 8);
	uint32_t self = HV_VP_INDEX_SELF;
	memcpy(in + 8, &self, 4);
	in[12] = USE_VTL(0);
	uint32_t names[3] = { HV_X64_REGISTER_RIP, HV_X64_REGISTER_RFLAGS, HV_X64_REGISTER_CR4 };
	memcpy(in + 16, names, sizeof(names));
	memset(f->ram + OUT, 0xAA, 48);
	uint64_t r = hc(f, 0, HVCALL_GET_VP_REGISTERS | REP(3) | REP_START(1), in, sizeof(in));
	assert_int_equal(r, REP(3));
	assert_int_equal(f->ram[OUT], 0xAA);     /* element 0 untouched */
	uint64_t v;
	memcpy(&v, f->ram + OUT + 16, 8);
	assert_int_equal(v, 0x202);
	memcpy(&v, f->ram + OUT + 32, 8);
	assert_int_equal(v, 0x20);
	/* A bad name stops the call there: reps done = its index. */
	names[2] = 0xdead;
	memcpy(in + 16, names, sizeof(names));
	r = hc(f, 0, HVCALL_GET_VP_REGISTERS | REP(3), in, sizeof(in));
	assert_int_equal(r, HV_STATUS_INVALID_PARAMETER | REP(2));
	/* Set: reserved padding after the name is refused. */
	uint8_t s[48] = { 0 };
	memcpy(s, in, 16);
	uint32_t rip = HV_X64_REGISTER_RIP;
	memcpy(s + 16, &rip, 4);
	s[20] = 1;
	assert_int_equal(hc(f, 0, HVCALL_SET_VP_REGISTERS | REP(1), s, sizeof(s)),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(f->regs[0][0].rip, 0x1111);
	/* The output block must fit the page: 256 values of 16 bytes do, 257 not. */
	assert_int_equal(hc(f, 0, HVCALL_GET_VP_REGISTERS | REP(257), in, sizeof(in)),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	vf_free(f);
}

static void test_fast_get_registers(void **state)
{
	(void)state;
	struct vfake *f = booted(1);
	f->regs[0][0].rip = 0xfeed;
	f->regs[0][0].cr3 = 0xbeef000;
	/* Header in RDX/R8, two names in XMM0 (bytes 16..23), output from byte 32 (XMM1). */
	struct vsm_hypercall h = { .control = HVCALL_GET_VP_REGISTERS | (1ull << 16) | REP(2),
				   .rdx = HV_PARTITION_ID_SELF, .long_mode = true };
	h.r8 = HV_VP_INDEX_SELF | (uint64_t)USE_VTL(0) << 32;
	h.xmm[0] = HV_X64_REGISTER_RIP | (uint64_t)HV_X64_REGISTER_CR3 << 32;
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_DONE);
	assert_int_equal(h.result, REP(2));
	assert_true(h.xmm_dirty);
	assert_int_equal(h.xmm[2], 0xfeed);
	assert_int_equal(h.xmm[3], 0);
	assert_int_equal(h.xmm[4], 0xbeef000);
	assert_int_equal(h.xmm[0], HV_X64_REGISTER_RIP | (uint64_t)HV_X64_REGISTER_CR3 << 32);
	/* Six values do not fit after the input. */
	h.control = HVCALL_GET_VP_REGISTERS | (1ull << 16) | REP(6);
	assert_int_equal(vsm_hypercall(f->vsm, 0, &h), VSM_HC_DONE);
	assert_int_equal(h.result, HV_STATUS_INVALID_HYPERCALL_INPUT);
	vf_free(f);
}

static void test_hypercall_page(void **state)
{
	(void)state;
	struct vfake *f = booted(1);
	uint64_t v;
	/* Needs a guest OS id first, like VTL0's. */
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_HYPERCALL, 0x20001), 0);
	assert_int_equal(vsm_msr_read(f->vsm, 0, 2, HV_X64_MSR_HYPERCALL, &v), 0);
	assert_int_equal(v, 0x20000);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_GUEST_OS_ID, 0x8100ull << 48), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_HYPERCALL, 0x20001), 0);
	assert_int_equal(vsm_msr_read(f->vsm, 0, 2, HV_X64_MSR_HYPERCALL, &v), 0);
	assert_int_equal(v, 0x20001);
	const uint8_t *p = f->ram + 0x20000;
	static const uint8_t plain[] = { 0xF3, 0x0F, 0x1E, 0xFA, 0xE6, HV_HYPERCALL_PORT, 0xC3 };
	assert_memory_equal(p, plain, sizeof(plain));
	static const uint8_t call[] = { 0xF3, 0x0F, 0x1E, 0xFA, 0x48, 0x89, 0xC8, 0xB9, 0x11, 0, 0, 0,
					0xE6, HV_HYPERCALL_PORT, 0xC3 };
	assert_memory_equal(p + VSM_CODE_VTL_CALL_OFFSET, call, sizeof(call));
	assert_int_equal(p[VSM_CODE_VTL_RETURN_OFFSET + 8], 0x12);
	assert_int_equal(p[0x800], 0xCC);
	/* VTL0's page register is separate. */
	assert_int_equal(vsm_msr_read(f->vsm, 0, 0, HV_X64_MSR_HYPERCALL, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_HYPERCALL, 0x20004), -EINVAL);
	assert_int_equal(vsm_msr_read(f->vsm, 0, 2, 0x40000022, &v), -ENOENT);
	vf_free(f);
}

static void test_interrupt_pending(void **state)
{
	(void)state;
	struct vfake *f = vf_new(1);
	uint8_t vec = 0;
	assert_int_equal(vsm_interrupt_pending(f->vsm, 0, 2, &vec), 0);  /* VTL2 not enabled */
	assert_int_equal(enable_partition(f, 0, 2, 0), 0);
	assert_int_equal(enable_vp(f, 0, 0, 2, 0x2000, CR0_PE), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_VP_ASSIST_PAGE, 0xb000 | 1), 0);
	assert_int_equal(vsm_interrupt_pending(f->vsm, 0, 0, &vec), 0);  /* VTL0 runs it */
	/* An interrupt for VTL2 preempts VTL0 at once. */
	assert_int_equal(vsm_interrupt_pending(f->vsm, 0, 2, &vec), 1);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 2);
	assert_int_equal(f->switch_to, 2);
	uint32_t reason;
	memcpy(&reason, f->ram + 0xb000 + HV_VP_ASSIST_VTL_ENTRY_REASON, 4);
	assert_int_equal(reason, HV_VTL_ENTRY_INTERRUPT);
	/* A VTL0 interrupt while VTL2 runs: nothing without VINA ... */
	assert_int_equal(vsm_interrupt_pending(f->vsm, 0, 0, &vec), 0);
	assert_false(vsm_vina_armed(f->vsm, 0));
	assert_int_equal(set_reg(f, 0, 0, HV_REGISTER_VSM_VINA, HV_VSM_VINA_ENABLED | 0xe9), 0);
	/* armed: enabled, status clear (the wiring then asks VTL0's APIC) */
	assert_true(vsm_vina_armed(f->vsm, 0));
	assert_false(vsm_vina_armed(f->vsm, 1));   /* no such VP */
	/* ... one notification with VINA, then none until the status is cleared. */
	assert_int_equal(vsm_interrupt_pending(f->vsm, 0, 0, &vec), 2);
	assert_int_equal(vec, 0xe9);
	assert_int_equal(f->ram[0xb000 + HV_VP_ASSIST_VINA_STATUS], 1);
	assert_false(vsm_vina_armed(f->vsm, 0));   /* status set: disarmed */
	assert_int_equal(vsm_interrupt_pending(f->vsm, 0, 0, &vec), 0);
	f->ram[0xb000 + HV_VP_ASSIST_VINA_STATUS] = 0;
	assert_true(vsm_vina_armed(f->vsm, 0));
	assert_int_equal(vsm_interrupt_pending(f->vsm, 0, 0, &vec), 2);
	assert_int_equal(vsm_active_vtl(f->vsm, 0), 2);
	assert_int_equal(f->nswitch, 1);
	vf_free(f);
}

/* VTL2's synthetic timers: private per VTL, direct and message mode. */
static void test_vtl2_stimers(void **state)
{
	(void)state;
	struct vfake *f = vf_new(2);
	assert_int_equal(enable_partition(f, 0, 2, 0), 0);
	assert_int_equal(enable_vp(f, 0, 0, 2, 0x2000, CR0_PE), 0);
	uint64_t v = 0;
	/* VTL0's timers are hv's, not vsm's. */
	assert_int_equal(vsm_msr_read(f->vsm, 0, 0, HV_X64_MSR_STIMER0_CONFIG, &v), -ENOENT);
	/* Direct mode, vector 0x63, one-shot at 1000: armed at the COUNT write. */
	f->now = 100;
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_STIMER0_CONFIG,
				       1 | 1u << 12 | 0x63u << 4), 0);
	assert_int_equal(f->nstimer_changed, 0);   /* count 0: not armed */
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_STIMER0_COUNT, 1000), 0);
	assert_int_equal(f->nstimer_changed, 1);
	assert_int_equal(vsm_msr_read(f->vsm, 0, 2, HV_X64_MSR_STIMER0_COUNT, &v), 0);
	assert_int_equal(v, 1000);
	/* VP 1's VTL2 timers are its own. */
	assert_int_equal(vsm_msr_read(f->vsm, 1, 2, HV_X64_MSR_STIMER0_COUNT, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(vsm_stimer_poll(f->vsm, 999), 1000);
	assert_int_equal(f->nirq, 0);
	assert_int_equal(vsm_stimer_poll(f->vsm, 1000), UINT64_MAX);
	assert_int_equal(f->nirq, 1);
	assert_int_equal(f->irq[0].vtl, 2);
	assert_int_equal(f->irq[0].dest, 0);
	assert_int_equal(f->irq[0].vector, 0x63);
	assert_int_equal(vsm_msr_read(f->vsm, 0, 2, HV_X64_MSR_STIMER0_CONFIG, &v), 0);
	assert_int_equal(v & 1, 0);                 /* one-shot: disabled after firing */
	/* Direct mode with a vector below 16 is not enabled. */
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_STIMER0_CONFIG, 1 | 1u << 12 | 0x5u << 4), 0);
	assert_int_equal(vsm_msr_read(f->vsm, 0, 2, HV_X64_MSR_STIMER0_CONFIG, &v), 0);
	assert_int_equal(v & 1, 0);
	/* Message mode on SINT2: HvMessageTimerExpired into VTL2's SIMP slot 2. */
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SCONTROL, 1), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SIMP, 0xc000 | 1), 0);
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_SINT0 + 2, 0x64), 0);
	/* periodic, period 500, auto-enable on the COUNT write */
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_STIMER0_CONFIG + 2,
				       2 | 8 | 2u << 16), 0);
	f->now = 2000;
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_STIMER0_COUNT + 2, 500), 0);
	assert_int_equal(vsm_stimer_poll(f->vsm, 2600), 3000);
	assert_int_equal(f->nirq, 2);
	assert_int_equal(f->irq[1].vector, 0x64);
	const uint8_t *slot = f->ram + 0xc000 + 2 * HV_MESSAGE_SIZE;
	uint32_t type, index;
	uint64_t exp, when;
	memcpy(&type, slot, 4);
	memcpy(&index, slot + 16, 4);
	memcpy(&exp, slot + 24, 8);
	memcpy(&when, slot + 32, 8);
	assert_int_equal(type, HV_MESSAGE_TIMER_EXPIRED);
	assert_int_equal(slot[4], 24);
	assert_int_equal(index, 1);
	assert_int_equal(exp, 2500);
	assert_int_equal(when, 2600);
	/* Slot busy at the next period: dropped, message_pending set, still periodic. */
	assert_int_equal(vsm_stimer_poll(f->vsm, 3000), 3500);
	assert_int_equal(f->nirq, 2);
	assert_int_equal(slot[5] & 1, 1);
	/* A zero COUNT stops it. */
	assert_int_equal(vsm_msr_write(f->vsm, 0, 2, HV_X64_MSR_STIMER0_COUNT + 2, 0), 0);
	assert_int_equal(vsm_stimer_poll(f->vsm, 4000), UINT64_MAX);
	vf_free(f);
}

static void test_x86_conversion(void **state)
{
	(void)state;
	struct x86_regs r = { .rax = 1, .rbx = 2, .rcx = 3, .rdx = 4, .rsi = 5, .rdi = 6, .rsp = 7,
			      .rbp = 8, .r8 = 9, .r15 = 16, .rip = 0x1000, .rflags = 0x202 };
	struct x86_sregs s;
	memset(&s, 0, sizeof(s));
	s.cs = (struct x86_segment){ .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11,
				     .present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1 };
	s.ss = (struct x86_segment){ .selector = 0x18, .type = 3, .present = 1, .s = 1, .db = 1,
				     .g = 1, .dpl = 3, .avl = 1 };
	s.ldt = (struct x86_segment){ .unusable = 1 };
	s.gdt = (struct x86_dtable){ .base = 0x5000, .limit = 0x27 };
	s.cr0 = 0x80000011;
	s.cr3 = 0x9000;
	s.efer = 0x500;
	s.apic_base = 0xfee00900;
	struct vsm_regs v;
	memset(&v, 0, sizeof(v));
	vsm_regs_from_x86(&v, &r, &s);
	/* HV register order: RAX RCX RDX RBX RSP RBP RSI RDI R8.. */
	assert_int_equal(v.gpr[0], 1);
	assert_int_equal(v.gpr[1], 3);
	assert_int_equal(v.gpr[2], 4);
	assert_int_equal(v.gpr[3], 2);
	assert_int_equal(v.gpr[4], 7);
	assert_int_equal(v.gpr[5], 8);
	assert_int_equal(v.gpr[6], 5);
	assert_int_equal(v.gpr[7], 6);
	assert_int_equal(v.gpr[8], 9);
	assert_int_equal(v.gpr[15], 16);
	assert_int_equal(v.cs.attributes, 0xa09b);     /* 64-bit ring-0 code */
	assert_int_equal(v.ss.attributes, 0xd0f3);     /* with AVL, DPL 3 */
	assert_int_equal(v.ldtr.attributes, 0);
	assert_int_equal(v.gdtr.base, 0x5000);
	assert_int_equal(v.gdtr.limit, 0x27);
	assert_int_equal(v.apic_base, 0xfee00900);
	struct x86_regs r2;
	struct x86_sregs s2;
	memset(&s2, 0xff, sizeof(s2));
	vsm_regs_to_x86(&v, &r2, &s2);
	assert_memory_equal(&r, &r2, sizeof(r));
	assert_int_equal(s2.cs.l, 1);
	assert_int_equal(s2.cs.type, 11);
	assert_int_equal(s2.cs.unusable, 0);
	assert_int_equal(s2.ss.dpl, 3);
	assert_int_equal(s2.ss.avl, 1);
	assert_int_equal(s2.ss.db, 1);
	assert_int_equal(s2.ldt.unusable, 1);
	assert_int_equal(s2.cr0, 0x80000011);
	assert_int_equal(s2.cr3, 0x9000);
	assert_int_equal(s2.efer, 0x500);
	assert_int_equal(s2.gdt.limit, 0x27);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_boot_vtl2),
		cmocka_unit_test(test_enable_partition_vtl),
		cmocka_unit_test(test_enable_vp_vtl),
		cmocka_unit_test(test_vtl_call_return),
		cmocka_unit_test(test_vtl_call_return_ud),
		cmocka_unit_test(test_return_actions_and_vina),
		cmocka_unit_test(test_vtl2_stimers),
		cmocka_unit_test(test_start_virtual_processor),
		cmocka_unit_test(test_vtl0_registers_from_vtl2),
		cmocka_unit_test(test_vtl0_cannot_reach_vtl2),
		cmocka_unit_test(test_vsm_registers),
		cmocka_unit_test(test_register_reps),
		cmocka_unit_test(test_fast_get_registers),
		cmocka_unit_test(test_register_parts),
		cmocka_unit_test(test_hypercall_page),
		cmocka_unit_test(test_interrupt_pending),
		cmocka_unit_test(test_x86_conversion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
