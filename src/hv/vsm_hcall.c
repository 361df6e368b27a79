/*
 * The VSM hypercalls (TLFS "Virtual Secure Mode" and the hypercall reference
 * pages; layouts from shared/docs/igvm-and-vsm.md §C.1-§C.2, which follow
 * OpenVMM's hvdef where the TLFS pages disagree): the dispatcher that checks
 * the control word, the caller's VTL and the input/output blocks (memory or
 * fast: RDX, R8, XMM0-5), then one handler per call. The handlers for VTL
 * enablement, VP start and Get/SetVpRegisters are here (register names and
 * access rules in vsm_regs.c), the others in vsm_hcall_mem.c.
 */
#include "hv/vsm_impl.h"

#include <string.h>

#include "core/log.h"

/* Control word (HV_HYPERCALL_INPUT). */
#define HC_CODE(c)       ((uint16_t)((c) & 0xffff))
#define HC_FAST          (1ull << 16)
#define HC_VARHDR(c)     ((unsigned)(((c) >> 17) & 0x3ff))
#define HC_REP_COUNT(c)  ((uint16_t)(((c) >> 32) & 0xfff))
#define HC_REP_START(c)  ((uint16_t)(((c) >> 48) & 0xfff))
#define HC_RESERVED      (0x1full << 27 | 0xfull << 44 | 0xfull << 60)
#define FAST_BYTES       112   /* RDX, R8, XMM0-5 */

struct desc {
	uint16_t code;
	bool rep, variable, fast, slow;
	uint8_t min_vtl;            /* the caller must run at least this VTL */
	uint16_t in_size, in_elem, out_size, out_elem;
	uint16_t (*fn)(struct vsm_hc_args *a);
};

/* ---- Enabling VTLs and starting VPs ---- */

struct in_enable_partition_vtl {
	uint64_t partition_id;
	uint8_t target_vtl, flags;
	uint8_t rsvd[6];
} __attribute__((packed));
_Static_assert(sizeof(struct in_enable_partition_vtl) == 16, "EnablePartitionVtl");

/*
 * TLFS: a VTL may enable any lower VTL; it may enable a higher one only if
 * it is the highest enabled VTL below it (in `set`).
 */
static bool may_enable(uint16_t set, unsigned caller, unsigned target)
{
	if (target <= caller)
		return true;
	for (unsigned t = caller + 1; t < target; t++)
		if (vsm_vtl_on(set, t))
			return false;
	return true;
}

static uint16_t hc_enable_partition_vtl(struct vsm_hc_args *a)
{
	struct in_enable_partition_vtl in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = vsm_hc_partition(in.partition_id);
	if (st)
		return st;
	/* No MBEC, supervisor shadow stack or HVPT here: every flag is unsupported. */
	if (in.target_vtl == 0 || in.target_vtl > a->vsm->cfg.max_vtl || in.flags ||
	    !vsm_hc_zero(in.rsvd, sizeof(in.rsvd)))
		return HV_STATUS_INVALID_PARAMETER;
	if (vsm_vtl_on(a->vsm->enabled, in.target_vtl))
		return HV_STATUS_VTL_ALREADY_ENABLED;
	if (!may_enable(a->vsm->enabled, a->vtl, in.target_vtl))
		return HV_STATUS_ACCESS_DENIED;
	a->vsm->enabled |= (uint16_t)(1u << in.target_vtl);
	return HV_STATUS_SUCCESS;
}

struct in_vp_context_call {
	uint64_t partition_id;
	uint32_t vp_index;
	uint8_t target_vtl;
	uint8_t rsvd[3];
	struct hv_initial_vp_context ctx;
} __attribute__((packed));
_Static_assert(sizeof(struct in_vp_context_call) == 240, "EnableVpVtl/StartVirtualProcessor");

/* VTLs above 0 cannot run in real mode (TLFS); paging needs protection. */
static uint16_t check_context(unsigned vtl, const struct hv_initial_vp_context *c)
{
	if (vtl > 0 && !(c->cr0 & 1))
		return HV_STATUS_INVALID_PARAMETER;
	if ((c->cr0 & (1ull << 31)) && !(c->cr0 & 1))
		return HV_STATUS_INVALID_PARAMETER;
	return HV_STATUS_SUCCESS;
}

static uint16_t load_context(struct vsm_hc_args *a, uint32_t vp, unsigned vtl,
			     const struct hv_initial_vp_context *c)
{
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	struct vsm_regs r;
	bool have = false;
	if (vsm_regs_load(a->vsm, vp, vtl, &r, &have, VSM_REGS_MSRS)) /* the context has PAT */
		return HV_STATUS_INVALID_VP_STATE;
	vsm_regs_from_context(&r, c);
	return o->set_regs(o->opaque, vp, vtl, &r) ? HV_STATUS_INVALID_PARAMETER : 0;
}

static uint16_t hc_enable_vp_vtl(struct vsm_hc_args *a)
{
	struct in_vp_context_call in;
	memcpy(&in, a->in, sizeof(in));
	uint32_t vp;
	uint16_t st = vsm_hc_partition(in.partition_id);
	if (!st)
		st = vsm_hc_vp_index(a, in.vp_index, &vp);
	if (st)
		return st;
	if (in.target_vtl == 0 || in.target_vtl > a->vsm->cfg.max_vtl ||
	    !vsm_hc_zero(in.rsvd, sizeof(in.rsvd)))
		return HV_STATUS_INVALID_PARAMETER;
	if (!vsm_vtl_on(a->vsm->enabled, in.target_vtl))
		return HV_STATUS_INVALID_VTL_STATE;
	struct vsm_vp *t = &a->vsm->vps[vp];
	if (vsm_vtl_on(t->enabled, in.target_vtl))
		return HV_STATUS_VTL_ALREADY_ENABLED;
	if (!may_enable(t->enabled, a->vtl, in.target_vtl))
		return HV_STATUS_ACCESS_DENIED;
	st = check_context(in.target_vtl, &in.ctx);
	if (!st)
		st = load_context(a, vp, in.target_vtl, &in.ctx);
	if (st)
		return st;
	t->enabled |= (uint16_t)(1u << in.target_vtl);
	return HV_STATUS_SUCCESS;
}

static uint16_t hc_start_virtual_processor(struct vsm_hc_args *a)
{
	struct in_vp_context_call in;
	memcpy(&in, a->in, sizeof(in));
	uint32_t vp;
	uint16_t st = vsm_hc_partition(in.partition_id);
	if (!st)
		st = vsm_hc_vp_index(a, in.vp_index, &vp);
	if (st)
		return st;
	if (in.target_vtl > a->vsm->cfg.max_vtl || !vsm_hc_zero(in.rsvd, sizeof(in.rsvd)))
		return HV_STATUS_INVALID_PARAMETER;
	if (in.target_vtl > a->vtl)
		return HV_STATUS_ACCESS_DENIED;
	/* A higher VTL that denies lower-VTL startup owns the APs' start. */
	for (unsigned h = a->vtl + 1; h < VSM_NUM_VTLS; h++)
		if (vsm_vtl_on(a->vsm->enabled, h) &&
		    (a->vsm->partition_config[h] & HV_VSM_CONFIG_DENY_LOWER_VTL_STARTUP))
			return HV_STATUS_ACCESS_DENIED;
	struct vsm_vp *t = &a->vsm->vps[vp];
	if (vp == a->vp || t->started || !vsm_vtl_on(t->enabled, in.target_vtl))
		return HV_STATUS_INVALID_VP_STATE;
	/* The VP starts in its highest enabled VTL at or below the target. */
	st = check_context(in.target_vtl, &in.ctx);
	if (!st)
		st = load_context(a, vp, in.target_vtl, &in.ctx);
	if (st)
		return st;
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	st = (uint16_t)o->start_vp(o->opaque, vp, in.target_vtl);
	if (st)
		return st;
	t->started = true;
	t->active = in.target_vtl;
	return HV_STATUS_SUCCESS;
}

/* ---- Registers ---- */

struct in_vp_registers {
	uint64_t partition_id;
	uint32_t vp_index;
	uint8_t target_vtl;
	uint8_t rsvd[3];
} __attribute__((packed));
_Static_assert(sizeof(struct in_vp_registers) == 16, "Get/SetVpRegisters header");


static uint16_t regs_header(struct vsm_hc_args *a, uint32_t *vp, unsigned *vtl)
{
	struct in_vp_registers in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = vsm_hc_partition(in.partition_id);
	if (!st)
		st = vsm_hc_vp_index(a, in.vp_index, vp);
	if (!st && !vsm_hc_zero(in.rsvd, sizeof(in.rsvd)))
		st = HV_STATUS_INVALID_PARAMETER;
	if (!st)
		st = vsm_hc_input_vtl(a, in.target_vtl, vtl);
	/* Another VP's registers live on its thread: only the caller's own. */
	if (!st && *vp != a->vp)
		st = HV_STATUS_ACCESS_DENIED;
	if (!st && !vsm_vtl_on(a->vsm->vps[*vp].enabled, *vtl))
		st = HV_STATUS_INVALID_VTL_STATE;
	return st;
}

static uint16_t hc_get_vp_registers(struct vsm_hc_args *a)
{
	uint32_t vp;
	unsigned vtl;
	uint16_t st = regs_header(a, &vp, &vtl);
	if (st)
		return st;
	struct vsm_regs r;
	bool have = false;
	a->reps_done = a->rep_start;
	for (unsigned i = a->rep_start; i < a->rep_count; i++) {
		uint32_t name;
		memcpy(&name, a->in + 16 + (size_t)i * 4, 4);
		st = vsm_reg_get(a->vsm, vp, a->vtl, vtl, name, &r, &have, a->out + (size_t)i * 16);
		if (st)
			return st;
		a->reps_done = (uint16_t)(i + 1);
	}
	return HV_STATUS_SUCCESS;
}

static uint16_t hc_set_vp_registers(struct vsm_hc_args *a)
{
	uint32_t vp;
	unsigned vtl;
	uint16_t st = regs_header(a, &vp, &vtl);
	if (st)
		return st;
	struct vsm_regs r;
	bool have = false, dirty = false;
	a->reps_done = a->rep_start;
	for (unsigned i = a->rep_start; i < a->rep_count; i++) {
		const uint8_t *e = a->in + 16 + (size_t)i * 32;
		uint32_t name;
		memcpy(&name, e, 4);
		if (!vsm_hc_zero(e + 4, 12)) {
			st = HV_STATUS_INVALID_PARAMETER;
			break;
		}
		st = vsm_reg_set(a->vsm, vp, a->vtl, vtl, name, &r, &have, &dirty, e + 16);
		if (st)
			break;
		a->reps_done = (uint16_t)(i + 1);
	}
	/* Registers set before a failing element stay set (reps_done says how many). */
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	if (dirty && o->set_regs(o->opaque, vp, vtl, &r) && !st)
		st = HV_STATUS_INVALID_VP_STATE;
	return st;
}

static const struct desc table[] = {
	{ HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE, false, false, true, true, 0, 24, 0, 0, 0, vsm_hc_flush },
	{ HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST, true, false, true, true, 0, 24, 8, 0, 0, vsm_hc_flush },
	{ HVCALL_MODIFY_VTL_PROTECTION_MASK, true, false, true, true, 1, 16, 8, 0, 0,
	  vsm_hc_modify_vtl_protection_mask },
	{ HVCALL_ENABLE_PARTITION_VTL, false, false, true, true, 0, 16, 0, 0, 0,
	  hc_enable_partition_vtl },
	{ HVCALL_ENABLE_VP_VTL, false, false, false, true, 0, 240, 0, 0, 0, hc_enable_vp_vtl },
	{ HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX, false, true, true, true, 0, 32, 0, 0, 0,
	  vsm_hc_flush_ex },
	{ HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX, true, true, true, true, 0, 32, 8, 0, 0,
	  vsm_hc_flush_ex },
	{ HVCALL_INSTALL_INTERCEPT, false, false, true, true, 1, 24, 0, 0, 0,
	  vsm_hc_install_intercept },
	{ HVCALL_GET_VP_REGISTERS, true, false, true, true, 0, 16, 4, 0, 16, hc_get_vp_registers },
	{ HVCALL_SET_VP_REGISTERS, true, false, true, true, 0, 16, 32, 0, 0, hc_set_vp_registers },
	{ HVCALL_TRANSLATE_VIRTUAL_ADDRESS, false, false, true, true, 1, 32, 0, 16, 0,
	  vsm_hc_translate },
	{ HVCALL_ASSERT_VIRTUAL_INTERRUPT, false, false, true, true, 1, 32, 0, 0, 0,
	  vsm_hc_assert_virtual_interrupt },
	{ HVCALL_START_VIRTUAL_PROCESSOR, false, false, false, true, 0, 240, 0, 0, 0,
	  hc_start_virtual_processor },
	{ HVCALL_GET_VP_INDEX_FROM_APIC_ID, true, false, true, true, 0, 16, 4, 0, 4,
	  vsm_hc_get_vp_index_from_apic_id },
	{ HVCALL_TRANSLATE_VIRTUAL_ADDRESS_EX, false, false, true, true, 1, 32, 0, 64, 0,
	  vsm_hc_translate_ex },
	{ HVCALL_SIGNAL_EVENT_DIRECT, false, false, true, true, 1, 16, 0, 8, 0,
	  vsm_hc_signal_event_direct },
	{ HVCALL_POST_MESSAGE_DIRECT, false, false, false, true, 1, 276, 0, 0, 0,
	  vsm_hc_post_message_direct },
};

static const struct desc *find(uint16_t code)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].code == code)
			return &table[i];
	return NULL;
}

/* Memory block rules: 8-byte aligned and within one page. */
static uint16_t check_block(uint64_t gpa, uint64_t size)
{
	if (gpa & 7)
		return HV_STATUS_INVALID_ALIGNMENT;
	if (size > HV_PAGE_SIZE_VSM || (gpa & (HV_PAGE_SIZE_VSM - 1)) + size > HV_PAGE_SIZE_VSM)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	return HV_STATUS_SUCCESS;
}

static uint16_t dispatch(struct vsm *vsm, uint32_t vp, const struct desc *d,
			 struct vsm_hypercall *hc, uint16_t *reps_done)
{
	uint64_t c = hc->control;
	if (c & HC_RESERVED)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	bool fast = c & HC_FAST;
	uint16_t rep_count = HC_REP_COUNT(c), rep_start = HC_REP_START(c);
	unsigned varhdr = HC_VARHDR(c);
	if (d->rep ? (rep_count == 0 || rep_start >= rep_count) : (rep_count || rep_start))
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	if (varhdr && !d->variable)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	if (fast ? !d->fast : !d->slow)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	unsigned vtl = vsm->vps[vp].active;
	if (vtl < d->min_vtl)
		return HV_STATUS_ACCESS_DENIED;

	uint64_t in_len = (uint64_t)d->in_size + (uint64_t)varhdr * 8 +
			  (d->rep ? (uint64_t)rep_count * d->in_elem : 0);
	uint64_t out_len = (uint64_t)d->out_size + (d->rep ? (uint64_t)rep_count * d->out_elem : 0);
	uint8_t in[HV_PAGE_SIZE_VSM], out[HV_PAGE_SIZE_VSM];
	uint64_t out_off = 0;     /* fast: where the output starts in the register space */
	const struct vsm_ops *o = &vsm->cfg.ops;
	if (fast) {
		out_off = (in_len + 15) & ~15ull;
		if (in_len > FAST_BYTES || (out_len && out_off + out_len > FAST_BYTES))
			return HV_STATUS_INVALID_HYPERCALL_INPUT;
		memcpy(in, &hc->rdx, 8);
		memcpy(in + 8, &hc->r8, 8);
		memcpy(in + 16, hc->xmm, sizeof(hc->xmm));
	} else {
		uint16_t st = check_block(hc->rdx, in_len);
		if (!st && out_len)
			st = check_block(hc->r8, out_len);
		if (st)
			return st;
		if (in_len && o->read_gpa(o->opaque, hc->rdx, in, in_len))
			return HV_STATUS_INVALID_PARAMETER;
	}
	memset(out, 0, out_len);
	struct vsm_hc_args a = {
		.vsm = vsm, .vp = vp, .vtl = vtl, .rep_count = rep_count, .rep_start = rep_start,
		.varhdr = varhdr, .in = in, .out = out,
	};
	uint16_t st = d->fn(&a);
	*reps_done = d->rep ? a.reps_done : 0;
	/* Output: the fixed part on success, rep elements [rep_start, reps_done). */
	uint64_t lo = 0, hi = 0;
	if (d->rep) {
		lo = (uint64_t)rep_start * d->out_elem;
		hi = (uint64_t)(*reps_done > rep_start ? *reps_done : rep_start) * d->out_elem;
	} else if (!st) {
		hi = out_len;
	}
	if (hi > lo) {
		if (fast) {
			uint8_t regs[FAST_BYTES];
			memcpy(regs + 16, hc->xmm, sizeof(hc->xmm));
			memcpy(regs + out_off + lo, out + lo, hi - lo);
			memcpy(hc->xmm, regs + 16, sizeof(hc->xmm));
			hc->xmm_dirty = true;
		} else if (o->write_gpa(o->opaque, hc->r8 + lo, out + lo, hi - lo) && !st) {
			st = HV_STATUS_INVALID_PARAMETER;
		}
	}
	return st;
}

enum vsm_hc_action vsm_hypercall(struct vsm *vsm, uint32_t vp, struct vsm_hypercall *hc)
{
	uint16_t code = HC_CODE(hc->control);
	hc->xmm_dirty = false;
	if (code == HVCALL_VTL_CALL || code == HVCALL_VTL_RETURN) {
		/* Register-only calls: any other control bit or input is #UD (TLFS). */
		bool ret = code == HVCALL_VTL_RETURN;
		if (hc->control != code || hc->cpl != 0 || !hc->long_mode || vp >= vsm->cfg.nvps ||
		    (ret ? (hc->rax & ~1ull) : hc->rax))
			return VSM_HC_INJECT_UD;
		pthread_mutex_lock(&vsm->lock);
		int r = ret ? vsm_vtl_return_locked(vsm, vp, hc->rax & 1) :
			      vsm_vtl_call_locked(vsm, vp);
		pthread_mutex_unlock(&vsm->lock);
		if (r) {
			log_guest_debug("vsm: VP %u %s refused", vp, ret ? "VtlReturn" : "VtlCall");
			return VSM_HC_INJECT_UD;
		}
		return VSM_HC_SWITCHED;
	}
	const struct desc *d = find(code);
	if (!d)
		return VSM_HC_NOT_VSM;
	if (hc->cpl != 0 || !hc->long_mode || vp >= vsm->cfg.nvps)
		return VSM_HC_INJECT_UD;
	uint16_t reps_done = 0;
	pthread_mutex_lock(&vsm->lock);
	uint16_t st = dispatch(vsm, vp, d, hc, &reps_done);
	pthread_mutex_unlock(&vsm->lock);
	if (st)
		log_guest_debug("vsm: VP %u hypercall 0x%x control 0x%llx: status 0x%x", vp, code,
				(unsigned long long)hc->control, st);
	hc->result = st | ((uint64_t)reps_done << 32);
	return VSM_HC_DONE;
}
