/*
 * The one implementation of a synthetic timer's register rules and of the
 * thread that fires synthetic timers (TLFS 12.5, "Synthetic Timers"), shared
 * by VTL0's timers (hv_stimer.c) and the higher VTLs' (vsm_stimer.c, whose
 * thread the VTL wiring in src/core/vtl.c runs). What a timer does when it
 * expires (message or interrupt, into which SynIC) stays with its owner.
 */
#ifndef HVMM_HV_STIMER_CORE_H
#define HVMM_HV_STIMER_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Shortest period honoured (100 ns units): a guest asking for less would
 * keep the timer thread busy; Linux uses one-shot timers.
 */
#define STIMER_MIN_PERIOD 500

/* One synthetic timer: its two MSRs and when it next expires. */
struct stimer {
	uint64_t config, count;   /* STIMERn_CONFIG, STIMERn_COUNT as the guest sees them */
	uint64_t deadline;        /* reference time of the next expiry, when armed */
	bool armed;
};

/*
 * Which timer register a synthetic MSR index names: STIMERn_CONFIG is
 * HV_X64_MSR_STIMER0_CONFIG + 2n and STIMERn_COUNT the index after it, n =
 * 0..HV_STIMER_COUNT-1 (TLFS 12.5). Returns n and sets *count_reg (when not
 * NULL) to whether index is the COUNT register; returns -1, *count_reg
 * untouched, for any other index. Pure: index is the guest's, so callers
 * index their timer array only with a non-negative result.
 */
int stimer_msr_decode(uint32_t index, bool *count_reg);

/*
 * Applies a guest write of val to STIMERn_COUNT (count_reg) or
 * STIMERn_CONFIG: a non-zero count with auto-enable sets ENABLE, a zero
 * count clears it; a config keeps only its writable bits and is disabled in
 * message mode with SINT 0 or in direct mode with a vector below 16. Pure
 * (no clock, no lock of its own; the caller holds the lock guarding t).
 * Every write changes what the timer does next: the caller re-arms it with
 * stimer_arm.
 */
void stimer_write(struct stimer *t, bool count_reg, uint64_t val);

/*
 * (Re)arms t after a register write: armed when enabled with a non-zero
 * count, expiring at count (one-shot, absolute) or at the reference time
 * now(opaque) + the period (periodic; the clock is read only then).
 * Returns t->armed.
 */
bool stimer_arm(struct stimer *t, uint64_t (*now)(void *opaque), void *opaque);

/*
 * Bookkeeping after t expired at reference time now and its owner
 * delivered the expiry: a periodic timer moves to its next deadline (missed
 * periods are not replayed), a one-shot one is disabled and disarmed.
 */
void stimer_expired(struct stimer *t, uint64_t now);

/*
 * A thread that sleeps until the earliest expiry of a set of timers or
 * until kicked, then polls them. now(opaque) returns the reference time
 * (100 ns units, advancing with CLOCK_MONOTONIC); poll(opaque, now) fires
 * what is due and returns the next deadline, or UINT64_MAX for none. The
 * sleep is capped at 10 s. lock is a leaf: neither callback runs with it
 * held, and kick may be called with the owner's timer lock held.
 */
struct stimer_thread {
	uint64_t (*now)(void *opaque);
	uint64_t (*poll)(void *opaque, uint64_t now);
	void *opaque;
	const char *name;         /* thread name (static string, <= 15 chars) */
	pthread_mutex_t lock;     /* guards stop and kicks */
	pthread_cond_t cond;      /* CLOCK_MONOTONIC */
	pthread_t thread;
	bool started, stop;
	unsigned kicks;
};

/* Initializes st (lock and cond; no thread yet). Pair with stimer_thread_fini. */
void stimer_thread_init(struct stimer_thread *st, const char *name,
			uint64_t (*now)(void *opaque),
			uint64_t (*poll)(void *opaque, uint64_t now), void *opaque);
/* Starts the thread. Returns 0 or -errno. */
int stimer_thread_start(struct stimer_thread *st);
/* A timer was (re)armed: poll again now. Safe whether or not started. */
void stimer_thread_kick(struct stimer_thread *st);
/* Stops and joins the thread if started (idempotent). */
void stimer_thread_stop(struct stimer_thread *st);
/* Stops the thread and destroys lock and cond. */
void stimer_thread_fini(struct stimer_thread *st);

#endif
