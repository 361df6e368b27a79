/*
 * Unit tests: VMBus sub-channels (vmbus_channel_request_subchannels, the
 * server's flush, src/vmbus/vmbus_server.c) against the fake host, the test
 * playing a Linux 6.1 guest (drivers/hv/channel_mgmt.c matches a
 * sub-channel offer to its primary by type and instance, index != 0):
 * a request becomes n offers with indexes 1..n after the primary, each its
 * own relid and connection; sub-channels open, signal and close like any
 * channel; closing the primary closes them first and rescinds them; UNLOAD
 * frees them and a reconnection does not offer them again; bad counts and
 * second requests are refused; a request from the device's worker while
 * close() waits for that worker (server lock held) does not deadlock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>

#include "test_vmbus_fake.h"

#define V53 ((5u << 16) | 3u)

/* A device that records which channel (by sub-channel index) did what. */
struct sdev {
	struct vmbus_channel *ch[VMBUS_MAX_SUBCHANNELS + 1];
	unsigned opens[VMBUS_MAX_SUBCHANNELS + 1], closes[VMBUS_MAX_SUBCHANNELS + 1];
	unsigned notifies[VMBUS_MAX_SUBCHANNELS + 1];
	unsigned order[16], norder; /* indexes in close order */
};

static uint32_t sdev_open(void *dev, struct vmbus_channel *ch)
{
	struct sdev *d = dev;
	unsigned i = vmbus_channel_subchannel_index(ch);
	d->ch[i] = ch;
	d->opens[i]++;
	return 0;
}

static void sdev_close(void *dev, struct vmbus_channel *ch)
{
	struct sdev *d = dev;
	unsigned i = vmbus_channel_subchannel_index(ch);
	d->closes[i]++;
	if (d->norder < 16)
		d->order[d->norder++] = i;
}

static void sdev_notify(void *dev, struct vmbus_channel *ch)
{
	struct sdev *d = dev;
	d->notifies[vmbus_channel_subchannel_index(ch)]++;
}

static const struct vmbus_device_ops sdev_ops = {
	.open = sdev_open, .close = sdev_close, .notify = sdev_notify,
};

static uint32_t negotiate(struct fake *f)
{
	assert_int_equal(guest_contact(f, 4, V53, 0), 0);
	struct fake_msg *m = fake_next(f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 15);
	assert_int_equal(m->b[8], 1);
	return V53;
}

/* Offers the device's primary, connects the guest; returns the primary's relid. */
static uint32_t setup(struct fake *f, struct sdev *d, struct vmbus_channel **primary)
{
	struct vmbus_offer o = { 0 };
	memset(o.if_type.b, 0x41, 16);
	memset(o.if_instance.b, 0x71, 16);
	o.user_defined[0] = 0x5c;
	assert_int_equal(vmbus_offer(f->srv, &o, &sdev_ops, d, primary), 0);
	negotiate(f);
	guest_simple(f, 3, 0, 0);
	struct fake_msg *m = fake_next(f);
	assert_int_equal(m32(m, 0), 1);
	uint32_t relid = m32(m, 184);
	assert_int_equal(m32(fake_next(f), 0), 4);
	return relid;
}

/* The guest opens relid on a fresh 4-page ring GPADL (id = gpadl). 0 or the status. */
static uint32_t open_relid(struct fake *f, uint32_t relid, uint32_t gpadl, uint64_t pfn0)
{
	uint64_t pfns[4] = { pfn0, pfn0 + 1, pfn0 + 2, pfn0 + 3 };
	guest_gpadl(f, relid, gpadl, pfns, 4);
	struct fake_msg *m = fake_next(f);
	assert_int_equal(m32(m, 0), 10);
	assert_int_equal(m32(m, 16), 0);
	guest_open(f, relid, gpadl, 0, 2);
	m = fake_next(f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 6);
	assert_int_equal(m32(m, 8), relid);
	return m32(m, 16);
}

/* Expects n sub-channel offers for the primary's type/instance; fills relids[1..n]. */
static void expect_sub_offers(struct fake *f, unsigned n, uint32_t primary_relid,
			      uint32_t *relids)
{
	for (unsigned i = 1; i <= n; i++) {
		struct fake_msg *m = fake_next(f);
		assert_non_null(m);
		assert_int_equal(m32(m, 0), 1);
		assert_int_equal(m->len, 196);
		uint8_t t[16];
		memset(t, 0x41, 16);
		assert_memory_equal(m->b + 8, t, 16);
		memset(t, 0x71, 16);
		assert_memory_equal(m->b + 24, t, 16);
		assert_int_equal(m->b[60], 0x5c); /* the primary's user area */
		uint16_t idx;
		memcpy(&idx, m->b + 180, 2);
		assert_int_equal(idx, i);
		relids[i] = m32(m, 184);
		assert_int_not_equal(relids[i], primary_relid);
		for (unsigned j = 1; j < i; j++)
			assert_int_not_equal(relids[i], relids[j]);
		assert_int_equal(m32(m, 192), 0x10000 + relids[i]);
	}
}

static void test_request_and_offers(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 2);
	struct sdev d = { 0 };
	struct vmbus_channel *p;
	uint32_t relid = setup(f, &d, &p);
	assert_int_equal(open_relid(f, relid, 0x100, 100), 0);
	assert_int_equal(vmbus_channel_subchannel_index(p), 0);
	/* Bad counts. */
	assert_int_equal(vmbus_channel_request_subchannels(p, 0), -EINVAL);
	assert_int_equal(vmbus_channel_request_subchannels(p, VMBUS_MAX_SUBCHANNELS + 1), -EINVAL);
	/* A good one is only recorded; the flush makes the offers. */
	assert_int_equal(vmbus_channel_request_subchannels(p, 3), 0);
	assert_null(fake_next(f));
	assert_int_equal(vmbus_channel_request_subchannels(p, 2), -EALREADY);
	vmbus_server_flush(f->srv);
	uint32_t sub[4];
	expect_sub_offers(f, 3, relid, sub);
	assert_null(fake_next(f));
	vmbus_server_flush(f->srv); /* served once */
	assert_null(fake_next(f));
	/* Sub-channel 2 opens on its own ring; it is told apart by its index. */
	assert_int_equal(open_relid(f, sub[2], 0x200, 200), 0);
	assert_int_equal(d.opens[2], 1);
	assert_int_equal(d.opens[0], 1);
	assert_int_equal(vmbus_channel_subchannel_index(d.ch[2]), 2);
	assert_int_equal(vmbus_channel_relid(d.ch[2]), sub[2]);
	assert_int_equal(vmbus_channel_request_subchannels(d.ch[2], 1), -EINVAL);
	/* Its signals reach the device as that sub-channel's. */
	assert_int_equal(vmbus_server_signal_event(f->srv, 0x10000 + sub[2]), 0);
	assert_int_equal(d.notifies[2], 1);
	assert_int_equal(d.notifies[0], 0);
	assert_int_equal(vmbus_server_signal_event(f->srv, 0x10000 + sub[1]),
			 VMBUS_HV_STATUS_INVALID_CONNECTION_ID); /* not open */
	/* Its ring is its own: a packet the host sends lands there. */
	assert_int_equal(vmbus_channel_send(d.ch[2], 6, 0, 9, NULL, 0, "subq", 4), 0);
	uint32_t w;
	memcpy(&w, f->ram + 202 * 4096, 4); /* host-to-guest ring at page 2 */
	assert_int_not_equal(w, 0);
	memcpy(&w, f->ram + 102 * 4096, 4);
	assert_int_equal(w, 0);
	/* The guest closes the sub-channel alone: only it closes. */
	guest_simple(f, 7, sub[2], 0);
	assert_int_equal(d.closes[2], 1);
	assert_int_equal(d.closes[0], 0);
	assert_false(f->lock_error);
	fake_free(f);
}

/* A guest message or signal serves a request even without a host flush. */
static void test_served_by_guest_traffic(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct sdev d = { 0 };
	struct vmbus_channel *p;
	uint32_t relid = setup(f, &d, &p);
	assert_int_equal(open_relid(f, relid, 0x100, 100), 0);
	assert_int_equal(vmbus_channel_request_subchannels(p, 2), 0);
	assert_int_equal(vmbus_server_signal_event(f->srv, 0x10000 + relid), 0);
	uint32_t sub[3];
	expect_sub_offers(f, 2, relid, sub);
	fake_free(f);
}

static void test_close_primary(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct sdev d = { 0 };
	struct vmbus_channel *p;
	uint32_t relid = setup(f, &d, &p);
	assert_int_equal(open_relid(f, relid, 0x100, 100), 0);
	assert_int_equal(vmbus_channel_request_subchannels(p, 2), 0);
	vmbus_server_flush(f->srv);
	uint32_t sub[3];
	expect_sub_offers(f, 2, relid, sub);
	assert_int_equal(open_relid(f, sub[1], 0x200, 200), 0);
	/* The primary closes with sub-channel 1 open: 1 closes first, then 0. */
	guest_simple(f, 7, relid, 0);
	assert_int_equal(d.norder, 2);
	assert_int_equal(d.order[0], 1);
	assert_int_equal(d.order[1], 0);
	assert_int_equal(d.closes[2], 0); /* never opened */
	/* Both are rescinded; they cannot be opened or signalled any more. */
	for (unsigned i = 1; i <= 2; i++) {
		struct fake_msg *m = fake_next(f);
		assert_non_null(m);
		assert_int_equal(m32(m, 0), 2);
		assert_int_equal(m32(m, 8), sub[i]);
	}
	assert_null(fake_next(f));
	assert_int_equal(vmbus_server_signal_event(f->srv, 0x10000 + sub[1]),
			 VMBUS_HV_STATUS_INVALID_CONNECTION_ID);
	guest_open(f, sub[2], 0x200, 0, 2);
	assert_int_not_equal(m32(fake_next(f), 16), 0);
	/* The guest releases them; the relids are free for the next request. */
	guest_simple(f, 13, sub[1], 0);
	guest_simple(f, 13, sub[2], 0);
	assert_null(fake_next(f));
	/* Reopen of the primary: a new request works and reuses relids. */
	guest_simple(f, 11, relid, 0x100);
	assert_int_equal(m32(fake_next(f), 0), 12);
	assert_int_equal(open_relid(f, relid, 0x101, 110), 0);
	assert_int_equal(vmbus_channel_request_subchannels(p, 1), 0);
	vmbus_server_flush(f->srv);
	uint32_t again[2];
	expect_sub_offers(f, 1, relid, again);
	assert_true(again[1] == sub[1] || again[1] == sub[2]);
	/* A guest CLOSECHANNEL right after a request: the request is served
	 * first (its offers), then the close withdraws them. */
	guest_simple(f, 7, relid, 0);
	assert_int_equal(m32(fake_next(f), 0), 2); /* the sub-channel rescinded */
	guest_simple(f, 13, again[1], 0);
	guest_open(f, relid, 0x101, 0, 2);
	assert_int_equal(m32(fake_next(f), 16), 0);
	assert_int_equal(vmbus_channel_request_subchannels(p, 2), 0);
	guest_simple(f, 7, relid, 0);
	expect_sub_offers(f, 2, relid, sub);
	assert_int_equal(m32(fake_next(f), 0), 2);
	assert_int_equal(m32(fake_next(f), 0), 2);
	vmbus_server_flush(f->srv);
	assert_null(fake_next(f));
	assert_false(f->lock_error);
	fake_free(f);
}

static void test_unload_and_reconnect(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct sdev d = { 0 };
	struct vmbus_channel *p;
	uint32_t relid = setup(f, &d, &p);
	assert_int_equal(open_relid(f, relid, 0x100, 100), 0);
	assert_int_equal(vmbus_channel_request_subchannels(p, 4), 0);
	vmbus_server_flush(f->srv);
	uint32_t sub[5];
	expect_sub_offers(f, 4, relid, sub);
	assert_int_equal(open_relid(f, sub[3], 0x200, 200), 0);
	guest_simple(f, 16, 0, 0);
	assert_int_equal(m32(fake_next(f), 0), 17); /* no RESCINDs in an UNLOAD */
	assert_null(fake_next(f));
	assert_int_equal(d.closes[3], 1);
	assert_int_equal(d.closes[0], 1);
	/* Reconnection: only the primary is offered. */
	negotiate(f);
	guest_simple(f, 3, 0, 0);
	struct fake_msg *m = fake_next(f);
	assert_int_equal(m32(m, 0), 1);
	assert_int_equal(m32(m, 184), relid);
	assert_int_equal(m32(fake_next(f), 0), 4);
	/* The same after a host reset. */
	assert_int_equal(open_relid(f, relid, 0x100, 100), 0);
	assert_int_equal(vmbus_channel_request_subchannels(p, 2), 0);
	vmbus_server_flush(f->srv);
	expect_sub_offers(f, 2, relid, sub);
	vmbus_server_reset(f->srv);
	assert_null(fake_next(f));
	negotiate(f);
	guest_simple(f, 3, 0, 0);
	assert_int_equal(m32(fake_next(f), 0), 1);
	assert_int_equal(m32(fake_next(f), 0), 4);
	/* The device rescinding its primary takes the sub-channels along. */
	assert_int_equal(open_relid(f, relid, 0x100, 100), 0);
	assert_int_equal(vmbus_channel_request_subchannels(p, 2), 0);
	vmbus_server_flush(f->srv);
	expect_sub_offers(f, 2, relid, sub);
	vmbus_rescind(p);
	uint32_t seen = 0;
	for (struct fake_msg *r; (r = fake_next(f));) {
		assert_int_equal(m32(r, 0), 2);
		seen |= m32(r, 8) == relid ? 1u : m32(r, 8) == sub[1] ? 2u :
			m32(r, 8) == sub[2] ? 4u : 8u;
	}
	assert_int_equal(seen, 7u);
	assert_false(f->lock_error);
	fake_free(f);
}

/* More sub-channels than relids left: as many as fit, the rest logged. */
static void test_relids_run_out(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct sdev d = { 0 };
	struct vmbus_channel *p;
	uint32_t relid = setup(f, &d, &p);
	assert_int_equal(open_relid(f, relid, 0x100, 100), 0);
	struct fake_dev filler = { 0 };
	struct vmbus_offer o = { 0 };
	struct vmbus_channel *c;
	unsigned n = 0;
	for (;;) {
		memset(o.if_instance.b, 0, 16);
		memcpy(o.if_instance.b, &n, sizeof(n));
		o.if_type.b[0] = 0xee;
		if (vmbus_offer(f->srv, &o, &fdev_ops, &filler, &c) < 0)
			break;
		n++;
		if (n == 2047 - 1 - 3)
			break; /* leave 3 relids */
	}
	f->next = f->nmsg; /* skip those offers */
	assert_int_equal(vmbus_channel_request_subchannels(p, 8), 0);
	vmbus_server_flush(f->srv);
	uint32_t sub[4];
	expect_sub_offers(f, 3, relid, sub);
	assert_null(fake_next(f));
	fake_free(f);
}

/* ---- a request from the worker that close() joins ------------------------ */

struct tdev {
	pthread_t worker;
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool go, stop;
	int result;
	struct vmbus_channel *ch;
};

/* The device's worker: asks for sub-channels when told (as storvsp's would). */
static void *tworker(void *arg)
{
	struct tdev *t = arg;
	pthread_mutex_lock(&t->m);
	while (!t->go && !t->stop)
		pthread_cond_wait(&t->cv, &t->m);
	bool go = t->go;
	pthread_mutex_unlock(&t->m);
	if (go)
		t->result = vmbus_channel_request_subchannels(t->ch, 2);
	return NULL;
}

static uint32_t tdev_open(void *dev, struct vmbus_channel *ch)
{
	struct tdev *t = dev;
	t->ch = ch;
	t->go = t->stop = false;
	t->result = 1;
	return pthread_create(&t->worker, NULL, tworker, t) ? 1 : 0;
}

/* Server lock held: the worker must still get its request through. */
static void tdev_close(void *dev, struct vmbus_channel *ch)
{
	(void)ch;
	struct tdev *t = dev;
	pthread_mutex_lock(&t->m);
	t->go = true;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->m);
	pthread_join(t->worker, NULL);
}

static void tdev_notify(void *dev, struct vmbus_channel *ch)
{
	(void)dev;
	(void)ch;
}

static const struct vmbus_device_ops tdev_ops = {
	.open = tdev_open, .close = tdev_close, .notify = tdev_notify,
};

static pthread_mutex_t real_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned flush_requests;

static void rlock(void *o)
{
	pthread_mutex_lock(&real_lock);
	fake_lock(o);
}

static void runlock(void *o)
{
	fake_unlock(o);
	pthread_mutex_unlock(&real_lock);
}

static void rflush(void *o)
{
	(void)o;
	flush_requests++;
}

static void test_request_during_close(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	vmbus_server_destroy(f->srv);
	struct vmbus_host h = {
		.opaque = f, .map = fake_map, .post_message = fake_post,
		.signal_event = fake_signal, .lock = rlock, .unlock = runlock,
		.request_flush = rflush,
	};
	struct vmbus_server_config cfg = { 0 };
	assert_int_equal(vmbus_server_create(&h, &cfg, &f->srv), 0);
	struct tdev t = { .m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct vmbus_offer o = { 0 };
	memset(o.if_type.b, 0x42, 16);
	struct vmbus_channel *p;
	assert_int_equal(vmbus_offer(f->srv, &o, &tdev_ops, &t, &p), 0);
	negotiate(f);
	guest_simple(f, 3, 0, 0);
	uint32_t relid = m32(fake_next(f), 184);
	fake_next(f);
	assert_int_equal(open_relid(f, relid, 0x100, 100), 0);
	/* CLOSECHANNEL: close() runs under the real lock and joins the worker,
	 * whose request must not need that lock. A deadlock hangs here (the
	 * test's timeout reports it). */
	guest_simple(f, 7, relid, 0);
	assert_int_equal(t.result, 0);
	assert_int_equal(flush_requests, 1);
	/* The primary is closed: the flush drops the request. */
	vmbus_server_flush(f->srv);
	assert_null(fake_next(f));
	assert_false(f->lock_error);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_and_offers),
		cmocka_unit_test(test_served_by_guest_traffic),
		cmocka_unit_test(test_close_primary),
		cmocka_unit_test(test_unload_and_reconnect),
		cmocka_unit_test(test_relids_run_out),
		cmocka_unit_test(test_request_during_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
