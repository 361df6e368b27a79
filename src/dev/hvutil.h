/*
 * The Hyper-V integration services ("utility devices") that Linux binds
 * with hv_utils (drivers/hv/hv_util.c, hv_kvp.c; include/linux/hyperv.h
 * icmsg_hdr and friends; ../shared/docs/hyperv-linux-guest.md §7.3):
 * shutdown, heartbeat, time synchronisation and key/value pair exchange,
 * each a VMBus channel on which the host sends requests and the guest
 * answers each in place.
 *
 * The device code (hvutil_ic.c and one file per service) is portable: it
 * talks to VMBus through vmbus/vmbus_channel.h and to its host only through
 * struct hvutil_host (lock, work scheduling, clocks). hvutil_host.c is
 * hvmm's host: the event loop, a 1 s timerfd and a mutex.
 *
 * Threads and locks: the VMBus notify() callback (a vCPU thread, server
 * lock held) only schedules work; ring traffic runs in scheduled work or
 * in hvutil_tick(), under the devices' lock (host->lock). Lock order:
 * VMBus server lock, then the devices' lock (open()/close() take ours with
 * the server's held); with ours held we call only vmbus_channel_send()/
 * recv()/skip(), which do not take the server lock. The request and query
 * functions below may be called from any thread.
 */
#ifndef HVMM_DEV_HVUTIL_H
#define HVMM_DEV_HVUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vm;
struct vmbus_server;
struct hvutils;

/* What the devices need from their host. */
struct hvutil_host {
	void *opaque;
	/* Runs fn(arg) soon on the host's worker thread, never inline: 0 or -errno. */
	int (*schedule)(void *opaque, void (*fn)(void *arg), void *arg);
	/* Returns once everything scheduled before has run (used at destroy). */
	void (*flush)(void *opaque);
	/* Optional (NULL: the host calls the devices from one thread only). */
	void (*lock)(void *opaque);
	void (*unlock)(void *opaque);
	/* Wall clock: 100 ns units since 1601-01-01 UTC (Windows FILETIME). */
	uint64_t (*filetime)(void *opaque);
	/* The partition's reference time (TIME_REF_COUNT, 100 ns units). */
	uint64_t (*ref_time)(void *opaque);
	/* Monotonic milliseconds. */
	uint64_t (*now_ms)(void *opaque);
};

#define HVUTIL_TICK_MS 1000u        /* the host calls hvutil_tick() this often */
#define HVUTIL_ALIVE_MS 5000u       /* heartbeat answered within this: alive */
#define HVUTIL_TIMESYNC_MS 5000u    /* period of time samples */
#define HVUTIL_REQUEST_TIMEOUT_MS 30000u /* an unanswered request is dropped */

enum hvutil_service {
	HVUTIL_SHUTDOWN, HVUTIL_HEARTBEAT, HVUTIL_TIMESYNC, HVUTIL_KVP, HVUTIL_NSERVICES
};

/* Portable: offers the four channels on srv. 0 or -errno (-ENOMEM, vmbus_offer's). */
int hvutil_create(struct vmbus_server *srv, const struct hvutil_host *host,
		  struct hvutils **out);
/* Periodic work (heartbeat, time samples, KVP polling): call every HVUTIL_TICK_MS. */
void hvutil_tick(struct hvutils *u);
/*
 * Frees the devices. Call after vmbus_server_destroy() (the server's close
 * callbacks touch the devices) or before any channel was opened.
 */
void hvutil_destroy(struct hvutils *u);
const struct hvutil_host *hvutil_host_of(const struct hvutils *u);

/*
 * hvmm side (hvutil_host.c): offers shutdown, heartbeat, timesync and KVP
 * channels on srv, with timers on vm->loop and reference time from vm->hv.
 * 0 or -errno. hvutil_detach() after vmbus_server_destroy(srv).
 */
int hvutil_attach(struct vm *vm, struct vmbus_server *srv, struct hvutils **out);
void hvutil_detach(struct hvutils *u);

/*
 * Asks the guest to power off (or reboot); force sets the forced flag, which
 * tells the guest not to let applications veto it (Linux powers off either
 * way; Windows guests honour it). Any thread. 0 (sent; the guest's
 * answer is hvutil_shutdown_status()); -ENODEV when the guest's shutdown
 * service has not negotiated; -EBUSY when a request is in flight; -EAGAIN
 * when the ring is full.
 */
int hvutil_request_shutdown(struct hvutils *u, bool reboot, bool force);
/* The guest answered a heartbeat within the last HVUTIL_ALIVE_MS. */
bool hvutil_guest_alive(struct hvutils *u);
/* Guest-reported key/value pairs, "pool N key=value" a line. */
void hvutil_kvp_print(struct hvutils *u, FILE *f);

/* Introspection (tests, console): the negotiated service version
 * (major << 16 | minor), 0 before negotiation. */
uint32_t hvutil_version(struct hvutils *u, enum hvutil_service s);
/* Last shutdown answer: -1 none yet, else the guest's status (0 = accepted). */
int64_t hvutil_shutdown_status(struct hvutils *u);

#endif
