/*
 * VTL2's register page (Hyper-V's HvX64RegisterPage, register 0x0009001C;
 * hvdef `HvX64RegisterPage`, used by OpenHCL's mshv_vtl runner): a page
 * of VTL2's own in which, while VTL2 handles an intercept, the hypervisor
 * shows the lower VTL's registers (is_valid, vtl), and VTL2 changes RIP,
 * RFLAGS, RSP or the segments by writing them and setting dirty flags,
 * which the next VtlReturn applies: no SetVpRegisters exit for the usual
 * "advance RIP past the instruction I emulated".
 *
 * Layout (4096 bytes): version u16 @0, is_valid u8 @2, vtl u8 @3, dirty
 * u32 @4 (general purpose 0, instruction pointer 1, xmm 2, segments 3,
 * flags 4), gp_registers[16] @8 (x86 order), rip @136, rflags @144,
 * reserved @152, xmm[6] @160, segment[6] @256 (ES CS SS DS FS GS), cr0
 * @352, cr3, cr4, cr8, efer, dr7, pending_interruption @400,
 * interrupt_state @408, instruction_emulation_hints @416, reserved to 4096.
 *
 * What hvmm fills and applies (all of it with the vsm lock held):
 *  - at each intercept delivered to VTL2 (vsm_deliver_intercept): version
 *    1, is_valid 1, vtl 0, dirty 0, VTL0's GPRs, RIP, RFLAGS, segments and
 *    control registers; xmm, pending_interruption, interrupt_state and the
 *    hints are 0 (the XMM registers are shared: VTL2 has VTL0's in its own);
 *  - at VtlCall entries: is_valid 0 (the page describes an intercept only);
 *  - at VtlReturn, if valid for the VTL returned to: the dirty RIP, RFLAGS,
 *    segments and, of the GPRs, RSP (the private one: the others are
 *    shared, so VTL0 gets VTL2's own at the return, as without the page;
 *    applying the page's copies would undo what VTL2 emulated into them);
 *    a dirty xmm flag is ignored for the same reason. Then is_valid 0.
 */
#include "hv/vsm_impl.h"

#include <stddef.h>
#include <string.h>

#include "core/log.h"

struct hv_register_page {
	uint16_t version;
	uint8_t is_valid;
	uint8_t vtl;
	uint32_t dirty;
	uint64_t gp[16];
	uint64_t rip, rflags, reserved;
	uint8_t xmm[6][16];
	struct hv_x64_segment segment[6];
	uint64_t cr0, cr3, cr4, cr8, efer, dr7;
	uint64_t pending_interruption, interrupt_state, emulation_hints;
	uint8_t reserved_end[3672];
} __attribute__((packed));
_Static_assert(sizeof(struct hv_register_page) == 4096, "HvX64RegisterPage");
_Static_assert(offsetof(struct hv_register_page, rip) == 136, "rip");
_Static_assert(offsetof(struct hv_register_page, segment) == 256, "segments");
_Static_assert(offsetof(struct hv_register_page, cr0) == 352, "cr0");
_Static_assert(offsetof(struct hv_register_page, pending_interruption) == 400, "interruption");

/* The part hvmm reads and writes: everything before reserved_end. */
#define REGPAGE_USED offsetof(struct hv_register_page, reserved_end)

#define REGPAGE_DIRTY_GP       (1u << 0)
#define REGPAGE_DIRTY_IP       (1u << 1)
#define REGPAGE_DIRTY_XMM      (1u << 2)
#define REGPAGE_DIRTY_SEGMENTS (1u << 3)
#define REGPAGE_DIRTY_FLAGS    (1u << 4)

static uint64_t regpage_gpa(struct vsm *vsm, uint32_t vp)
{
	uint64_t v = vsm->vps[vp].vtl[2].register_page;
	return (v & HV_REGISTER_PAGE_ENABLE) ? v & ~0xfffull : 0;
}

static struct hv_x64_segment *seg(struct vsm_regs *r, unsigned i)
{
	struct hv_x64_segment *s[6] = { &r->es, &r->cs, &r->ss, &r->ds, &r->fs, &r->gs };
	return s[i];
}

static void set_valid(struct vsm *vsm, uint32_t vp, uint64_t gpa, bool valid)
{
	const struct vsm_ops *o = &vsm->cfg.ops;
	uint8_t b[6] = { 1, 0, valid, 0, 0, 0 };   /* version, is_valid, vtl 0, dirty 0 */
	if (o->write_gpa(o->opaque, gpa, b, sizeof(b)))
		log_guest("vsm: VP %u register page 0x%llx is not RAM", vp,
			  (unsigned long long)gpa);
}

void vsm_regpage_fill_locked(struct vsm *vsm, uint32_t vp, unsigned lower)
{
	const struct vsm_ops *o = &vsm->cfg.ops;
	uint64_t gpa = regpage_gpa(vsm, vp);
	struct vsm_regs r;
	if (!gpa || o->get_regs(o->opaque, vp, lower, &r))
		return;
	struct hv_register_page p;
	memset(&p, 0, REGPAGE_USED);
	p.version = 1;
	p.is_valid = 1;
	p.vtl = (uint8_t)lower;
	memcpy(p.gp, r.gpr, sizeof(p.gp));
	p.rip = r.rip;
	p.rflags = r.rflags;
	for (unsigned i = 0; i < 6; i++)
		p.segment[i] = *seg(&r, i);
	p.cr0 = r.cr0;
	p.cr3 = r.cr3;
	p.cr4 = r.cr4;
	p.cr8 = r.cr8;
	p.efer = r.efer;
	p.dr7 = (r.parts & VSM_REGS_DEBUG) ? r.dr7 : 0;
	if (o->write_gpa(o->opaque, gpa, &p, REGPAGE_USED))
		log_guest("vsm: VP %u register page 0x%llx is not RAM", vp,
			  (unsigned long long)gpa);
}

void vsm_regpage_invalidate_locked(struct vsm *vsm, uint32_t vp)
{
	uint64_t gpa = regpage_gpa(vsm, vp);
	if (gpa)
		set_valid(vsm, vp, gpa, false);
}

bool vsm_regpage_take_locked(struct vsm *vsm, uint32_t vp, unsigned to,
			     struct vsm_regpage_update *u)
{
	const struct vsm_ops *o = &vsm->cfg.ops;
	uint64_t gpa = regpage_gpa(vsm, vp);
	struct hv_register_page p;
	memset(u, 0, sizeof(*u));
	if (!gpa || o->read_gpa(o->opaque, gpa, &p, REGPAGE_USED) || !p.is_valid)
		return false;
	set_valid(vsm, vp, gpa, false);
	if (p.vtl != to)
		return false;
	u->dirty = p.dirty & (REGPAGE_DIRTY_GP | REGPAGE_DIRTY_IP | REGPAGE_DIRTY_FLAGS |
			      REGPAGE_DIRTY_SEGMENTS);
	if ((u->dirty & REGPAGE_DIRTY_FLAGS) && (p.rflags >> 32)) {
		/* SetVpRegisters' rule for RFLAGS: bits 32-63 are reserved. */
		log_guest("vsm: VP %u register page RFLAGS 0x%llx ignored", vp,
			  (unsigned long long)p.rflags);
		u->dirty &= ~REGPAGE_DIRTY_FLAGS;
	}
	u->rsp = p.gp[VSM_GPR_RSP];
	u->rip = p.rip;
	u->rflags = p.rflags;
	memcpy(u->seg, p.segment, sizeof(u->seg));
	return u->dirty != 0;
}

void vsm_regpage_update_regs(const struct vsm_regpage_update *u, struct vsm_regs *r)
{
	if (u->dirty & REGPAGE_DIRTY_GP)
		r->gpr[VSM_GPR_RSP] = u->rsp;
	if (u->dirty & REGPAGE_DIRTY_IP)
		r->rip = u->rip;
	if (u->dirty & REGPAGE_DIRTY_FLAGS)
		r->rflags = u->rflags;
	if (u->dirty & REGPAGE_DIRTY_SEGMENTS)
		for (unsigned i = 0; i < 6; i++)
			*seg(r, i) = u->seg[i];
}
