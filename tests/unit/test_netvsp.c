/*
 * Unit tests for netvsp (src/dev/netvsp.c, netvsp_rndis.c) on the real
 * VMBus server with the fake host (test_vmbus_fake.h), playing Linux 6.1's
 * hv_netvsc on the guest side: the whole probe (NVSP INIT .. SEND_SEND_BUF,
 * RNDIS INIT and every QUERY/SET, the packet filter at open), frames from
 * the guest through send sections (batched, VLAN info) and GPA-direct pages
 * (and the mix Linux sends when only the header fits a section), frames to
 * the guest in receive sections with section recycling, -EAGAIN and the
 * control-response queue when sections run out, link indications, revoke,
 * teardown, close/reopen, a backend answering inside tx, and hostile input:
 * short NVSP messages, bad section indexes and sizes, RNDIS lengths and
 * offsets past the data, per-packet-info loops, unknown types, bogus
 * completions, PFNs outside RAM. Each hostile case is counted in
 * guest_errors, sends nothing to the backend, and leaves the NIC working.
 */
#include "test_netvsp_harness.h"

/* ---- tests ------------------------------------------------------------------ */

static void test_probe(void **state)
{
	(void)state;
	struct t *t = up_t();
	struct netvsp_stats st = stats(t);
	assert_int_equal(st.guest_errors, 0);
	assert_int_equal(t->ntx, 0);
	assert_true(netvsp_rx_ready(t->nv));
	/* SUBCHANNEL with one queue configured: success, none allocated. */
	uint8_t m[40], c[40];
	nvsp4(m, 133, 1, 3, 0);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c), 133);
	assert_int_equal(g32(c + 4), 1);
	assert_int_equal(g32(c + 8), 0);
	/* Older guests: a 0x2 (NVSP 1) INIT is accepted too... */
	nvsp4(m, 1, 0x2, 0x2, 0);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c + 4), 0x2);
	assert_int_equal(g32(c + 12), 1);
	/* ...and has no sub-channels to ask for. */
	nvsp4(m, 133, 1, 3, 0);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c + 4), 2);
	assert_int_equal(stats(t).guest_errors, 1);
	free_t(t);
}

static void test_tx_section(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t f1[1514], f2[60], f3[100];
	frame(f1, sizeof(f1), 1);
	frame(f2, sizeof(f2), 2);
	frame(f3, sizeof(f3), 3);
	uint32_t n = rpacket(section(t, 3), f1, sizeof(f1), 0, 1);
	assert_int_equal(send_section(t, 3, n), 1);
	assert_int_equal(t->ntx, 1);
	assert_int_equal(t->txlen[0], sizeof(f1));
	assert_memory_equal(t->tx[0], f1, sizeof(f1));
	/* A batch: two messages padded to 8 bytes, then one unpadded. */
	n = rpacket(section(t, 9), f2, sizeof(f2), 0, 8);
	n += rpacket(section(t, 9) + n, f3, sizeof(f3), 0, 1);
	assert_int_equal(send_section(t, 9, n), 1);
	assert_int_equal(t->ntx, 3);
	assert_int_equal(t->txlen[1], sizeof(f2));
	assert_memory_equal(t->tx[1], f2, sizeof(f2));
	assert_int_equal(t->txlen[2], sizeof(f3));
	assert_memory_equal(t->tx[2], f3, sizeof(f3));
	/* VLAN 100, priority 5, as per-packet info: the tag goes back in. */
	n = rpacket(section(t, 0), f2, sizeof(f2), 5 | 100 << 4, 1);
	assert_int_equal(send_section(t, 0, n), 1);
	assert_int_equal(t->ntx, 4);
	assert_int_equal(t->txlen[3], sizeof(f2) + 4);
	assert_memory_equal(t->tx[3], f2, 12);
	static const uint8_t tag[4] = { 0x81, 0x00, 0xA0, 100 };
	assert_memory_equal(t->tx[3] + 12, tag, 4);
	assert_memory_equal(t->tx[3] + 16, f2 + 12, sizeof(f2) - 12);
	struct netvsp_stats st = stats(t);
	assert_int_equal(st.tx_frames, 4);
	assert_int_equal(st.tx_bytes, sizeof(f1) + 2 * sizeof(f2) + 4 + sizeof(f3));
	assert_int_equal(st.guest_errors, 0);
	free_t(t);
}

/* A GPA-direct packet: ranges {len, offset, pfn...} then the NVSP message. */
static uint64_t send_gpa(struct t *t, uint32_t index, uint32_t size, const uint32_t *lens,
			 const uint32_t *offs, const uint64_t *pfns, uint32_t nranges, uint32_t npfns)
{
	uint8_t hdr[512] = { 0 };
	uint32_t at = 8, k = 0;
	p32(hdr, 4, nranges);
	for (uint32_t r = 0; r < nranges; r++) {
		p32(hdr, at, lens[r]);
		p32(hdr, at + 4, offs[r]);
		at += 8;
		uint32_t np = (offs[r] + lens[r] + 4095) / 4096;
		for (uint32_t i = 0; i < np && k < npfns; i++, at += 8)
			p64(hdr, at, pfns[k++]);
	}
	at = (at + 7) & ~7u;
	uint8_t m[40];
	nvsp4(m, 107, 0, index, size);
	uint64_t tid = ++t->tid;
	graw(t, 9, 1, tid, hdr, at, m, 40);
	return tid;
}

static void test_tx_gpa_direct(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t f[1514], msg[2048], c[40];
	frame(f, sizeof(f), 7);
	uint32_t n = rpacket(msg, f, sizeof(f), 0, 1);
	/* The RNDIS header in one page, the frame across two others. */
	uint32_t hlen = n - sizeof(f);
	memcpy(t->f->ram + DATA_PFN * 4096 + 4000, msg, hlen);
	memcpy(t->f->ram + (DATA_PFN + 5) * 4096 + 3000, f, 1096);
	memcpy(t->f->ram + (DATA_PFN + 6) * 4096, f + 1096, sizeof(f) - 1096);
	uint32_t lens[2] = { hlen, sizeof(f) }, offs[2] = { 4000, 3000 };
	uint64_t pfns[3] = { DATA_PFN, DATA_PFN + 5, DATA_PFN + 6 };
	uint64_t tid = send_gpa(t, 0xFFFFFFFF, 0, lens, offs, pfns, 2, 3);
	netvsp_poll(t->nv);
	expect_comp(t, tid, c);
	assert_int_equal(g32(c + 4), 1);
	assert_int_equal(t->ntx, 1);
	assert_int_equal(t->txlen[0], sizeof(f));
	assert_memory_equal(t->tx[0], f, sizeof(f));
	/* Linux's partial copy: a batched packet and the next one's header in a
	 * section, that packet's frame in pages. */
	uint8_t f2[200];
	frame(f2, sizeof(f2), 9);
	uint32_t a = rpacket(section(t, 2), f2, sizeof(f2), 0, 8);
	n = rpacket(msg, f, sizeof(f), 0, 1);
	memcpy(section(t, 2) + a, msg, hlen);
	memcpy(t->f->ram + (DATA_PFN + 8) * 4096 + 10, f, sizeof(f));
	uint32_t l1 = sizeof(f), o1 = 10;
	uint64_t p1 = DATA_PFN + 8;
	tid = send_gpa(t, 2, a + hlen, &l1, &o1, &p1, 1, 1);
	netvsp_poll(t->nv);
	expect_comp(t, tid, c);
	assert_int_equal(g32(c + 4), 1);
	assert_int_equal(t->ntx, 3);
	assert_memory_equal(t->tx[1], f2, sizeof(f2));
	assert_int_equal(t->txlen[2], sizeof(f));
	assert_memory_equal(t->tx[2], f, sizeof(f));
	assert_int_equal(stats(t).guest_errors, 0);
	free_t(t);
}

static void test_rx(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t f[1518], msg[2048];
	uint64_t tids[NSECT];
	uint32_t offs[NSECT];
	/* Every section once: distinct offsets, correct framing. */
	for (unsigned i = 0; i < NSECT; i++) {
		frame(f, sizeof(f), (uint8_t)i);
		uint32_t len = 60 + i * 40;
		assert_int_equal(netvsp_rx(t->nv, f, len), 0);
		uint32_t n = expect_xfer(t, msg, sizeof(msg), &offs[i], &tids[i]);
		assert_int_equal(n, 44 + len);
		assert_int_equal(g32(msg), 1);           /* PACKET */
		assert_int_equal(g32(msg + 8), 36);      /* data_offset from the body */
		assert_int_equal(g32(msg + 12), len);    /* data_len */
		assert_int_equal(g32(msg + 28), 0);      /* no per-packet info */
		assert_memory_equal(msg + 44, f, len);
		for (unsigned j = 0; j < i; j++)
			assert_int_not_equal(offs[j], offs[i]);
	}
	/* None left: the frame is refused, and counted. */
	assert_false(netvsp_rx_ready(t->nv));
	assert_int_equal(netvsp_rx(t->nv, f, 60), -EAGAIN);
	assert_int_equal(stats(t).rx_dropped, 1);
	/* The guest completes one: that section is used again. */
	gcomplete(t, tids[17], 1);
	netvsp_poll(t->nv);
	assert_true(netvsp_rx_ready(t->nv));
	assert_int_equal(netvsp_rx(t->nv, f, 100), 0);
	uint32_t off;
	uint64_t tid;
	expect_xfer(t, msg, sizeof(msg), &off, &tid);
	assert_int_equal(off, offs[17]);
	assert_int_equal(netvsp_rx(t->nv, f, 60), -EAGAIN);
	/* A repeated completion (the section is lent again meanwhile) is an
	 * error and frees nothing; the right one does. */
	assert_int_not_equal(tid, tids[17]);
	gcomplete(t, tids[17], 1);
	netvsp_poll(t->nv);
	assert_int_equal(stats(t).guest_errors, 1);
	assert_int_equal(netvsp_rx(t->nv, f, 60), -EAGAIN);
	gcomplete(t, tid, 1);
	gcomplete(t, tid, 1);
	netvsp_poll(t->nv);
	assert_int_equal(stats(t).guest_errors, 2);
	assert_int_equal(netvsp_rx(t->nv, f, 60), 0);
	expect_xfer(t, msg, sizeof(msg), NULL, &tid);
	assert_int_equal(netvsp_rx(t->nv, f, 60), -EAGAIN);
	struct netvsp_stats st = stats(t);
	assert_int_equal(st.rx_frames, NSECT + 2);
	/* Too long for the MTU (1500 + header + tag). */
	gcomplete(t, tid, 1);
	netvsp_poll(t->nv);
	assert_int_equal(netvsp_rx(t->nv, f, 1519), -EMSGSIZE);
	assert_int_equal(netvsp_rx(t->nv, f, 1518), 0);
	free_t(t);
}

static void test_rx_down(void **state)
{
	(void)state;
	struct t *t = setup_t();
	uint8_t f[60] = { 0 };
	memcpy(f, mac, 6);  /* to the guest's address: the filter takes it */
	assert_int_equal(netvsp_rx(t->nv, f, 60), -ENETDOWN);  /* not open */
	open_channel(t);
	assert_int_equal(netvsp_rx(t->nv, f, 60), -ENETDOWN);  /* no buffers */
	nvsp_init(t);
	assert_int_equal(netvsp_rx(t->nv, f, 60), -ENETDOWN);  /* no RNDIS */
	rndis_init(t);
	assert_int_equal(netvsp_rx(t->nv, f, 60), 0);
	uint8_t zero[4] = { 0 };
	/* The filter set to 0 (interface down): frames stop. */
	struct hostpkt p;
	assert_true(hnext(t, &p));
	assert_int_equal(rset(t, 0x0001010E, zero, 4), 0);
	assert_int_equal(netvsp_rx(t->nv, f, 60), -ENETDOWN);
	assert_false(netvsp_rx_ready(t->nv));
	free_t(t);
}

static void test_link(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t msg[512];
	uint64_t tid;
	uint32_t len;
	netvsp_set_link(t->nv, false);
	assert_int_equal(expect_xfer(t, msg, sizeof(msg), NULL, &tid), 20);
	assert_int_equal(g32(msg), 7);               /* INDICATE */
	assert_int_equal(g32(msg + 8), 0x4001000C);  /* disconnect */
	gcomplete(t, tid, 1);
	netvsp_poll(t->nv);
	assert_int_equal(rquery(t, 0x00010114, msg, 0), 0);
	assert_int_equal(g32(qinfo(msg, &len)), 1);
	netvsp_set_link(t->nv, false);               /* no change: nothing sent */
	struct hostpkt p;
	assert_false(hnext(t, &p));
	netvsp_set_link(t->nv, true);
	expect_xfer(t, msg, sizeof(msg), NULL, &tid);
	assert_int_equal(g32(msg + 8), 0x4001000B);  /* connect */
	free_t(t);
}

/* Responses wait for a free section; frames wait behind them. */
static void test_ctl_backlog(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t f[60] = { 0 }, msg[512], c[40];
	uint64_t tids[NSECT], tid;
	memcpy(f, mac, 6);
	for (unsigned i = 0; i < NSECT; i++) {
		assert_int_equal(netvsp_rx(t->nv, f, 60), 0);
		expect_xfer(t, msg, sizeof(msg), NULL, &tids[i]);
	}
	uint8_t q[28] = { 0 };
	p32(q, 0, 8);  /* KEEPALIVE */
	p32(q, 4, 12);
	p32(q, 8, 77);
	uint64_t ctid = grndis_gpa(t, q, 12, DATA_PFN, 0);
	netvsp_poll(t->nv);
	expect_comp(t, ctid, c);
	struct hostpkt p;
	assert_false(hnext(t, &p));                  /* the response waits */
	netvsp_set_link(t->nv, false);               /* and the indication */
	assert_false(hnext(t, &p));
	gcomplete(t, tids[0], 1);
	netvsp_poll(t->nv);
	assert_int_equal(expect_xfer(t, msg, sizeof(msg), NULL, &tid), 16);
	assert_int_equal(g32(msg), 0x80000008);
	assert_int_equal(g32(msg + 8), 77);
	assert_int_equal(netvsp_rx(t->nv, f, 60), -EAGAIN);
	gcomplete(t, tids[1], 1);
	gcomplete(t, tid, 1);
	netvsp_poll(t->nv);
	expect_xfer(t, msg, sizeof(msg), NULL, &tid);
	assert_int_equal(g32(msg), 7);
	assert_int_equal(netvsp_rx(t->nv, f, 60), 0);
	assert_int_equal(stats(t).guest_errors, 0);
	free_t(t);
}

/* The backend answers inside tx (libslirp: ARP, DHCP). */
static void test_rx_inside_tx(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t f[60], answer[60], msg[512], m[40], c[40];
	frame(f, sizeof(f), 1);
	frame(answer, sizeof(answer), 99);
	t->echo = answer;
	t->echo_ret = 1;
	uint32_t n = rpacket(section(t, 1), f, sizeof(f), 0, 1);
	nvsp4(m, 107, 0, 1, n);
	uint64_t tid = gnvsp(t, m, true), xtid;
	netvsp_poll(t->nv);
	assert_int_equal(t->ntx, 1);
	assert_int_equal(t->echo_ret, 0);
	assert_int_equal(expect_xfer(t, msg, sizeof(msg), NULL, &xtid), 44 + 60);
	assert_memory_equal(msg + 44, answer, 60);
	expect_comp(t, tid, c);
	assert_int_equal(g32(c + 4), 1);
	free_t(t);
}

/* Hostile input: counted, nothing reaches the backend, the NIC still works. */
static void test_malformed(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t m[40], c[40], f[60], *s = section(t, 4);
	struct hostpkt p;
	unsigned errors = 0;
	frame(f, sizeof(f), 5);
#define BAD(expr) do { expr; errors++; assert_int_equal(stats(t).guest_errors, errors); } while (0)
	/* A 2-byte NVSP message (completion with failure, since one was asked). */
	uint64_t tid = ++t->tid;
	graw(t, 6, 1, tid, NULL, 0, "\x01\x00", 2);
	BAD(netvsp_poll(t->nv));
	expect_comp(t, tid, c);
	/* A SEND_RNDIS_PKT cut short (12 bytes). */
	tid = ++t->tid;
	nvsp4(m, 107, 0, 1, 100);
	graw(t, 6, 1, tid, NULL, 0, m, 12);
	BAD(netvsp_poll(t->nv));
	expect_comp(t, tid, c);
	assert_int_equal(g32(c + 4), 2);
	/* Section index past the buffer, size past the section. */
	uint32_t n = rpacket(s, f, sizeof(f), 0, 1);
	BAD(assert_int_equal(send_section(t, 10, n), 2));
	BAD(assert_int_equal(send_section(t, 0xFFFFFFFE, n), 2));
	BAD(assert_int_equal(send_section(t, 4, 6145), 2));
	BAD(assert_int_equal(send_section(t, 0xFFFFFFFF, 0), 2)); /* nothing at all */
	/* RNDIS msg_len past the data, and below the header. */
	p32(s, 4, n + 8);
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	p32(s, 4, 4);
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	p32(s, 4, 0);
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	/* data_offset and data_len that overflow or run past the message. */
	n = rpacket(s, f, sizeof(f), 0, 1);
	p32(s, 8, 0xFFFFFFF0);
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	n = rpacket(s, f, sizeof(f), 0, 1);
	p32(s, 12, 0xFFFFFFF0);
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	n = rpacket(s, f, sizeof(f), 0, 1);
	p32(s, 12, sizeof(f) + 1);
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	/* A PPI of size 0 (would loop), one longer than the list, a bad offset. */
	n = rpacket(s, f, sizeof(f), 0, 1);
	p32(s, 8 + 36, 0);
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	n = rpacket(s, f, sizeof(f), 0, 1);
	p32(s, 8 + 36, 17);
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	n = rpacket(s, f, sizeof(f), 0, 1);
	p32(s, 8 + 36 + 8, 17);
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	n = rpacket(s, f, sizeof(f), 0, 1);
	p32(s, 32, 0xFFFFFFF8);  /* per_pkt_info_len */
	BAD(assert_int_equal(send_section(t, 4, n), 2));
	/* Stray bytes after the last message. */
	n = rpacket(s, f, sizeof(f), 0, 1);
	BAD(assert_int_equal(send_section(t, 4, n + 4), 2));
	assert_int_equal(t->ntx, 1); /* only that last, well-formed packet */
	/* An unknown RNDIS type, a short QUERY, a completion type from the guest. */
	uint8_t r[32] = { 0 };
	p32(r, 0, 0x55);
	p32(r, 4, 16);
	memcpy(s, r, 16);
	BAD(send_section(t, 4, 16));
	p32(r, 0, 4);
	p32(r, 4, 16);
	memcpy(s, r, 16);
	BAD(send_section(t, 4, 16));
	p32(r, 0, 0x80000002);
	memcpy(s, r, 16);
	BAD(send_section(t, 4, 16));
	/* A SET whose info lies past its message: answered INVALID_DATA. */
	uint8_t set[32] = { 0 };
	p32(set, 0, 5);
	p32(set, 4, 32);
	p32(set, 8, 5150);
	p32(set, 12, 0x0001010E);
	p32(set, 16, 4);
	p32(set, 20, 0xFFFFFFFE);
	uint64_t xtid;
	uint8_t resp[512];
	BAD(rndis_call(t, set, 32, resp));
	assert_int_equal(g32(resp + 8), 5150);
	assert_int_equal(g32(resp + 12), 0xC0010015);
	/* Unknown NVSP type, and NVSP other than SEND_RNDIS_PKT with ranges. */
	nvsp4(m, 999, 0, 0, 0);
	BAD(nvsp_call(t, m, c));
	assert_int_equal(g32(c), 0); /* a bare completion */
	uint8_t hdr[24] = { 0 };
	p32(hdr, 4, 1);
	p32(hdr, 8, 16);
	p64(hdr, 16, DATA_PFN);
	nvsp4(m, 1, 0x60001, 0x60001, 0);
	graw(t, 9, 1, ++t->tid, hdr, 24, m, 40);
	BAD(netvsp_poll(t->nv));
	expect_comp(t, t->tid, c);
	/* GPA ranges: a PFN outside RAM, too many ranges, offset past the page. */
	uint32_t l = 100, o = 0;
	uint64_t pfn = 1u << 20;
	tid = send_gpa(t, 0xFFFFFFFF, 0, &l, &o, &pfn, 1, 1);
	BAD(netvsp_poll(t->nv));
	expect_comp(t, tid, c);
	assert_int_equal(g32(c + 4), 2);
	/* 100 bytes of zeros: an RNDIS message of length 0. */
	pfn = DATA_PFN;
	memset(t->f->ram + DATA_PFN * 4096, 0, 100);
	tid = send_gpa(t, 0xFFFFFFFF, 0, &l, &o, &pfn, 1, 1);
	BAD(netvsp_poll(t->nv));
	expect_comp(t, tid, c);
	assert_int_equal(g32(c + 4), 2);
	o = 4096;
	tid = send_gpa(t, 0xFFFFFFFF, 0, &l, &o, &pfn, 1, 1);
	BAD(netvsp_poll(t->nv));
	expect_comp(t, tid, c);
	memset(hdr, 0, sizeof(hdr));
	p32(hdr, 4, 1000);     /* rangecount far past the header */
	p32(hdr, 8, 16);
	p64(hdr, 16, DATA_PFN);
	nvsp4(m, 107, 1, 0xFFFFFFFF, 0);
	graw(t, 9, 1, ++t->tid, hdr, 24, m, 40);
	BAD(netvsp_poll(t->nv));
	expect_comp(t, t->tid, c);
	assert_int_equal(g32(c + 4), 2);
	/* Bogus completions: not ours, out of range, not in use, short, other type. */
	gcomplete(t, 12345, 1);
	BAD(netvsp_poll(t->nv));
	gcomplete(t, (1ull << 63) | 0xFFFF, 1);
	BAD(netvsp_poll(t->nv));
	assert_int_equal(netvsp_rx(t->nv, f, 60), 0);
	expect_xfer(t, resp, sizeof(resp), NULL, &xtid);
	gcomplete(t, xtid + 1, 1);
	BAD(netvsp_poll(t->nv));
	graw(t, 11, 0, xtid, NULL, 0, "", 0);  /* no nvsp_message */
	BAD(netvsp_poll(t->nv));
	uint8_t wrong[8];
	p32(wrong, 0, 102);
	p32(wrong, 4, 1);
	graw(t, 11, 0, xtid, NULL, 0, wrong, 8);
	BAD(netvsp_poll(t->nv));
	/* An unknown packet type. */
	graw(t, 8, 1, ++t->tid, NULL, 0, m, 40);
	BAD(netvsp_poll(t->nv));
	expect_comp(t, t->tid, c);
	/* Revoking a buffer that is not there. */
	nvsp4(m, 106, 7, 0, 0);
	BAD(gnvsp(t, m, false); netvsp_poll(t->nv));
	/* After all that: the real completion frees the section, frames flow. */
	assert_false(hnext(t, &p));
	gcomplete(t, xtid, 1);
	netvsp_poll(t->nv);
	assert_int_equal(stats(t).guest_errors, errors);
	n = rpacket(s, f, sizeof(f), 0, 1);
	assert_int_equal(send_section(t, 4, n), 1);
	assert_int_equal(t->ntx, 2);
	assert_memory_equal(t->tx[1], f, sizeof(f));
#undef BAD
	free_t(t);
}

/* A packet longer than netvsp reads: dropped, completed with failure. */
static void test_oversized(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t m[40], c[40];
	/* 9000 bytes: past netvsp's 8 KiB packet buffer (Linux's are < 1 KiB). */
	uint32_t len = 9000, w = gr32(&t->out, 0);
	uint8_t d[16] = { 0 };
	p16(d, 0, 9);
	p16(d, 2, (uint16_t)((len - 40) / 8));
	p16(d, 4, (uint16_t)(len / 8));
	p16(d, 6, 1);
	p64(d, 8, 4242);
	gring_copy(&t->out, w, d, 16, true);
	uint64_t trailer = (uint64_t)w << 32;
	gring_copy(&t->out, w + len, &trailer, 8, true);
	gw32(&t->out, 0, (w + len + 8) % t->out.size);
	netvsp_poll(t->nv);
	expect_comp(t, 4242, c);
	assert_int_equal(g32(c), 108);
	assert_int_equal(g32(c + 4), 2);
	assert_int_equal(stats(t).guest_errors, 1);
	nvsp4(m, 1, 0x60001, 0x60001, 0);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c + 12), 1);
	free_t(t);
}

static void test_revoke_teardown_reopen(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t m[40], f[60];
	frame(f, sizeof(f), 3);
	/* Revoke the receive buffer (as netvsc_device_remove does). */
	nvsp4(m, 103, 0xCAFE, 0, 0);
	gnvsp(t, m, false);
	netvsp_poll(t->nv);
	assert_int_equal(netvsp_rx(t->nv, f, 60), -ENETDOWN);
	/* Tear down the send buffer's GPADL without a revoke: not used again. */
	guest_simple(t->f, 11, t->relid, SBUF_GPADL);
	assert_int_equal(m32(fake_next(t->f), 0), 12);
	uint32_t n = rpacket(section(t, 0), f, sizeof(f), 0, 1);
	assert_int_equal(send_section(t, 0, n), 2);
	assert_int_equal(t->ntx, 0);
	assert_int_equal(stats(t).guest_errors, 1);
	/* Close: nothing works; reopen and probe again: everything does. */
	guest_simple(t->f, 7, t->relid, 0);
	assert_int_equal(netvsp_rx(t->nv, f, 60), -ENETDOWN);
	assert_false(netvsp_poll(t->nv));
	guest_simple(t->f, 11, t->relid, 0x100);
	assert_int_equal(m32(fake_next(t->f), 0), 12);
	guest_simple(t->f, 11, t->relid, RBUF_GPADL);
	assert_int_equal(m32(fake_next(t->f), 0), 12);
	open_channel(t);
	nvsp_init(t);
	rndis_init(t);
	assert_int_equal(netvsp_rx(t->nv, f, 60), 0);
	uint8_t msg[512];
	uint64_t xtid;
	assert_int_equal(expect_xfer(t, msg, sizeof(msg), NULL, &xtid), 44 + 60);
	n = rpacket(section(t, 0), f, sizeof(f), 0, 1);
	assert_int_equal(send_section(t, 0, n), 1);
	assert_int_equal(t->ntx, 1);
	free_t(t);
}

static void test_create_errors(void **state)
{
	(void)state;
	struct fake *f = fake_new(0, 1);
	struct netvsp *nv = NULL;
	struct netvsp_config cfg = { .mtu = 1500 };
	assert_int_equal(netvsp_create(f->srv, &cfg, &nv), -EINVAL);
	cfg.host = (struct netvsp_host){ .map = h_map, .lock = h_lock, .unlock = h_unlock,
					 .kick = h_kick, .tx = h_tx };
	cfg.mtu = 67;
	assert_int_equal(netvsp_create(f->srv, &cfg, &nv), -EINVAL);
	cfg.mtu = 9000;
	assert_int_equal(netvsp_create(f->srv, &cfg, &nv), 0);
	struct netvsp *nv2 = NULL;
	assert_int_equal(netvsp_create(f->srv, &cfg, &nv2), -EEXIST); /* same instance */
	fake_free(f);
	netvsp_destroy(nv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_tx_section),
		cmocka_unit_test(test_tx_gpa_direct),
		cmocka_unit_test(test_rx),
		cmocka_unit_test(test_rx_down),
		cmocka_unit_test(test_link),
		cmocka_unit_test(test_ctl_backlog),
		cmocka_unit_test(test_rx_inside_tx),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_revoke_teardown_reopen),
		cmocka_unit_test(test_create_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
