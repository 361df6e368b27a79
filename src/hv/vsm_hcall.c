/*
 * The VSM hypercalls (TLFS "Virtual Secure Mode" and the hypercall reference
 * pages; layouts from shared/docs/igvm-and-vsm.md §C.1-§C.2, which follow
 * OpenVMM's hvdef where the TLFS pages disagree): the dispatcher that checks
 * the control word, the caller's VTL and the input/output blocks (memory or
 * fast: RDX, R8, XMM0-5), then one handler per call. Register names for
 * Get/SetVpRegisters are in vsm_regs.c.
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

struct args {
	struct vsm *vsm;
	uint32_t vp;
	unsigned vtl;               /* the caller's active VTL */
	uint16_t rep_count, rep_start, reps_done;
	unsigned varhdr;            /* qwords */
	const uint8_t *in;          /* header, variable header, elements */
	uint8_t *out;
};

struct desc {
	uint16_t code;
	bool rep, variable, fast, slow;
	uint8_t min_vtl;            /* the caller must run at least this VTL */
	uint16_t in_size, in_elem, out_size, out_elem;
	uint16_t (*fn)(struct args *a);
};

/* ---- Shared argument checks ---- */

static uint16_t check_partition(uint64_t id)
{
	return id == HV_PARTITION_ID_SELF ? HV_STATUS_SUCCESS : HV_STATUS_INVALID_PARTITION_ID;
}

/* HV_INPUT_VTL: resolves to a VTL the caller may name (at most its own). */
static uint16_t input_vtl(const struct args *a, uint8_t v, unsigned *vtl)
{
	if (v & HV_INPUT_VTL_RESERVED)
		return HV_STATUS_INVALID_PARAMETER;
	if (!(v & HV_INPUT_VTL_USE_TARGET)) {
		*vtl = a->vtl;
		return HV_STATUS_SUCCESS;
	}
	unsigned t = HV_INPUT_VTL_TARGET(v);
	if (t > a->vsm->cfg.max_vtl)
		return HV_STATUS_INVALID_PARAMETER;
	if (t > a->vtl)
		return HV_STATUS_ACCESS_DENIED;
	*vtl = t;
	return HV_STATUS_SUCCESS;
}

/* A VP index (or HV_VP_INDEX_SELF) naming an existing VP. */
static uint16_t vp_index(const struct args *a, uint32_t in, uint32_t *vp)
{
	if (in == HV_VP_INDEX_SELF)
		in = a->vp;
	if (in >= a->vsm->cfg.nvps)
		return HV_STATUS_INVALID_VP_INDEX;
	*vp = in;
	return HV_STATUS_SUCCESS;
}

static bool zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

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

static uint16_t hc_enable_partition_vtl(struct args *a)
{
	struct in_enable_partition_vtl in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = check_partition(in.partition_id);
	if (st)
		return st;
	/* No MBEC, supervisor shadow stack or HVPT here: every flag is unsupported. */
	if (in.target_vtl == 0 || in.target_vtl > a->vsm->cfg.max_vtl || in.flags ||
	    !zero(in.rsvd, sizeof(in.rsvd)))
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

static uint16_t load_context(struct args *a, uint32_t vp, unsigned vtl,
			     const struct hv_initial_vp_context *c)
{
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	struct vsm_regs r;
	if (o->get_regs(o->opaque, vp, vtl, &r))
		return HV_STATUS_INVALID_VP_STATE;
	vsm_regs_from_context(&r, c);
	return o->set_regs(o->opaque, vp, vtl, &r) ? HV_STATUS_INVALID_PARAMETER : 0;
}

static uint16_t hc_enable_vp_vtl(struct args *a)
{
	struct in_vp_context_call in;
	memcpy(&in, a->in, sizeof(in));
	uint32_t vp;
	uint16_t st = check_partition(in.partition_id);
	if (!st)
		st = vp_index(a, in.vp_index, &vp);
	if (st)
		return st;
	if (in.target_vtl == 0 || in.target_vtl > a->vsm->cfg.max_vtl ||
	    !zero(in.rsvd, sizeof(in.rsvd)))
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

static uint16_t hc_start_virtual_processor(struct args *a)
{
	struct in_vp_context_call in;
	memcpy(&in, a->in, sizeof(in));
	uint32_t vp;
	uint16_t st = check_partition(in.partition_id);
	if (!st)
		st = vp_index(a, in.vp_index, &vp);
	if (st)
		return st;
	if (in.target_vtl > a->vsm->cfg.max_vtl || !zero(in.rsvd, sizeof(in.rsvd)))
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

/* vsm_regs.c */
uint16_t vsm_reg_get(struct vsm *vsm, uint32_t vp, unsigned caller, unsigned vtl,
		     uint32_t name, struct vsm_regs *r, bool *have_regs, uint8_t val[16]);
uint16_t vsm_reg_set(struct vsm *vsm, uint32_t vp, unsigned caller, unsigned vtl,
		     uint32_t name, struct vsm_regs *r, bool *have_regs, bool *dirty,
		     const uint8_t val[16]);

static uint16_t regs_header(struct args *a, uint32_t *vp, unsigned *vtl)
{
	struct in_vp_registers in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = check_partition(in.partition_id);
	if (!st)
		st = vp_index(a, in.vp_index, vp);
	if (!st && !zero(in.rsvd, sizeof(in.rsvd)))
		st = HV_STATUS_INVALID_PARAMETER;
	if (!st)
		st = input_vtl(a, in.target_vtl, vtl);
	/* Another VP's registers live on its thread: only the caller's own. */
	if (!st && *vp != a->vp)
		st = HV_STATUS_ACCESS_DENIED;
	if (!st && !vsm_vtl_on(a->vsm->vps[*vp].enabled, *vtl))
		st = HV_STATUS_INVALID_VTL_STATE;
	return st;
}

static uint16_t hc_get_vp_registers(struct args *a)
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

static uint16_t hc_set_vp_registers(struct args *a)
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
		if (!zero(e + 4, 12)) {
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

/* ---- Protections and intercepts ---- */

struct in_modify_protection {
	uint64_t partition_id;
	uint32_t map_flags;
	uint8_t target_vtl;
	uint8_t rsvd[3];
} __attribute__((packed));
_Static_assert(sizeof(struct in_modify_protection) == 16, "ModifyVtlProtectionMask");

static uint16_t hc_modify_vtl_protection_mask(struct args *a)
{
	struct in_modify_protection in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = check_partition(in.partition_id);
	if (st)
		return st;
	unsigned vtl;
	if (!zero(in.rsvd, sizeof(in.rsvd)))
		return HV_STATUS_INVALID_PARAMETER;
	st = input_vtl(a, in.target_vtl, &vtl);
	if (st)
		return st;
	/* Protections restrict VTLs below the caller's: name no other VTL. */
	if (vtl != a->vtl)
		return HV_STATUS_INVALID_PARAMETER;
	if ((in.map_flags & ~HV_MAP_GPA_ALL) ||
	    ((in.map_flags & HV_MAP_GPA_WRITABLE) && !(in.map_flags & HV_MAP_GPA_READABLE)))
		return HV_STATUS_INVALID_PARAMETER;
	if (!(a->vsm->partition_config[vtl] & HV_VSM_CONFIG_ENABLE_VTL_PROTECTION))
		return HV_STATUS_INVALID_VTL_STATE;
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	a->reps_done = a->rep_start;
	/* Runs of consecutive pages go to the backend as one range. */
	unsigned i = a->rep_start;
	while (i < a->rep_count) {
		uint64_t first;
		memcpy(&first, a->in + 16 + (size_t)i * 8, 8);
		if (first >> 52)
			return HV_STATUS_INVALID_PARAMETER;
		unsigned n = 1;
		while (i + n < a->rep_count) {
			uint64_t next;
			memcpy(&next, a->in + 16 + (size_t)(i + n) * 8, 8);
			if (next != first + n)
				break;
			n++;
		}
		st = (uint16_t)o->protect(o->opaque, vtl, first, n, in.map_flags);
		if (st)
			return st;
		i += n;
		a->reps_done = (uint16_t)i;
	}
	return HV_STATUS_SUCCESS;
}

struct in_install_intercept {
	uint64_t partition_id;
	uint32_t access_type_mask;
	uint32_t intercept_type;
	uint64_t parameters;
} __attribute__((packed));
_Static_assert(sizeof(struct in_install_intercept) == 24, "InstallIntercept");

static void io_mark(uint8_t *map, unsigned first, unsigned last, bool on)
{
	for (unsigned p = first; p <= last; p++) {
		if (on)
			map[p / 8] |= (uint8_t)(1u << (p % 8));
		else
			map[p / 8] &= (uint8_t)~(1u << (p % 8));
	}
}

static uint16_t hc_install_intercept(struct args *a)
{
	struct in_install_intercept in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = check_partition(in.partition_id);
	if (st)
		return st;
	uint32_t acc = in.access_type_mask;
	if (acc & ~(HV_INTERCEPT_ACCESS_READ | HV_INTERCEPT_ACCESS_WRITE |
		    HV_INTERCEPT_ACCESS_EXECUTE))
		return HV_STATUS_INVALID_PARAMETER;
	struct vsm *v = a->vsm;
	switch (in.intercept_type) {
	case HV_INTERCEPT_TYPE_X64_IO_PORT:
	case HV_INTERCEPT_TYPE_X64_IO_PORT_RANGE: {
		unsigned first, last;
		if (in.intercept_type == HV_INTERCEPT_TYPE_X64_IO_PORT) {
			if (in.parameters >> 16)
				return HV_STATUS_INVALID_PARAMETER;
			first = last = (unsigned)in.parameters;
		} else {
			if (in.parameters >> 32)
				return HV_STATUS_INVALID_PARAMETER;
			first = (unsigned)(in.parameters & 0xffff);
			last = (unsigned)(in.parameters >> 16);
			if (first > last)
				return HV_STATUS_INVALID_PARAMETER;
		}
		if (acc & HV_INTERCEPT_ACCESS_EXECUTE)
			return HV_STATUS_INVALID_PARAMETER;
		io_mark(v->io_read, first, last, acc & HV_INTERCEPT_ACCESS_READ);
		io_mark(v->io_write, first, last, acc & HV_INTERCEPT_ACCESS_WRITE);
		return HV_STATUS_SUCCESS;
	}
	case HV_INTERCEPT_TYPE_X64_MSR:
		if (acc & HV_INTERCEPT_ACCESS_EXECUTE)
			return HV_STATUS_INVALID_PARAMETER;
		v->msr_access = acc;
		return HV_STATUS_SUCCESS;
	case HV_INTERCEPT_TYPE_UNKNOWN_SYNIC_CONNECTION:
		v->synic_access = acc;
		return HV_STATUS_SUCCESS;
	case HV_INTERCEPT_TYPE_X64_APIC_EOI:
		v->eoi_access = acc;
		return HV_STATUS_SUCCESS;
	case HV_INTERCEPT_TYPE_RETARGET_UNKNOWN_DEVICE:
		v->retarget_access = acc;
		return HV_STATUS_SUCCESS;
	default:
		return HV_STATUS_INVALID_PARAMETER;
	}
}

/* ---- Translation, APIC ids, interrupts, SynIC ---- */

struct in_translate {
	uint64_t partition_id;
	uint32_t vp_index;
	uint32_t rsvd;
	uint64_t control_flags;
	uint64_t gva_page;
} __attribute__((packed));
_Static_assert(sizeof(struct in_translate) == 32, "TranslateVirtualAddress");

static uint16_t translate(struct args *a, uint64_t *result, uint64_t *gpa_page)
{
	struct in_translate in;
	memcpy(&in, a->in, sizeof(in));
	uint32_t vp;
	uint16_t st = check_partition(in.partition_id);
	if (!st)
		st = vp_index(a, in.vp_index, &vp);
	if (st)
		return st;
	unsigned vtl;
	uint64_t flags = in.control_flags & ~(0xffull << 56);
	if (in.rsvd || (flags & ~HV_TRANSLATE_GVA_FLAGS_VALID) || (in.gva_page >> 52))
		return HV_STATUS_INVALID_PARAMETER;
	st = input_vtl(a, (uint8_t)(in.control_flags >> 56), &vtl);
	if (st)
		return st;
	if (vp != a->vp)
		return HV_STATUS_ACCESS_DENIED;
	if (!vsm_vtl_on(a->vsm->vps[vp].enabled, vtl))
		return HV_STATUS_INVALID_VTL_STATE;
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	struct vsm_regs r;
	if (o->get_regs(o->opaque, vp, vtl, &r))
		return HV_STATUS_INVALID_VP_STATE;
	uint64_t gpa = 0;
	*result = vsm_translate_gva(o, &r, in.gva_page << 12, flags, &gpa);
	*gpa_page = *result == HV_TRANSLATE_GVA_SUCCESS ? gpa >> 12 : 0;
	return HV_STATUS_SUCCESS;
}

static uint16_t hc_translate(struct args *a)
{
	uint64_t res, page;
	uint16_t st = translate(a, &res, &page);
	if (!st) {
		memcpy(a->out, &res, 8);
		memcpy(a->out + 8, &page, 8);
	}
	return st;
}

/* Ex output: result u64, reserved u64, pending event (32), gpa page, reserved. */
static uint16_t hc_translate_ex(struct args *a)
{
	uint64_t res, page;
	uint16_t st = translate(a, &res, &page);
	if (!st) {
		memcpy(a->out, &res, 8);
		memcpy(a->out + 48, &page, 8);
	}
	return st;
}

struct in_apic_id {
	uint64_t partition_id;
	uint8_t target_vtl;
	uint8_t rsvd[7];
} __attribute__((packed));
_Static_assert(sizeof(struct in_apic_id) == 16, "GetVpIndexFromApicId");

static uint16_t hc_get_vp_index_from_apic_id(struct args *a)
{
	struct in_apic_id in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = check_partition(in.partition_id);
	if (st)
		return st;
	unsigned vtl;
	if (!zero(in.rsvd, sizeof(in.rsvd)))
		return HV_STATUS_INVALID_PARAMETER;
	st = input_vtl(a, in.target_vtl, &vtl);
	if (st)
		return st;
	if (!vsm_vtl_on(a->vsm->enabled, vtl))
		return HV_STATUS_INVALID_VTL_STATE;
	a->reps_done = a->rep_start;
	for (unsigned i = a->rep_start; i < a->rep_count; i++) {
		uint32_t apic;
		memcpy(&apic, a->in + 16 + (size_t)i * 4, 4);
		if (apic >= a->vsm->cfg.nvps)   /* VP index i is APIC id i */
			return HV_STATUS_INVALID_PARAMETER;
		memcpy(a->out + (size_t)i * 4, &apic, 4);
		a->reps_done = (uint16_t)(i + 1);
	}
	return HV_STATUS_SUCCESS;
}

struct in_assert_interrupt {
	uint64_t partition_id;
	uint64_t control;     /* type 0-31, level-triggered 32, logical destination 33 */
	uint64_t destination;
	uint32_t vector;
	uint8_t target_vtl;
	uint8_t rsvd[3];
} __attribute__((packed));
_Static_assert(sizeof(struct in_assert_interrupt) == 32, "AssertVirtualInterrupt");

static uint16_t hc_assert_virtual_interrupt(struct args *a)
{
	struct in_assert_interrupt in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = check_partition(in.partition_id);
	if (st)
		return st;
	unsigned type = (unsigned)(in.control & 0xffffffffu);
	bool level = in.control & (1ull << 32), logical = in.control & (1ull << 33);
	if ((in.control >> 34) || level || !zero(in.rsvd, sizeof(in.rsvd)) || in.vector > 0xff)
		return HV_STATUS_INVALID_PARAMETER;
	if (in.target_vtl > a->vsm->cfg.max_vtl)
		return HV_STATUS_INVALID_PARAMETER;
	if (in.target_vtl > a->vtl)
		return HV_STATUS_ACCESS_DENIED;
	if (!vsm_vtl_on(a->vsm->enabled, in.target_vtl))
		return HV_STATUS_INVALID_VTL_STATE;
	switch (type) {
	case HV_INTERRUPT_TYPE_FIXED:
	case HV_INTERRUPT_TYPE_LOWEST:
		if (in.vector < 16)
			return HV_STATUS_INVALID_PARAMETER;
		break;
	case HV_INTERRUPT_TYPE_NMI:
	case HV_INTERRUPT_TYPE_INIT:
	case HV_INTERRUPT_TYPE_SIPI:
		break;
	default:
		return HV_STATUS_INVALID_PARAMETER;
	}
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	return (uint16_t)o->interrupt(o->opaque, in.target_vtl, type, in.destination, logical,
				      (uint8_t)in.vector);
}

/* Checks (vp, vtl, sint) of a direct SynIC call. */
static uint16_t synic_target(struct args *a, uint64_t part, uint32_t in_vp, uint8_t vtl,
			     uint8_t sint, uint32_t *vp)
{
	uint16_t st = check_partition(part);
	if (!st)
		st = vp_index(a, in_vp, vp);
	if (st)
		return st;
	if (vtl > a->vsm->cfg.max_vtl || sint >= HV_SINT_COUNT)
		return HV_STATUS_INVALID_PARAMETER;
	if (vtl > a->vtl)
		return HV_STATUS_ACCESS_DENIED;
	if (!vsm_vtl_on(a->vsm->vps[*vp].enabled, vtl))
		return HV_STATUS_INVALID_VTL_STATE;
	return HV_STATUS_SUCCESS;
}

struct in_signal_event_direct {
	uint64_t partition_id;
	uint32_t vp_index;
	uint8_t vtl, sint;
	uint16_t flag;
} __attribute__((packed));
_Static_assert(sizeof(struct in_signal_event_direct) == 16, "SignalEventDirect");

static uint16_t hc_signal_event_direct(struct args *a)
{
	struct in_signal_event_direct in;
	memcpy(&in, a->in, sizeof(in));
	uint32_t vp;
	uint16_t st = synic_target(a, in.partition_id, in.vp_index, in.vtl, in.sint, &vp);
	if (st)
		return st;
	if (in.flag >= 2048)
		return HV_STATUS_INVALID_PARAMETER;
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	bool newly = false;
	st = (uint16_t)o->signal_event(o->opaque, vp, in.vtl, in.sint, in.flag, &newly);
	if (!st)
		a->out[0] = newly;
	return st;
}

/* hvdef's layout (the TLFS page puts the message at 16, hvdef at 20). */
struct in_post_message_direct {
	uint64_t partition_id;
	uint32_t vp_index;
	uint8_t vtl;
	uint8_t pad0[3];
	uint8_t sint;
	uint8_t pad1[3];
	uint8_t message[HV_MESSAGE_SIZE];
} __attribute__((packed));
_Static_assert(sizeof(struct in_post_message_direct) == 276, "PostMessageDirect");

static uint16_t hc_post_message_direct(struct args *a)
{
	struct in_post_message_direct in;
	memcpy(&in, a->in, sizeof(in));
	uint32_t vp;
	uint16_t st = synic_target(a, in.partition_id, in.vp_index, in.vtl, in.sint, &vp);
	if (st)
		return st;
	uint32_t type;
	memcpy(&type, in.message, 4);
	uint8_t size = in.message[4];
	if (type == HV_MESSAGE_TYPE_NONE || size > HV_MESSAGE_PAYLOAD_MAX)
		return HV_STATUS_INVALID_PARAMETER;
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	return (uint16_t)o->post_message(o->opaque, vp, in.vtl, in.sint, in.message);
}

/*
 * ---- TLB flushes: arguments checked, success returned. No remote flush
 * happens here; the wiring must make the target VPs flush (hvmm's CPUID
 * does not recommend these calls to VTL0). ----
 */

#define FLUSH_FLAGS_VALID 0x31full

static uint16_t flush_common(struct args *a, bool ex)
{
	uint64_t flags;
	memcpy(&flags, a->in + 8, 8);
	if (flags & ~FLUSH_FLAGS_VALID)
		return HV_STATUS_INVALID_PARAMETER;
	if (ex) {
		uint64_t format, banks;
		memcpy(&format, a->in + 16, 8);
		memcpy(&banks, a->in + 24, 8);
		if (format > 1)
			return HV_STATUS_INVALID_PARAMETER;
		if (format == 0 && (unsigned)__builtin_popcountll(banks) != a->varhdr)
			return HV_STATUS_INVALID_PARAMETER;
	}
	a->reps_done = a->rep_count;
	return HV_STATUS_SUCCESS;
}

static uint16_t hc_flush(struct args *a) { return flush_common(a, false); }
static uint16_t hc_flush_ex(struct args *a) { return flush_common(a, true); }

static const struct desc table[] = {
	{ HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE, false, false, true, true, 0, 24, 0, 0, 0, hc_flush },
	{ HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST, true, false, true, true, 0, 24, 8, 0, 0, hc_flush },
	{ HVCALL_MODIFY_VTL_PROTECTION_MASK, true, false, true, true, 1, 16, 8, 0, 0,
	  hc_modify_vtl_protection_mask },
	{ HVCALL_ENABLE_PARTITION_VTL, false, false, true, true, 0, 16, 0, 0, 0,
	  hc_enable_partition_vtl },
	{ HVCALL_ENABLE_VP_VTL, false, false, false, true, 0, 240, 0, 0, 0, hc_enable_vp_vtl },
	{ HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX, false, true, true, true, 0, 32, 0, 0, 0,
	  hc_flush_ex },
	{ HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX, true, true, true, true, 0, 32, 8, 0, 0,
	  hc_flush_ex },
	{ HVCALL_INSTALL_INTERCEPT, false, false, true, true, 1, 24, 0, 0, 0,
	  hc_install_intercept },
	{ HVCALL_GET_VP_REGISTERS, true, false, true, true, 0, 16, 4, 0, 16, hc_get_vp_registers },
	{ HVCALL_SET_VP_REGISTERS, true, false, true, true, 0, 16, 32, 0, 0, hc_set_vp_registers },
	{ HVCALL_TRANSLATE_VIRTUAL_ADDRESS, false, false, true, true, 1, 32, 0, 16, 0,
	  hc_translate },
	{ HVCALL_ASSERT_VIRTUAL_INTERRUPT, false, false, true, true, 1, 32, 0, 0, 0,
	  hc_assert_virtual_interrupt },
	{ HVCALL_START_VIRTUAL_PROCESSOR, false, false, false, true, 0, 240, 0, 0, 0,
	  hc_start_virtual_processor },
	{ HVCALL_GET_VP_INDEX_FROM_APIC_ID, true, false, true, true, 0, 16, 4, 0, 4,
	  hc_get_vp_index_from_apic_id },
	{ HVCALL_TRANSLATE_VIRTUAL_ADDRESS_EX, false, false, true, true, 1, 32, 0, 64, 0,
	  hc_translate_ex },
	{ HVCALL_SIGNAL_EVENT_DIRECT, false, false, true, true, 1, 16, 0, 8, 0,
	  hc_signal_event_direct },
	{ HVCALL_POST_MESSAGE_DIRECT, false, false, false, true, 1, 276, 0, 0, 0,
	  hc_post_message_direct },
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
	struct args a = {
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
