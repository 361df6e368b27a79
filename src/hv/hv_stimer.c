/*
 * Synthetic timers STIMER0-3 per VP (TLFS 12.5, "Synthetic Timers"):
 * one-shot (COUNT is an absolute reference time) and periodic (COUNT is the
 * period), auto-enable on COUNT writes, message mode (HvMessageTimerExpired
 * on the configured SINT) and direct mode (an interrupt with the timer's own
 * vector). They run on reference time; a host thread sleeps until the next
 * expiry (CLOCK_MONOTONIC, which advances with the guest TSC) and fires
 * them, so a vCPU never waits for a timer.
 */
#include "hv/hv_impl.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

/*
 * Shortest period honoured (100 ns units): a guest asking for less would
 * keep the timer thread busy; Linux uses one-shot timers.
 */
#define HV_STIMER_MIN_PERIOD 500

static uint64_t period(const struct hv_stimer *t)
{
	return t->count < HV_STIMER_MIN_PERIOD ? HV_STIMER_MIN_PERIOD : t->count;
}

static void stimer_arm(struct hv *hv, struct hv_stimer *t)
{
	t->armed = false;
	if (!(t->config & HV_STIMER_ENABLE) || t->count == 0)
		return;
	if (t->config & HV_STIMER_PERIODIC)
		t->deadline = hv_time_ref_count(hv) + period(t);
	else
		t->deadline = t->count;
	t->armed = true;
}

bool hv_stimer_msr_read(struct hv *hv, uint32_t vp, uint32_t index, uint64_t *val)
{
	if (index < HV_X64_MSR_STIMER0_CONFIG || index > HV_X64_MSR_STIMER3_COUNT)
		return false;
	unsigned n = (index - HV_X64_MSR_STIMER0_CONFIG) / 2;
	struct hv_stimer *t = &hv->vps[vp].stimer[n];
	*val = (index & 1) ? t->count : t->config;
	return true;
}

int hv_stimer_msr_write(struct hv *hv, uint32_t vp, uint32_t index, uint64_t val,
			bool *kick)
{
	if (index < HV_X64_MSR_STIMER0_CONFIG || index > HV_X64_MSR_STIMER3_COUNT)
		return -EINVAL;
	unsigned n = (index - HV_X64_MSR_STIMER0_CONFIG) / 2;
	struct hv_stimer *t = &hv->vps[vp].stimer[n];
	if (index & 1) {
		t->count = val;
		/* A non-zero count with auto-enable starts it; zero stops it. */
		if (val && (t->config & HV_STIMER_AUTOENABLE))
			t->config |= HV_STIMER_ENABLE;
		if (!val)
			t->config &= ~HV_STIMER_ENABLE;
	} else {
		val &= HV_STIMER_WRITABLE;
		/* Message mode needs a SINT other than 0 (TLFS: else disabled). */
		if (!(val & HV_STIMER_DIRECT) && HV_STIMER_SINT(val) == 0)
			val &= ~HV_STIMER_ENABLE;
		if ((val & HV_STIMER_DIRECT) && HV_STIMER_VECTOR(val) < 16)
			val &= ~HV_STIMER_ENABLE;
		t->config = val;
	}
	stimer_arm(hv, t);
	*kick = true;
	return 0;
}

/* Fires timer n of vp at reference time now. vp->lock held. */
static void stimer_fire(struct hv *hv, uint32_t vp, unsigned n, uint64_t now)
{
	struct hv_stimer *t = &hv->vps[vp].stimer[n];
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
	if (t->config & HV_STIMER_PERIODIC) {
		t->deadline += period(t);
		if (t->deadline <= now) /* missed periods are not replayed */
			t->deadline = now + period(t);
	} else {
		t->config &= ~HV_STIMER_ENABLE;
		t->armed = false;
	}
}

uint64_t hv_stimer_poll(struct hv *hv, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	for (uint32_t vp = 0; vp < hv->p.nvps; vp++) {
		struct hv_vp *v = &hv->vps[vp];
		pthread_mutex_lock(&v->lock);
		for (unsigned n = 0; n < HV_STIMER_COUNT; n++) {
			struct hv_stimer *t = &v->stimer[n];
			if (t->armed && t->deadline <= now)
				stimer_fire(hv, vp, n, now);
			if (t->armed && t->deadline < next)
				next = t->deadline;
		}
		pthread_mutex_unlock(&v->lock);
	}
	return next;
}

void hv_stimer_kick(struct hv *hv)
{
	pthread_mutex_lock(&hv->tlock);
	hv->tkick++;
	pthread_cond_signal(&hv->tcond);
	pthread_mutex_unlock(&hv->tlock);
}

static void *stimer_thread(void *arg)
{
	struct hv *hv = arg;
	pthread_setname_np(pthread_self(), "hv-stimer");
	pthread_mutex_lock(&hv->tlock);
	while (!hv->tstop) {
		unsigned kick = hv->tkick;
		pthread_mutex_unlock(&hv->tlock);
		uint64_t now = hv_time_ref_count(hv);
		uint64_t next = hv_stimer_poll(hv, now);
		pthread_mutex_lock(&hv->tlock);
		if (hv->tstop || kick != hv->tkick)
			continue;
		if (next == UINT64_MAX) {
			pthread_cond_wait(&hv->tcond, &hv->tlock);
			continue;
		}
		uint64_t delta_ns = (next > now ? next - now : 0) * 100;
		if (delta_ns > 10000000000ull) /* re-evaluate at least every 10 s */
			delta_ns = 10000000000ull;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + delta_ns;
		ts.tv_sec += (time_t)(ns / 1000000000ull);
		ts.tv_nsec = (long)(ns % 1000000000ull);
		pthread_cond_timedwait(&hv->tcond, &hv->tlock, &ts);
	}
	pthread_mutex_unlock(&hv->tlock);
	return NULL;
}

int hv_stimer_thread_start(struct hv *hv)
{
	int ret = pthread_create(&hv->tthread, NULL, stimer_thread, hv);
	if (ret)
		return -ret;
	hv->tthread_started = true;
	return 0;
}

void hv_stimer_thread_stop(struct hv *hv)
{
	if (!hv->tthread_started)
		return;
	pthread_mutex_lock(&hv->tlock);
	hv->tstop = true;
	pthread_cond_signal(&hv->tcond);
	pthread_mutex_unlock(&hv->tlock);
	pthread_join(hv->tthread, NULL);
	hv->tthread_started = false;
}
