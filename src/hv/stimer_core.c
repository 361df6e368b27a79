/*
 * Synthetic timers' register rules and timer thread (TLFS 12.5, "Synthetic
 * Timers"), shared by VTL0's timers (hv_stimer.c) and the higher VTLs'
 * (vsm_stimer.c): auto-enable on COUNT writes, the SINT 0 / vector < 16
 * disable rules of CONFIG, one-shot and periodic deadlines, and the host
 * thread that sleeps on CLOCK_MONOTONIC until the next expiry, and which
 * timer register an MSR index names. See
 * stimer_core.h for the contract.
 */
#include "hv/stimer_core.h"

#include <errno.h>
#include <time.h>

#include "hv/hv_impl.h"

_Static_assert((HV_X64_MSR_STIMER3_COUNT - HV_X64_MSR_STIMER0_CONFIG + 1) / 2 == HV_STIMER_COUNT,
	       "one CONFIG/COUNT pair per timer");

int stimer_msr_decode(uint32_t index, bool *count_reg)
{
	if (index < HV_X64_MSR_STIMER0_CONFIG || index > HV_X64_MSR_STIMER3_COUNT)
		return -1;
	if (count_reg)
		*count_reg = (index - HV_X64_MSR_STIMER0_CONFIG) & 1;
	return (int)((index - HV_X64_MSR_STIMER0_CONFIG) / 2);
}

static uint64_t period(const struct stimer *t)
{
	return t->count < STIMER_MIN_PERIOD ? STIMER_MIN_PERIOD : t->count;
}

void stimer_write(struct stimer *t, bool count_reg, uint64_t val)
{
	if (count_reg) {
		t->count = val;
		/* A non-zero count with auto-enable starts it; zero stops it. */
		if (val && (t->config & HV_STIMER_AUTOENABLE))
			t->config |= HV_STIMER_ENABLE;
		if (!val)
			t->config &= ~HV_STIMER_ENABLE;
		return;
	}
	val &= HV_STIMER_WRITABLE;
	/* Message mode needs a SINT other than 0; direct mode a vector >= 16. */
	if (!(val & HV_STIMER_DIRECT) && HV_STIMER_SINT(val) == 0)
		val &= ~HV_STIMER_ENABLE;
	if ((val & HV_STIMER_DIRECT) && HV_STIMER_VECTOR(val) < 16)
		val &= ~HV_STIMER_ENABLE;
	t->config = val;
}

bool stimer_arm(struct stimer *t, uint64_t (*now)(void *opaque), void *opaque)
{
	t->armed = false;
	if (!(t->config & HV_STIMER_ENABLE) || t->count == 0)
		return false;
	t->deadline = (t->config & HV_STIMER_PERIODIC) ? now(opaque) + period(t) : t->count;
	t->armed = true;
	return true;
}

void stimer_expired(struct stimer *t, uint64_t now)
{
	if (t->config & HV_STIMER_PERIODIC) {
		t->deadline += period(t);
		if (t->deadline <= now) /* missed periods are not replayed */
			t->deadline = now + period(t);
	} else {
		t->config &= ~HV_STIMER_ENABLE;
		t->armed = false;
	}
}

void stimer_thread_init(struct stimer_thread *st, const char *name,
			uint64_t (*now)(void *opaque),
			uint64_t (*poll)(void *opaque, uint64_t now), void *opaque)
{
	st->now = now;
	st->poll = poll;
	st->opaque = opaque;
	st->name = name;
	st->started = st->stop = false;
	st->kicks = 0;
	pthread_mutex_init(&st->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void *stimer_thread_main(void *arg)
{
	struct stimer_thread *st = arg;
	pthread_setname_np(pthread_self(), st->name);
	pthread_mutex_lock(&st->lock);
	while (!st->stop) {
		unsigned kicks = st->kicks;
		pthread_mutex_unlock(&st->lock);
		uint64_t now = st->now(st->opaque);
		uint64_t next = st->poll(st->opaque, now);
		pthread_mutex_lock(&st->lock);
		/* A kick during the poll may have armed an earlier timer: poll again. */
		if (st->stop || kicks != st->kicks)
			continue;
		if (next == UINT64_MAX) {
			pthread_cond_wait(&st->cond, &st->lock);
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
		pthread_cond_timedwait(&st->cond, &st->lock, &ts);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

int stimer_thread_start(struct stimer_thread *st)
{
	int ret = pthread_create(&st->thread, NULL, stimer_thread_main, st);
	if (ret)
		return -ret;
	st->started = true;
	return 0;
}

void stimer_thread_kick(struct stimer_thread *st)
{
	pthread_mutex_lock(&st->lock);
	st->kicks++;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

void stimer_thread_stop(struct stimer_thread *st)
{
	if (!st->started)
		return;
	pthread_mutex_lock(&st->lock);
	st->stop = true;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
	pthread_join(st->thread, NULL);
	st->started = false;
}

void stimer_thread_fini(struct stimer_thread *st)
{
	stimer_thread_stop(st);
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
}
