/*
 * Logging for hvmm: one line per message on stderr, prefixed with "hvmm: ".
 * Guest-triggered messages must use the rate-limited form so a hostile guest
 * cannot flood the host log.
 */
#ifndef HVMM_CORE_LOG_H
#define HVMM_CORE_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped. Default LOG_INFO. */
extern enum log_level log_level;

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * Rate limit state: at most `burst` messages per `interval_ms`, then one
 * "N messages suppressed" line when the window reopens. Thread safe.
 */
struct log_ratelimit {
	uint64_t window_start_ms;
	unsigned count;
	unsigned suppressed;
};

void log_ratelimited(struct log_ratelimit *rl, enum log_level lvl,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Log a guest-caused problem, rate limited per call site. */
#define log_guest(...)                                                     \
	do {                                                               \
		static struct log_ratelimit rl__;                          \
		log_ratelimited(&rl__, LOG_WARN, __VA_ARGS__);             \
	} while (0)

/* The same at debug level: ordinary guest behaviour worth seeing when asked. */
#define log_guest_debug(...)                                               \
	do {                                                               \
		static struct log_ratelimit rl__;                          \
		if (log_level >= LOG_DEBUG)                                \
			log_ratelimited(&rl__, LOG_DEBUG, __VA_ARGS__);    \
	} while (0)

#endif
