/*
 * Synthetic timers STIMER0-3 per VP (TLFS 12.5, "Synthetic Timers"):
 * one-shot (COUNT is an absolute reference time) and periodic (COUNT is the
 * period), auto-enable on COUNT writes, message mode (HvMessageTimerExpired
 * on the configured SINT) and direct mode (an interrupt with the timer's own
 * vector). They run on reference time; a host thread sleeps until the next
 * expiry (CLOCK_MONOTONIC, which advances with the guest TSC) and fires
 * them, so a vCPU never waits for a timer. The register rules and the
 * thread loop are stimer_core.c's (shared with VTL2's timers); expiry
 * delivery into hv's SynIC is here.
 */
#include "hv/hv_impl.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"

/* The reference time, as stimer_core's callbacks take it. */
static uint64_t ref_now(void *opaque)
{
	return hv_time_ref_count(opaque);
}

bool hv_stimer_msr_read(struct hv *hv, uint32_t vp, uint32_t index, uint64_t *val)
{
	bool count_reg;
	int n = stimer_msr_decode(index, &count_reg);
	if (n < 0)
		return false;
	const struct stimer *t = &hv->vps[vp].stimer[n];
	*val = count_reg ? t->count : t->config;
	return true;
}

int hv_stimer_msr_write(struct hv *hv, uint32_t vp, uint32_t index, uint64_t val,
			bool *kick)
{
	bool count_reg;
	int n = stimer_msr_decode(index, &count_reg);
	if (n < 0)
		return -EINVAL;
	struct stimer *t = &hv->vps[vp].stimer[n];
	stimer_write(t, count_reg, val);
	stimer_arm(t, ref_now, hv);
	*kick = true;
	return 0;
}

/* Fires timer n of vp at reference time now. vp->lock held. */
static void stimer_fire(struct hv *hv, uint32_t vp, unsigned n, uint64_t now)
{
	struct stimer *t = &hv->vps[vp].stimer[n];
	uint64_t expiration = t->deadline;
	if (t->config & HV_STIMER_DIRECT) {
		hv_synic_interrupt(hv, vp, (uint8_t)HV_STIMER_VECTOR(t->config));
	} else {
		struct hv_timer_message_payload pl = {
			.timer_index = n, .expiration_time = expiration, .delivery_time = now,
		};
		int ret = hv_synic_post_locked(hv, vp, HV_STIMER_SINT(t->config),
					       HV_MESSAGE_TIMER_EXPIRED, &pl, sizeof(pl));
		if (ret < 0)
			log_guest_debug("hv: VP %u STIMER%u expiry dropped (%d)", vp, n, ret);
	}
	stimer_expired(t, now);
}

uint64_t hv_stimer_poll(struct hv *hv, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (uint32_t vp = 0; vp < hv->p.nvps; vp++) {
		struct hv_vp *v = &hv->vps[vp];
		pthread_mutex_lock(&v->lock);
		for (unsigned n = 0; n < HV_STIMER_COUNT; n++) {
			struct stimer *t = &v->stimer[n];
			if (t->armed && t->deadline <= now)
				stimer_fire(hv, vp, n, now);
			if (t->armed && t->deadline < next)
				next = t->deadline;
		}
		pthread_mutex_unlock(&v->lock);
	}
	return next;
}

static uint64_t thread_poll(void *opaque, uint64_t now)
{
	return hv_stimer_poll(opaque, now);
}

void hv_stimer_thread_init(struct hv *hv)
{
	stimer_thread_init(&hv->timer, "hv-stimer", ref_now, thread_poll, hv);
}

void hv_stimer_kick(struct hv *hv)
{
	stimer_thread_kick(&hv->timer);
}

int hv_stimer_thread_start(struct hv *hv)
{
	return stimer_thread_start(&hv->timer);
}

void hv_stimer_thread_stop(struct hv *hv)
{
	stimer_thread_stop(&hv->timer);
}
