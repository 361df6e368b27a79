/*
 * Unit tests: the synthetic timers' shared core (src/hv/stimer_core.c, TLFS
 * 12.5): which timer and register each STIMERn_CONFIG/COUNT MSR index
 * names (and that no neighbour does), the write rules (auto-enable, zero count,
 * writable mask, SINT 0 and vector < 16 disabling), one-shot and periodic
 * arming (the clock read only for periodic), the bookkeeping after an
 * expiry, and the timer thread waking on a kick and at a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <time.h>

#include "hv/hv_impl.h"
#include "hv/stimer_core.h"

#define CFG_SINT(s)   ((uint64_t)(s) << 16)
#define CFG_VECTOR(v) ((uint64_t)(v) << 4)

static unsigned clock_reads;

static uint64_t fixed_now(void *opaque)
{
	clock_reads++;
	return *(uint64_t *)opaque;
}

static void test_msr_decode(void **state)
{
	(void)state;
	/* STIMER0_CONFIG 0x400000B0, STIMER0_COUNT 0x400000B1, ... STIMER3_COUNT 0x400000B7. */
	for (unsigned n = 0; n < HV_STIMER_COUNT; n++) {
		bool count_reg = true;
		assert_int_equal(stimer_msr_decode(0x400000B0 + 2 * n, &count_reg), n);
		assert_false(count_reg);
		assert_int_equal(stimer_msr_decode(0x400000B1 + 2 * n, &count_reg), n);
		assert_true(count_reg);
		assert_int_equal(stimer_msr_decode(0x400000B0 + 2 * n, NULL), n);
	}
	assert_int_equal(stimer_msr_decode(HV_X64_MSR_STIMER0_COUNT, NULL), 0);
	assert_int_equal(stimer_msr_decode(HV_X64_MSR_STIMER3_COUNT, NULL), 3);
	/* Neighbours and far-off indexes name no timer and leave *count_reg alone. */
	static const uint32_t outside[] = { 0x400000AF, 0x400000B8, 0x400000BF, 0x400000A0,
					    0x40000090, 0x400001B0, 0x000000B0, 0xC00000B0,
					    0, 0xFFFFFFFF };
	for (unsigned k = 0; k < sizeof(outside) / sizeof(outside[0]); k++) {
		bool count_reg = true;
		if (stimer_msr_decode(outside[k], &count_reg) != -1)
			fail_msg("0x%x decoded as a timer register", outside[k]);
		assert_true(count_reg);
		assert_int_equal(stimer_msr_decode(outside[k], NULL), -1);
	}
}

static void test_write_rules(void **state)
{
	(void)state;
	struct stimer t = { 0 };
	/* Message mode with SINT 0 is disabled; with SINT 2 it is kept. */
	stimer_write(&t, false, HV_STIMER_ENABLE | CFG_SINT(0));
	assert_int_equal(t.config & HV_STIMER_ENABLE, 0);
	stimer_write(&t, false, HV_STIMER_ENABLE | CFG_SINT(2));
	assert_int_equal(t.config, HV_STIMER_ENABLE | CFG_SINT(2));
	/* Direct mode needs a vector of 16 or more; SINT does not matter. */
	stimer_write(&t, false, HV_STIMER_ENABLE | HV_STIMER_DIRECT | CFG_VECTOR(15));
	assert_int_equal(t.config & HV_STIMER_ENABLE, 0);
	stimer_write(&t, false, HV_STIMER_ENABLE | HV_STIMER_DIRECT | CFG_VECTOR(16));
	assert_int_equal(t.config & HV_STIMER_ENABLE, HV_STIMER_ENABLE);
	/* Only the writable bits stay. */
	stimer_write(&t, false, ~0ull);
	assert_int_equal(t.config, HV_STIMER_WRITABLE);
	/* COUNT: non-zero with auto-enable enables, zero disables, no auto-enable keeps. */
	stimer_write(&t, false, HV_STIMER_AUTOENABLE | CFG_SINT(1));
	stimer_write(&t, true, 1234);
	assert_int_equal(t.count, 1234);
	assert_int_equal(t.config, HV_STIMER_AUTOENABLE | CFG_SINT(1) | HV_STIMER_ENABLE);
	stimer_write(&t, true, 0);
	assert_int_equal(t.config, HV_STIMER_AUTOENABLE | CFG_SINT(1));
	stimer_write(&t, false, CFG_SINT(1));
	stimer_write(&t, true, 99);
	assert_int_equal(t.config & HV_STIMER_ENABLE, 0);
}

static void test_arm_and_expire(void **state)
{
	(void)state;
	uint64_t now = 1000000;
	struct stimer t = { .config = HV_STIMER_ENABLE | CFG_SINT(1), .count = 5000 };
	/* One-shot: deadline is the count; the clock is not read. */
	clock_reads = 0;
	assert_true(stimer_arm(&t, fixed_now, &now));
	assert_int_equal(t.deadline, 5000);
	assert_int_equal(clock_reads, 0);
	stimer_expired(&t, 6000);
	assert_false(t.armed);
	assert_int_equal(t.config & HV_STIMER_ENABLE, 0);
	/* Disabled or zero count: not armed. */
	assert_false(stimer_arm(&t, fixed_now, &now));
	t.config |= HV_STIMER_ENABLE;
	t.count = 0;
	assert_false(stimer_arm(&t, fixed_now, &now));
	assert_false(t.armed);
	/* Periodic: now + period, at least STIMER_MIN_PERIOD. */
	t.config |= HV_STIMER_PERIODIC;
	t.count = 1;
	assert_true(stimer_arm(&t, fixed_now, &now));
	assert_int_equal(clock_reads, 1);
	assert_int_equal(t.deadline, now + STIMER_MIN_PERIOD);
	t.count = 10000;
	assert_true(stimer_arm(&t, fixed_now, &now));
	assert_int_equal(t.deadline, now + 10000);
	/* On time: the next period; late by several periods: now + one period. */
	stimer_expired(&t, now + 10000);
	assert_true(t.armed);
	assert_int_equal(t.deadline, now + 20000);
	stimer_expired(&t, now + 95000);
	assert_int_equal(t.deadline, now + 105000);
	assert_int_equal(t.config & HV_STIMER_ENABLE, HV_STIMER_ENABLE);
}

/* The thread test's owner: counts polls; the first poll asks for a deadline. */
struct owner {
	atomic_uint polls;
	atomic_bool want_deadline;
};

static uint64_t mono_now(void *opaque)
{
	(void)opaque;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) / 100;
}

static uint64_t owner_poll(void *opaque, uint64_t now)
{
	struct owner *o = opaque;
	atomic_fetch_add(&o->polls, 1);
	if (atomic_exchange(&o->want_deadline, false))
		return now + 200000; /* 20 ms */
	return UINT64_MAX;
}

/* Waits up to 5 s for o->polls to reach n. */
static bool wait_polls(struct owner *o, unsigned n)
{
	for (int i = 0; i < 5000; i++) {
		if (atomic_load(&o->polls) >= n)
			return true;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	return false;
}

static void test_thread_kick_deadline_stop(void **state)
{
	(void)state;
	struct owner o;
	atomic_init(&o.polls, 0);
	atomic_init(&o.want_deadline, false);
	struct stimer_thread st;
	stimer_thread_init(&st, "test-stimer", mono_now, owner_poll, &o);
	stimer_thread_kick(&st); /* before start: only counted */
	stimer_thread_stop(&st); /* not started: nothing to join */
	assert_int_equal(stimer_thread_start(&st), 0);
	assert_true(wait_polls(&o, 1));
	/* Nothing armed: it sleeps until kicked. */
	struct timespec pause = { 0, 50000000 };
	nanosleep(&pause, NULL);
	assert_int_equal(atomic_load(&o.polls), 1);
	atomic_store(&o.want_deadline, true);
	stimer_thread_kick(&st);
	assert_true(wait_polls(&o, 2));
	/* That poll returned a deadline 20 ms away: it polls again by itself. */
	assert_true(wait_polls(&o, 3));
	nanosleep(&pause, NULL);
	assert_int_equal(atomic_load(&o.polls), 3);
	stimer_thread_stop(&st);
	assert_false(st.started);
	stimer_thread_kick(&st);
	nanosleep(&pause, NULL);
	assert_int_equal(atomic_load(&o.polls), 3);
	stimer_thread_fini(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msr_decode),
		cmocka_unit_test(test_write_rules),
		cmocka_unit_test(test_arm_and_expire),
		cmocka_unit_test(test_thread_kick_deadline_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
