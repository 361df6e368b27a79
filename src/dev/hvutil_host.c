/*
 * hvmm's host for the portable utility devices (hvutil.h): their work runs
 * on the event loop thread (evloop_call from the vCPU thread that got the
 * guest's signal), a 1 s timerfd on the loop drives heartbeats, time
 * samples and KVP polling, a mutex is the devices' lock, the wall clock
 * comes from CLOCK_REALTIME and the reference time from the Hyper-V
 * emulation (hv_time_ref_count).
 */
#include "dev/hvutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/evloop.h"
#include "core/log.h"
#include "core/vm.h"
#include "hv/hv.h"

/* 1601-01-01 to 1970-01-01 in 100 ns units. */
#define FILETIME_UNIX_EPOCH 116444736000000000ULL

struct hvutil_hostctx {
	struct vm *vm;
	struct hvutils *u;
	int tfd;
	pthread_mutex_t dev_lock;   /* the devices' lock (hvutil.h) */
	pthread_mutex_t lock;       /* flush handshake */
	pthread_cond_t cond;
	bool flushed;
};

static void h_lock(void *opaque)
{
	pthread_mutex_lock(&((struct hvutil_hostctx *)opaque)->dev_lock);
}

static void h_unlock(void *opaque)
{
	pthread_mutex_unlock(&((struct hvutil_hostctx *)opaque)->dev_lock);
}

static int h_schedule(void *opaque, void (*fn)(void *arg), void *arg)
{
	struct hvutil_hostctx *h = opaque;
	return evloop_call(h->vm->loop, fn, arg);
}

static void flush_done(void *opaque)
{
	struct hvutil_hostctx *h = opaque;
	pthread_mutex_lock(&h->lock);
	h->flushed = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static void h_flush(void *opaque)
{
	struct hvutil_hostctx *h = opaque;
	if (evloop_in_thread(h->vm->loop))
		return;
	pthread_mutex_lock(&h->lock);
	h->flushed = false;
	pthread_mutex_unlock(&h->lock);
	if (evloop_call(h->vm->loop, flush_done, h) < 0)
		return;
	pthread_mutex_lock(&h->lock);
	while (!h->flushed)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
}

static uint64_t h_filetime(void *opaque)
{
	(void)opaque;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return FILETIME_UNIX_EPOCH + (uint64_t)ts.tv_sec * 10000000ULL +
	       (uint64_t)ts.tv_nsec / 100;
}

static uint64_t h_ref_time(void *opaque)
{
	struct hvutil_hostctx *h = opaque;
	return hv_time_ref_count(h->vm->hv);
}

static uint64_t h_now_ms(void *opaque)
{
	(void)opaque;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_timer(void *opaque, int fd, uint32_t events)
{
	(void)events;
	struct hvutil_hostctx *h = opaque;
	uint64_t n;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	hvutil_tick(h->u);
}

int hvutil_attach(struct vm *vm, struct vmbus_server *srv, struct hvutils **out)
{
	struct hvutil_hostctx *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->vm = vm;
	pthread_mutex_init(&h->dev_lock, NULL);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct hvutil_host host = {
		.opaque = h, .schedule = h_schedule, .flush = h_flush,
		.lock = h_lock, .unlock = h_unlock,
		.filetime = h_filetime, .ref_time = h_ref_time, .now_ms = h_now_ms,
	};
	int ret = h->tfd < 0 ? -errno : hvutil_create(srv, &host, &h->u);
	if (ret == 0) {
		const struct timespec period = { HVUTIL_TICK_MS / 1000,
						 (HVUTIL_TICK_MS % 1000) * 1000000L };
		struct itimerspec its = { period, period };
		if (timerfd_settime(h->tfd, 0, &its, NULL) < 0 ||
		    (ret = evloop_add_fd(vm->loop, h->tfd, EPOLLIN, on_timer, h)) < 0) {
			ret = ret < 0 ? ret : -errno;
			hvutil_destroy(h->u);
		}
	}
	if (ret < 0) {
		if (h->tfd >= 0)
			close(h->tfd);
		pthread_mutex_destroy(&h->dev_lock);
		pthread_mutex_destroy(&h->lock);
		pthread_cond_destroy(&h->cond);
		free(h);
		return ret;
	}
	*out = h->u;
	return 0;
}

void hvutil_detach(struct hvutils *u)
{
	if (!u)
		return;
	struct hvutil_hostctx *h = hvutil_host_of(u)->opaque;
	evloop_del_fd(h->vm->loop, h->tfd);
	close(h->tfd);
	hvutil_destroy(u); /* flushes scheduled work */
	pthread_mutex_destroy(&h->dev_lock);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}
