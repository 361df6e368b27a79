/*
 * hvmm's host for storvsp queues (storvsp.h, struct storvsp_host): one
 * thread per open channel (the primary and each open sub-channel). The guest's signal (the VMBus notify callback on
 * a vCPU thread) writes the queue's eventfd; the thread polls that and the
 * completion eventfds of the queue's disk queues, and runs a round of the
 * queue's work whenever one fires (and once a second, in case).
 */
#include "dev/storvsp.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/disk.h"
#include "core/log.h"

struct sq_thread {
	struct storvsp_queue *q;
	pthread_t thread;
	int kick;                /* eventfd: the guest signalled, or stop */
	atomic_bool stop;
};

static void *worker(void *arg)
{
	struct sq_thread *t = arg;
	char name[16];
	snprintf(name, sizeof(name), "storvsp%u.%u", storvsp_queue_instance(t->q) % 100,
		 storvsp_queue_index(t->q) % 100);
	pthread_setname_np(pthread_self(), name);
	struct disk_queue *dq[STORVSP_MAX_LUNS];
	unsigned n = storvsp_queue_disks(t->q, dq, STORVSP_MAX_LUNS);
	struct pollfd pfd[1 + STORVSP_MAX_LUNS];
	pfd[0] = (struct pollfd){ .fd = t->kick, .events = POLLIN };
	for (unsigned i = 0; i < n; i++)
		pfd[1 + i] = (struct pollfd){ .fd = disk_queue_eventfd(dq[i]), .events = POLLIN };
	while (!atomic_load(&t->stop)) {
		uint64_t v;
		if (read(t->kick, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		storvsp_queue_run(t->q);
		poll(pfd, 1 + n, 1000);
	}
	return NULL;
}

static void wake(struct sq_thread *t)
{
	uint64_t one = 1;
	if (write(t->kick, &one, sizeof(one)) < 0)
		log_warn("storvsp: cannot wake the queue's thread");
}

static int th_start(void *opaque, struct storvsp_queue *q)
{
	(void)opaque;
	struct sq_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->q = q;
	t->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->kick < 0) {
		free(t);
		return -errno;
	}
	storvsp_queue_set_host_data(q, t);
	int ret = pthread_create(&t->thread, NULL, worker, t);
	if (ret != 0) {
		storvsp_queue_set_host_data(q, NULL);
		close(t->kick);
		free(t);
		return -ret;
	}
	return 0;
}

static void th_stop(void *opaque, struct storvsp_queue *q)
{
	(void)opaque;
	struct sq_thread *t = storvsp_queue_host_data(q);
	if (!t)
		return;
	atomic_store(&t->stop, true);
	wake(t);
	pthread_join(t->thread, NULL);
	close(t->kick);
	free(t);
	storvsp_queue_set_host_data(q, NULL);
}

static void th_kick(void *opaque, struct storvsp_queue *q)
{
	(void)opaque;
	struct sq_thread *t = storvsp_queue_host_data(q);
	if (t)
		wake(t);
}

const struct storvsp_host storvsp_thread_host = {
	.start = th_start, .stop = th_stop, .kick = th_kick,
};
