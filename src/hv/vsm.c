/*
 * Virtual Trust Levels of a partition (TLFS "Virtual Secure Mode": VTL
 * enablement, VTL call and return, the VP assist page's VTL control area and
 * return actions, per-VTL synthetic MSRs; shared/docs/igvm-and-vsm.md §C.3,
 * §C.4, §C.6, §C.10). Pure state: the machine is reached through struct
 * vsm_ops. The hypercall handlers live in vsm_hcall.c.
 */
#include "hv/vsm_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

int vsm_create(const struct vsm_config *cfg, struct vsm **out)
{
	if (!cfg || cfg->nvps == 0 || cfg->nvps > VSM_MAX_VPS || cfg->max_vtl > VSM_MAX_VTL)
		return -EINVAL;
	const struct vsm_ops *o = &cfg->ops;
	if (!o->read_gpa || !o->write_gpa || !o->get_regs || !o->set_regs || !o->switch_vtl ||
	    !o->protect || !o->start_vp || !o->interrupt || !o->post_message ||
	    !o->signal_event)
		return -EINVAL;
	struct vsm *vsm = calloc(1, sizeof(*vsm));
	if (!vsm)
		return -ENOMEM;
	vsm->vps = calloc(cfg->nvps, sizeof(*vsm->vps));
	if (!vsm->vps) {
		free(vsm);
		return -ENOMEM;
	}
	vsm->cfg = *cfg;
	pthread_mutex_init(&vsm->lock, NULL);
	vsm->enabled = 1;
	for (unsigned i = 0; i < cfg->nvps; i++) {
		struct vsm_vp *v = &vsm->vps[i];
		v->enabled = 1;
		v->started = i == 0;
		for (unsigned t = 0; t < VSM_NUM_VTLS; t++)
			for (unsigned s = 0; s < HV_SINT_COUNT; s++)
				v->vtl[t].sint[s] = 1ull << 16; /* masked */
	}
	*out = vsm;
	return 0;
}

void vsm_destroy(struct vsm *vsm)
{
	if (!vsm)
		return;
	pthread_mutex_destroy(&vsm->lock);
	free(vsm->vps);
	free(vsm);
}

int vsm_boot_vtl2(struct vsm *vsm)
{
	if (vsm->cfg.max_vtl < 2)
		return -EINVAL;
	pthread_mutex_lock(&vsm->lock);
	vsm->enabled |= 1u << 2;
	vsm->vps[0].enabled |= 1u << 2;
	vsm->vps[0].active = 2;
	vsm->vps[0].started = true;
	pthread_mutex_unlock(&vsm->lock);
	return 0;
}

unsigned vsm_active_vtl(struct vsm *vsm, uint32_t vp)
{
	if (vp >= vsm->cfg.nvps)
		return 0;
	pthread_mutex_lock(&vsm->lock);
	unsigned a = vsm->vps[vp].active;
	pthread_mutex_unlock(&vsm->lock);
	return a;
}

uint16_t vsm_vp_enabled_vtls(struct vsm *vsm, uint32_t vp)
{
	if (vp >= vsm->cfg.nvps)
		return 0;
	pthread_mutex_lock(&vsm->lock);
	uint16_t e = vsm->vps[vp].enabled;
	pthread_mutex_unlock(&vsm->lock);
	return e;
}

uint16_t vsm_partition_enabled_vtls(struct vsm *vsm)
{
	pthread_mutex_lock(&vsm->lock);
	uint16_t e = vsm->enabled;
	pthread_mutex_unlock(&vsm->lock);
	return e;
}

bool vsm_vp_started(struct vsm *vsm, uint32_t vp)
{
	if (vp >= vsm->cfg.nvps)
		return false;
	pthread_mutex_lock(&vsm->lock);
	bool s = vsm->vps[vp].started;
	pthread_mutex_unlock(&vsm->lock);
	return s;
}

/* ---- Registers ---- */

void vsm_regs_copy_shared(struct vsm_regs *dst, const struct vsm_regs *src)
{
	uint64_t rsp = dst->gpr[VSM_GPR_RSP];
	memcpy(dst->gpr, src->gpr, sizeof(dst->gpr));
	dst->gpr[VSM_GPR_RSP] = rsp;
	dst->cr2 = src->cr2;
	memcpy(dst->dr, src->dr, sizeof(dst->dr));
	dst->dr6 = src->dr6;
}

void vsm_regs_copy_parts(struct vsm_regs *dst, const struct vsm_regs *src, uint32_t parts)
{
	if (parts & VSM_REGS_MSRS) {
		dst->kernel_gs_base = src->kernel_gs_base;
		dst->pat = src->pat;
		dst->sysenter_cs = src->sysenter_cs;
		dst->sysenter_eip = src->sysenter_eip;
		dst->sysenter_esp = src->sysenter_esp;
		dst->star = src->star;
		dst->lstar = src->lstar;
		dst->cstar = src->cstar;
		dst->sfmask = src->sfmask;
		dst->tsc_aux = src->tsc_aux;
	}
	if (parts & VSM_REGS_DEBUG) {
		memcpy(dst->dr, src->dr, sizeof(dst->dr));
		dst->dr6 = src->dr6;
		dst->dr7 = src->dr7;
	}
}

void vsm_regs_from_context(struct vsm_regs *r, const struct hv_initial_vp_context *c)
{
	r->rip = c->rip;
	r->gpr[VSM_GPR_RSP] = c->rsp;
	r->rflags = c->rflags;
	r->cs = c->cs;
	r->ds = c->ds;
	r->es = c->es;
	r->fs = c->fs;
	r->gs = c->gs;
	r->ss = c->ss;
	r->tr = c->tr;
	r->ldtr = c->ldtr;
	r->idtr = c->idtr;
	r->gdtr = c->gdtr;
	r->efer = c->efer;
	r->cr0 = c->cr0;
	r->cr3 = c->cr3;
	r->cr4 = c->cr4;
	r->pat = c->msr_cr_pat;
}

/* ---- Hypercall page and synthetic MSRs per VTL ---- */

void vsm_hypercall_page(uint8_t *page)
{
	/* endbr64; out HV_HYPERCALL_PORT, al; ret */
	static const uint8_t plain[] = { 0xF3, 0x0F, 0x1E, 0xFA, 0xE6, HV_HYPERCALL_PORT, 0xC3 };
	/* endbr64; mov rax, rcx; mov ecx, code; out HV_HYPERCALL_PORT, al; ret */
	uint8_t vtl[] = { 0xF3, 0x0F, 0x1E, 0xFA, 0x48, 0x89, 0xC8, 0xB9, 0, 0, 0, 0,
			  0xE6, HV_HYPERCALL_PORT, 0xC3 };
	memset(page, 0xCC, HV_PAGE_SIZE_VSM);
	memcpy(page, plain, sizeof(plain));
	vtl[8] = HVCALL_VTL_CALL;
	memcpy(page + VSM_CODE_VTL_CALL_OFFSET, vtl, sizeof(vtl));
	vtl[8] = HVCALL_VTL_RETURN;
	memcpy(page + VSM_CODE_VTL_RETURN_OFFSET, vtl, sizeof(vtl));
}

int vsm_msr_read_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			uint64_t *val)
{
	if (vp >= vsm->cfg.nvps || vtl >= VSM_NUM_VTLS)
		return -EINVAL;
	const struct vsm_vp_vtl *s = &vsm->vps[vp].vtl[vtl];
	switch (index) {
	case HV_X64_MSR_GUEST_OS_ID:    *val = s->guest_os_id; return 0;
	case HV_X64_MSR_HYPERCALL:      *val = s->hypercall; return 0;
	case HV_X64_MSR_VP_INDEX:       *val = vp; return 0;
	case HV_X64_MSR_VP_ASSIST_PAGE: *val = s->vp_assist; return 0;
	case HV_X64_MSR_SCONTROL:       *val = s->scontrol; return 0;
	case HV_X64_MSR_SVERSION:       *val = 1; return 0;
	case HV_X64_MSR_SIEFP:          *val = s->siefp; return 0;
	case HV_X64_MSR_SIMP:           *val = s->simp; return 0;
	case HV_X64_MSR_EOM:            *val = 0; return 0;
	default:
		if (vsm_stimer_msr(index))
			return vsm_stimer_read_locked(vsm, vp, vtl, index, val);
		if (index >= HV_X64_MSR_SINT0 && index <= HV_X64_MSR_SINT15) {
			*val = s->sint[index - HV_X64_MSR_SINT0];
			return 0;
		}
		return -ENOENT;
	}
}

int vsm_msr_write_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			 uint64_t val)
{
	if (vp >= vsm->cfg.nvps || vtl >= VSM_NUM_VTLS)
		return -EINVAL;
	struct vsm_vp_vtl *s = &vsm->vps[vp].vtl[vtl];
	switch (index) {
	case HV_X64_MSR_GUEST_OS_ID:
		s->guest_os_id = val;
		if (!val)
			s->hypercall &= ~1ull;
		return 0;
	case HV_X64_MSR_HYPERCALL:
		/* Bits 2-11 reserved; enabling needs a guest OS id (as hv_msr.c). */
		if (val & 0xffcull)
			return -EINVAL;
		if ((val & 1) && !s->guest_os_id)
			val &= ~1ull;
		if (s->hypercall & 2) /* locked */
			return 0;
		s->hypercall = val;
		if (val & 1) {
			uint8_t page[HV_PAGE_SIZE_VSM];
			vsm_hypercall_page(page);
			if (vsm->cfg.ops.write_gpa(vsm->cfg.ops.opaque, val & ~0xfffull, page,
						   sizeof(page)))
				log_guest("vsm: VP %u VTL%u hypercall page 0x%llx is not RAM", vp,
					  vtl, (unsigned long long)(val & ~0xfffull));
		}
		return 0;
	case HV_X64_MSR_VP_ASSIST_PAGE:
		if (val & 0xffeull)
			return -EINVAL;
		s->vp_assist = val;
		return 0;
	case HV_X64_MSR_SCONTROL:
		s->scontrol = val & 1;
		return 0;
	case HV_X64_MSR_SIEFP:
		s->siefp = val & ~0xffeull;
		return 0;
	case HV_X64_MSR_SIMP:
		s->simp = val & ~0xffeull;
		return 0;
	case HV_X64_MSR_EOM:
		return 0;
	case HV_X64_MSR_SVERSION:
	case HV_X64_MSR_VP_INDEX:
		return -EINVAL;
	default:
		if (vsm_stimer_msr(index))
			return vsm_stimer_write_locked(vsm, vp, vtl, index, val);
		if (index >= HV_X64_MSR_SINT0 && index <= HV_X64_MSR_SINT15) {
			if ((val & 0xff) < 16 && !(val & (1ull << 16)))
				return -EINVAL; /* vectors 0-15 are reserved */
			s->sint[index - HV_X64_MSR_SINT0] = val & 0x5ffffull;
			return 0;
		}
		return -ENOENT;
	}
}

int vsm_msr_read(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index, uint64_t *val)
{
	pthread_mutex_lock(&vsm->lock);
	int r = vsm_msr_read_locked(vsm, vp, vtl, index, val);
	pthread_mutex_unlock(&vsm->lock);
	return r;
}

int vsm_msr_write(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index, uint64_t val)
{
	pthread_mutex_lock(&vsm->lock);
	int r = vsm_msr_write_locked(vsm, vp, vtl, index, val);
	pthread_mutex_unlock(&vsm->lock);
	return r;
}

/* ---- VTL call / return ---- */

/* GPA of (vp, vtl)'s VP assist page, or 0 when disabled. */
static uint64_t assist_gpa(const struct vsm *vsm, uint32_t vp, unsigned vtl)
{
	uint64_t m = vsm->vps[vp].vtl[vtl].vp_assist;
	return (m & 1) ? (m & ~0xfffull) : 0;
}

static void set_entry_reason(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t reason)
{
	uint64_t a = assist_gpa(vsm, vp, vtl);
	if (a && vsm->cfg.ops.write_gpa(vsm->cfg.ops.opaque, a + HV_VP_ASSIST_VTL_ENTRY_REASON,
					&reason, sizeof(reason)))
		log_guest("vsm: VP %u VTL%u assist page is not RAM", vp, vtl);
}

int vsm_vtl_call_locked(struct vsm *vsm, uint32_t vp)
{
	struct vsm_vp *v = &vsm->vps[vp];
	unsigned from = v->active, to = from + 1;
	while (to < VSM_NUM_VTLS && !vsm_vtl_on(v->enabled, to))
		to++;
	if (to >= VSM_NUM_VTLS)
		return -EINVAL;
	int st = vsm->cfg.ops.switch_vtl(vsm->cfg.ops.opaque, vp, from, to);
	if (st)
		return -EIO;
	v->active = (uint8_t)to;
	set_entry_reason(vsm, vp, to, HV_VTL_ENTRY_VTL_CALL);
	if (to == 2)
		vsm_regpage_invalidate_locked(vsm, vp);
	return 0;
}

/* One HV_VTL_RETURN_ACTION signal-event entry (16 bytes). */
struct vsm_return_action {
	uint64_t type;        /* 0 end, 1 signal event */
	uint32_t vp;
	uint8_t vtl;
	uint8_t sint;
	uint16_t flag;
} __attribute__((packed));
_Static_assert(sizeof(struct vsm_return_action) == 16, "return action");
#define VSM_RETURN_ACTION_SIGNAL_EVENT 1

static void run_return_actions(struct vsm *vsm, uint32_t vp, uint64_t assist)
{
	const struct vsm_ops *o = &vsm->cfg.ops;
	struct vsm_return_action act[HV_VP_ASSIST_RETURN_ACTIONS_SIZE / sizeof(struct vsm_return_action)];
	if (o->read_gpa(o->opaque, assist + HV_VP_ASSIST_VTL_RETURN_ACTIONS, act, sizeof(act)))
		return;
	bool any = false;
	for (size_t i = 0; i < sizeof(act) / sizeof(act[0]) && act[i].type; i++) {
		any = true;
		const struct vsm_return_action *a = &act[i];
		if (a->type != VSM_RETURN_ACTION_SIGNAL_EVENT || a->vp >= vsm->cfg.nvps ||
		    !vsm_vtl_on(vsm->vps[a->vp].enabled, a->vtl) || a->vtl >= vsm->vps[vp].active ||
		    a->sint >= HV_SINT_COUNT || a->flag >= 2048) {
			log_guest("vsm: VP %u bad VTL return action %zu (type %llu)", vp, i,
				  (unsigned long long)a->type);
			break;
		}
		bool newly;
		if (a->vtl > 0)
			vsm_synic_signal_locked(vsm, a->vp, a->vtl, a->sint, a->flag, &newly);
		else
			o->signal_event(o->opaque, a->vp, a->vtl, a->sint, a->flag, &newly);
	}
	if (any) {
		static const uint8_t zero[HV_VP_ASSIST_RETURN_ACTIONS_SIZE];
		o->write_gpa(o->opaque, assist + HV_VP_ASSIST_VTL_RETURN_ACTIONS, zero, sizeof(zero));
	}
}

int vsm_vtl_return_locked(struct vsm *vsm, uint32_t vp, bool fast)
{
	const struct vsm_ops *o = &vsm->cfg.ops;
	struct vsm_vp *v = &vsm->vps[vp];
	unsigned from = v->active;
	if (from == 0)
		return -EINVAL;
	unsigned to = from - 1;
	while (to > 0 && !vsm_vtl_on(v->enabled, to))
		to--;
	uint64_t assist = assist_gpa(vsm, vp, from);
	uint64_t rax = 0, rcx = 0;
	bool have_ctl = false;
	if (assist) {
		uint64_t ctl[2];
		if (!fast && !o->read_gpa(o->opaque, assist + HV_VP_ASSIST_VTL_RETURN_RAX, ctl,
					  sizeof(ctl))) {
			rax = ctl[0];
			rcx = ctl[1];
			have_ctl = true;
		}
		run_return_actions(vsm, vp, assist);
	}
	if (o->switch_vtl(o->opaque, vp, from, to))
		return -EIO;
	v->active = (uint8_t)to;
	/* The slow return's RAX/RCX and what VTL2 wrote into its register page. */
	struct vsm_regpage_update upd;
	bool page = from == 2 && vsm_regpage_take_locked(vsm, vp, to, &upd);
	struct vsm_regs r;
	if ((have_ctl || page) && !o->get_regs(o->opaque, vp, to, &r)) {
		if (page)
			vsm_regpage_update_regs(&upd, &r);
		if (have_ctl) {
			r.gpr[0] = rax;
			r.gpr[1] = rcx;
		}
		if (o->set_regs(o->opaque, vp, to, &r))
			log_guest("vsm: VP %u registers VTL%u gave VTL%u refused", vp, from, to);
	}
	/* VINA: the lower VTL's pending-notification flag resets on entry. */
	uint64_t vina = v->vtl[from].vina;
	if ((vina & HV_VSM_VINA_AUTO_RESET) && assist) {
		uint8_t zero = 0;
		o->write_gpa(o->opaque, assist + HV_VP_ASSIST_VINA_STATUS, &zero, 1);
	}
	return 0;
}

/* ---- Interrupts across VTLs (TLFS: higher VTLs preempt; VINA) ---- */

int vsm_interrupt_pending(struct vsm *vsm, uint32_t vp, unsigned vtl, uint8_t *vector)
{
	if (vp >= vsm->cfg.nvps || vtl >= VSM_NUM_VTLS)
		return -EINVAL;
	const struct vsm_ops *o = &vsm->cfg.ops;
	int ret = 0;
	pthread_mutex_lock(&vsm->lock);
	struct vsm_vp *v = &vsm->vps[vp];
	unsigned cur = v->active;
	if (!vsm_vtl_on(v->enabled, vtl) || vtl == cur) {
		ret = 0;
	} else if (vtl > cur) {
		/* Only the higher VTL's own APIC state counts (the wiring's check). */
		if (o->switch_vtl(o->opaque, vp, cur, vtl) == 0) {
			v->active = (uint8_t)vtl;
			set_entry_reason(vsm, vp, vtl, HV_VTL_ENTRY_INTERRUPT);
			ret = 1;
		}
	} else {
		uint64_t vina = v->vtl[cur].vina;
		uint64_t assist = assist_gpa(vsm, vp, cur);
		uint8_t status = 1;
		if ((vina & HV_VSM_VINA_ENABLED) && assist &&
		    !o->read_gpa(o->opaque, assist + HV_VP_ASSIST_VINA_STATUS, &status, 1) &&
		    !(status & 1)) {
			status = 1;
			if (!o->write_gpa(o->opaque, assist + HV_VP_ASSIST_VINA_STATUS, &status, 1)) {
				*vector = HV_VSM_VINA_VECTOR(vina);
				ret = 2;
			}
		}
	}
	pthread_mutex_unlock(&vsm->lock);
	return ret;
}

bool vsm_vina_armed(struct vsm *vsm, uint32_t vp)
{
	if (vp >= vsm->cfg.nvps)
		return false;
	const struct vsm_ops *o = &vsm->cfg.ops;
	bool armed = false;
	pthread_mutex_lock(&vsm->lock);
	struct vsm_vp *v = &vsm->vps[vp];
	unsigned cur = v->active;
	uint64_t assist = cur ? assist_gpa(vsm, vp, cur) : 0;
	uint8_t status = 1;
	if (cur && vsm_vtl_on(v->enabled, 0) && (v->vtl[cur].vina & HV_VSM_VINA_ENABLED) &&
	    assist && !o->read_gpa(o->opaque, assist + HV_VP_ASSIST_VINA_STATUS, &status, 1))
		armed = !(status & 1);
	pthread_mutex_unlock(&vsm->lock);
	return armed;
}

/* ---- Intercepts ---- */

bool vsm_intercepts_io(struct vsm *vsm, uint16_t port, bool write)
{
	pthread_mutex_lock(&vsm->lock);
	const uint8_t *map = write ? vsm->io_write : vsm->io_read;
	bool r = (map[port / 8] >> (port % 8)) & 1;
	pthread_mutex_unlock(&vsm->lock);
	return r;
}

bool vsm_intercepts_msr(struct vsm *vsm, bool write)
{
	pthread_mutex_lock(&vsm->lock);
	bool r = vsm->msr_access & (write ? HV_INTERCEPT_ACCESS_WRITE : HV_INTERCEPT_ACCESS_READ);
	pthread_mutex_unlock(&vsm->lock);
	return r;
}

bool vsm_intercepts_unknown_synic(struct vsm *vsm)
{
	pthread_mutex_lock(&vsm->lock);
	bool r = vsm->synic_access != 0;
	pthread_mutex_unlock(&vsm->lock);
	return r;
}

bool vsm_intercepts_retarget_unknown_device(struct vsm *vsm)
{
	pthread_mutex_lock(&vsm->lock);
	bool r = vsm->retarget_access != 0;
	pthread_mutex_unlock(&vsm->lock);
	return r;
}

bool vsm_intercepts_apic_eoi(struct vsm *vsm)
{
	pthread_mutex_lock(&vsm->lock);
	bool r = vsm->eoi_access != 0;
	pthread_mutex_unlock(&vsm->lock);
	return r;
}

/* ---- SynIC of VTLs above 0 (TLFS "SynIC": message and event flag pages) ---- */

#define HV_SINT_MASKED (1ull << 16)
#define HV_MESSAGE_FLAG_PENDING 1u   /* HV_MESSAGE header byte 5 */

int vsm_synic_post_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, unsigned sint,
			  const uint8_t msg[HV_MESSAGE_SIZE])
{
	if (vp >= vsm->cfg.nvps || vtl == 0 || vtl >= VSM_NUM_VTLS || sint >= HV_SINT_COUNT)
		return HV_STATUS_INVALID_PARAMETER;
	const struct vsm_ops *o = &vsm->cfg.ops;
	const struct vsm_vp_vtl *s = &vsm->vps[vp].vtl[vtl];
	if (!(s->scontrol & 1) || !(s->simp & 1))
		return HV_STATUS_INVALID_SYNIC_STATE;
	uint64_t slot = (s->simp & ~0xfffull) + (uint64_t)sint * HV_MESSAGE_SIZE;
	uint32_t type;
	if (o->read_gpa(o->opaque, slot, &type, sizeof(type)))
		return HV_STATUS_INVALID_SYNIC_STATE;
	if (type != HV_MESSAGE_TYPE_NONE) {
		/* Busy: the guest must EOM and we retry (message_pending). */
		uint8_t flags;
		if (!o->read_gpa(o->opaque, slot + 5, &flags, 1)) {
			flags |= HV_MESSAGE_FLAG_PENDING;
			o->write_gpa(o->opaque, slot + 5, &flags, 1);
		}
		return HV_STATUS_INSUFFICIENT_BUFFERS;
	}
	/* The body first, the type last: a guest polling the type sees it whole. */
	if (o->write_gpa(o->opaque, slot + 4, msg + 4, HV_MESSAGE_SIZE - 4) ||
	    o->write_gpa(o->opaque, slot, msg, 4))
		return HV_STATUS_INVALID_SYNIC_STATE;
	uint64_t sv = s->sint[sint];
	if (!(sv & HV_SINT_MASKED))
		o->interrupt(o->opaque, vtl, HV_INTERRUPT_TYPE_FIXED, vp, false, false,
			     (uint8_t)sv);
	return HV_STATUS_SUCCESS;
}

int vsm_synic_signal_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, unsigned sint,
			    unsigned flag, bool *newly)
{
	*newly = false;
	if (vp >= vsm->cfg.nvps || vtl == 0 || vtl >= VSM_NUM_VTLS || sint >= HV_SINT_COUNT ||
	    flag >= 2048)
		return HV_STATUS_INVALID_PARAMETER;
	const struct vsm_ops *o = &vsm->cfg.ops;
	const struct vsm_vp_vtl *s = &vsm->vps[vp].vtl[vtl];
	if (!(s->scontrol & 1) || !(s->siefp & 1))
		return HV_STATUS_INVALID_SYNIC_STATE;
	uint64_t byte = (s->siefp & ~0xfffull) + (uint64_t)sint * HV_MESSAGE_SIZE + flag / 8;
	uint8_t b;
	if (o->read_gpa(o->opaque, byte, &b, 1))
		return HV_STATUS_INVALID_SYNIC_STATE;
	if (!(b & (1u << (flag % 8)))) {
		b |= (uint8_t)(1u << (flag % 8));
		if (o->write_gpa(o->opaque, byte, &b, 1))
			return HV_STATUS_INVALID_SYNIC_STATE;
		*newly = true;
	}
	uint64_t sv = s->sint[sint];
	if (*newly && !(sv & HV_SINT_MASKED))
		o->interrupt(o->opaque, vtl, HV_INTERRUPT_TYPE_FIXED, vp, false, false,
			     (uint8_t)sv);
	return HV_STATUS_SUCCESS;
}

int vsm_deliver_intercept(struct vsm *vsm, uint32_t vp, const uint8_t msg[HV_MESSAGE_SIZE])
{
	if (vp >= vsm->cfg.nvps)
		return HV_STATUS_INVALID_VP_INDEX;
	const struct vsm_ops *o = &vsm->cfg.ops;
	pthread_mutex_lock(&vsm->lock);
	struct vsm_vp *v = &vsm->vps[vp];
	int st = HV_STATUS_INVALID_VTL_STATE;
	uint32_t reason = HV_VTL_ENTRY_INTERRUPT;
	if (vsm_vtl_on(v->enabled, 2)) {
		uint64_t assist = assist_gpa(vsm, vp, 2);
		if ((vsm->partition_config[2] & HV_VSM_CONFIG_INTERCEPT_PAGE) && assist) {
			reason = HV_VTL_ENTRY_INTERCEPT;
			st = o->write_gpa(o->opaque, assist + HV_VP_ASSIST_INTERCEPT_MESSAGE, msg,
					  HV_MESSAGE_SIZE) ? HV_STATUS_INVALID_PARAMETER : 0;
		} else {
			/* The SINT0 message interrupts VTL2, which preempts the VP. */
			st = vsm_synic_post_locked(vsm, vp, 2, 0, msg);
		}
	}
	if (st == 0 && v->active < 2)
		vsm_regpage_fill_locked(vsm, vp, v->active);
	if (st == 0 && v->active < 2) {
		if (o->switch_vtl(o->opaque, vp, v->active, 2) == 0) {
			v->active = 2;
			set_entry_reason(vsm, vp, 2, reason);
		} else {
			st = HV_STATUS_INVALID_VP_STATE;
		}
	}
	pthread_mutex_unlock(&vsm->lock);
	return st;
}
