/*
 * Unit tests for hv_sock connections (src/dev/hvsock.c) on the real VMBus
 * server with the fake host (test_vmbus_fake.h), this file playing Linux
 * 6.1's hyperv_transport.c on the guest side of the rings: the offer's
 * fields, the vmpipe framing both ways, FIN, flow control on a full ring
 * (pending_send_sz and the guest's signal), release and rescind in each
 * state, and hostile packets (each must end the connection with -EPROTO,
 * never crash or read past the packet).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_vmbus_fake.h"
#include "dev/hvsock.h"

#define V(a, b) ((uint32_t)(a) << 16 | (b))
#define RING_PAGES 12 /* 6 pages each way, as Linux's hv_sock (24 KiB) */

struct t {
	struct fake *f;
	struct hvsock *hs;
	unsigned wakes, locks;
	int depth;
	uint32_t relid, conn;
	uint8_t offer[196];
	struct gring out; /* guest to host */
	struct gring in;  /* host to guest */
};

static void t_wake(void *o)
{
	((struct t *)o)->wakes++;
}

static void t_lock(void *o)
{
	struct t *t = o;
	assert_int_equal(t->depth++, 0);
	t->locks++;
}

static void t_unlock(void *o)
{
	struct t *t = o;
	assert_int_equal(--t->depth, 0);
}

/* A guest connected at 5.2, and a host-initiated offer for port 5000. */
static struct t *t_new(bool from_host)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->f = fake_new(0, 1);
	assert_int_equal(guest_contact(t->f, 4, V(5, 2), 0), 0);
	assert_non_null(fake_next(t->f));
	guest_simple(t->f, 3, 0, 0);
	struct fake_msg *m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 4); /* ALLOFFERS_DELIVERED: no offers yet */
	struct hvsock_params p = {
		.from_host = from_host, .wake = t_wake, .wake_opaque = t,
		.lock = t_lock, .unlock = t_unlock, .lock_opaque = t,
	};
	hvsock_port_guid(5000, &p.service);
	memset(p.instance.b, 0xA5, 16);
	assert_int_equal(hvsock_create(t->f->srv, &p, &t->hs), 0);
	m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 1);
	memcpy(t->offer, m->b, sizeof(t->offer));
	t->relid = m32(m, 184);
	t->conn = m32(m, 192);
	assert_int_equal(hvsock_state(t->hs), HVSOCK_OFFERED);
	return t;
}

/* The guest opens the channel (GPADL, OPENCHANNEL) as hvs_open_connection. */
static void t_open(struct t *t)
{
	uint64_t pfns[RING_PAGES];
	for (unsigned i = 0; i < RING_PAGES; i++)
		pfns[i] = 64 + i;
	memset(t->f->ram + 64 * 4096, 0, RING_PAGES * 4096);
	guest_gpadl(t->f, t->relid, 0xE1E10, pfns, RING_PAGES);
	struct fake_msg *m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 10);
	assert_int_equal(m32(m, 16), 0);
	unsigned w = t->wakes;
	guest_open(t->f, t->relid, 0xE1E10, 0, RING_PAGES / 2);
	m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 6);
	assert_int_equal(m32(m, 16), 0);
	assert_true(t->wakes > w);
	t->out.hdr = t->f->ram + 64 * 4096;
	t->in.hdr = t->f->ram + (64 + RING_PAGES / 2) * 4096;
	for (unsigned i = 0; i < RING_PAGES / 2 - 1; i++) {
		t->out.data[i] = t->f->ram + (64 + 1 + i) * 4096;
		t->in.data[i] = t->f->ram + (64 + RING_PAGES / 2 + 1 + i) * 4096;
	}
	t->out.size = t->in.size = (RING_PAGES / 2 - 1) * 4096;
	/* hvs_set_channel_pending_send_size: the guest wants to hear of room. */
	gw32(&t->out, 12, 4120);
	assert_int_equal(hvsock_state(t->hs), HVSOCK_OPEN);
}

/* The guest sends one pipe packet {type, size} + data and signals. */
static void g_send(struct t *t, uint32_t type, uint32_t size, const void *data, uint32_t len)
{
	uint8_t buf[HVSOCK_MTU + 64];
	assert_true(len + 8 <= sizeof(buf));
	p32(buf, 0, type);
	p32(buf, 4, size);
	if (len)
		memcpy(buf + 8, data, len);
	assert_true(gring_write(&t->out, 0, buf, 8 + len));
	vmbus_server_signal_event(t->f->srv, t->conn);
}

/* The guest reads one host packet: returns its data size, data in buf. */
static int g_recv(struct t *t, uint8_t *buf, uint32_t buflen)
{
	uint8_t d[16], pkt[HVSOCK_MTU + 64];
	uint64_t trailer;
	int n = gring_read(&t->in, d, pkt, sizeof(pkt), &trailer);
	if (n < 0)
		return n;
	uint16_t type, off8;
	memcpy(&type, d, 2);
	memcpy(&off8, d + 2, 2);
	assert_int_equal(type, VMBUS_PACKET_DATA_INBAND);
	assert_int_equal(off8, 2); /* the pipe header right after the descriptor */
	assert_true(n >= 8);
	uint32_t ptype, size;
	memcpy(&ptype, pkt, 4);
	memcpy(&size, pkt + 4, 4);
	assert_int_equal(ptype, 1);
	assert_true(size <= (uint32_t)n - 8 && size <= HVSOCK_MTU);
	assert_true(size <= buflen);
	memcpy(buf, pkt + 8, size);
	return (int)size;
}

static void t_free(struct t *t)
{
	fake_free(t->f); /* closes open channels: a released hvsock goes then */
	assert_int_equal(t->depth, 0);
	free(t);
}

static void test_guid(void **state)
{
	(void)state;
	struct vmbus_guid g, p;
	hvsock_port_guid(5000, &g);
	char s[37];
	hvsock_guid_format(&g, s);
	assert_string_equal(s, "00001388-facb-11e6-bd58-64006a7986d3");
	assert_int_equal(vmbus_guid_parse(s, &p), 0);
	assert_memory_equal(g.b, p.b, 16);
	uint32_t port = 0;
	assert_true(hvsock_guid_port(&g, &port));
	assert_int_equal(port, 5000);
	g.b[15] ^= 1;
	assert_false(hvsock_guid_port(&g, &port));
}

static void test_offer(void **state)
{
	(void)state;
	struct t *t = t_new(true);
	static const uint8_t type[16] = { 0x88, 0x13, 0, 0, 0xcb, 0xfa, 0xe6, 0x11,
					  0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3 };
	assert_memory_equal(t->offer + 8, type, 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(t->offer[24 + i], 0xA5);
	uint16_t flags;
	memcpy(&flags, t->offer + 56, 2);
	assert_int_equal(flags, 0x2000);
	assert_int_equal(t->offer[60], 0);  /* pipe mode: byte */
	assert_int_equal(t->offer[64], 1);  /* user_def[0]: from the host */
	assert_int_equal(t->offer[180], 0); /* sub-channel index */
	hvsock_release(t->hs);
	t_free(t);

	t = t_new(false);
	assert_int_equal(t->offer[64], 0);
	hvsock_release(t->hs); /* never opened: freed now */
	struct fake_msg *m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 2); /* RESCIND */
	t_free(t);
}

static void test_data_both_ways(void **state)
{
	(void)state;
	struct t *t = t_new(true);
	const uint8_t *p;
	size_t n;
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), -EPIPE); /* not open */
	assert_int_equal(hvsock_send(t->hs, "x", 1), -EPIPE);
	t_open(t);
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), -EAGAIN);
	unsigned w = t->wakes;
	g_send(t, 1, 5, "hello", 5);
	assert_true(t->wakes > w); /* the guest's signal woke the owner */
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(p, "hello", 5);
	hvsock_recv_consume(t->hs, 2);
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "llo", 3);
	hvsock_recv_consume(t->hs, 3);
	/* A packet with padding beyond data_size: only data_size counts. */
	g_send(t, 1, 3, "abcdefgh", 8);
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), 0);
	assert_int_equal(n, 3);
	hvsock_recv_consume(t->hs, 3);
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), -EAGAIN);

	assert_int_equal(hvsock_send(t->hs, "world!", 6), 6);
	uint8_t buf[HVSOCK_MTU];
	assert_int_equal(g_recv(t, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "world!", 6);
	assert_int_equal(g_recv(t, buf, sizeof(buf)), -EAGAIN);

	/* FIN from the guest, after its data; FIN from the host. */
	g_send(t, 1, 2, "ok", 2);
	g_send(t, 1, 0, NULL, 0);
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), 0);
	hvsock_recv_consume(t->hs, n);
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), 1);
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), 1);
	assert_int_equal(hvsock_send_fin(t->hs), 0);
	assert_int_equal(g_recv(t, buf, sizeof(buf)), 0);
	assert_int_equal(hvsock_send(t->hs, "late", 4), -EPIPE);
	uint64_t to, from;
	hvsock_counters(t->hs, &to, &from);
	assert_int_equal(to, 6);
	assert_int_equal(from, 5 + 3 + 2);

	/* Release while open: rescind now, freed when the guest closes. */
	hvsock_release(t->hs);
	struct fake_msg *m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 2);
	unsigned wakes = t->wakes;
	guest_simple(t->f, 7, t->relid, 0);  /* CLOSECHANNEL: hvsock freed */
	guest_simple(t->f, 13, t->relid, 0); /* RELID_RELEASED */
	assert_int_equal(t->wakes, wakes);   /* no wake after release */
	t_free(t);
}

static void test_flow_control(void **state)
{
	(void)state;
	struct t *t = t_new(true);
	t_open(t);
	static uint8_t big[3 * HVSOCK_MTU];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 1);
	size_t sent = 0;
	int ret;
	while ((ret = hvsock_send(t->hs, big + sent, sizeof(big) - sent)) > 0) {
		assert_true(ret <= (int)HVSOCK_MTU);
		sent += (size_t)ret;
		assert_true(sent < sizeof(big)); /* the 20 KiB ring fills first */
	}
	assert_int_equal(ret, -EAGAIN);
	assert_true(sent > 16384);
	/* The host asked to be told of room (pending_send_sz). */
	assert_int_not_equal(gr32(&t->in, 12), 0);
	uint8_t buf[HVSOCK_MTU];
	size_t got = 0;
	int n;
	while ((n = g_recv(t, buf, sizeof(buf))) >= 0) {
		assert_memory_equal(buf, big + got, (size_t)n);
		got += (size_t)n;
	}
	assert_int_equal(got, sent);
	ret = hvsock_send(t->hs, big + sent, sizeof(big) - sent);
	assert_true(ret > 0);
	hvsock_release(t->hs); /* open: freed when the server closes it */
	t_free(t);
}

/* Each hostile packet ends the connection with -EPROTO. */
static void hostile(void (*send)(struct t *t))
{
	struct t *t = t_new(true);
	t_open(t);
	send(t);
	const uint8_t *p;
	size_t n;
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), -EPROTO);
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), -EPROTO);
	assert_int_equal(hvsock_send(t->hs, "x", 1), -EPROTO);
	hvsock_release(t->hs);
	t_free(t);
}

static void h_short(struct t *t)
{
	assert_true(gring_write(&t->out, 0, "abcd", 4)); /* no full pipe header */
	vmbus_server_signal_event(t->f->srv, t->conn);
}

static void h_type(struct t *t)
{
	g_send(t, 2, 4, "abcd", 4);
}

static void h_size(struct t *t)
{
	g_send(t, 1, 100, "abcd", 4);
}

static void h_mtu(struct t *t)
{
	static uint8_t d[HVSOCK_MTU + 8];
	g_send(t, 1, HVSOCK_MTU + 8, d, sizeof(d));
}

static void h_after_fin(struct t *t)
{
	g_send(t, 1, 0, NULL, 0);
	g_send(t, 1, 4, "abcd", 4);
	const uint8_t *p;
	size_t n;
	/* FIN is delivered; what follows it is the violation. */
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), 1);
}

static void h_not_inband(struct t *t)
{
	uint8_t d[32] = { 0 };
	p16(d, 0, 11); /* a completion */
	p16(d, 2, 2);
	p16(d, 4, 4);
	uint32_t w = gr32(&t->out, 0);
	gring_copy(&t->out, w, d, 32, true);
	uint64_t trailer = (uint64_t)w << 32;
	gring_copy(&t->out, w + 32, &trailer, 8, true);
	gw32(&t->out, 0, w + 40);
	vmbus_server_signal_event(t->f->srv, t->conn);
}

static void test_hostile(void **state)
{
	(void)state;
	hostile(h_short);
	hostile(h_type);
	hostile(h_size);
	hostile(h_mtu);
	hostile(h_not_inband);
	/* Data after FIN: FIN first, then the violation on the next look. */
	struct t *t = t_new(true);
	t_open(t);
	h_after_fin(t);
	hvsock_release(t->hs);
	t_free(t);
}

static void test_no_reopen(void **state)
{
	(void)state;
	struct t *t = t_new(true);
	t_open(t);
	guest_simple(t->f, 7, t->relid, 0); /* the guest closes (no rescind yet) */
	assert_int_equal(hvsock_state(t->hs), HVSOCK_CLOSED);
	const uint8_t *p;
	size_t n;
	assert_int_equal(hvsock_recv_peek(t->hs, &p, &n), -EPIPE);
	/* Opening again is refused: one connection per channel. */
	uint64_t pfns[RING_PAGES];
	for (unsigned i = 0; i < RING_PAGES; i++)
		pfns[i] = 128 + i;
	guest_gpadl(t->f, t->relid, 0xE1E20, pfns, RING_PAGES);
	struct fake_msg *m;
	while ((m = fake_next(t->f)) && m32(m, 0) != 10)
		;
	guest_open(t->f, t->relid, 0xE1E20, 0, RING_PAGES / 2);
	m = fake_next(t->f);
	assert_non_null(m);
	assert_int_equal(m32(m, 0), 6);
	assert_int_not_equal(m32(m, 16), 0);
	hvsock_release(t->hs); /* not open: freed now */
	t_free(t);

	/* Released before the guest opened it: the open is refused. */
	t = t_new(true);
	hvsock_release(t->hs);
	uint64_t pf[RING_PAGES];
	for (unsigned i = 0; i < RING_PAGES; i++)
		pf[i] = 64 + i;
	guest_gpadl(t->f, t->relid, 0xE1E30, pf, RING_PAGES);
	guest_open(t->f, t->relid, 0xE1E30, 0, RING_PAGES / 2);
	bool refused = false;
	while ((m = fake_next(t->f)))
		if (m32(m, 0) == 6)
			refused = m32(m, 16) != 0;
	assert_true(refused);
	t_free(t);
}

/* A VMBus reset (guest reboot) closes the channel; the owner is woken. */
static void test_reset(void **state)
{
	(void)state;
	struct t *t = t_new(true);
	t_open(t);
	unsigned w = t->wakes;
	vmbus_server_reset(t->f->srv);
	assert_true(t->wakes > w);
	assert_int_equal(hvsock_state(t->hs), HVSOCK_CLOSED);
	assert_int_equal(hvsock_send(t->hs, "x", 1), -EPIPE);
	hvsock_release(t->hs);
	t_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guid),
		cmocka_unit_test(test_offer),
		cmocka_unit_test(test_data_both_ways),
		cmocka_unit_test(test_flow_control),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_no_reopen),
		cmocka_unit_test(test_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
