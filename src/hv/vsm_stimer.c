/*
 * Synthetic timers of the higher VTLs (TLFS 12.5 "Synthetic Timers" and
 * "VSM: private state": STIMER0-3 are private to each VTL). VTL0's timers
 * stay hv's (hv_stimer.c); VTL2's are kept here per (VP, VTL), on the same
 * reference time (ops->ref_time), and expire into that VTL's SynIC, which
 * vsm keeps: message mode posts HvMessageTimerExpired into its SIMP slot,
 * direct mode sends the timer's vector (ops->interrupt, so a VP running
 * VTL0 is preempted). One-shot (COUNT absolute) and periodic (COUNT the
 * period) as hv's; an expiry whose message slot is still busy is dropped,
 * as hv does. The wiring polls (vsm_stimer_poll) from its own thread and is
 * told of every (re)arm through ops->stimer_changed. The register rules and
 * deadlines are stimer_core.c's, shared with hv's timers.
 */
#include "hv/vsm_impl.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "hv/hv_impl.h"

/* A timer changed: re-arm it, and tell the poller when it is armed. */
static void arm(struct vsm *vsm, struct stimer *t)
{
	const struct vsm_ops *o = &vsm->cfg.ops;
	if (stimer_arm(t, o->ref_time, o->opaque) && o->stimer_changed)
		o->stimer_changed(o->opaque);
}

bool vsm_stimer_msr(uint32_t index)
{
	return stimer_msr_decode(index, NULL) >= 0;
}

int vsm_stimer_read_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			   uint64_t *val)
{
	bool count_reg;
	int n = stimer_msr_decode(index, &count_reg);
	if (n < 0 || vtl == 0 || !vsm->cfg.ops.ref_time)
		return -ENOENT;
	const struct stimer *t = &vsm->vps[vp].vtl[vtl].stimer[n];
	*val = count_reg ? t->count : t->config;
	return 0;
}

int vsm_stimer_write_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			    uint64_t val)
{
	bool count_reg;
	int n = stimer_msr_decode(index, &count_reg);
	if (n < 0 || vtl == 0 || !vsm->cfg.ops.ref_time)
		return -ENOENT;
	struct stimer *t = &vsm->vps[vp].vtl[vtl].stimer[n];
	stimer_write(t, count_reg, val);
	arm(vsm, t);
	return 0;
}

/* HV_TIMER_MESSAGE_PAYLOAD after the 16-byte message header. */
struct vsm_timer_message {
	uint32_t type;
	uint8_t payload_size, flags;
	uint16_t rsvd;
	uint64_t origin;
	uint32_t timer_index, rsvd2;
	uint64_t expiration_time, delivery_time;
	uint8_t pad[HV_MESSAGE_SIZE - 40];
} __attribute__((packed));
_Static_assert(sizeof(struct vsm_timer_message) == HV_MESSAGE_SIZE, "HV_MESSAGE (timer)");

/* Timer n of (vp, vtl) expires at reference time now. Lock held. */
static void fire(struct vsm *vsm, uint32_t vp, unsigned vtl, unsigned n, uint64_t now)
{
	const struct vsm_ops *o = &vsm->cfg.ops;
	struct stimer *t = &vsm->vps[vp].vtl[vtl].stimer[n];
	if (t->config & HV_STIMER_DIRECT) {
		o->interrupt(o->opaque, vtl, HV_INTERRUPT_TYPE_FIXED, vp, false, false,
			     (uint8_t)HV_STIMER_VECTOR(t->config));
	} else {
		struct vsm_timer_message m;
		memset(&m, 0, sizeof(m));
		m.type = HV_MESSAGE_TIMER_EXPIRED;
		m.payload_size = 24;
		m.timer_index = n;
		m.expiration_time = t->deadline;
		m.delivery_time = now;
		int st = vsm_synic_post_locked(vsm, vp, vtl, HV_STIMER_SINT(t->config),
					       (const uint8_t *)&m);
		if (st)
			log_guest_debug("vsm: VP %u VTL%u STIMER%u expiry dropped (status 0x%x)", vp,
					vtl, n, st);
	}
	stimer_expired(t, now);
}

uint64_t vsm_stimer_poll(struct vsm *vsm, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	pthread_mutex_lock(&vsm->lock);
	for (uint32_t vp = 0; vp < vsm->cfg.nvps; vp++) {
		for (unsigned vtl = 1; vtl < VSM_NUM_VTLS; vtl++) {
			for (unsigned n = 0; n < HV_STIMER_COUNT; n++) {
				struct stimer *t = &vsm->vps[vp].vtl[vtl].stimer[n];
				if (t->armed && t->deadline <= now)
					fire(vsm, vp, vtl, n, now);
				if (t->armed && t->deadline < next)
					next = t->deadline;
			}
		}
	}
	pthread_mutex_unlock(&vsm->lock);
	return next;
}
