/*
 * Unit tests for the utility devices (src/dev/hvutil*.c) on the real VMBus
 * server, with the VMBus fake host (test_vmbus_fake.h: guest RAM, message
 * queue) and this file playing Linux 6.1's hv_utils on the guest side of
 * each channel's rings (drivers/hv/hv_util.c, hv_kvp.c,
 * vmbus_prep_negotiate_resp): negotiation (accepted and refused versions),
 * heartbeat, shutdown, time sync and KVP exchanges, then hostile answers.
 * The devices' host is fake too: scheduled work is queued and run by the
 * test, clocks are test variables (the wall clock is real, for SYNC).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_vmbus_fake.h"
#include "dev/hvutil.h"
#include "dev/hvutil_impl.h"

#define V(a, b) ((uint32_t)(a) << 16 | (b))
#define RING_PAGES 16 /* per channel: 8 pages each way (7 data pages) */
#define FILETIME_UNIX_EPOCH 116444736000000000ULL

struct tchan {
	uint32_t relid, conn;
	struct gring out; /* guest to host */
	struct gring in;  /* host to guest */
};

struct th {
	struct fake *f;
	struct hvutils *u;
	struct {
		void (*fn)(void *);
		void *arg;
	} q[256];
	unsigned nq;
	uint64_t now_ms, ref;
	uint32_t next_gpadl;
	struct tchan ch[HVUTIL_NSERVICES];
};

static int th_schedule(void *o, void (*fn)(void *), void *arg)
{
	struct th *t = o;
	if (t->nq >= 256)
		return -ENOMEM;
	t->q[t->nq].fn = fn;
	t->q[t->nq].arg = arg;
	t->nq++;
	return 0;
}

static void th_run(struct th *t)
{
	for (unsigned guard = 0; t->nq && guard < 1000; guard++) {
		void (*fn)(void *) = t->q[0].fn;
		void *arg = t->q[0].arg;
		memmove(&t->q[0], &t->q[1], --t->nq * sizeof(t->q[0]));
		fn(arg);
	}
}

static void th_flush(void *o)
{
	th_run(o);
}

static uint64_t real_filetime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return FILETIME_UNIX_EPOCH + (uint64_t)ts.tv_sec * 10000000ULL +
	       (uint64_t)ts.tv_nsec / 100;
}

static uint64_t th_filetime(void *o)
{
	(void)o;
	return real_filetime();
}

static uint64_t th_ref(void *o)
{
	return ((struct th *)o)->ref;
}

static uint64_t th_now(void *o)
{
	return ((struct th *)o)->now_ms;
}

/* The hv_utils class GUIDs' first bytes in wire order (guid_t is LE). */
static int service_of(const uint8_t *if_type)
{
	static const uint8_t first[HVUTIL_NSERVICES][4] = {
		[HVUTIL_SHUTDOWN] = { 0x31, 0x60, 0x0b, 0x0e },
		[HVUTIL_HEARTBEAT] = { 0x39, 0x4f, 0x16, 0x57 },
		[HVUTIL_TIMESYNC] = { 0x30, 0xe6, 0x27, 0x95 },
		[HVUTIL_KVP] = { 0xe7, 0xf4, 0xa0, 0xa9 },
	};
	for (int s = 0; s < HVUTIL_NSERVICES; s++)
		if (!memcmp(if_type, first[s], 4))
			return s;
	return -1;
}

/* Devices created, guest connected (VMBus 5.3) and given the four offers. */
static struct th *th_new(void)
{
	struct th *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->f = fake_new(0, 1);
	t->now_ms = 100000;
	t->ref = 123456789;
	struct hvutil_host h = {
		.opaque = t, .schedule = th_schedule, .flush = th_flush,
		.filetime = th_filetime, .ref_time = th_ref, .now_ms = th_now,
	};
	assert_int_equal(hvutil_create(t->f->srv, &h, &t->u), 0);
	assert_int_equal(guest_contact(t->f, 4, V(5, 3), 0), 0);
	struct fake_msg *m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 15);
	assert_int_not_equal(m->b[8], 0);
	guest_simple(t->f, 3, 0, 0);
	unsigned seen = 0;
	while ((m = fake_next(t->f)) && m32(m, 0) == 1) {
		int s = service_of(m->b + 8);
		assert_true(s >= 0);
		t->ch[s].relid = m32(m, 184);
		t->ch[s].conn = m32(m, 192);
		seen |= 1u << s;
	}
	assert_int_equal(seen, 0xF);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 4); /* ALLOFFERS_DELIVERED */
	return t;
}

static void th_free(struct th *t)
{
	fake_free(t->f); /* closes the channels: the devices' close() runs */
	hvutil_destroy(t->u);
	free(t);
}

/* The guest opens service s's channel; the device queues its NEGOTIATE. */
static void th_open(struct th *t, int s)
{
	struct tchan *c = &t->ch[s];
	uint64_t pfns[RING_PAGES];
	uint64_t base = 32 + (uint64_t)s * RING_PAGES;
	for (unsigned i = 0; i < RING_PAGES; i++)
		pfns[i] = base + i;
	uint32_t gpadl = 0x100 + t->next_gpadl++;
	memset(t->f->ram + base * 4096, 0, RING_PAGES * 4096); /* fresh rings */
	guest_gpadl(t->f, c->relid, gpadl, pfns, RING_PAGES);
	struct fake_msg *m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 10);
	assert_int_equal(m32(m, 16), 0);
	guest_open(t->f, c->relid, gpadl, 0, RING_PAGES / 2);
	m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 6);
	assert_int_equal(m32(m, 16), 0);
	c->out.hdr = t->f->ram + base * 4096;
	c->in.hdr = t->f->ram + (base + RING_PAGES / 2) * 4096;
	for (unsigned i = 0; i < RING_PAGES / 2 - 1; i++) {
		c->out.data[i] = t->f->ram + (base + 1 + i) * 4096;
		c->in.data[i] = t->f->ram + (base + RING_PAGES / 2 + 1 + i) * 4096;
	}
	c->out.size = c->in.size = (RING_PAGES / 2 - 1) * 4096;
	th_run(t);
}

/* One host packet on s: returns its payload length, -EAGAIN if none. */
static int g_read(struct th *t, int s, uint8_t *buf, uint32_t buflen, uint64_t *xid)
{
	uint8_t d[16];
	uint64_t trailer;
	int n = gring_read(&t->ch[s].in, d, buf, buflen, &trailer);
	if (n >= 0) {
		uint16_t type;
		memcpy(&type, d, 2);
		assert_int_equal(type, 6); /* inband */
		memcpy(xid, d + 8, 8);
	}
	return n;
}

/* The guest writes a packet on s, signals, and the device's work runs. */
static void g_write(struct th *t, int s, const void *p, uint32_t len, uint64_t xid)
{
	assert_true(gring_write(&t->ch[s].out, xid, p, len));
	assert_int_equal(vmbus_server_signal_event(t->f->srv, t->ch[s].conn), 0);
	th_run(t);
}

static struct icmsg_hdr *ic_hdr(uint8_t *p)
{
	return (struct icmsg_hdr *)(void *)(p + sizeof(struct vmbuspipe_hdr));
}

/* vmbus_prep_negotiate_resp: picks the first of the guest's lists the host offers. */
static void linux_negotiate_resp(uint8_t *p, uint32_t len, const uint32_t *fw, unsigned nfw,
				 const uint32_t *srv, unsigned nsrv)
{
	struct icmsg_hdr *h = ic_hdr(p);
	struct icmsg_negotiate neg;
	memcpy(&neg, p + ICMSG_HDR, sizeof(neg));
	struct ic_version *v = (struct ic_version *)(void *)(p + ICMSG_HDR + sizeof(neg));
	assert_true(ICMSG_HDR + sizeof(neg) + 4u * (neg.icframe_vercnt + neg.icmsg_vercnt) <= len);
	struct ic_version cfw = { 0, 0 }, csrv = { 0, 0 };
	bool okfw = false, oksrv = false;
	for (unsigned i = 0; i < nfw && !okfw; i++)
		for (unsigned j = 0; j < neg.icframe_vercnt && !okfw; j++)
			if (V(v[j].major, v[j].minor) == fw[i]) {
				cfw = v[j];
				okfw = true;
			}
	for (unsigned i = 0; i < nsrv && okfw && !oksrv; i++)
		for (unsigned j = neg.icframe_vercnt; j < neg.icframe_vercnt + neg.icmsg_vercnt && !oksrv; j++)
			if (V(v[j].major, v[j].minor) == srv[i]) {
				csrv = v[j];
				oksrv = true;
			}
	h->icmsgsize = 0x10;
	neg.icframe_vercnt = neg.icmsg_vercnt = oksrv ? 1 : 0;
	memcpy(p + ICMSG_HDR, &neg, sizeof(neg));
	v[0] = cfw;
	v[1] = csrv;
	h->icflags = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
}

static const uint32_t linux_fw[] = { V(3, 0), V(1, 0) };
static const uint32_t linux_versions[HVUTIL_NSERVICES][4] = {
	[HVUTIL_SHUTDOWN] = { V(3, 2), V(3, 1), V(3, 0), V(1, 0) },
	[HVUTIL_HEARTBEAT] = { V(3, 0), V(1, 0) },
	[HVUTIL_TIMESYNC] = { V(4, 0), V(3, 0), V(1, 0) },
	[HVUTIL_KVP] = { V(4, 0), V(3, 0), V(1, 0) },
};
static const unsigned linux_nversions[HVUTIL_NSERVICES] = { 4, 2, 3, 3 };

static uint8_t pkt[16384];

/* Opens s and answers its NEGOTIATE with the guest's versions srv[0..n). */
static void th_negotiate(struct th *t, int s, const uint32_t *srv, unsigned n)
{
	th_open(t, s);
	uint64_t xid;
	int len = g_read(t, s, pkt, sizeof(pkt), &xid);
	assert_true(len >= (int)ICMSG_HDR + 8);
	assert_int_equal(ic_hdr(pkt)->icmsgtype, ICMSGTYPE_NEGOTIATE);
	assert_int_equal(ic_hdr(pkt)->icflags, ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_REQUEST);
	linux_negotiate_resp(pkt, (uint32_t)len, linux_fw, 2, srv, n);
	g_write(t, s, pkt, (uint32_t)len, xid);
}

static void th_negotiate_linux(struct th *t, int s)
{
	th_negotiate(t, s, linux_versions[s], linux_nversions[s]);
}

static void test_negotiate_newest(void **state)
{
	(void)state;
	struct th *t = th_new();
	for (int s = 0; s < HVUTIL_NSERVICES; s++)
		assert_int_equal(hvutil_version(t->u, s), 0);
	for (int s = 0; s < HVUTIL_NSERVICES; s++)
		th_negotiate_linux(t, s);
	assert_int_equal(hvutil_version(t->u, HVUTIL_SHUTDOWN), V(3, 2));
	assert_int_equal(hvutil_version(t->u, HVUTIL_HEARTBEAT), V(3, 0));
	assert_int_equal(hvutil_version(t->u, HVUTIL_TIMESYNC), V(4, 0));
	assert_int_equal(hvutil_version(t->u, HVUTIL_KVP), V(4, 0));
	th_free(t);
}

/* The NEGOTIATE request offers framework 3.0, 1.0 and the service's versions. */
static void test_negotiate_request(void **state)
{
	(void)state;
	struct th *t = th_new();
	th_open(t, HVUTIL_SHUTDOWN);
	uint64_t xid;
	int len = g_read(t, HVUTIL_SHUTDOWN, pkt, sizeof(pkt), &xid);
	assert_true(len >= (int)(ICMSG_HDR + 8 + 6 * 4));
	struct icmsg_negotiate neg;
	memcpy(&neg, pkt + ICMSG_HDR, sizeof(neg));
	assert_int_equal(neg.icframe_vercnt, 2);
	assert_int_equal(neg.icmsg_vercnt, 4);
	uint16_t v[12];
	memcpy(v, pkt + ICMSG_HDR + 8, sizeof(v));
	const uint16_t want[12] = { 3, 0, 1, 0, 3, 2, 3, 1, 3, 0, 1, 0 };
	assert_memory_equal(v, want, sizeof(want));
	assert_int_equal(g_read(t, HVUTIL_SHUTDOWN, pkt, sizeof(pkt), &xid), -EAGAIN);
	th_free(t);
}

static void test_negotiate_old(void **state)
{
	(void)state;
	struct th *t = th_new();
	const uint32_t ws2008[] = { V(1, 0) };
	th_negotiate(t, HVUTIL_SHUTDOWN, ws2008, 1);
	th_negotiate(t, HVUTIL_HEARTBEAT, ws2008, 1);
	assert_int_equal(hvutil_version(t->u, HVUTIL_SHUTDOWN), V(1, 0));
	assert_int_equal(hvutil_version(t->u, HVUTIL_HEARTBEAT), V(1, 0));
	th_free(t);
}

/* A guest that accepts none of our versions: nothing negotiated, no retry loop. */
static void test_negotiate_refused(void **state)
{
	(void)state;
	struct th *t = th_new();
	const uint32_t none[] = { V(9, 9) };
	th_negotiate(t, HVUTIL_SHUTDOWN, none, 1);
	assert_int_equal(hvutil_version(t->u, HVUTIL_SHUTDOWN), 0);
	assert_int_equal(hvutil_request_shutdown(t->u, false, false), -ENODEV);
	uint64_t xid;
	assert_int_equal(g_read(t, HVUTIL_SHUTDOWN, pkt, sizeof(pkt), &xid), -EAGAIN);
	hvutil_tick(t->u);
	assert_int_equal(g_read(t, HVUTIL_SHUTDOWN, pkt, sizeof(pkt), &xid), -EAGAIN);
	th_free(t);
}

/* Answers that pick versions we never offered, or bad counts, are refused. */
static void test_negotiate_bad_answers(void **state)
{
	(void)state;
	for (int kind = 0; kind < 4; kind++) {
		struct th *t = th_new();
		th_open(t, HVUTIL_HEARTBEAT);
		uint64_t xid;
		int len = g_read(t, HVUTIL_HEARTBEAT, pkt, sizeof(pkt), &xid);
		assert_true(len > 0);
		linux_negotiate_resp(pkt, (uint32_t)len, linux_fw, 2,
				     linux_versions[HVUTIL_HEARTBEAT], 2);
		struct icmsg_negotiate neg = { 1, 1, 0 };
		struct ic_version bad = { 7, 7 };
		if (kind == 0)
			memcpy(pkt + ICMSG_HDR + 8 + 4, &bad, 4);      /* service 7.7 */
		else if (kind == 1)
			memcpy(pkt + ICMSG_HDR + 8, &bad, 4);          /* framework 7.7 */
		else if (kind == 2)
			neg.icframe_vercnt = 100, neg.icmsg_vercnt = 0xFFFF;
		else
			neg.icmsg_vercnt = 2;
		if (kind >= 2)
			memcpy(pkt + ICMSG_HDR, &neg, sizeof(neg));
		g_write(t, HVUTIL_HEARTBEAT, pkt, (uint32_t)len, xid);
		assert_int_equal(hvutil_version(t->u, HVUTIL_HEARTBEAT), 0);
		th_free(t);
	}
}

/* Guest side of one request on s: reads it, lets fix() edit it, answers. */
static int g_answer(struct th *t, int s, uint32_t status,
		    void (*fix)(uint8_t *p, int len, void *arg), void *arg)
{
	uint64_t xid;
	int len = g_read(t, s, pkt, sizeof(pkt), &xid);
	if (len < 0)
		return len;
	struct icmsg_hdr *h = ic_hdr(pkt);
	h->status = status;
	h->icflags = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
	if (fix)
		fix(pkt, len, arg);
	g_write(t, s, pkt, (uint32_t)len, xid);
	return len;
}

static void hb_echo(uint8_t *p, int len, void *arg)
{
	(void)arg;
	assert_int_equal(ic_hdr(p)->icmsgtype, ICMSGTYPE_HEARTBEAT);
	assert_true(len >= (int)(ICMSG_HDR + sizeof(struct heartbeat_msg_data)));
	uint64_t seq;
	memcpy(&seq, p + ICMSG_HDR, 8);
	seq += 1;
	memcpy(p + ICMSG_HDR, &seq, 8);
}

static void hb_wrong(uint8_t *p, int len, void *arg)
{
	(void)len;
	(void)arg;
	uint64_t seq;
	memcpy(&seq, p + ICMSG_HDR, 8);
	seq += 5;
	memcpy(p + ICMSG_HDR, &seq, 8);
}

static void test_heartbeat(void **state)
{
	(void)state;
	struct th *t = th_new();
	assert_false(hvutil_guest_alive(t->u));
	th_negotiate_linux(t, HVUTIL_HEARTBEAT);
	hvutil_tick(t->u);
	uint64_t xid;
	int len = g_read(t, HVUTIL_HEARTBEAT, pkt, sizeof(pkt), &xid);
	assert_true(len >= (int)(ICMSG_HDR + 40));
	assert_int_equal(ic_hdr(pkt)->icvermsg.major, 3);
	uint64_t seq1;
	memcpy(&seq1, pkt + ICMSG_HDR, 8);
	assert_int_equal(seq1, 1);
	/* Not answered: not alive; a tick does not stack a second request. */
	hvutil_tick(t->u);
	assert_int_equal(g_read(t, HVUTIL_HEARTBEAT, pkt, sizeof(pkt), &xid), -EAGAIN);
	assert_false(hvutil_guest_alive(t->u));
	/* An answer with the wrong sequence does not count. */
	t->now_ms += HVUTIL_REQUEST_TIMEOUT_MS + 1;
	hvutil_tick(t->u);
	assert_true(g_answer(t, HVUTIL_HEARTBEAT, 0, hb_wrong, NULL) > 0);
	assert_false(hvutil_guest_alive(t->u));
	/* Echoing seq + 1 does, with a fresh sequence number. */
	t->now_ms += HVUTIL_REQUEST_TIMEOUT_MS + 1;
	hvutil_tick(t->u);
	assert_true(g_answer(t, HVUTIL_HEARTBEAT, 0, hb_echo, NULL) > 0);
	assert_true(hvutil_guest_alive(t->u));
	t->now_ms += HVUTIL_ALIVE_MS + 1;
	assert_false(hvutil_guest_alive(t->u));
	hvutil_tick(t->u);
	assert_true(g_answer(t, HVUTIL_HEARTBEAT, 0, hb_echo, NULL) > 0);
	assert_true(hvutil_guest_alive(t->u));
	th_free(t);
}

static void check_shutdown(uint8_t *p, int len, void *arg)
{
	uint32_t want = *(uint32_t *)arg;
	assert_int_equal(ic_hdr(p)->icmsgtype, ICMSGTYPE_SHUTDOWN);
	assert_true(len >= 2088);
	struct shutdown_msg_data m;
	memcpy(&m, p + ICMSG_HDR, sizeof(m));
	assert_int_equal(m.flags, want);
}

static void test_shutdown(void **state)
{
	(void)state;
	struct th *t = th_new();
	assert_int_equal(hvutil_request_shutdown(t->u, false, false), -ENODEV);
	th_negotiate_linux(t, HVUTIL_SHUTDOWN);
	assert_int_equal(hvutil_shutdown_status(t->u), -1);
	assert_int_equal(hvutil_request_shutdown(t->u, false, false), 0);
	assert_int_equal(hvutil_request_shutdown(t->u, true, false), -EBUSY);
	uint32_t flags = 0;
	assert_true(g_answer(t, HVUTIL_SHUTDOWN, HV_S_OK, check_shutdown, &flags) >= 2088);
	assert_int_equal(hvutil_shutdown_status(t->u), 0);
	/* Reboot: flags 2; a guest that fails it reports HV_E_FAIL. */
	assert_int_equal(hvutil_request_shutdown(t->u, true, false), 0);
	assert_int_equal(hvutil_shutdown_status(t->u), -1);
	flags = 2;
	assert_true(g_answer(t, HVUTIL_SHUTDOWN, HV_E_FAIL, check_shutdown, &flags) > 0);
	assert_int_equal(hvutil_shutdown_status(t->u), HV_E_FAIL);
	/* Forced: bit 0 on top (1 power off, 3 reboot). */
	assert_int_equal(hvutil_request_shutdown(t->u, false, true), 0);
	flags = 1;
	assert_true(g_answer(t, HVUTIL_SHUTDOWN, HV_S_OK, check_shutdown, &flags) > 0);
	assert_int_equal(hvutil_request_shutdown(t->u, true, true), 0);
	flags = 3;
	assert_true(g_answer(t, HVUTIL_SHUTDOWN, HV_S_OK, check_shutdown, &flags) > 0);
	/* The guest closes the channel: no shutdown service any more. */
	guest_simple(t->f, 7, t->ch[HVUTIL_SHUTDOWN].relid, 0);
	assert_int_equal(hvutil_request_shutdown(t->u, false, false), -ENODEV);
	th_free(t);
}

static void test_timesync_v4(void **state)
{
	(void)state;
	struct th *t = th_new();
	uint64_t before = real_filetime();
	th_negotiate_linux(t, HVUTIL_TIMESYNC);
	/* Right after negotiation: SYNC with the wall clock and reference time. */
	uint64_t xid;
	int len = g_read(t, HVUTIL_TIMESYNC, pkt, sizeof(pkt), &xid);
	uint64_t after = real_filetime();
	assert_true(len >= (int)(ICMSG_HDR + sizeof(struct ictimesync_ref_data)));
	assert_int_equal(ic_hdr(pkt)->icmsgtype, ICMSGTYPE_TIMESYNC);
	assert_int_equal(ic_hdr(pkt)->icmsgsize, sizeof(struct ictimesync_ref_data));
	struct ictimesync_ref_data d;
	memcpy(&d, pkt + ICMSG_HDR, sizeof(d));
	assert_int_equal(d.flags, ICTIMESYNCFLAG_SYNC);
	assert_true(d.parenttime >= before && d.parenttime <= after);
	/* 2026 is about 1.34e17 in FILETIME units */
	assert_true(d.parenttime > 130000000000000000ULL);
	assert_int_equal(d.vmreferencetime, 123456789);
	ic_hdr(pkt)->icflags = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
	g_write(t, HVUTIL_TIMESYNC, pkt, (uint32_t)len, xid);
	/* Periodic SAMPLEs, not before HVUTIL_TIMESYNC_MS. */
	hvutil_tick(t->u);
	assert_int_equal(g_read(t, HVUTIL_TIMESYNC, pkt, sizeof(pkt), &xid), -EAGAIN);
	t->now_ms += HVUTIL_TIMESYNC_MS;
	t->ref += 50000000;
	hvutil_tick(t->u);
	len = g_read(t, HVUTIL_TIMESYNC, pkt, sizeof(pkt), &xid);
	assert_true(len > 0);
	memcpy(&d, pkt + ICMSG_HDR, sizeof(d));
	assert_int_equal(d.flags, ICTIMESYNCFLAG_SAMPLE);
	assert_int_equal(d.vmreferencetime, 123456789 + 50000000);
	th_free(t);
}

static void test_timesync_v3(void **state)
{
	(void)state;
	struct th *t = th_new();
	const uint32_t v3[] = { V(3, 0) };
	uint64_t before = real_filetime();
	th_negotiate(t, HVUTIL_TIMESYNC, v3, 1);
	assert_int_equal(hvutil_version(t->u, HVUTIL_TIMESYNC), V(3, 0));
	uint64_t xid;
	int len = g_read(t, HVUTIL_TIMESYNC, pkt, sizeof(pkt), &xid);
	assert_true(len >= (int)(ICMSG_HDR + sizeof(struct ictimesync_data)));
	assert_int_equal(ic_hdr(pkt)->icmsgsize, sizeof(struct ictimesync_data));
	struct ictimesync_data d;
	memcpy(&d, pkt + ICMSG_HDR, sizeof(d));
	assert_int_equal(d.flags, ICTIMESYNCFLAG_SYNC);
	assert_true(d.parenttime >= before && d.parenttime <= real_filetime());
	th_free(t);
}

struct kvp_answer {
	const char *key, *value;
	uint8_t pool;
	uint32_t index;
};

static void put_utf16(uint8_t *dst, const char *s, uint32_t *size)
{
	uint32_t n = 0;
	for (; *s; s++, n += 2)
		dst[n] = (uint8_t)*s;
	*size = n + 2;
}

static void kvp_fill(uint8_t *p, int len, void *arg)
{
	struct kvp_answer *a = arg;
	assert_int_equal(ic_hdr(p)->icmsgtype, ICMSGTYPE_KVPEXCHANGE);
	assert_true(len >= (int)(ICMSG_HDR + HV_KVP_MSG_SIZE));
	struct hv_kvp_msg *m = (struct hv_kvp_msg *)(void *)(p + ICMSG_HDR);
	assert_int_equal(m->operation, KVP_OP_ENUMERATE);
	assert_int_equal(m->pool, a->pool);
	assert_int_equal(m->body.kvp_enum_data.index, a->index);
	if (a->key) {
		struct hv_kvp_exchg_msg_value *v = &m->body.kvp_enum_data.data;
		uint32_t ks, vs;
		v->value_type = REG_SZ;
		put_utf16(v->key, a->key, &ks);
		put_utf16(v->value, a->value, &vs);
		v->key_size = ks;
		v->value_size = vs;
	}
}

static char *kvp_text(struct th *t)
{
	static char buf[4096];
	memset(buf, 0, sizeof(buf));
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
	assert_non_null(f);
	hvutil_kvp_print(t->u, f);
	fclose(f);
	return buf;
}

static void test_kvp(void **state)
{
	(void)state;
	struct th *t = th_new();
	th_negotiate_linux(t, HVUTIL_KVP);
	assert_non_null(strstr(kvp_text(t), "no KVP items"));
	/* Pool AUTO: two items, then the guest fails index 2; pool GUEST: empty. */
	struct kvp_answer a[] = {
		{ "OSName", "Debian GNU/Linux", KVP_POOL_AUTO, 0 },
		{ "HostName", "deb", KVP_POOL_AUTO, 1 },
		{ NULL, NULL, KVP_POOL_AUTO, 2 },
		{ NULL, NULL, KVP_POOL_GUEST, 0 },
	};
	for (unsigned i = 0; i < 4; i++) {
		hvutil_tick(t->u);
		assert_true(g_answer(t, HVUTIL_KVP, a[i].key ? HV_S_OK : HV_E_FAIL, kvp_fill,
				     &a[i]) > 0);
	}
	const char *s = kvp_text(t);
	assert_non_null(strstr(s, "pool 2 OSName=Debian GNU/Linux\n"));
	assert_non_null(strstr(s, "pool 2 HostName=deb\n"));
	/* The round is over: nothing more until the next one. */
	hvutil_tick(t->u);
	uint64_t xid;
	assert_int_equal(g_read(t, HVUTIL_KVP, pkt, sizeof(pkt), &xid), -EAGAIN);
	/* The next round replaces a changed value rather than adding an item. */
	t->now_ms += 60000;
	struct kvp_answer b = { "HostName", "deb2", KVP_POOL_AUTO, 0 };
	hvutil_tick(t->u);
	assert_true(g_answer(t, HVUTIL_KVP, HV_S_OK, kvp_fill, &b) > 0);
	s = kvp_text(t);
	assert_non_null(strstr(s, "pool 2 HostName=deb2\n"));
	assert_null(strstr(s, "HostName=deb\n"));
	/* The guest reconnects (a reboot): the old items are gone. */
	guest_simple(t->f, 7, t->ch[HVUTIL_KVP].relid, 0);
	th_negotiate_linux(t, HVUTIL_KVP);
	assert_non_null(strstr(kvp_text(t), "no KVP items"));
	th_free(t);
}

/* A guest whose daemon fails every exchange (HV_E_FAIL): nothing is reported. */
static void test_kvp_failures(void **state)
{
	(void)state;
	struct th *t = th_new();
	th_negotiate_linux(t, HVUTIL_KVP);
	for (unsigned i = 0; i < 2; i++) {
		hvutil_tick(t->u);
		assert_true(g_answer(t, HVUTIL_KVP, HV_E_FAIL, NULL, NULL) > 0);
	}
	assert_non_null(strstr(kvp_text(t), "no KVP items"));
	th_free(t);
}

/* KVP items with hostile sizes are not stored. */
static void kvp_huge(uint8_t *p, int len, void *arg)
{
	(void)len;
	(void)arg;
	struct hv_kvp_msg *m = (struct hv_kvp_msg *)(void *)(p + ICMSG_HDR);
	m->body.kvp_enum_data.data.key_size = 0xFFFFFFFFu;
	m->body.kvp_enum_data.data.value_size = 0xFFFFFFFFu;
}

static void test_kvp_hostile(void **state)
{
	(void)state;
	struct th *t = th_new();
	th_negotiate_linux(t, HVUTIL_KVP);
	hvutil_tick(t->u);
	assert_true(g_answer(t, HVUTIL_KVP, HV_S_OK, kvp_huge, NULL) > 0);
	assert_non_null(strstr(kvp_text(t), "no KVP items"));
	th_free(t);
}

/* Runs fn with stderr (hvmm's log) captured into buf. */
static void capture_log(char *buf, size_t len, void (*fn)(struct th *t, void *arg), struct th *t,
			void *arg)
{
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	assert_true(saved >= 0 && tmp);
	assert_true(dup2(fileno(tmp), 2) == 2);
	fn(t, arg);
	fflush(stderr);
	assert_true(dup2(saved, 2) == 2);
	close(saved);
	rewind(tmp);
	size_t n = fread(buf, 1, len - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
}

struct late { uint64_t xid; int len; };

static void write_answer(struct th *t, void *arg)
{
	struct late *l = arg;
	g_write(t, HVUTIL_KVP, pkt, (uint32_t)l->len, l->xid);
	th_run(t);
}

/*
 * A guest slower than HVUTIL_REQUEST_TIMEOUT_MS (a loaded host): its late
 * answer is dropped quietly, the next request goes out and is answered; an
 * answer to a transaction that was never sent is still reported.
 */
static void test_late_answer(void **state)
{
	(void)state;
	struct th *t = th_new();
	th_negotiate_linux(t, HVUTIL_KVP);
	hvutil_tick(t->u);
	struct late l;
	l.len = g_read(t, HVUTIL_KVP, pkt, sizeof(pkt), &l.xid);
	assert_true(l.len > 0);
	struct icmsg_hdr *h = ic_hdr(pkt);
	h->status = HV_E_FAIL;
	h->icflags = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
	uint8_t late_pkt[sizeof(pkt)];
	memcpy(late_pkt, pkt, sizeof(pkt));
	/* The request times out; a tick sends it again with a new transaction id. */
	t->now_ms += HVUTIL_REQUEST_TIMEOUT_MS + 1;
	hvutil_tick(t->u);
	hvutil_tick(t->u);
	uint64_t xid2;
	int len2 = g_read(t, HVUTIL_KVP, pkt, sizeof(pkt), &xid2);
	assert_true(len2 > 0);
	assert_true(xid2 != l.xid);
	uint8_t second[sizeof(pkt)];
	memcpy(second, pkt, sizeof(pkt));
	/* The first answer arrives late: dropped without a warning. */
	char log[1024];
	memcpy(pkt, late_pkt, sizeof(pkt));
	capture_log(log, sizeof(log), write_answer, t, &l);
	assert_null(strstr(log, "did not send"));
	/* The same transaction again is one we are not waiting for: reported. */
	capture_log(log, sizeof(log), write_answer, t, &l);
	assert_non_null(strstr(log, "did not send"));
	/* The second request still completes (its answer ends pool AUTO). */
	memcpy(pkt, second, sizeof(pkt));
	h = ic_hdr(pkt);
	h->status = HV_E_FAIL;
	h->icflags = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
	struct late l2 = { xid2, len2 };
	capture_log(log, sizeof(log), write_answer, t, &l2);
	assert_null(strstr(log, "did not send"));
	hvutil_tick(t->u);
	uint64_t xid3;
	assert_true(g_read(t, HVUTIL_KVP, pkt, sizeof(pkt), &xid3) > 0); /* pool GUEST's */
	assert_true(xid3 != xid2);
	th_free(t);
}

/* ---- hostile guests ------------------------------------------------------- */

static void test_hostile_packets(void **state)
{
	(void)state;
	struct th *t = th_new();
	th_negotiate_linux(t, HVUTIL_SHUTDOWN);
	assert_int_equal(hvutil_request_shutdown(t->u, false, false), 0);
	uint64_t xid;
	int len = g_read(t, HVUTIL_SHUTDOWN, pkt, sizeof(pkt), &xid);
	assert_true(len >= 2088);
	struct icmsg_hdr *h = ic_hdr(pkt);
	h->icflags = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
	h->status = 0;
	/* Short packets: nothing, a pipe header only, a truncated icmsg header. */
	uint8_t shortp[27];
	memcpy(shortp, pkt, sizeof(shortp));
	g_write(t, HVUTIL_SHUTDOWN, shortp, 0, xid);
	g_write(t, HVUTIL_SHUTDOWN, shortp, 8, xid);
	g_write(t, HVUTIL_SHUTDOWN, shortp, sizeof(shortp), xid);
	assert_int_equal(hvutil_shutdown_status(t->u), -1);
	/* The right header but a shorter body than the request had. */
	g_write(t, HVUTIL_SHUTDOWN, pkt, 100, xid);
	assert_int_equal(hvutil_shutdown_status(t->u), -1);
	/* Unknown transaction ids: ignored. */
	g_write(t, HVUTIL_SHUTDOWN, pkt, (uint32_t)len, xid + 1);
	g_write(t, HVUTIL_SHUTDOWN, pkt, (uint32_t)len, 0);
	assert_int_equal(hvutil_shutdown_status(t->u), -1);
	/* The wrong message type, or no RESPONSE flag (a request from the guest). */
	h->icmsgtype = ICMSGTYPE_HEARTBEAT;
	g_write(t, HVUTIL_SHUTDOWN, pkt, (uint32_t)len, xid);
	h->icmsgtype = ICMSGTYPE_SHUTDOWN;
	h->icflags = ICMSGHDRFLAG_REQUEST;
	g_write(t, HVUTIL_SHUTDOWN, pkt, (uint32_t)len, xid);
	assert_int_equal(hvutil_shutdown_status(t->u), -1);
	assert_int_equal(hvutil_request_shutdown(t->u, false, false), -EBUSY);
	/* The real answer still works, and only once. */
	h->icflags = ICMSGHDRFLAG_TRANSACTION | ICMSGHDRFLAG_RESPONSE;
	g_write(t, HVUTIL_SHUTDOWN, pkt, (uint32_t)len, xid);
	assert_int_equal(hvutil_shutdown_status(t->u), 0);
	h->status = HV_E_FAIL;
	g_write(t, HVUTIL_SHUTDOWN, pkt, (uint32_t)len, xid);
	assert_int_equal(hvutil_shutdown_status(t->u), 0);
	/* A packet too big for the device's buffer is dropped. */
	static uint8_t big[HVUTIL_PKT_MAX + 64];
	memset(big, 0xAB, sizeof(big));
	g_write(t, HVUTIL_SHUTDOWN, big, sizeof(big), xid);
	assert_int_equal(hvutil_request_shutdown(t->u, false, false), 0);
	th_free(t);
}

/* A negotiation answer with a short body, or a wrong size: refused. */
static void test_hostile_negotiate(void **state)
{
	(void)state;
	struct th *t = th_new();
	th_open(t, HVUTIL_KVP);
	uint64_t xid;
	int len = g_read(t, HVUTIL_KVP, pkt, sizeof(pkt), &xid);
	assert_true(len > 0);
	linux_negotiate_resp(pkt, (uint32_t)len, linux_fw, 2, linux_versions[HVUTIL_KVP], 3);
	g_write(t, HVUTIL_KVP, pkt, ICMSG_HDR + 12, xid); /* body cut */
	assert_int_equal(hvutil_version(t->u, HVUTIL_KVP), 0);
	ic_hdr(pkt)->icmsgsize = 0xFFFF; /* ignored: lengths come from the packet */
	g_write(t, HVUTIL_KVP, pkt, (uint32_t)len, xid);
	assert_int_equal(hvutil_version(t->u, HVUTIL_KVP), V(4, 0));
	th_free(t);
}

/* KVP's NEGOTIATE may be answered late (Linux waits for hv_kvp_daemon): no timeout. */
static void test_slow_negotiate(void **state)
{
	(void)state;
	struct th *t = th_new();
	th_open(t, HVUTIL_KVP);
	uint64_t xid;
	int len = g_read(t, HVUTIL_KVP, pkt, sizeof(pkt), &xid);
	assert_true(len > 0);
	for (int i = 0; i < 60; i++) {
		t->now_ms += 1000;
		hvutil_tick(t->u);
	}
	linux_negotiate_resp(pkt, (uint32_t)len, linux_fw, 2, linux_versions[HVUTIL_KVP], 3);
	g_write(t, HVUTIL_KVP, pkt, (uint32_t)len, xid);
	assert_int_equal(hvutil_version(t->u, HVUTIL_KVP), V(4, 0));
	th_free(t);
}

/* A VM reset closes every channel: the services are gone until renegotiated. */
static void test_reset(void **state)
{
	(void)state;
	struct th *t = th_new();
	for (int s = 0; s < HVUTIL_NSERVICES; s++)
		th_negotiate_linux(t, s);
	hvutil_tick(t->u);
	assert_true(g_answer(t, HVUTIL_HEARTBEAT, 0, hb_echo, NULL) > 0);
	assert_true(hvutil_guest_alive(t->u));
	vmbus_server_reset(t->f->srv);
	for (int s = 0; s < HVUTIL_NSERVICES; s++)
		assert_int_equal(hvutil_version(t->u, s), 0);
	assert_int_equal(hvutil_request_shutdown(t->u, false, false), -ENODEV);
	hvutil_tick(t->u); /* nothing to send on closed channels */
	th_run(t);
	th_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_negotiate_newest),
		cmocka_unit_test(test_negotiate_request),
		cmocka_unit_test(test_negotiate_old),
		cmocka_unit_test(test_negotiate_refused),
		cmocka_unit_test(test_negotiate_bad_answers),
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_timesync_v4),
		cmocka_unit_test(test_timesync_v3),
		cmocka_unit_test(test_late_answer), /* first to log "did not send" */
		cmocka_unit_test(test_kvp),
		cmocka_unit_test(test_kvp_failures),
		cmocka_unit_test(test_kvp_hostile),
		cmocka_unit_test(test_hostile_packets),
		cmocka_unit_test(test_hostile_negotiate),
		cmocka_unit_test(test_slow_negotiate),
		cmocka_unit_test(test_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
