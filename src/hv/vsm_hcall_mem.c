/*
 * The VSM hypercalls about memory, intercepts and other VPs (TLFS hypercall
 * reference pages; layouts from shared/docs/igvm-and-vsm.md §C.2):
 * ModifyVtlProtectionMask, InstallIntercept, TranslateVirtualAddress(Ex),
 * GetVpIndexFromApicId, AssertVirtualInterrupt, SignalEventDirect,
 * PostMessageDirect and the TLB flushes. vsm_hcall.c's dispatcher has
 * checked the control word and copied the input before these run.
 */
#include "hv/vsm_impl.h"

#include <string.h>

/* ---- Protections and intercepts ---- */

struct in_modify_protection {
	uint64_t partition_id;
	uint32_t map_flags;
	uint8_t target_vtl;
	uint8_t rsvd[3];
} __attribute__((packed));
_Static_assert(sizeof(struct in_modify_protection) == 16, "ModifyVtlProtectionMask");

uint16_t vsm_hc_modify_vtl_protection_mask(struct vsm_hc_args *a)
{
	struct in_modify_protection in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = vsm_hc_partition(in.partition_id);
	if (st)
		return st;
	unsigned vtl;
	if (!vsm_hc_zero(in.rsvd, sizeof(in.rsvd)))
		return HV_STATUS_INVALID_PARAMETER;
	st = vsm_hc_input_vtl(a, in.target_vtl, &vtl);
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

uint16_t vsm_hc_install_intercept(struct vsm_hc_args *a)
{
	struct in_install_intercept in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = vsm_hc_partition(in.partition_id);
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
		/*
		 * EOIs are writes (OpenVMM's WHP VSM takes only the write mask).
		 * Without the wiring's EOI exits (a split irqchip) VTL0's EOIs
		 * never reach hvmm; removing the intercept always succeeds.
		 */
		if (acc && acc != HV_INTERCEPT_ACCESS_WRITE)
			return HV_STATUS_INVALID_PARAMETER;
		if (acc && !a->vsm->cfg.eoi_intercepts)
			return HV_STATUS_FEATURE_UNAVAILABLE;
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

static uint16_t translate(struct vsm_hc_args *a, uint64_t *result, uint64_t *gpa_page)
{
	struct in_translate in;
	memcpy(&in, a->in, sizeof(in));
	uint32_t vp;
	uint16_t st = vsm_hc_partition(in.partition_id);
	if (!st)
		st = vsm_hc_vp_index(a, in.vp_index, &vp);
	if (st)
		return st;
	unsigned vtl;
	uint64_t flags = in.control_flags & ~(0xffull << 56);
	if (in.rsvd || (flags & ~HV_TRANSLATE_GVA_FLAGS_VALID) || (in.gva_page >> 52))
		return HV_STATUS_INVALID_PARAMETER;
	st = vsm_hc_input_vtl(a, (uint8_t)(in.control_flags >> 56), &vtl);
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

uint16_t vsm_hc_translate(struct vsm_hc_args *a)
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
uint16_t vsm_hc_translate_ex(struct vsm_hc_args *a)
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

uint16_t vsm_hc_get_vp_index_from_apic_id(struct vsm_hc_args *a)
{
	struct in_apic_id in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = vsm_hc_partition(in.partition_id);
	if (st)
		return st;
	unsigned vtl;
	if (!vsm_hc_zero(in.rsvd, sizeof(in.rsvd)))
		return HV_STATUS_INVALID_PARAMETER;
	st = vsm_hc_input_vtl(a, in.target_vtl, &vtl);
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

uint16_t vsm_hc_assert_virtual_interrupt(struct vsm_hc_args *a)
{
	struct in_assert_interrupt in;
	memcpy(&in, a->in, sizeof(in));
	uint16_t st = vsm_hc_partition(in.partition_id);
	if (st)
		return st;
	unsigned type = (unsigned)(in.control & 0xffffffffu);
	bool level = in.control & (1ull << 32), logical = in.control & (1ull << 33);
	if ((in.control >> 34) || !vsm_hc_zero(in.rsvd, sizeof(in.rsvd)) || in.vector > 0xff)
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
		if (level)   /* the APIC takes these edge-triggered only */
			return HV_STATUS_INVALID_PARAMETER;
		break;
	default:
		return HV_STATUS_INVALID_PARAMETER;
	}
	const struct vsm_ops *o = &a->vsm->cfg.ops;
	return (uint16_t)o->interrupt(o->opaque, in.target_vtl, type, in.destination, logical,
				      level, (uint8_t)in.vector);
}

/* Checks (vp, vtl, sint) of a direct SynIC call. */
static uint16_t synic_target(struct vsm_hc_args *a, uint64_t part, uint32_t in_vp, uint8_t vtl,
			     uint8_t sint, uint32_t *vp)
{
	uint16_t st = vsm_hc_partition(part);
	if (!st)
		st = vsm_hc_vp_index(a, in_vp, vp);
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

uint16_t vsm_hc_signal_event_direct(struct vsm_hc_args *a)
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
	if (in.vtl > 0)
		st = (uint16_t)vsm_synic_signal_locked(a->vsm, vp, in.vtl, in.sint, in.flag, &newly);
	else
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

uint16_t vsm_hc_post_message_direct(struct vsm_hc_args *a)
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
	if (in.vtl > 0) /* a higher VTL's SynIC is vsm's own */
		return (uint16_t)vsm_synic_post_locked(a->vsm, vp, in.vtl, in.sint, in.message);
	return (uint16_t)o->post_message(o->opaque, vp, in.vtl, in.sint, in.message);
}

/*
 * ---- TLB flushes: arguments checked, success returned. No remote flush
 * happens here; the wiring must make the target VPs flush (hvmm's CPUID
 * does not recommend these calls to VTL0). ----
 */

#define FLUSH_FLAGS_VALID 0x31full

static uint16_t flush_common(struct vsm_hc_args *a, bool ex)
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

uint16_t vsm_hc_flush(struct vsm_hc_args *a)
{
	return flush_common(a, false);
}

uint16_t vsm_hc_flush_ex(struct vsm_hc_args *a)
{
	return flush_common(a, true);
}
