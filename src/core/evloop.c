/*
 * The event loop (see evloop.h): one thread blocked in epoll_wait() on the
 * registered fds plus an eventfd that other threads write to when they queue
 * an evloop_call() or stop the loop. Registrations live in a slot table; the
 * epoll cookie of an fd is (generation << 32 | slot), so an event fetched
 * before the fd was deleted (or its slot reused) is recognised as stale and
 * dropped. evloop_del_fd() from another thread waits on a condition variable
 * until the callback it races with has returned.
 *
 * Locking: loop->lock protects the slot table, the call queue and the
 * "running" marker. It is never held while a callback or a queued call runs,
 * so callbacks may take their own locks and call back into the loop.
 */
#include "core/evloop.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"

#define EVLOOP_MAX_EVENTS 64
/* Cookie of the loop's own wake-up eventfd. */
#define EVLOOP_WAKE_COOKIE UINT64_MAX
#define EVLOOP_NO_SLOT UINT32_MAX

struct evloop_slot {
	int fd;           /* -1 when the slot is free */
	uint32_t gen;     /* bumped on every add, so stale cookies mismatch */
	evloop_fd_cb cb;
	void *opaque;
};

struct evloop_call_node {
	struct evloop_call_node *next;
	void (*fn)(void *opaque);
	void *opaque;
};

struct evloop {
	int epfd;
	int wakefd;
	pthread_t thread;
	bool started;
	bool stopping;

	pthread_mutex_t lock;
	pthread_cond_t idle; /* signalled when a callback returns */
	struct evloop_slot *slots;
	uint32_t nslots;
	uint32_t running_slot; /* slot whose callback runs now, or NO_SLOT */
	uint32_t running_gen;

	struct evloop_call_node *calls_head;
	struct evloop_call_node **calls_tail;
};

/* The loop whose thread this is (NULL on other threads). */
static _Thread_local struct evloop *evloop_current;

static uint64_t evloop_cookie(uint32_t slot, uint32_t gen)
{
	return (uint64_t)gen << 32 | slot;
}

static void evloop_wake(struct evloop *loop)
{
	uint64_t one = 1;
	/* Only fails with EAGAIN when the counter is saturated: already awake. */
	if (write(loop->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("evloop: eventfd write: %s", strerror(errno));
}

struct evloop *evloop_create(void)
{
	struct evloop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epfd < 0 || loop->wakefd < 0)
		goto fail;
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = EVLOOP_WAKE_COOKIE };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0)
		goto fail;
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->idle, NULL);
	loop->running_slot = EVLOOP_NO_SLOT;
	loop->calls_tail = &loop->calls_head;
	return loop;

fail: {
	int err = errno;
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->wakefd >= 0)
		close(loop->wakefd);
	free(loop);
	errno = err;
	return NULL;
}
}

static void evloop_run_calls(struct evloop *loop)
{
	pthread_mutex_lock(&loop->lock);
	struct evloop_call_node *list = loop->calls_head;
	loop->calls_head = NULL;
	loop->calls_tail = &loop->calls_head;
	pthread_mutex_unlock(&loop->lock);

	while (list) {
		struct evloop_call_node *n = list;
		list = n->next;
		n->fn(n->opaque);
		free(n);
	}
}

static void evloop_dispatch(struct evloop *loop, const struct epoll_event *ev)
{
	uint32_t slot = (uint32_t)ev->data.u64;
	uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
	evloop_fd_cb cb;
	void *opaque;
	int fd;

	pthread_mutex_lock(&loop->lock);
	if (slot >= loop->nslots || loop->slots[slot].fd < 0 ||
	    loop->slots[slot].gen != gen) {
		/* Deleted (and maybe re-added) after epoll_wait() fetched it. */
		pthread_mutex_unlock(&loop->lock);
		return;
	}
	cb = loop->slots[slot].cb;
	opaque = loop->slots[slot].opaque;
	fd = loop->slots[slot].fd;
	loop->running_slot = slot;
	loop->running_gen = gen;
	pthread_mutex_unlock(&loop->lock);

	cb(opaque, fd, ev->events);

	pthread_mutex_lock(&loop->lock);
	loop->running_slot = EVLOOP_NO_SLOT;
	pthread_cond_broadcast(&loop->idle);
	pthread_mutex_unlock(&loop->lock);
}

static void *evloop_thread(void *arg)
{
	struct evloop *loop = arg;
	struct epoll_event evs[EVLOOP_MAX_EVENTS];

	evloop_current = loop;
	for (;;) {
		int n = epoll_wait(loop->epfd, evs, EVLOOP_MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("evloop: epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == EVLOOP_WAKE_COOKIE) {
				uint64_t cnt;
				if (read(loop->wakefd, &cnt, sizeof(cnt)) < 0 &&
				    errno != EAGAIN)
					log_error("evloop: eventfd read: %s",
						  strerror(errno));
				evloop_run_calls(loop);
				continue;
			}
			evloop_dispatch(loop, &evs[i]);
		}
		pthread_mutex_lock(&loop->lock);
		bool stop = loop->stopping;
		pthread_mutex_unlock(&loop->lock);
		if (stop)
			break;
	}
	return NULL;
}

int evloop_start(struct evloop *loop)
{
	if (loop->started)
		return -EBUSY;
	int rc = pthread_create(&loop->thread, NULL, evloop_thread, loop);
	if (rc)
		return -rc;
	loop->started = true;
	return 0;
}

void evloop_destroy(struct evloop *loop)
{
	if (!loop)
		return;
	/* Joining ourselves would deadlock; this is a caller bug. */
	assert(!evloop_in_thread(loop));
	if (loop->started) {
		pthread_mutex_lock(&loop->lock);
		loop->stopping = true;
		pthread_mutex_unlock(&loop->lock);
		evloop_wake(loop);
		pthread_join(loop->thread, NULL);
	}
	/* Calls queued but never run are dropped (documented in the header). */
	while (loop->calls_head) {
		struct evloop_call_node *n = loop->calls_head;
		loop->calls_head = n->next;
		free(n);
	}
	close(loop->epfd);
	close(loop->wakefd);
	pthread_cond_destroy(&loop->idle);
	pthread_mutex_destroy(&loop->lock);
	free(loop->slots);
	free(loop);
}

bool evloop_in_thread(struct evloop *loop)
{
	return evloop_current == loop;
}

/* Caller holds loop->lock. */
static uint32_t evloop_find(struct evloop *loop, int fd)
{
	for (uint32_t i = 0; i < loop->nslots; i++)
		if (loop->slots[i].fd == fd)
			return i;
	return EVLOOP_NO_SLOT;
}

/* Caller holds loop->lock. Returns a free slot index or NO_SLOT (ENOMEM). */
static uint32_t evloop_alloc_slot(struct evloop *loop)
{
	for (uint32_t i = 0; i < loop->nslots; i++)
		if (loop->slots[i].fd < 0)
			return i;
	uint32_t n = loop->nslots ? loop->nslots * 2 : 16;
	if (n >= EVLOOP_NO_SLOT / 2)
		return EVLOOP_NO_SLOT;
	struct evloop_slot *s = realloc(loop->slots, n * sizeof(*s));
	if (!s)
		return EVLOOP_NO_SLOT;
	for (uint32_t i = loop->nslots; i < n; i++)
		s[i] = (struct evloop_slot){ .fd = -1 };
	loop->slots = s;
	uint32_t first = loop->nslots;
	loop->nslots = n;
	return first;
}

int evloop_add_fd(struct evloop *loop, int fd, uint32_t events,
		  evloop_fd_cb cb, void *opaque)
{
	if (fd < 0 || !cb)
		return -EINVAL;
	int rc = 0;
	pthread_mutex_lock(&loop->lock);
	if (evloop_find(loop, fd) != EVLOOP_NO_SLOT) {
		rc = -EEXIST;
		goto out;
	}
	uint32_t slot = evloop_alloc_slot(loop);
	if (slot == EVLOOP_NO_SLOT) {
		rc = -ENOMEM;
		goto out;
	}
	struct evloop_slot *s = &loop->slots[slot];
	uint32_t gen = s->gen + 1;
	struct epoll_event ev = { .events = events,
				  .data.u64 = evloop_cookie(slot, gen) };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		rc = -errno;
		goto out;
	}
	s->fd = fd;
	s->gen = gen;
	s->cb = cb;
	s->opaque = opaque;
out:
	pthread_mutex_unlock(&loop->lock);
	return rc;
}

int evloop_mod_fd(struct evloop *loop, int fd, uint32_t events)
{
	int rc = 0;
	pthread_mutex_lock(&loop->lock);
	uint32_t slot = evloop_find(loop, fd);
	if (slot == EVLOOP_NO_SLOT) {
		rc = -ENOENT;
	} else {
		struct epoll_event ev = {
			.events = events,
			.data.u64 = evloop_cookie(slot, loop->slots[slot].gen),
		};
		if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
			rc = -errno;
	}
	pthread_mutex_unlock(&loop->lock);
	return rc;
}

int evloop_del_fd(struct evloop *loop, int fd)
{
	pthread_mutex_lock(&loop->lock);
	uint32_t slot = evloop_find(loop, fd);
	if (slot == EVLOOP_NO_SLOT) {
		pthread_mutex_unlock(&loop->lock);
		return -ENOENT;
	}
	uint32_t gen = loop->slots[slot].gen;
	/*
	 * EPOLL_CTL_DEL can only fail if the fd was closed behind our back,
	 * in which case epoll already forgot it; the slot goes either way.
	 */
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->slots[slot].fd = -1;
	loop->slots[slot].cb = NULL;
	loop->slots[slot].opaque = NULL;
	if (!evloop_in_thread(loop)) {
		while (loop->running_slot == slot && loop->running_gen == gen)
			pthread_cond_wait(&loop->idle, &loop->lock);
	}
	pthread_mutex_unlock(&loop->lock);
	return 0;
}

int evloop_call(struct evloop *loop, void (*fn)(void *opaque), void *opaque)
{
	if (!fn)
		return -EINVAL;
	struct evloop_call_node *n = malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->next = NULL;
	n->fn = fn;
	n->opaque = opaque;
	pthread_mutex_lock(&loop->lock);
	*loop->calls_tail = n;
	loop->calls_tail = &n->next;
	pthread_mutex_unlock(&loop->lock);
	evloop_wake(loop);
	return 0;
}
