/*
 * Unit tests for the event loop (src/core/evloop.c): fd callbacks, mask
 * changes, evloop_call from many threads, and the evloop_del_fd guarantee
 * (no callback running or to come once it returns), including deletion from
 * inside the callback and concurrent add/del churn from several threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/evloop.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Poll an atomic counter until it reaches want or 5 s pass. */
static bool wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 5000; i++) {
		if (atomic_load(v) >= want)
			return true;
		sleep_ms(1);
	}
	return false;
}

struct pipe_ctx {
	int rfd, wfd;
	atomic_int calls;
	atomic_int bytes;
	atomic_bool in_thread;
	uint32_t last_events;
	struct evloop *loop;
};

static void pipe_cb(void *opaque, int fd, uint32_t events)
{
	struct pipe_ctx *c = opaque;
	char buf[64];
	c->last_events = events;
	atomic_store(&c->in_thread, evloop_in_thread(c->loop));
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n > 0)
		atomic_fetch_add(&c->bytes, (int)n);
	atomic_fetch_add(&c->calls, 1);
}

static void pipe_ctx_init(struct pipe_ctx *c, struct evloop *loop)
{
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	c->rfd = p[0];
	c->wfd = p[1];
	atomic_init(&c->calls, 0);
	atomic_init(&c->bytes, 0);
	atomic_init(&c->in_thread, false);
	c->loop = loop;
}

static void pipe_ctx_fini(struct pipe_ctx *c)
{
	close(c->rfd);
	close(c->wfd);
}

static void test_fd_callback(void **state)
{
	(void)state;
	struct evloop *loop = evloop_create();
	assert_non_null(loop);
	assert_int_equal(evloop_start(loop), 0);
	assert_false(evloop_in_thread(loop));

	struct pipe_ctx c;
	pipe_ctx_init(&c, loop);
	assert_int_equal(evloop_add_fd(loop, c.rfd, EPOLLIN, pipe_cb, &c), 0);
	assert_int_equal(evloop_add_fd(loop, c.rfd, EPOLLIN, pipe_cb, &c),
			 -EEXIST);
	assert_int_equal(write(c.wfd, "hello", 5), 5);
	assert_true(wait_for(&c.bytes, 5));
	assert_true(c.last_events & EPOLLIN);
	assert_true(atomic_load(&c.in_thread));

	/* Mask 0: no callbacks even with data waiting. */
	assert_int_equal(evloop_mod_fd(loop, c.rfd, 0), 0);
	int calls = atomic_load(&c.calls);
	assert_int_equal(write(c.wfd, "x", 1), 1);
	sleep_ms(50);
	assert_int_equal(atomic_load(&c.calls), calls);
	assert_int_equal(evloop_mod_fd(loop, c.rfd, EPOLLIN), 0);
	assert_true(wait_for(&c.bytes, 6));

	assert_int_equal(evloop_del_fd(loop, c.rfd), 0);
	assert_int_equal(evloop_del_fd(loop, c.rfd), -ENOENT);
	assert_int_equal(evloop_mod_fd(loop, c.rfd, EPOLLIN), -ENOENT);
	calls = atomic_load(&c.calls);
	assert_int_equal(write(c.wfd, "y", 1), 1);
	sleep_ms(50);
	assert_int_equal(atomic_load(&c.calls), calls);

	evloop_destroy(loop);
	pipe_ctx_fini(&c);
}

static void test_regular_file_rejected(void **state)
{
	(void)state;
	struct evloop *loop = evloop_create();
	assert_non_null(loop);
	char path[] = "/tmp/hvmm-evloop-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(evloop_add_fd(loop, fd, EPOLLIN, pipe_cb, NULL),
			 -EPERM);
	assert_int_equal(evloop_add_fd(loop, -1, EPOLLIN, pipe_cb, NULL),
			 -EINVAL);
	close(fd);
	evloop_destroy(loop); /* never started: must not hang */
}

/* ---- evloop_call from many threads ---------------------------------- */

#define CALL_THREADS 8
#define CALLS_PER_THREAD 2000

struct call_ctx {
	struct evloop *loop;
	atomic_int count;
	atomic_int wrong_thread;
};

static void count_call(void *opaque)
{
	struct call_ctx *c = opaque;
	if (!evloop_in_thread(c->loop))
		atomic_fetch_add(&c->wrong_thread, 1);
	atomic_fetch_add(&c->count, 1);
}

static void *call_thread(void *arg)
{
	struct call_ctx *c = arg;
	for (int i = 0; i < CALLS_PER_THREAD; i++)
		if (evloop_call(c->loop, count_call, c))
			abort();
	return NULL;
}

static void test_call_many_threads(void **state)
{
	(void)state;
	struct call_ctx c;
	c.loop = evloop_create();
	assert_non_null(c.loop);
	atomic_init(&c.count, 0);
	atomic_init(&c.wrong_thread, 0);
	/* Calls queued before start run once the loop starts. */
	assert_int_equal(evloop_call(c.loop, count_call, &c), 0);
	assert_int_equal(evloop_start(c.loop), 0);
	assert_int_equal(evloop_start(c.loop), -EBUSY);

	pthread_t t[CALL_THREADS];
	for (int i = 0; i < CALL_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, call_thread, &c), 0);
	for (int i = 0; i < CALL_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_true(wait_for(&c.count, CALL_THREADS * CALLS_PER_THREAD + 1));
	assert_int_equal(atomic_load(&c.count),
			 CALL_THREADS * CALLS_PER_THREAD + 1);
	assert_int_equal(atomic_load(&c.wrong_thread), 0);
	assert_int_equal(evloop_call(c.loop, NULL, NULL), -EINVAL);
	evloop_destroy(c.loop);
}

/* ---- del guarantee --------------------------------------------------- */

struct slow_ctx {
	int rfd, wfd;
	atomic_bool running;
	atomic_int calls;
	atomic_int after_del; /* callbacks that started after del returned */
	atomic_bool deleted;
};

static void slow_cb(void *opaque, int fd, uint32_t events)
{
	struct slow_ctx *c = opaque;
	(void)events;
	if (atomic_load(&c->deleted))
		atomic_fetch_add(&c->after_del, 1);
	atomic_store(&c->running, true);
	atomic_fetch_add(&c->calls, 1);
	sleep_ms(100); /* del is called while we sit here */
	char b;
	if (read(fd, &b, 1) < 0) {
		/* nothing to do */
	}
	atomic_store(&c->running, false);
}

static void test_del_waits_for_callback(void **state)
{
	(void)state;
	struct evloop *loop = evloop_create();
	assert_non_null(loop);
	assert_int_equal(evloop_start(loop), 0);

	struct slow_ctx c;
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	c.rfd = p[0];
	c.wfd = p[1];
	atomic_init(&c.running, false);
	atomic_init(&c.calls, 0);
	atomic_init(&c.after_del, 0);
	atomic_init(&c.deleted, false);
	assert_int_equal(evloop_add_fd(loop, c.rfd, EPOLLIN, slow_cb, &c), 0);
	assert_int_equal(write(c.wfd, "abc", 3), 3);
	assert_true(wait_for(&c.calls, 1));
	assert_true(atomic_load(&c.running));
	assert_int_equal(evloop_del_fd(loop, c.rfd), 0);
	/* The guarantee: the callback has returned and will not run again. */
	assert_false(atomic_load(&c.running));
	atomic_store(&c.deleted, true);
	assert_int_equal(write(c.wfd, "d", 1), 1);
	sleep_ms(150);
	assert_int_equal(atomic_load(&c.after_del), 0);

	evloop_destroy(loop);
	close(c.rfd);
	close(c.wfd);
}

struct self_del_ctx {
	struct evloop *loop;
	int rfd, wfd;
	atomic_int calls;
	atomic_int del_rc;
};

static void self_del_cb(void *opaque, int fd, uint32_t events)
{
	struct self_del_ctx *c = opaque;
	(void)events;
	atomic_store(&c->del_rc, evloop_del_fd(c->loop, fd));
	atomic_fetch_add(&c->calls, 1);
}

static void test_del_from_own_callback(void **state)
{
	(void)state;
	struct self_del_ctx c;
	c.loop = evloop_create();
	assert_non_null(c.loop);
	assert_int_equal(evloop_start(c.loop), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	c.rfd = p[0];
	c.wfd = p[1];
	atomic_init(&c.calls, 0);
	atomic_init(&c.del_rc, 1);
	assert_int_equal(evloop_add_fd(c.loop, c.rfd, EPOLLIN, self_del_cb, &c),
			 0);
	/* Data stays unread: without the del the callback would repeat. */
	assert_int_equal(write(c.wfd, "x", 1), 1);
	assert_true(wait_for(&c.calls, 1));
	sleep_ms(50);
	assert_int_equal(atomic_load(&c.calls), 1);
	assert_int_equal(atomic_load(&c.del_rc), 0);
	/* The fd can be added again afterwards. */
	assert_int_equal(evloop_add_fd(c.loop, c.rfd, EPOLLIN, self_del_cb, &c),
			 0);
	assert_true(wait_for(&c.calls, 2));
	evloop_destroy(c.loop);
	close(c.rfd);
	close(c.wfd);
}

/*
 * Churn: several threads each repeatedly add a pipe with a heap context,
 * make it readable, delete it and immediately poison and free the context.
 * A callback that ran after its del returned would see the poison.
 */
#define CHURN_THREADS 4
#define CHURN_ROUNDS 300
#define CHURN_MAGIC 0x5eed5eedu

struct churn_obj {
	unsigned magic;
	atomic_int hits;
};

static atomic_int churn_bad;

static void churn_cb(void *opaque, int fd, uint32_t events)
{
	struct churn_obj *o = opaque;
	(void)fd;
	(void)events;
	if (o->magic != CHURN_MAGIC)
		atomic_fetch_add(&churn_bad, 1);
	atomic_fetch_add(&o->hits, 1);
}

static void *churn_thread(void *arg)
{
	struct evloop *loop = arg;
	int p[2];
	if (pipe2(p, O_NONBLOCK))
		abort();
	for (int i = 0; i < CHURN_ROUNDS; i++) {
		struct churn_obj *o = malloc(sizeof(*o));
		o->magic = CHURN_MAGIC;
		atomic_init(&o->hits, 0);
		if (evloop_add_fd(loop, p[0], EPOLLIN, churn_cb, o))
			abort();
		if (write(p[1], "z", 1) != 1)
			abort();
		/* Sometimes delete while the callback may be firing. */
		if (i & 1)
			for (int k = 0; k < 1000 && !atomic_load(&o->hits); k++)
				sched_yield();
		if (evloop_del_fd(loop, p[0]))
			abort();
		o->magic = 0xdeadu;
		free(o);
		char drain[16];
		while (read(p[0], drain, sizeof(drain)) > 0)
			;
	}
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void test_concurrent_add_del(void **state)
{
	(void)state;
	struct evloop *loop = evloop_create();
	assert_non_null(loop);
	assert_int_equal(evloop_start(loop), 0);
	atomic_init(&churn_bad, 0);
	pthread_t t[CHURN_THREADS];
	for (int i = 0; i < CHURN_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn_thread, loop),
				 0);
	for (int i = 0; i < CHURN_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&churn_bad), 0);
	evloop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_callback),
		cmocka_unit_test(test_regular_file_rejected),
		cmocka_unit_test(test_call_many_threads),
		cmocka_unit_test(test_del_waits_for_callback),
		cmocka_unit_test(test_del_from_own_callback),
		cmocka_unit_test(test_concurrent_add_del),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
