/*
 * The guest side of netvsp's unit tests (test_netvsp.c, test_netvsp_offload.c):
 * a netvsp on the real VMBus server with the fake host (test_vmbus_fake.h),
 * and helpers that play Linux 6.1's hv_netvsc: NVSP init, RNDIS INIT and the
 * QUERY/SETs of probe and open, sends through send sections and GPA-direct
 * pages, and reading the host's transfer-page packets. Static helpers; each
 * test file uses some of them.
 */
#ifndef HVMM_TEST_NETVSP_HARNESS_H
#define HVMM_TEST_NETVSP_HARNESS_H
#pragma GCC diagnostic ignored "-Wunused-function"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "test_vmbus_fake.h"
#include "core/log.h"
#include "dev/netvsp.h"

#define RING_PAGES 32
#define RING_PFN 32
#define RBUF_PFN 100   /* receive buffer: RBUF_PAGES pages */
#define RBUF_PAGES 16  /* 64 KiB: 37 sections of 1728 */
#define SBUF_PFN 200   /* send buffer: 16 pages = 10 sections of 6144 */
#define SBUF_PAGES 16
#define DATA_PFN 300   /* guest pages for GPA-direct data */
#define RBUF_GPADL 0xE1E10
#define SBUF_GPADL 0xE1E11
#define NSECT 37

static const uint8_t mac[6] = { 0x00, 0x15, 0x5d, 0x12, 0x34, 0x56 };
static unsigned t_queues;  /* netvsp_config.queues for the next setup_t() */

struct hostpkt {
	uint8_t d[16];       /* descriptor */
	uint8_t b[512];      /* the rest of the packet */
	int len;
};

struct t {
	struct fake *f;
	struct netvsp *nv;
	struct gring out, in;
	uint32_t relid;
	int depth;           /* device lock */
	bool lock_error;
	unsigned kicks;
	unsigned ntx;
	uint8_t tx[16][2048];
	size_t txlen[16];
	const uint8_t *echo; /* tx answers with this frame (netvsp_rx inside tx) */
	int echo_ret;
	uint32_t req_id;
	uint64_t tid;
};

/* ---- the host side ------------------------------------------------------ */

static void *h_map(void *o, uint64_t gpa, uint64_t len)
{
	return fake_map(((struct t *)o)->f, gpa, len);
}

static void h_lock(void *o)
{
	struct t *t = o;
	if (t->depth++)
		t->lock_error = true;
}

static void h_unlock(void *o)
{
	struct t *t = o;
	if (--t->depth)
		t->lock_error = true;
}

static void h_kick(void *o)
{
	((struct t *)o)->kicks++;
}

static void h_tx(void *o, const void *frame, size_t len)
{
	struct t *t = o;
	if (t->depth)
		t->lock_error = true; /* tx runs with the device lock released */
	if (t->ntx < 16 && len <= sizeof(t->tx[0])) {
		memcpy(t->tx[t->ntx], frame, len);
		t->txlen[t->ntx] = len;
	}
	t->ntx++;
	if (t->echo)
		t->echo_ret = netvsp_rx(t->nv, t->echo, 60);
}

static struct t *setup_t(void)
{
	log_level = LOG_ERROR;
	struct t *t = calloc(1, sizeof(*t));
	t->f = fake_new(0, 1);
	struct netvsp_config cfg = {
		.instance = 0, .mtu = 0, .queues = t_queues,
		.host = { .opaque = t, .map = h_map, .lock = h_lock, .unlock = h_unlock,
			  .kick = h_kick, .tx = h_tx },
	};
	memcpy(cfg.mac, mac, 6);
	assert_int_equal(netvsp_create(t->f->srv, &cfg, &t->nv), 0);
	assert_int_equal(guest_contact(t->f, 4, VMBUS_VERSION_WIN10_V5_2, 0), 0);
	fake_next(t->f); /* VERSION_RESPONSE */
	guest_simple(t->f, 3, 0, 0);
	struct fake_msg *m = fake_next(t->f);
	assert_int_equal(m32(m, 0), 1);
	/* The NIC class, f8615163-df3e-46c5-913f-f2d2f965ed0e, in wire order. */
	static const uint8_t nic[16] = { 0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46,
					 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e };
	assert_memory_equal(m->b + 8, nic, 16);
	t->relid = m32(m, 184);
	fake_next(t->f); /* ALLOFFERS_DELIVERED */
	return t;
}

static void free_t(struct t *t)
{
	assert_false(t->lock_error);
	assert_int_equal(t->depth, 0);
	fake_free(t->f);
	netvsp_destroy(t->nv);
	free(t);
}

static void gpadl(struct t *t, uint32_t id, uint64_t pfn, uint32_t pages)
{
	uint64_t pfns[64];
	for (uint32_t i = 0; i < pages; i++)
		pfns[i] = pfn + i;
	guest_gpadl(t->f, t->relid, id, pfns, pages);
	struct fake_msg *m = fake_next(t->f);
	assert_int_equal(m32(m, 0), 10);
	assert_int_equal(m32(m, 16), 0);
}

static void open_channel(struct t *t)
{
	memset(t->f->ram + RING_PFN * 4096, 0, RING_PAGES * 4096);
	gpadl(t, 0x100, RING_PFN, RING_PAGES);
	unsigned kicks = t->kicks;
	guest_open(t->f, t->relid, 0x100, 0, RING_PAGES / 2);
	struct fake_msg *m = fake_next(t->f);
	assert_int_equal(m32(m, 0), 6);
	assert_int_equal(m32(m, 16), 0);
	assert_true(t->kicks > kicks);
	memset(&t->out, 0, sizeof(t->out));
	memset(&t->in, 0, sizeof(t->in));
	t->out.hdr = t->f->ram + RING_PFN * 4096;
	t->in.hdr = t->f->ram + (RING_PFN + RING_PAGES / 2) * 4096;
	for (unsigned i = 0; i < RING_PAGES / 2 - 1; i++) {
		t->out.data[i] = t->f->ram + (RING_PFN + 1 + i) * 4096;
		t->in.data[i] = t->f->ram + (RING_PFN + RING_PAGES / 2 + 1 + i) * 4096;
	}
	t->out.size = t->in.size = (RING_PAGES / 2 - 1) * 4096;
}

/* ---- the guest side ---------------------------------------------------------- */

/* Any packet: descriptor of `type`, hdr (8-aligned), payload. */
static void graw(struct t *t, uint16_t type, uint16_t flags, uint64_t tid, const void *hdr,
		 uint32_t hlen, const void *payload, uint32_t plen)
{
	uint8_t raw[1024] = { 0 };
	uint32_t off = 16 + hlen, len = (off + plen + 7) & ~7u;
	assert_true(len <= sizeof(raw));
	p16(raw, 0, type);
	p16(raw, 2, (uint16_t)(off / 8));
	p16(raw, 4, (uint16_t)(len / 8));
	p16(raw, 6, flags);
	p64(raw, 8, tid);
	if (hlen)
		memcpy(raw + 16, hdr, hlen);
	memcpy(raw + off, payload, plen);
	uint32_t w = gr32(&t->out, 0);
	assert_true(gring_free(&t->out) > len + 8);
	gring_copy(&t->out, w, raw, len, true);
	uint64_t trailer = (uint64_t)w << 32;
	gring_copy(&t->out, w + len, &trailer, 8, true);
	gw32(&t->out, 0, (w + len + 8) % t->out.size);
}

static void nvsp4(uint8_t m[40], uint32_t type, uint32_t a, uint32_t b, uint32_t c)
{
	memset(m, 0, 40);
	p32(m, 0, type);
	p32(m, 4, a);
	p32(m, 8, b);
	p32(m, 12, c);
}

/* An inband NVSP message with completion requested; returns its trans_id. */
static uint64_t gnvsp(struct t *t, const uint8_t m[40], bool comp)
{
	uint64_t tid = ++t->tid;
	graw(t, 6, comp ? 1 : 0, tid, NULL, 0, m, 40);
	return tid;
}

/* Reads the host's next packet; false when there is none. */
static bool hnext(struct t *t, struct hostpkt *p)
{
	uint64_t trailer;
	p->len = gring_read(&t->in, p->d, p->b, sizeof(p->b), &trailer);
	return p->len >= 0;
}

static uint16_t d16(const uint8_t *d, unsigned o) { uint16_t v; memcpy(&v, d + o, 2); return v; }
static uint32_t g32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t dtid(const struct hostpkt *p) { uint64_t v; memcpy(&v, p->d + 8, 8); return v; }

/* The NVSP completion for tid: the payload (nvsp_message) into m. */
static void expect_comp(struct t *t, uint64_t tid, uint8_t m[40])
{
	struct hostpkt p;
	assert_true(hnext(t, &p));
	assert_int_equal(d16(p.d, 0), 11);
	assert_int_equal(dtid(&p), tid);
	/* A bare completion (no payload) reads as zeros. */
	int n = p.len - (d16(p.d, 2) * 8 - 16);
	memset(m, 0, 40);
	memcpy(m, p.b + d16(p.d, 2) * 8 - 16, n < 40 ? (size_t)n : 40);
}

static void gcomplete(struct t *t, uint64_t tid, uint32_t status)
{
	uint8_t m[8];
	p32(m, 0, 108);
	p32(m, 4, status);
	graw(t, 11, 0, tid, NULL, 0, m, 8);
}

/*
 * The next transfer-page packet: checks its framing, copies the RNDIS
 * message from the receive buffer into msg (returns its length) and gives
 * back the section offset and trans_id.
 */
static uint32_t expect_xfer(struct t *t, uint8_t *msg, uint32_t max, uint32_t *off, uint64_t *tid)
{
	struct hostpkt p;
	assert_true(hnext(t, &p));
	assert_int_equal(d16(p.d, 0), 7);
	assert_int_equal(d16(p.d, 6) & 1, 1);           /* completion requested */
	assert_int_equal(d16(p.d, 2) * 8, 16 + 16);      /* header with one range */
	assert_int_equal(d16(p.b, 0), 0xCAFE);           /* pageset */
	assert_int_equal(g32(p.b + 4), 1);               /* range_cnt */
	uint32_t count = g32(p.b + 8), o = g32(p.b + 12);
	assert_int_equal(g32(p.b + 16), 107);            /* SEND_RNDIS_PKT */
	assert_true(count <= 1728);
	assert_int_equal(o % 1728, 0);
	assert_true(o / 1728 < NSECT);
	assert_true(count <= max);
	memcpy(msg, t->f->ram + RBUF_PFN * 4096 + o, count);
	assert_int_equal(g32(msg + 4), count);           /* msg_len is the range */
	if (off)
		*off = o;
	*tid = dtid(&p);
	return count;
}

/* An RNDIS control message sent the way Linux does: GPA-direct, one page. */
static uint64_t grndis_gpa(struct t *t, const uint8_t *msg, uint32_t len, uint64_t pfn,
			   uint32_t pgoff)
{
	memcpy(t->f->ram + pfn * 4096 + pgoff, msg, len);
	uint8_t hdr[24] = { 0 };
	p32(hdr, 4, 1);          /* rangecount */
	p32(hdr, 8, len);
	p32(hdr, 12, pgoff);
	p64(hdr, 16, pfn);
	uint8_t m[40];
	nvsp4(m, 107, 1, 0xFFFFFFFF, 0);
	uint64_t tid = ++t->tid;
	graw(t, 9, 1, tid, hdr, sizeof(hdr), m, 40);
	return tid;
}

/*
 * A control request and its response: the SEND_RNDIS_PKT completes with
 * success, the response arrives in a section (which the guest completes).
 */
static uint32_t rndis_call(struct t *t, const uint8_t *req, uint32_t len, uint8_t *resp)
{
	uint64_t tid = grndis_gpa(t, req, len, DATA_PFN, 0x10);
	netvsp_poll(t->nv);
	uint64_t xtid;
	uint32_t n = expect_xfer(t, resp, 512, NULL, &xtid);
	uint8_t c[40];
	expect_comp(t, tid, c);
	assert_int_equal(g32(c), 108);
	assert_int_equal(g32(c + 4), 1);
	gcomplete(t, xtid, 1);
	netvsp_poll(t->nv);
	return n;
}

static uint32_t rquery(struct t *t, uint32_t oid, uint8_t *resp, uint32_t extra)
{
	uint8_t q[28 + 200] = { 0 };
	uint32_t req = ++t->req_id;
	p32(q, 0, 4);
	p32(q, 4, 28 + extra);
	p32(q, 8, req);
	p32(q, 12, oid);
	p32(q, 16, extra);
	p32(q, 20, 20);
	if (extra) {   /* what Linux sends for the offload query: a header */
		q[28] = 0xA7;
		q[29] = 3;
		p16(q, 30, (uint16_t)extra);
	}
	uint32_t n = rndis_call(t, q, 28 + extra, resp);
	assert_int_equal(g32(resp), 0x80000004);
	assert_int_equal(g32(resp + 8), req);
	assert_true(n >= 24);
	return g32(resp + 12); /* status */
}

static uint32_t rset(struct t *t, uint32_t oid, const void *info, uint32_t ilen)
{
	uint8_t q[28 + 64] = { 0 }, resp[64];
	uint32_t req = ++t->req_id;
	p32(q, 0, 5);
	p32(q, 4, 28 + ilen);
	p32(q, 8, req);
	p32(q, 12, oid);
	p32(q, 16, ilen);
	p32(q, 20, 20);
	memcpy(q + 28, info, ilen);
	uint32_t n = rndis_call(t, q, 28 + ilen, resp);
	assert_int_equal(n, 16);
	assert_int_equal(g32(resp), 0x80000005);
	assert_int_equal(g32(resp + 8), req);
	return g32(resp + 12);
}

/* The info of a successful QUERY_C; its length in *len. */
static const uint8_t *qinfo(const uint8_t *resp, uint32_t *len)
{
	*len = g32(resp + 16);
	assert_true(g32(resp + 20) >= 16);
	assert_true(g32(resp + 4) >= 8 + g32(resp + 20) + *len);
	return resp + 8 + g32(resp + 20);
}

/* An NVSP request with completion requested and its completion. */
static void nvsp_call(struct t *t, const uint8_t m[40], uint8_t c[40])
{
	uint64_t tid = gnvsp(t, m, true);
	netvsp_poll(t->nv);
	expect_comp(t, tid, c);
}

/* netvsc_connect_vsp + netvsc_init_buf, as Linux 6.1 runs them. */
static void nvsp_init(struct t *t)
{
	uint8_t m[40], c[40];
	struct hostpkt p;
	/* A version we do not know is refused; Linux's newest is taken. */
	nvsp4(m, 1, 0x70000, 0x70000, 0);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c), 2);
	assert_int_equal(g32(c + 12), 2); /* NVSP_STAT_FAIL */
	nvsp4(m, 1, 0x60001, 0x60001, 0);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c), 2);
	assert_int_equal(g32(c + 4), 0x60001);
	assert_int_equal(g32(c + 12), 1);
	/* NDIS config and version: no completion asked, none sent. */
	nvsp4(m, 125, 1514, 0, 0);
	p64(m, 12, 1 | 2 | 8 | 32);
	gnvsp(t, m, false);
	nvsp4(m, 100, 6, 30, 0);
	gnvsp(t, m, false);
	netvsp_poll(t->nv);
	assert_false(hnext(t, &p));
	/* The receive buffer: one section of 1728-byte sub-allocations. */
	gpadl(t, RBUF_GPADL, RBUF_PFN, RBUF_PAGES);
	nvsp4(m, 101, RBUF_GPADL, 0xCAFE, 0);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c), 102);
	assert_int_equal(g32(c + 4), 1);
	assert_int_equal(g32(c + 8), 1);        /* num_sections */
	assert_int_equal(g32(c + 12), 0);       /* offset */
	assert_int_equal(g32(c + 16), 1728);    /* sub_alloc_size */
	assert_int_equal(g32(c + 20), NSECT);   /* 65536 / 1728 */
	assert_int_equal(g32(c + 24), NSECT * 1728);
	/* The send buffer: 6144-byte sections. */
	gpadl(t, SBUF_GPADL, SBUF_PFN, SBUF_PAGES);
	nvsp4(m, 104, SBUF_GPADL, 0, 0);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c), 105);
	assert_int_equal(g32(c + 4), 1);
	assert_int_equal(g32(c + 8), 6144);
}

/* rndis_filter_device_add and rndis_filter_open. */
static void rndis_init(struct t *t)
{
	uint8_t req[24] = { 0 }, r[512];
	uint32_t len;
	p32(req, 0, 2);
	p32(req, 4, 24);
	p32(req, 8, ++t->req_id);
	p32(req, 12, 1);
	p32(req, 16, 0);
	p32(req, 20, 0x4000);
	assert_int_equal(rndis_call(t, req, 24, r), 52);
	assert_int_equal(g32(r), 0x80000002);
	assert_int_equal(g32(r + 8), t->req_id);
	assert_int_equal(g32(r + 12), 0);          /* success */
	assert_int_equal(g32(r + 16), 1);          /* major */
	assert_int_equal(g32(r + 28), 0);          /* medium 802.3 */
	assert_true(g32(r + 32) >= 1 && g32(r + 32) <= 8); /* max_pkt_per_msg */
	assert_int_equal(g32(r + 40), 3);          /* 8-byte alignment */
	assert_int_equal(rquery(t, 0x00010106, r, 0), 0);
	assert_int_equal(g32(qinfo(r, &len)), 1500);
	assert_int_equal(len, 4);
	assert_int_equal(rquery(t, 0x01010101, r, 0), 0);
	assert_memory_equal(qinfo(r, &len), mac, 6);
	assert_int_equal(len, 6);
	assert_int_equal(rquery(t, 0x00020216, r, 0), 0);
	const uint8_t *name = qinfo(r, &len);
	assert_int_equal(len, 32);
	assert_int_equal(name[0], 'N');
	assert_int_equal(name[30] | name[31], 0);  /* NUL-terminated UTF-16 */
	assert_int_equal(rquery(t, 0xFC01020D, r, 156), 0);
	const uint8_t *caps = qinfo(r, &len);
	assert_int_equal(caps[0], 0xA7);
	assert_true(caps[1] >= 1);
	assert_true(d16(caps, 2) >= 112 && d16(caps, 2) <= len);
	/* What rndis_netdev_set_hwcaps looks for: TCP4|TCP4OPT (|UDP4), LSO v2 over 802.3. */
	assert_int_equal(g32(caps + 8) & 0x54, 0x54);   /* ip4_txcsum */
	assert_int_equal(g32(caps + 16) & 0x54, 0x54);  /* ip4_rxcsum */
	assert_int_equal(g32(caps + 24), 0);            /* no IPv6 */
	assert_int_equal(g32(caps + 80) & 2, 2);        /* lsov2.ip4_encap */
	assert_int_equal(g32(caps + 84), 62780);        /* lsov2.ip4_maxsz */
	assert_int_equal(g32(caps + 92), 0);            /* lsov2.ip6_encap */
	/* Linux's answer (NVSP 6: 28 bytes): IP off, TCP/UDP tx+rx, LSO v2 IPv4. */
	uint8_t params[28] = { 0x80, 3, 28, 0, 1, 4, 4, 0, 0, 0, 0, 2 };
	assert_int_equal(rset(t, 0xFC01020C, params, sizeof(params)), 0);
	assert_int_equal(rquery(t, 0x00010114, r, 0), 0);
	assert_int_equal(g32(qinfo(r, &len)), 0);  /* connected */
	assert_int_equal(rquery(t, 0x00010107, r, 0), 0);
	assert_int_equal(g32(qinfo(r, &len)), 100000000);
	if (t_queues < 2)
		assert_int_equal(rquery(t, 0x00010203, r, 0), 0xC00000BB); /* no RSS */
	assert_int_equal(rquery(t, 0x12345678, r, 0), 0xC00000BB);
	uint8_t filter[4] = { 0x0B, 0, 0, 0 };     /* directed, multicast, broadcast */
	assert_int_equal(rset(t, 0x0001010E, filter, 4), 0);
	assert_int_equal(rquery(t, 0x0001010E, r, 0), 0);
	assert_int_equal(g32(qinfo(r, &len)), 0x0B);
}

static struct t *up_t(void)
{
	struct t *t = setup_t();
	open_channel(t);
	nvsp_init(t);
	rndis_init(t);
	return t;
}

static struct netvsp_stats stats(struct t *t)
{
	struct netvsp_stats st;
	netvsp_get_stats(t->nv, &st);
	return st;
}

static void frame(uint8_t *f, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seed + i * 13);
	memcpy(f, mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
}

/*
 * An RNDIS PACKET as netvsc_xmit builds it: the hash-value PPI (and the
 * 802.1Q one if vlan), then the frame. Returns the message length, padded
 * to pad.
 */
static uint32_t rpacket(uint8_t *out, const uint8_t *f, uint32_t flen, uint32_t vlan,
			uint32_t pad)
{
	uint32_t ppi = 16 + (vlan ? 16 : 0), doff = 36 + ppi;
	uint32_t len = (8 + doff + flen + pad - 1) / pad * pad;
	memset(out, 0, len);
	p32(out, 0, 1);
	p32(out, 4, len);
	p32(out, 8, doff);
	p32(out, 12, flen);
	p32(out, 28, 36);
	p32(out, 32, ppi);
	uint8_t *pi = out + 8 + 36;
	p32(pi, 0, 16);   /* size */
	p32(pi, 4, 8);    /* NBL_HASH_VALUE */
	p32(pi, 8, 12);
	p32(pi, 12, 0xdeadbeef);
	if (vlan) {
		pi += 16;
		p32(pi, 0, 16);
		p32(pi, 4, 6);    /* IEEE_8021Q_INFO */
		p32(pi, 8, 12);
		p32(pi, 12, vlan);
	}
	memcpy(out + 8 + doff, f, flen);
	return len;
}

/* SEND_RNDIS_PKT naming a send section; returns the completion status. */
static uint32_t send_section(struct t *t, uint32_t index, uint32_t size)
{
	uint8_t m[40], c[40];
	nvsp4(m, 107, 0, index, size);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c), 108);
	return g32(c + 4);
}

static uint8_t *section(struct t *t, uint32_t i)
{
	return t->f->ram + SBUF_PFN * 4096 + i * 6144;
}

#endif
