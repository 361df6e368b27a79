/*
 * Logging: stderr, one line per message, with a simple per-call-site rate
 * limiter (10 messages per 5 s window) for anything a guest can trigger.
 */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

enum log_level log_level = LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

#define RL_INTERVAL_MS 5000
#define RL_BURST 10

static const char *const level_names[] = { "error", "warning", "info", "debug" };

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	if (lvl > log_level)
		return;
	/* One fprintf per line under a lock so vCPU threads do not interleave. */
	char buf[1024];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	pthread_mutex_lock(&log_lock);
	if (lvl == LOG_INFO)
		fprintf(stderr, "hvmm: %s\n", buf);
	else
		fprintf(stderr, "hvmm: %s: %s\n", level_names[lvl], buf);
	pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void log_ratelimited(struct log_ratelimit *rl, enum log_level lvl,
		     const char *fmt, ...)
{
	uint64_t now = now_ms();
	unsigned suppressed = 0;
	int emit;

	pthread_mutex_lock(&log_lock);
	if (now - rl->window_start_ms >= RL_INTERVAL_MS) {
		suppressed = rl->suppressed;
		rl->window_start_ms = now;
		rl->count = 0;
		rl->suppressed = 0;
	}
	emit = rl->count < RL_BURST;
	if (emit)
		rl->count++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&log_lock);

	if (suppressed)
		log_msg(lvl, "(%u similar messages suppressed)", suppressed);
	if (emit) {
		va_list ap;
		va_start(ap, fmt);
		log_vmsg(lvl, fmt, ap);
		va_end(ap);
	}
}
