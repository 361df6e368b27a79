/*
 * HvGetVpRegisters / HvSetVpRegisters for a VSM partition: which VTL may read
 * or write which register (TLFS "Virtual Secure Mode" VSM registers; the
 * rules OpenVMM's WHP emulation enforces, shared/docs/igvm-and-vsm.md §C.5),
 * the VSM registers' values, and the mapping from HV_REGISTER_NAME to the
 * architectural register block (struct vsm_regs) the backend moves.
 *
 * Rules: architectural registers only of a lower VTL (VTL2 programs VTL0);
 * per-VTL synthetic MSRs of the caller's VTL or below; VsmPartitionConfig
 * and VsmVina of the caller's own VTL above 0; VsmVpSecureConfigVtlN of a
 * VTL below the caller; the status/capability/code-page registers are read
 * only. Naming a VTL above the caller's is ACCESS_DENIED (vsm_hcall.c);
 * a rule broken here is ACCESS_DENIED, an unknown or read-only register
 * INVALID_PARAMETER, a bad value INVALID_REGISTER_VALUE. Also the
 * conversion between struct vsm_regs and the accelerator's x86_regs/sregs.
 */
#include "hv/vsm_impl.h"

#include <errno.h>
#include <string.h>


/* EFER bits a guest may set: SCE, LME, LMA, NXE, SVME, LMSLE, FFXSR, TCE. */
#define EFER_VALID 0xfd01ull

static uint64_t *reg64(struct vsm_regs *r, uint32_t name)
{
	if (name >= HV_X64_REGISTER_RAX && name < HV_X64_REGISTER_RAX + 16)
		return &r->gpr[name - HV_X64_REGISTER_RAX];
	switch (name) {
	case HV_X64_REGISTER_RIP:          return &r->rip;
	case HV_X64_REGISTER_RFLAGS:       return &r->rflags;
	case HV_X64_REGISTER_CR0:          return &r->cr0;
	case HV_X64_REGISTER_CR2:          return &r->cr2;
	case HV_X64_REGISTER_CR3:          return &r->cr3;
	case HV_X64_REGISTER_CR4:          return &r->cr4;
	case HV_X64_REGISTER_CR8:          return &r->cr8;
	case 0x00050000u: case 0x00050001u: case 0x00050002u: case 0x00050003u:
		return &r->dr[name - 0x00050000u];
	case 0x00050004u:                  return &r->dr6;
	case HV_X64_REGISTER_DR7:          return &r->dr7;
	case HV_X64_REGISTER_EFER:         return &r->efer;
	case HV_X64_REGISTER_KERNEL_GS_BASE: return &r->kernel_gs_base;
	case HV_X64_REGISTER_APIC_BASE:    return &r->apic_base;
	case HV_X64_REGISTER_PAT:          return &r->pat;
	case HV_X64_REGISTER_SYSENTER_CS:  return &r->sysenter_cs;
	case HV_X64_REGISTER_SYSENTER_EIP: return &r->sysenter_eip;
	case HV_X64_REGISTER_SYSENTER_ESP: return &r->sysenter_esp;
	case HV_X64_REGISTER_STAR:         return &r->star;
	case HV_X64_REGISTER_LSTAR:        return &r->lstar;
	case HV_X64_REGISTER_CSTAR:        return &r->cstar;
	case HV_X64_REGISTER_SFMASK:       return &r->sfmask;
	case HV_X64_REGISTER_TSC_AUX:      return &r->tsc_aux;
	default:                           return NULL;
	}
}

/* Segment and table registers: 16 bytes each, in HV register order. */
static void *reg128(struct vsm_regs *r, uint32_t name)
{
	struct hv_x64_segment *seg[] = { &r->es, &r->cs, &r->ss, &r->ds, &r->fs, &r->gs,
					 &r->ldtr, &r->tr };
	if (name >= HV_X64_REGISTER_ES && name <= HV_X64_REGISTER_TR)
		return seg[name - HV_X64_REGISTER_ES];
	if (name == HV_X64_REGISTER_IDTR)
		return &r->idtr;
	if (name == HV_X64_REGISTER_GDTR)
		return &r->gdtr;
	return NULL;
}

/* Synthetic registers kept per VTL, as MSR indexes (vsm.c). */
static uint32_t synthetic_msr(uint32_t name)
{
	if (name >= HV_REGISTER_SINT0 && name <= HV_REGISTER_SINT15)
		return HV_X64_MSR_SINT0 + (name - HV_REGISTER_SINT0);
	switch (name) {
	case HV_REGISTER_HYPERCALL:      return HV_X64_MSR_HYPERCALL;
	case HV_REGISTER_GUEST_OS_ID:    return HV_X64_MSR_GUEST_OS_ID;
	case HV_REGISTER_VP_INDEX:       return HV_X64_MSR_VP_INDEX;
	case HV_REGISTER_VP_ASSIST_PAGE: return HV_X64_MSR_VP_ASSIST_PAGE;
	case HV_REGISTER_SCONTROL:       return HV_X64_MSR_SCONTROL;
	case HV_REGISTER_SVERSION:       return HV_X64_MSR_SVERSION;
	case HV_REGISTER_SIFP:           return HV_X64_MSR_SIEFP;
	case HV_REGISTER_SIPP:           return HV_X64_MSR_SIMP;
	case HV_REGISTER_EOM:            return HV_X64_MSR_EOM;
	default:                         return 0;
	}
}

static uint64_t vp_status(const struct vsm *vsm, uint32_t vp)
{
	return vsm->vps[vp].active | (uint64_t)vsm->vps[vp].enabled << 16;
}

static uint64_t partition_status(const struct vsm *vsm)
{
	return vsm->enabled | (uint64_t)vsm->cfg.max_vtl << 16;
}

#define CAPABILITIES (HV_VSM_CAP_DENY_LOWER_VTL_STARTUP | HV_VSM_CAP_INTERCEPT_PAGE_AVAILABLE | \
		      HV_VSM_CAP_RETURN_ACTION_AVAILABLE)

/*
 * The VSM registers: *val for a read, checks for both. 0, or an HV status;
 * -ENOENT when name is not one of them.
 */
static int vsm_register(struct vsm *vsm, uint32_t vp, unsigned caller, unsigned vtl,
			uint32_t name, bool write, uint64_t *val)
{
	struct vsm_vp *v = &vsm->vps[vp];
	switch (name) {
	case HV_REGISTER_VSM_CODE_PAGE_OFFSETS:
		*val = VSM_CODE_VTL_CALL_OFFSET | (uint64_t)VSM_CODE_VTL_RETURN_OFFSET << 12;
		return write ? HV_STATUS_INVALID_PARAMETER : 0;
	case HV_REGISTER_VSM_VP_STATUS:
		*val = vp_status(vsm, vp);
		return write ? HV_STATUS_INVALID_PARAMETER : 0;
	case HV_REGISTER_VSM_PARTITION_STATUS:
		*val = partition_status(vsm);
		return write ? HV_STATUS_INVALID_PARAMETER : 0;
	case HV_REGISTER_VSM_CAPABILITIES:
		*val = CAPABILITIES;
		return write ? HV_STATUS_INVALID_PARAMETER : 0;
	case HV_REGISTER_VSM_PARTITION_CONFIG: {
		if (vtl == 0 || vtl != caller)
			return HV_STATUS_ACCESS_DENIED;
		uint64_t *c = &vsm->partition_config[vtl];
		if (!write) {
			*val = *c;
			return 0;
		}
		if (*val & ~HV_VSM_CONFIG_VALID)
			return HV_STATUS_INVALID_REGISTER_VALUE;
		/* enable_vtl_protection is write-once; the default mask must stay full
		 * (hvmm applies protections page by page, not partition-wide). */
		if ((*c & HV_VSM_CONFIG_ENABLE_VTL_PROTECTION) &&
		    !(*val & HV_VSM_CONFIG_ENABLE_VTL_PROTECTION))
			return HV_STATUS_INVALID_REGISTER_VALUE;
		if ((*val & HV_VSM_CONFIG_ENABLE_VTL_PROTECTION) &&
		    HV_VSM_CONFIG_DEFAULT_MASK(*val) != HV_MAP_GPA_ALL)
			return HV_STATUS_INVALID_REGISTER_VALUE;
		*c = *val;
		return 0;
	}
	case HV_REGISTER_REGISTER_PAGE: {
		/* VTL2's own, showing VTL0 during intercepts (vsm_regpage.c). */
		if (vtl == 0)
			return HV_STATUS_INVALID_PARAMETER;
		if (vtl != caller)
			return HV_STATUS_ACCESS_DENIED;
		uint64_t *x = &v->vtl[vtl].register_page;
		if (!write) {
			*val = *x;
			return 0;
		}
		if (*val & 0xffeull)
			return HV_STATUS_INVALID_REGISTER_VALUE;
		*x = *val;
		return 0;
	}
	case HV_REGISTER_VSM_VINA: {
		if (vtl == 0 || vtl != caller)
			return HV_STATUS_ACCESS_DENIED;
		uint64_t *x = &v->vtl[vtl].vina;
		if (!write) {
			*val = *x;
			return 0;
		}
		if ((*val & ~HV_VSM_VINA_VALID) ||
		    ((*val & HV_VSM_VINA_ENABLED) && HV_VSM_VINA_VECTOR(*val) < 16))
			return HV_STATUS_INVALID_REGISTER_VALUE;
		*x = *val;
		return 0;
	}
	default:
		break;
	}
	if (name >= HV_REGISTER_VSM_VP_SECURE_CONFIG_VTL0 &&
	    name < HV_REGISTER_VSM_VP_SECURE_CONFIG_VTL0 + 16) {
		unsigned lower = name - HV_REGISTER_VSM_VP_SECURE_CONFIG_VTL0;
		if (vtl != caller || lower >= caller)
			return HV_STATUS_ACCESS_DENIED;
		uint64_t *x = &v->vtl[lower].secure_config;
		if (!write) {
			*val = *x;
			return 0;
		}
		/* No MBEC, shadow stacks or HVPT; a TLB lock is accepted (no-op). */
		if (*val & ~2ull)
			return HV_STATUS_INVALID_REGISTER_VALUE;
		*x = *val;
		return 0;
	}
	return -ENOENT;
}

/* The optional part of struct vsm_regs a register is in (0: the rest). */
static uint32_t reg_part(uint32_t name)
{
	switch (name) {
	case 0x00050000u: case 0x00050001u: case 0x00050002u: case 0x00050003u:
	case 0x00050004u: case HV_X64_REGISTER_DR7:
		return VSM_REGS_DEBUG;
	case HV_X64_REGISTER_KERNEL_GS_BASE: case HV_X64_REGISTER_PAT:
	case HV_X64_REGISTER_SYSENTER_CS: case HV_X64_REGISTER_SYSENTER_EIP:
	case HV_X64_REGISTER_SYSENTER_ESP: case HV_X64_REGISTER_STAR:
	case HV_X64_REGISTER_LSTAR: case HV_X64_REGISTER_CSTAR:
	case HV_X64_REGISTER_SFMASK: case HV_X64_REGISTER_TSC_AUX:
		return VSM_REGS_MSRS;
	default:
		return 0;
	}
}

uint16_t vsm_regs_load(struct vsm *vsm, uint32_t vp, unsigned vtl, struct vsm_regs *r,
		       bool *have, uint32_t parts)
{
	const struct vsm_ops *o = &vsm->cfg.ops;
	if (!*have) {
		if (o->get_regs(o->opaque, vp, vtl, r))
			return HV_STATUS_INVALID_VP_STATE;
		if (!o->get_regs_part)
			r->parts = VSM_REGS_ALL;
		*have = true;
	}
	uint32_t missing = parts & VSM_REGS_ALL & ~r->parts;
	if (missing) {
		if (o->get_regs_part(o->opaque, vp, vtl, r, missing))
			return HV_STATUS_INVALID_VP_STATE;
		r->parts |= missing;
	}
	return 0;
}

uint16_t vsm_reg_get(struct vsm *vsm, uint32_t vp, unsigned caller, unsigned vtl,
		     uint32_t name, struct vsm_regs *r, bool *have_regs, uint8_t val[16])
{
	uint64_t x = 0;
	memset(val, 0, 16);
	int st = vsm_register(vsm, vp, caller, vtl, name, false, &x);
	if (st != -ENOENT) {
		if (!st)
			memcpy(val, &x, 8);
		return (uint16_t)st;
	}
	uint32_t msr = synthetic_msr(name);
	if (msr) {
		if (vsm_msr_read_locked(vsm, vp, vtl, msr, &x))
			return HV_STATUS_INVALID_PARAMETER;
		memcpy(val, &x, 8);
		return 0;
	}
	uint64_t *p64 = reg64(r, name);
	void *p128 = reg128(r, name);
	if (!p64 && !p128)
		return HV_STATUS_INVALID_PARAMETER;
	if (vtl >= caller)
		return HV_STATUS_ACCESS_DENIED;
	uint16_t s = vsm_regs_load(vsm, vp, vtl, r, have_regs, reg_part(name));
	if (s)
		return s;
	if (p64)
		memcpy(val, p64, 8);
	else
		memcpy(val, p128, 16);
	return 0;
}

static bool value_ok(uint32_t name, uint64_t v)
{
	switch (name) {
	case HV_X64_REGISTER_CR0:
		return !(v >> 32) && !((v & (1ull << 31)) && !(v & 1));
	case HV_X64_REGISTER_CR4:
		return !(v >> 32);
	case HV_X64_REGISTER_CR8:
		return v <= 15;
	case HV_X64_REGISTER_EFER:
		return !(v & ~EFER_VALID);
	case HV_X64_REGISTER_RFLAGS:
	case 0x00050004u: /* DR6 */
	case HV_X64_REGISTER_DR7:
		return !(v >> 32);
	default:
		return true;
	}
}

uint16_t vsm_reg_set(struct vsm *vsm, uint32_t vp, unsigned caller, unsigned vtl,
		     uint32_t name, struct vsm_regs *r, bool *have_regs, bool *dirty,
		     const uint8_t val[16])
{
	uint64_t x;
	memcpy(&x, val, 8);
	int st = vsm_register(vsm, vp, caller, vtl, name, true, &x);
	if (st != -ENOENT)
		return (uint16_t)st;
	uint32_t msr = synthetic_msr(name);
	if (msr) {
		int e = vsm_msr_write_locked(vsm, vp, vtl, msr, x);
		return e == 0 ? 0 : e == -ENOENT ? HV_STATUS_INVALID_PARAMETER :
			HV_STATUS_INVALID_REGISTER_VALUE;
	}
	uint64_t *p64 = reg64(r, name);
	void *p128 = reg128(r, name);
	if (!p64 && !p128)
		return HV_STATUS_INVALID_PARAMETER;
	if (vtl >= caller)
		return HV_STATUS_ACCESS_DENIED;
	if (!value_ok(name, x))
		return HV_STATUS_INVALID_REGISTER_VALUE;
	uint16_t s = vsm_regs_load(vsm, vp, vtl, r, have_regs, reg_part(name));
	if (s)
		return s;
	if (p64)
		*p64 = x;
	else
		memcpy(p128, val, 16);
	*dirty = true;
	return 0;
}

/* ---- Conversion to and from the accelerator's register structs ---- */

uint16_t vsm_seg_attributes(const struct x86_segment *s)
{
	if (s->unusable)
		return 0;
	return (uint16_t)((s->type & 0xf) | (s->s & 1) << 4 | (s->dpl & 3) << 5 |
			  (s->present & 1) << 7 | (s->avl & 1) << 12 | (s->l & 1) << 13 |
			  (s->db & 1) << 14 | (s->g & 1) << 15);
}

static void seg_from_x86(struct hv_x64_segment *h, const struct x86_segment *s)
{
	h->base = s->base;
	h->limit = s->limit;
	h->selector = s->selector;
	h->attributes = vsm_seg_attributes(s);
}

void vsm_seg_to_x86(const struct hv_x64_segment *h, struct x86_segment *s)
{
	uint16_t a = h->attributes;
	s->base = h->base;
	s->limit = h->limit;
	s->selector = h->selector;
	s->type = a & 0xf;
	s->s = (a >> 4) & 1;
	s->dpl = (a >> 5) & 3;
	s->present = (a >> 7) & 1;
	s->avl = (a >> 12) & 1;
	s->l = (a >> 13) & 1;
	s->db = (a >> 14) & 1;
	s->g = (a >> 15) & 1;
	s->unusable = !s->present;
}

void vsm_regs_from_x86(struct vsm_regs *v, const struct x86_regs *r, const struct x86_sregs *s)
{
	const uint64_t g[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
				 r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };
	memcpy(v->gpr, g, sizeof(g));
	v->rip = r->rip;
	v->rflags = r->rflags;
	v->cr0 = s->cr0;
	v->cr2 = s->cr2;
	v->cr3 = s->cr3;
	v->cr4 = s->cr4;
	v->cr8 = s->cr8;
	v->efer = s->efer;
	v->apic_base = s->apic_base;
	seg_from_x86(&v->es, &s->es);
	seg_from_x86(&v->cs, &s->cs);
	seg_from_x86(&v->ss, &s->ss);
	seg_from_x86(&v->ds, &s->ds);
	seg_from_x86(&v->fs, &s->fs);
	seg_from_x86(&v->gs, &s->gs);
	seg_from_x86(&v->ldtr, &s->ldt);
	seg_from_x86(&v->tr, &s->tr);
	v->idtr = (struct hv_x64_table){ .limit = s->idt.limit, .base = s->idt.base };
	v->gdtr = (struct hv_x64_table){ .limit = s->gdt.limit, .base = s->gdt.base };
}

void vsm_regs_to_x86(const struct vsm_regs *v, struct x86_regs *r, struct x86_sregs *s)
{
	const uint64_t *g = v->gpr;
	r->rax = g[0];
	r->rcx = g[1];
	r->rdx = g[2];
	r->rbx = g[3];
	r->rsp = g[4];
	r->rbp = g[5];
	r->rsi = g[6];
	r->rdi = g[7];
	r->r8 = g[8];
	r->r9 = g[9];
	r->r10 = g[10];
	r->r11 = g[11];
	r->r12 = g[12];
	r->r13 = g[13];
	r->r14 = g[14];
	r->r15 = g[15];
	r->rip = v->rip;
	r->rflags = v->rflags;
	s->cr0 = v->cr0;
	s->cr2 = v->cr2;
	s->cr3 = v->cr3;
	s->cr4 = v->cr4;
	s->cr8 = v->cr8;
	s->efer = v->efer;
	s->apic_base = v->apic_base;
	vsm_seg_to_x86(&v->es, &s->es);
	vsm_seg_to_x86(&v->cs, &s->cs);
	vsm_seg_to_x86(&v->ss, &s->ss);
	vsm_seg_to_x86(&v->ds, &s->ds);
	vsm_seg_to_x86(&v->fs, &s->fs);
	vsm_seg_to_x86(&v->gs, &s->gs);
	vsm_seg_to_x86(&v->ldtr, &s->ldt);
	vsm_seg_to_x86(&v->tr, &s->tr);
	s->idt = (struct x86_dtable){ .base = v->idtr.base, .limit = v->idtr.limit };
	s->gdt = (struct x86_dtable){ .base = v->gdtr.base, .limit = v->gdtr.limit };
}
