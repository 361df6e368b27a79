/*
 * The hypercall dispatcher (TLFS 3, "Hypercall Interface"; the checks of
 * shared/docs/igvm-and-vsm.md §C.1). The guest's hypercall page exits to
 * hvmm with an `out` to HV_HYPERCALL_PORT; vm.c hands RCX/RDX/R8 here and
 * writes the result to RAX. The dispatcher validates the control word and
 * the input/output blocks, copies the input out of guest memory, then calls
 * the handler from hv_hypercall_table, so later hypercalls (VTL2) are table
 * entries.
 */
#include "hv/hv_impl.h"

#include <inttypes.h>
#include <string.h>

#include "core/log.h"

/* Control word fields (HV_HYPERCALL_INPUT). */
#define HV_HC_CODE(c)        ((uint16_t)((c) & 0xffff))
#define HV_HC_FAST           (1ull << 16)
#define HV_HC_VARHDR(c)      ((unsigned)(((c) >> 17) & 0x3ff))
#define HV_HC_REP_COUNT(c)   ((uint16_t)(((c) >> 32) & 0xfff))
#define HV_HC_REP_START(c)   ((uint16_t)(((c) >> 48) & 0xfff))
/* Bits 27-31 (31: nested, unsupported), 44-47, 60-63. */
#define HV_HC_RESERVED       (0x1full << 27 | 0xfull << 44 | 0xfull << 60)

#define HV_HC_MAX_INPUT HV_PAGE_SIZE

/* HvPostMessage input (TLFS hvcallpostmessage). */
struct hv_input_post_message {
	uint32_t connection_id;
	uint32_t reserved;
	uint32_t message_type;
	uint32_t payload_size;
	uint8_t payload[HV_MESSAGE_PAYLOAD_MAX];
} __attribute__((packed));
_Static_assert(sizeof(struct hv_input_post_message) == 256, "HV_INPUT_POST_MESSAGE");

/* HvSignalEvent input (TLFS hvcallsignalevent). */
struct hv_input_signal_event {
	uint32_t connection_id;
	uint16_t flag_number;
	uint16_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_input_signal_event) == 8, "HV_INPUT_SIGNAL_EVENT");

#define HV_EVENT_FLAGS_COUNT 2048

/*
 * HvRetargetDeviceInterrupt input (TLFS; hvdef RetargetDeviceInterrupt,
 * shared/docs/igvm-and-vsm.md C.2): HV_DEVICE_INTERRUPT_TARGET after the
 * entry; with HV_DEVICE_INTERRUPT_TARGET_PROCESSOR_SET the variable header
 * holds an HV_GENERIC_SET (valid banks mask, then one mask per bank).
 */
struct hv_input_retarget_device_interrupt {
	uint64_t partition_id;
	uint64_t device_id;
	uint32_t source;              /* HV_INTERRUPT_SOURCE_MSI 1, IOAPIC 2 */
	uint32_t reserved0;
	uint32_t data[2];             /* MSI address (low 32 bits), MSI data */
	uint64_t reserved1;
	uint32_t vector;
	uint32_t flags;               /* multicast 1, processor set 2, proxy redirect 4 */
	uint64_t mask_or_format;      /* a VP mask, or the generic set's format */
} __attribute__((packed));
_Static_assert(sizeof(struct hv_input_retarget_device_interrupt) == 56,
	       "HV_INPUT_RETARGET_DEVICE_INTERRUPT");
#define HV_INTERRUPT_SOURCE_MSI                  1u
#define HV_DEVICE_INTERRUPT_TARGET_PROCESSOR_SET 2u
#define HV_DEVICE_INTERRUPT_TARGET_VALID         7u
#define HV_GENERIC_SET_SPARSE_4K                 0u

static uint16_t hc_post_message(struct hv_hypercall_args *a)
{
	struct hv_input_post_message in;
	memcpy(&in, a->in, sizeof(in));
	if (in.payload_size > HV_MESSAGE_PAYLOAD_MAX)
		return HV_STATUS_INVALID_PARAMETER;
	if (in.message_type == HV_MESSAGE_TYPE_NONE || (in.message_type & 0x80000000u))
		return HV_STATUS_INVALID_PARAMETER;
	hv_post_message_fn post = a->hv->post;
	if (!post)
		return HV_STATUS_INVALID_CONNECTION_ID;
	return post(a->hv->conn_opaque, a->vp, in.connection_id, in.message_type,
		    in.payload, in.payload_size);
}

static uint16_t hc_signal_event(struct hv_hypercall_args *a)
{
	struct hv_input_signal_event in;
	memcpy(&in, a->in, sizeof(in));
	if (in.flag_number >= HV_EVENT_FLAGS_COUNT)
		return HV_STATUS_INVALID_PARAMETER;
	hv_signal_event_fn signal = a->hv->signal;
	if (!signal)
		return HV_STATUS_INVALID_CONNECTION_ID;
	return signal(a->hv->conn_opaque, a->vp, in.connection_id, in.flag_number);
}

/*
 * hvmm has no device whose interrupts a guest may retarget (no vPCI), so
 * every well-formed call names an unknown device: HV_STATUS_INVALID_DEVICE_ID,
 * as Hyper-V answers (OpenVMM's HvError::InvalidDeviceId). With --vtl2 the
 * wiring may reflect it to VTL2 instead (RetargetUnknownDeviceId intercept).
 * Malformed input (reserved flags, a processor set that is not a sparse
 * set with one mask per valid bank, a source other than MSI) is
 * INVALID_PARAMETER, as OpenVMM's dispatcher checks before the device.
 */
static uint16_t hc_retarget_device_interrupt(struct hv_hypercall_args *a)
{
	struct hv_input_retarget_device_interrupt in;
	memcpy(&in, a->in, sizeof(in));
	unsigned varhdr = HV_HC_VARHDR(a->control);
	if (in.flags & ~HV_DEVICE_INTERRUPT_TARGET_VALID)
		return HV_STATUS_INVALID_PARAMETER;
	if (in.flags & HV_DEVICE_INTERRUPT_TARGET_PROCESSOR_SET) {
		uint64_t banks;
		if (in.mask_or_format != HV_GENERIC_SET_SPARSE_4K || varhdr == 0)
			return HV_STATUS_INVALID_PARAMETER;
		memcpy(&banks, a->in + sizeof(in), 8);
		if ((unsigned)__builtin_popcountll(banks) != varhdr - 1)
			return HV_STATUS_INVALID_PARAMETER;
	}
	if (in.source != HV_INTERRUPT_SOURCE_MSI)
		return HV_STATUS_INVALID_PARAMETER;
	log_guest("hv: VP %u HvRetargetDeviceInterrupt of device 0x%" PRIx64
		  " (vector 0x%x): no such device (hvmm has no vPCI)", a->vp, in.device_id,
		  in.vector);
	return HV_STATUS_INVALID_DEVICE_ID;
}

const struct hv_hypercall_desc hv_hypercall_table[] = {
	{ .code = HVCALL_POST_MESSAGE, .name = "HvPostMessage", .allow_slow = true,
	  .in_size = sizeof(struct hv_input_post_message), .handler = hc_post_message },
	{ .code = HVCALL_SIGNAL_EVENT, .name = "HvSignalEvent", .allow_fast = true,
	  .allow_slow = true, .in_size = sizeof(struct hv_input_signal_event),
	  .handler = hc_signal_event },
	{ .code = HVCALL_RETARGET_DEVICE_INTERRUPT, .name = "HvRetargetDeviceInterrupt",
	  .allow_slow = true, .variable = true,
	  .in_size = sizeof(struct hv_input_retarget_device_interrupt),
	  .handler = hc_retarget_device_interrupt },
};
const size_t hv_hypercall_table_len =
	sizeof(hv_hypercall_table) / sizeof(hv_hypercall_table[0]);

static const struct hv_hypercall_desc *find_desc(uint16_t code)
{
	for (size_t i = 0; i < hv_hypercall_table_len; i++)
		if (hv_hypercall_table[i].code == code)
			return &hv_hypercall_table[i];
	return NULL;
}

/* Memory block rules: 8-byte aligned and within one page. */
static uint16_t check_block(uint64_t gpa, uint64_t size)
{
	if (gpa & 7)
		return HV_STATUS_INVALID_ALIGNMENT;
	if (size > HV_PAGE_SIZE || (gpa & (HV_PAGE_SIZE - 1)) + size > HV_PAGE_SIZE)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	return HV_STATUS_SUCCESS;
}

static uint16_t dispatch(struct hv *hv, uint32_t vp, const struct hv_hypercall *hc,
			 uint16_t *reps_done)
{
	uint64_t c = hc->control;
	const struct hv_hypercall_desc *d = find_desc(HV_HC_CODE(c));
	if (!d)
		return HV_STATUS_INVALID_HYPERCALL_CODE;
	if (c & HV_HC_RESERVED)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	bool fast = c & HV_HC_FAST;
	uint16_t rep_count = HV_HC_REP_COUNT(c), rep_start = HV_HC_REP_START(c);
	unsigned varhdr = HV_HC_VARHDR(c);
	if (d->rep ? (rep_count == 0 || rep_start >= rep_count) : (rep_count || rep_start))
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	if (varhdr && !d->variable)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	if (fast ? !d->allow_fast : !d->allow_slow)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;

	uint8_t buf[HV_HC_MAX_INPUT];
	struct hv_hypercall_args a = {
		.hv = hv, .vp = vp, .control = c, .fast = fast,
		.rep_count = rep_count, .rep_start = rep_start, .in = buf,
	};
	uint64_t in_size = (uint64_t)d->in_size + (uint64_t)varhdr * 8;
	if (fast) {
		/* Register input: RDX then R8 (no XMM fast input). */
		if (in_size > 16)
			return HV_STATUS_INVALID_HYPERCALL_INPUT;
		memset(buf, 0, 16);
		memcpy(buf, &hc->input, 8);
		memcpy(buf + 8, &hc->output, 8);
	} else {
		uint16_t st = check_block(hc->input, in_size);
		if (st)
			return st;
		if (in_size && gmem_read(hv->p.mem, hc->input, buf, in_size) < 0)
			return HV_STATUS_INVALID_PARAMETER;
		if (d->out_size) {
			st = check_block(hc->output, d->out_size);
			if (st)
				return st;
			if (!gmem_map(hv->p.mem, hc->output, d->out_size))
				return HV_STATUS_INVALID_PARAMETER;
			a.out_gpa = hc->output;
		}
	}
	uint16_t st = d->handler(&a);
	*reps_done = d->rep ? a.reps_done : 0;
	return st;
}

enum hv_hypercall_action hv_hypercall(struct hv *hv, uint32_t vp, struct hv_hypercall *hc)
{
	/* TLFS: hypercalls from CPL > 0 or outside protected mode raise #UD;
	 * hvmm implements the 64-bit convention only. */
	if (hc->cpl != 0 || !hc->long_mode || !hv_vp_valid(hv, vp))
		return HV_HYPERCALL_INJECT_UD;
	uint16_t reps_done = 0;
	uint16_t st = dispatch(hv, vp, hc, &reps_done);
	if (st && st != HV_STATUS_INVALID_CONNECTION_ID && st != HV_STATUS_INVALID_DEVICE_ID)
		log_guest_debug("hv: VP %u hypercall control 0x%" PRIx64 ": status 0x%x",
				vp, hc->control, st);
	hc->result = st | ((uint64_t)reps_done << 32);
	return HV_HYPERCALL_DONE;
}
