/*
 * The synthetic interrupt controller's message and event pages (TLFS 11,
 * "Inter-Partition Communication": SIMP message slots with the msg_pending /
 * EOM protocol, SIEF event flags) and its interrupts, which hvmm delivers as
 * fixed, edge MSIs to the VP's local APIC through the accelerator (the
 * guest EOIs them itself: CPUID hint DEPRECATING_AEOI).
 *
 * Messages that find their slot busy (or the SIMP, SCONTROL or the SINT
 * disabled) wait in a bounded per-(VP, SINT) queue, in order.
 */
#include "hv/hv_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

void hv_synic_interrupt(struct hv *hv, uint32_t vp, uint8_t vector)
{
	uint64_t addr = 0xFEE00000ull | ((uint64_t)vp << 12);
	int ret = hv->p.signal_msi(hv->p.opaque, addr, vector);
	if (ret < 0)
		log_guest("hv: interrupt 0x%x to VP %u failed: %d", vector, vp, ret);
}

static bool sint_open(const struct hv_vp *v, uint32_t sint)
{
	return (v->scontrol & 1) && (v->simp & HV_PAGE_ENABLE) &&
	       !(v->sint[sint] & HV_SINT_MASKED);
}

/*
 * Writes m into the slot if it is free. Returns true when written. When the
 * slot is busy, sets msg_pending so the guest writes EOM after freeing it,
 * then looks again: the guest may have freed the slot before seeing the flag
 * (it clears message_type, then reads msg_pending; we set msg_pending, then
 * read message_type: one of the two sees the other).
 */
static bool slot_write(struct hv *hv, struct hv_vp *v, uint32_t vp, uint32_t sint,
		       const struct hv_message *m, bool more)
{
	struct hv_message *slot = gmem_map(hv->p.mem, HV_PAGE_GPA(v->simp) +
					   sint * HV_MESSAGE_SIZE, HV_MESSAGE_SIZE);
	if (!slot) {
		log_guest("hv: VP %u SIMP page is not RAM", vp);
		return false;
	}
	if (__atomic_load_n(&slot->hdr.message_type, __ATOMIC_ACQUIRE) != HV_MESSAGE_TYPE_NONE) {
		__atomic_fetch_or(&slot->hdr.message_flags, HV_MESSAGE_FLAG_PENDING,
				  __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&slot->hdr.message_type, __ATOMIC_SEQ_CST) !=
		    HV_MESSAGE_TYPE_NONE)
			return false;
	}
	memcpy(slot->payload, m->payload, m->hdr.payload_size);
	slot->hdr.payload_size = m->hdr.payload_size;
	slot->hdr.message_flags = more ? HV_MESSAGE_FLAG_PENDING : 0;
	memset(slot->hdr.reserved, 0, sizeof(slot->hdr.reserved));
	slot->hdr.sender = 0;
	/* The type last: the guest owns the slot once it is non-zero. */
	__atomic_store_n(&slot->hdr.message_type, m->hdr.message_type, __ATOMIC_RELEASE);
	hv_synic_interrupt(hv, vp, (uint8_t)(v->sint[sint] & HV_SINT_VECTOR_MASK));
	v->msgs_posted++;
	return true;
}

static void drain_sint(struct hv *hv, uint32_t vp, uint32_t sint)
{
	struct hv_vp *v = &hv->vps[vp];
	struct hv_msgq *q = &v->q[sint];
	/* Bounded: each pass delivers one message or stops. */
	while (q->count && sint_open(v, sint)) {
		const struct hv_message *m = &q->ring[q->head];
		if (!slot_write(hv, v, vp, sint, m, q->count > 1))
			break;
		q->head = (q->head + 1) % HV_SYNIC_QUEUE_MAX;
		q->count--;
	}
}

void hv_synic_drain_locked(struct hv *hv, uint32_t vp)
{
	for (uint32_t s = 0; s < HV_SINT_COUNT; s++)
		if (hv->vps[vp].q[s].count)
			drain_sint(hv, vp, s);
}

int hv_synic_post_locked(struct hv *hv, uint32_t vp, uint32_t sint, uint32_t mtype,
			 const void *payload, uint32_t len)
{
	struct hv_vp *v = &hv->vps[vp];
	struct hv_msgq *q = &v->q[sint];
	if (!q->ring) {
		q->ring = calloc(HV_SYNIC_QUEUE_MAX, sizeof(*q->ring));
		if (!q->ring)
			return -ENOMEM;
	}
	if (q->count >= HV_SYNIC_QUEUE_MAX) {
		v->msgs_dropped++;
		return -ENOSPC;
	}
	struct hv_message *m = &q->ring[(q->head + q->count) % HV_SYNIC_QUEUE_MAX];
	memset(m, 0, sizeof(*m));
	m->hdr.message_type = mtype;
	m->hdr.payload_size = (uint8_t)len;
	if (len)
		memcpy(m->payload, payload, len);
	q->count++;
	v->msgs_queued++;
	drain_sint(hv, vp, sint);
	return 0;
}

int hv_synic_post_message(struct hv *hv, uint32_t vp, uint32_t sint, uint32_t mtype,
			  const void *payload, uint32_t len)
{
	if (!hv || !hv_vp_valid(hv, vp) || sint >= HV_SINT_COUNT ||
	    len > HV_MESSAGE_PAYLOAD_MAX || mtype == HV_MESSAGE_TYPE_NONE ||
	    (len && !payload))
		return -EINVAL;
	struct hv_vp *v = &hv->vps[vp];
	pthread_mutex_lock(&v->lock);
	int ret = hv_synic_post_locked(hv, vp, sint, mtype, payload, len);
	pthread_mutex_unlock(&v->lock);
	return ret;
}

void hv_synic_signal_event(struct hv *hv, uint32_t vp, uint32_t sint, uint32_t flag)
{
	if (!hv || !hv_vp_valid(hv, vp) || sint >= HV_SINT_COUNT ||
	    flag >= HV_PAGE_SIZE / HV_SINT_COUNT * 8)
		return;
	struct hv_vp *v = &hv->vps[vp];
	pthread_mutex_lock(&v->lock);
	if (v->siefp & HV_PAGE_ENABLE) {
		uint8_t *flags = gmem_map(hv->p.mem, HV_PAGE_GPA(v->siefp) + sint * 256, 256);
		if (flags) {
			__atomic_fetch_or(&flags[flag / 8], (uint8_t)(1u << (flag % 8)),
					  __ATOMIC_SEQ_CST);
			if ((v->scontrol & 1) && !(v->sint[sint] & HV_SINT_MASKED))
				hv_synic_interrupt(hv, vp,
					(uint8_t)(v->sint[sint] & HV_SINT_VECTOR_MASK));
		} else {
			log_guest("hv: VP %u SIEF page is not RAM", vp);
		}
	}
	pthread_mutex_unlock(&v->lock);
}
