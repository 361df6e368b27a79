/*
 * Unit tests for netvsp's offloads and receive filter (src/dev/
 * netvsp_offload.c and their use in netvsp_rndis.c, netvsp.c): IPv4 TCP/UDP
 * checksums computed for the guest (with and without an 802.1Q tag, with IP
 * options), LSO v2 segmentation (a 10 KB send cut at MSS 1460, reassembled
 * and every checksum checked), checksums verified on receive and reported in
 * TCPIP_CHKSUM_PKTINFO, OID_TCP_OFFLOAD_PARAMETERS validation, the packet
 * filter (directed, broadcast, multicast, promiscuous, 0) and a MAC set by
 * OID_GEN_RNDIS_CONFIG_PARAMETER; hostile headers (truncated at every
 * length, bad IHL, data offset, total length, fragments) are refused, the
 * frame dropped and counted, and the NIC keeps working. Expected checksums
 * come from the straightforward RFC 1071 sum below, not from netvsp's.
 */
#include "test_netvsp_harness.h"
#include "dev/netvsp_impl.h"

/* ---- reference checksums (RFC 1071, word by word) ----------------------- */

static uint16_t ref_sum(const uint8_t *p, size_t len, uint32_t start)
{
	uint32_t s = start;
	for (size_t i = 0; i < len; i += 2) {
		uint32_t w = (uint32_t)p[i] << 8;
		if (i + 1 < len)
			w |= p[i + 1];
		s += w;
		s = (s & 0xFFFF) + (s >> 16);
	}
	return (uint16_t)s;
}

/* 0 when the IPv4 header at f+l3 checks. */
static uint16_t ref_ip_ok(const uint8_t *f, size_t l3)
{
	return (uint16_t)~ref_sum(f + l3, (f[l3] & 15) * 4u, 0);
}

/* 0 when the TCP/UDP checksum of the datagram at f+l3 checks. */
static uint16_t ref_l4_ok(const uint8_t *f, size_t l3)
{
	size_t ihl = (f[l3] & 15) * 4u, tot = (size_t)(f[l3 + 2] << 8 | f[l3 + 3]);
	size_t l4len = tot - ihl;
	uint8_t ph[12];
	memcpy(ph, f + l3 + 12, 8);
	ph[8] = 0;
	ph[9] = f[l3 + 9];
	ph[10] = (uint8_t)(l4len >> 8);
	ph[11] = (uint8_t)l4len;
	uint16_t s = ref_sum(ph, 12, 0);
	return (uint16_t)~ref_sum(f + l3 + ihl, l4len, s);
}

/* ---- test frames ----------------------------------------------------------- */

static const uint8_t peer[6] = { 0x52, 0x55, 0x0a, 0x00, 0x02, 0x02 };

/*
 * An Ethernet + IPv4 (+ opt bytes of options) + TCP (20 + 12 options) or UDP
 * frame carrying plen payload bytes, checksum fields left as garbage. Its
 * length; *l3 gets the IP header's offset.
 */
static uint32_t build(uint8_t *f, bool vlan, bool udp, uint32_t opt, uint32_t plen, size_t *l3)
{
	uint32_t o = 12;
	memcpy(f, mac, 6);
	memcpy(f + 6, peer, 6);
	if (vlan) {
		f[o++] = 0x81; f[o++] = 0x00; f[o++] = 0x20; f[o++] = 0x05; /* prio 1, vid 5 */
	}
	f[o++] = 0x08; f[o++] = 0x00;
	*l3 = o;
	uint32_t ihl = 20 + opt, l4h = udp ? 8 : 32, tot = ihl + l4h + plen;
	uint8_t *ip = f + o;
	memset(ip, 0, ihl);
	ip[0] = (uint8_t)(0x40 | ihl / 4);
	ip[2] = (uint8_t)(tot >> 8); ip[3] = (uint8_t)tot;
	ip[4] = 0x12; ip[5] = 0x34;       /* id */
	ip[6] = 0x40;                     /* DF */
	ip[8] = 64;
	ip[9] = udp ? 17 : 6;
	ip[10] = 0xAB; ip[11] = 0xCD;     /* garbage checksum */
	uint8_t src[4] = { 10, 0, 2, 15 }, dst[4] = { 93, 184, 216, 34 };
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	for (uint32_t i = 20; i < ihl; i++)
		ip[i] = 1;                /* NOP options */
	uint8_t *l4 = ip + ihl;
	memset(l4, 0, l4h);
	l4[0] = 0xC0; l4[1] = 0x01;       /* ports */
	l4[2] = 0x00; l4[3] = 0x50;
	if (udp) {
		l4[4] = (uint8_t)((8 + plen) >> 8); l4[5] = (uint8_t)(8 + plen);
		l4[6] = 0x55; l4[7] = 0x66;
	} else {
		l4[4] = 0x11; l4[5] = 0x22; l4[6] = 0x33; l4[7] = 0x44; /* seq */
		l4[12] = 8 << 4;          /* data offset: 32 bytes */
		l4[13] = 0x18 | 0x01 | 0x80; /* ACK PSH FIN CWR */
		l4[16] = 0x77; l4[17] = 0x88;
		l4[20] = 1; l4[21] = 1; l4[22] = 8; l4[23] = 10; /* timestamps */
	}
	for (uint32_t i = 0; i < plen; i++)
		l4[l4h + i] = (uint8_t)(i * 7 + (i >> 8));
	return o + tot;
}

#define TX_TCP4 (NDIS_CSUM_TX_IPV4 | NDIS_CSUM_TX_TCP | 34u << 16)
#define TX_UDP4 (NDIS_CSUM_TX_IPV4 | NDIS_CSUM_TX_UDP | 34u << 16)

/* ---- the functions ------------------------------------------------------------ */

static void test_csum_known(void **state)
{
	(void)state;
	uint8_t f[2048];
	size_t l3;
	/* A textbook header (RFC 1071 worked example style): 0xb861. */
	static const uint8_t hdr[20] = { 0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11,
					 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7 };
	assert_int_equal(netvsp_csum_fold(netvsp_csum_add(0, hdr, 20)), 0xb861);
	for (int vlan = 0; vlan < 2; vlan++) {
		for (int udp = 0; udp < 2; udp++) {
			for (uint32_t opt = 0; opt <= 8; opt += 8) {
				for (uint32_t plen = 0; plen < 1400; plen += 457) {
					uint32_t len = build(f, vlan, udp, opt, plen, &l3);
					uint32_t info = (udp ? TX_UDP4 : TX_TCP4) | NDIS_CSUM_TX_IP_HEADER;
					assert_int_equal(netvsp_tx_csum(f, len, info), 0);
					assert_int_equal(ref_ip_ok(f, l3), 0);
					assert_int_equal(ref_l4_ok(f, l3), 0);
					/* And the receive side agrees. */
					assert_int_equal(netvsp_rx_csum(f, len),
							 NDIS_CSUM_RX_IP_OK | (udp ? NDIS_CSUM_RX_UDP_OK :
									       NDIS_CSUM_RX_TCP_OK));
					/* A flipped payload or header byte fails it. */
					f[len - 1] ^= 0x40;
					if (plen)
						assert_int_equal(netvsp_rx_csum(f, len), NDIS_CSUM_RX_IP_OK);
					f[l3 + 8] ^= 1; /* TTL */
					assert_int_equal(netvsp_rx_csum(f, len), 0);
				}
			}
		}
	}
	/* Only the TCP checksum asked: the IP header's garbage stays. */
	uint32_t len = build(f, false, false, 0, 100, &l3);
	assert_int_equal(netvsp_tx_csum(f, len, TX_TCP4), 0);
	assert_int_equal(ref_l4_ok(f, l3), 0);
	assert_int_equal(f[l3 + 10], 0xAB);
	/* Trailing Ethernet padding past the IP total length is not summed. */
	len = build(f, false, false, 0, 2, &l3);
	memset(f + len, 0xEE, 10);
	assert_int_equal(netvsp_tx_csum(f, len + 10, TX_TCP4), 0);
	assert_int_equal(ref_l4_ok(f, l3), 0);
	/* UDP with no checksum: nothing verified beyond IP. */
	len = build(f, false, true, 0, 30, &l3);
	assert_int_equal(netvsp_tx_csum(f, len, TX_UDP4 | NDIS_CSUM_TX_IP_HEADER), 0);
	f[l3 + 26] = f[l3 + 27] = 0;
	assert_int_equal(netvsp_rx_csum(f, len), NDIS_CSUM_RX_IP_OK);
	/* No request: the frame is untouched. */
	len = build(f, false, false, 0, 10, &l3);
	uint8_t copy[2048];
	memcpy(copy, f, len);
	assert_int_equal(netvsp_tx_csum(f, len, NDIS_CSUM_TX_IPV4), 0);
	assert_memory_equal(f, copy, len);
}

static void test_csum_malformed(void **state)
{
	(void)state;
	uint8_t f[2048];
	size_t l3;
	uint32_t full = build(f, true, false, 4, 50, &l3);
	/* Truncated anywhere short of the datagram's end: refused. */
	for (uint32_t n = 0; n < full; n++) {
		build(f, true, false, 4, 50, &l3);
		assert_int_equal(netvsp_tx_csum(f, n, TX_TCP4), -EINVAL);
		assert_int_equal(netvsp_rx_csum(f, n), 0);
	}
	uint32_t len;
#define BAD(mutate, info)                                             \
	do {                                                          \
		len = build(f, false, false, 0, 10, &l3);             \
		mutate;                                               \
		assert_int_equal(netvsp_tx_csum(f, len, info), -EINVAL); \
	} while (0)
	BAD(f[l3] = 0x44, TX_TCP4);                         /* IHL 4 */
	BAD(f[l3] = 0x4F, TX_TCP4);                         /* IHL past the TCP data */
	BAD(f[l3] = 0x65, TX_TCP4);                         /* version 6 */
	BAD((f[l3 + 2] = 0xFF, f[l3 + 3] = 0xFF), TX_TCP4); /* total length past the frame */
	BAD((f[l3 + 2] = 0, f[l3 + 3] = 10), TX_TCP4);      /* total length < IHL */
	BAD(f[l3 + 20 + 12] = 0xF0, TX_TCP4);               /* data offset 60 > segment (42) */
	BAD(f[l3 + 20 + 12] = 0x40, TX_TCP4);               /* data offset 16 */
	BAD(f[l3 + 6] = 0x20, TX_TCP4);                     /* more fragments */
	BAD(f[l3 + 7] = 0x01, TX_TCP4);                     /* fragment offset */
	BAD(f[12] = 0x86, TX_TCP4);                         /* not IPv4 */
	BAD((void)0, TX_UDP4);                              /* UDP asked, TCP inside */
	BAD((void)0, TX_TCP4 | NDIS_CSUM_TX_UDP);           /* both */
	BAD((void)0, NDIS_CSUM_TX_IPV6 | NDIS_CSUM_TX_TCP); /* IPv6 not offered */
	len = build(f, false, true, 0, 50, &l3);
	f[l3 + 24] = 0x02;                                  /* UDP length wrong */
	assert_int_equal(netvsp_tx_csum(f, len, TX_UDP4), -EINVAL);
#undef BAD
}

struct segs {
	unsigned n;
	uint8_t f[16][1600];
	uint32_t len[16];
};

static void collect(void *ctx, const uint8_t *frame, uint32_t len)
{
	struct segs *s = ctx;
	if (s->n < 16 && len <= sizeof(s->f[0])) {
		memcpy(s->f[s->n], frame, len);
		s->len[s->n] = len;
	}
	s->n++;
}

static void test_lso_segments(void **state)
{
	(void)state;
	static uint8_t f[12000], out[12000], seg[1600];
	static struct segs s;
	for (int vlan = 0; vlan < 2; vlan++) {
		size_t l3;
		uint32_t len = build(f, vlan, false, 0, 10240, &l3);
		f[l3 + 2] = f[l3 + 3] = 0;         /* Linux leaves tot_len 0 */
		uint32_t hdr = (uint32_t)l3 + 20 + 32;
		memset(&s, 0, sizeof(s));
		/* MSS 1460 with 12 bytes of TCP options: 1526-byte frames (1530 tagged). */
		int n = netvsp_lso(f, len, 1460, seg, hdr + 1460, collect, &s);
		assert_int_equal(n, 8);                  /* 7 x 1460 + 20 */
		assert_int_equal(s.n, 8);
		uint32_t at = 0;
		for (unsigned i = 0; i < s.n; i++) {
			const uint8_t *g = s.f[i];
			uint32_t pl = i < 7 ? 1460 : 10240 - 7 * 1460;
			assert_int_equal(s.len[i], hdr + pl);
			assert_memory_equal(g, f, l3);    /* Ethernet (and tag) kept */
			assert_int_equal(g[l3 + 2] << 8 | g[l3 + 3], 20 + 32 + pl);
			assert_int_equal(g[l3 + 4] << 8 | g[l3 + 5], 0x1234 + i);
			assert_int_equal(ref_ip_ok(g, l3), 0);
			assert_int_equal(ref_l4_ok(g, l3), 0);
			const uint8_t *th = g + l3 + 20;
			uint32_t seq = (uint32_t)th[4] << 24 | th[5] << 16 | th[6] << 8 | th[7];
			assert_int_equal(seq, 0x11223344u + i * 1460);
			uint8_t fl = th[13];
			assert_int_equal(fl & 0x10, 0x10);             /* ACK on all */
			assert_int_equal(!!(fl & 0x09), i == 7);       /* FIN, PSH: last */
			assert_int_equal(!!(fl & 0x80), i == 0);       /* CWR: first */
			assert_memory_equal(th + 20, f + l3 + 40, 12); /* TCP options kept */
			memcpy(out + at, g + hdr, pl);
			at += pl;
		}
		assert_int_equal(at, 10240);
		assert_memory_equal(out, f + hdr, 10240);
	}
	/* A payload that fits one segment: one frame, checksums done. */
	size_t l3;
	uint32_t len = build(f, false, false, 0, 100, &l3);
	memset(&s, 0, sizeof(s));
	assert_int_equal(netvsp_lso(f, len, 1448, seg, 1514, collect, &s), 1);
	assert_int_equal(ref_ip_ok(s.f[0], l3), 0);
	assert_int_equal(ref_l4_ok(s.f[0], l3), 0);
	/* Refused, nothing emitted: MSS too small or too big for the buffer, UDP, junk. */
	len = build(f, false, false, 0, 3000, &l3);
	memset(&s, 0, sizeof(s));
	assert_int_equal(netvsp_lso(f, len, 47, seg, 1514, collect, &s), -EINVAL);
	assert_int_equal(netvsp_lso(f, len, 1461 + 12, seg, 1514, collect, &s), -EINVAL);
	assert_int_equal(netvsp_lso(f, len, 0, seg, 1514, collect, &s), -EINVAL);
	f[l3 + 32] = 0xF0;                                  /* data offset 60 */
	assert_int_equal(netvsp_lso(f, 14 + 20 + 40, 1460, seg, 1514, collect, &s), -EINVAL);
	len = build(f, false, true, 0, 3000, &l3);
	assert_int_equal(netvsp_lso(f, len, 1460, seg, 1514, collect, &s), -EINVAL);
	for (uint32_t n = 0; n < 14 + 20 + 32; n++) {
		build(f, false, false, 0, 3000, &l3);
		assert_int_equal(netvsp_lso(f, n, 1460, seg, 1514, collect, &s), -EINVAL);
	}
	assert_int_equal(s.n, 0);
}

static void test_filter_fn(void **state)
{
	(void)state;
	uint8_t f[60] = { 0 };
	const uint8_t other[6] = { 0x00, 0x15, 0x5d, 0x99, 0x99, 0x99 };
	const uint8_t bcast[6] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
	const uint8_t mcast[6] = { 0x01, 0x00, 0x5E, 0x00, 0x00, 0xFB };
	const uint8_t *dst[4] = { mac, other, bcast, mcast };
	/* Which destinations each filter takes: mine, other, broadcast, multicast. */
	static const struct { uint32_t filter; bool pass[4]; } cases[] = {
		{ 0, { 0, 0, 0, 0 } },
		{ NDIS_PACKET_TYPE_DIRECTED, { 1, 0, 0, 0 } },
		{ NDIS_PACKET_TYPE_BROADCAST, { 0, 0, 1, 0 } },
		{ NDIS_PACKET_TYPE_MULTICAST, { 0, 0, 0, 1 } },
		{ NDIS_PACKET_TYPE_ALL_MULTICAST, { 0, 0, 0, 1 } },
		{ 0x0D, { 1, 0, 1, 1 } },   /* what Linux sets */
		{ NDIS_PACKET_TYPE_PROMISCUOUS, { 1, 1, 1, 1 } },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		for (int d = 0; d < 4; d++) {
			memcpy(f, dst[d], 6);
			assert_int_equal(netvsp_filter_pass(cases[c].filter, mac, f, 60),
					 cases[c].pass[d]);
		}
	assert_false(netvsp_filter_pass(0x2F, mac, f, 5));
}

/* ---- through the device --------------------------------------------------------- */

/*
 * Sends one RNDIS PACKET with the given PPIs (type/value pairs) the way
 * netvsc_xmit sends big ones: in guest pages by GPA-direct. Returns the
 * completion status.
 */
static uint32_t send_ppi(struct t *t, const uint8_t *f, uint32_t flen, const uint32_t *ppis,
			 unsigned nppi)
{
	static uint8_t msg[70000];
	uint32_t ppi = 16 * nppi, doff = 36 + ppi, len = 8 + doff + flen;
	memset(msg, 0, 8 + doff);
	p32(msg, 0, 1);
	p32(msg, 4, len);
	p32(msg, 8, doff);
	p32(msg, 12, flen);
	p32(msg, 28, 36);
	p32(msg, 32, ppi);
	for (unsigned i = 0; i < nppi; i++) {
		uint8_t *pi = msg + 8 + 36 + 16 * i;
		p32(pi, 0, 16);
		p32(pi, 4, ppis[2 * i]);
		p32(pi, 8, 12);
		p32(pi, 12, ppis[2 * i + 1]);
	}
	memcpy(msg + 8 + doff, f, flen);
	uint32_t off = 0x80, npages = (off + len + 4095) / 4096;
	assert_true(npages <= 20);
	memcpy(t->f->ram + DATA_PFN * 4096 + off, msg, len);
	uint8_t hdr[24 + 8 * 20] = { 0 };
	p32(hdr, 4, 1);
	p32(hdr, 8, len);
	p32(hdr, 12, off);
	for (uint32_t i = 0; i < npages; i++)
		p64(hdr, 16 + 8 * i, DATA_PFN + i);
	uint8_t m[40], c[40];
	nvsp4(m, 107, 0, 0xFFFFFFFF, 0);
	uint64_t tid = ++t->tid;
	graw(t, 9, 1, tid, hdr, (16 + 8 * npages + 7) & ~7u, m, 40);
	netvsp_poll(t->nv);
	expect_comp(t, tid, c);
	assert_int_equal(g32(c), 108);
	return g32(c + 4);
}

static void test_tx_offload(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t f[2048];
	size_t l3;
	/* Checksum PPI with a VLAN PPI: the tag goes in, then the sums. */
	uint32_t len = build(f, false, false, 0, 600, &l3);
	uint32_t p1[4] = { 6, 5 << 4 | 1, 0, TX_TCP4 };
	assert_int_equal(send_ppi(t, f, len, p1, 2), 1);
	assert_int_equal(t->ntx, 1);
	assert_int_equal(t->txlen[0], len + 4);
	assert_int_equal(t->tx[0][12] << 8 | t->tx[0][13], 0x8100);
	assert_int_equal(ref_l4_ok(t->tx[0], l3 + 4), 0);
	assert_int_equal(t->tx[0][l3 + 4 + 10], 0xAB);     /* IP checksum: Linux's job */
	/* UDP. */
	len = build(f, false, true, 0, 99, &l3);
	uint32_t p2[2] = { 0, TX_UDP4 };
	assert_int_equal(send_ppi(t, f, len, p2, 1), 1);
	assert_int_equal(t->ntx, 2);
	assert_int_equal(ref_l4_ok(t->tx[1], l3), 0);
	/* LSO v2: 10 KB at MSS 1460 in 8 frames, each whole and checked. */
	static uint8_t big[12000];
	len = build(big, false, false, 0, 10240, &l3);
	big[l3 + 2] = big[l3 + 3] = 0;
	uint32_t p3[2] = { 2, 1u << 30 | 34u << 20 | 1448 };  /* 1460 less timestamps */
	assert_int_equal(send_ppi(t, big, len, p3, 1), 1);
	assert_int_equal(t->ntx, 10);
	uint32_t at = 0;
	for (unsigned i = 2; i < 10; i++) {
		assert_int_equal(t->txlen[i], i < 9 ? 1514 : 66 + 10240 - 7 * 1448);
		assert_int_equal(ref_ip_ok(t->tx[i], l3), 0);
		assert_int_equal(ref_l4_ok(t->tx[i], l3), 0);
		assert_memory_equal(t->tx[i] + 66, big + 66 + at, t->txlen[i] - 66);
		at += (uint32_t)t->txlen[i] - 66;
	}
	assert_int_equal(at, 10240);
	struct netvsp_stats st = stats(t);
	assert_int_equal(st.tx_frames, 10);
	assert_int_equal(st.tx_lso, 1);
	assert_int_equal(st.tx_csum, 2);
	/* Malformed for its offload: dropped and counted, the send completes. */
	len = build(f, false, false, 0, 100, &l3);
	f[l3] = 0x44;                                          /* IHL 4 */
	assert_int_equal(send_ppi(t, f, len, p1 + 2, 1), 1);
	uint32_t p4[2] = { 2, 1u << 30 | 1u << 31 | 1460 };   /* LSO IPv6 */
	len = build(f, false, false, 0, 100, &l3);
	assert_int_equal(send_ppi(t, f, len, p4, 1), 1);
	uint32_t p5[2] = { 2, 1u << 30 | 20 };                 /* MSS 20 */
	assert_int_equal(send_ppi(t, big, 14 + 20 + 32 + 3000, p5, 1), 1);
	assert_int_equal(t->ntx, 10);
	st = stats(t);
	assert_int_equal(st.tx_offload_errors, 3);
	/* And the NIC still works. */
	len = build(f, false, false, 0, 100, &l3);
	assert_int_equal(send_ppi(t, f, len, p1 + 2, 1), 1);
	assert_int_equal(t->ntx, 11);
	assert_int_equal(ref_l4_ok(t->tx[10], l3), 0);
	free_t(t);
}

/* The next received PACKET: its csum PPI value (or ~0u if none); frame into f. */
static uint32_t rx_one(struct t *t, uint8_t *f, uint32_t *flen)
{
	uint8_t msg[2048];
	uint64_t tid;
	expect_xfer(t, msg, sizeof(msg), NULL, &tid);
	gcomplete(t, tid, 1);
	netvsp_poll(t->nv);
	assert_int_equal(g32(msg), 1);
	uint32_t doff = g32(msg + 8), dlen = g32(msg + 12);
	uint32_t poff = g32(msg + 28), plen = g32(msg + 32);
	assert_true(8 + doff + dlen <= g32(msg + 4));
	memcpy(f, msg + 8 + doff, dlen);
	*flen = dlen;
	if (!plen)
		return ~0u;
	assert_int_equal(plen, 16);
	assert_int_equal(poff, 36);
	assert_int_equal(g32(msg + 8 + poff), 16);
	assert_int_equal(g32(msg + 8 + poff + 4), 0);  /* TCPIP_CHKSUM_PKTINFO */
	assert_int_equal(g32(msg + 8 + poff + 8), 12);
	return g32(msg + 8 + poff + 12);
}

static void test_rx_csum_and_filter(void **state)
{
	(void)state;
	struct t *t = up_t();   /* filter 0x0B; TCP/UDP rx checksums enabled */
	uint8_t f[2048], got[2048];
	uint32_t glen;
	size_t l3;
	uint32_t len = build(f, false, false, 0, 500, &l3);
	assert_int_equal(netvsp_tx_csum(f, len, TX_TCP4 | NDIS_CSUM_TX_IP_HEADER), 0);
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	assert_int_equal(rx_one(t, got, &glen), NDIS_CSUM_RX_IP_OK | NDIS_CSUM_RX_TCP_OK);
	assert_int_equal(glen, len);
	assert_memory_equal(got, f, len);
	/* A bad TCP checksum: the guest is told only of the IP header. */
	f[len - 1] ^= 1;
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	assert_int_equal(rx_one(t, got, &glen), NDIS_CSUM_RX_IP_OK);
	/* Not IP: no PPI at all. */
	f[12] = 0x08; f[13] = 0x06;
	assert_int_equal(netvsp_rx(t->nv, f, 60), 0);
	assert_int_equal(rx_one(t, got, &glen), ~0u);
	/* Filtered: another host's unicast is dropped (0, counted, nothing sent). */
	len = build(f, false, false, 0, 10, &l3);
	f[5] ^= 1;
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	struct hostpkt p;
	assert_false(hnext(t, &p));
	assert_int_equal(stats(t).rx_filtered, 1);
	/* Broadcast and multicast pass 0x0B; with DIRECTED only they do not. */
	memset(f, 0xFF, 6);
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	rx_one(t, got, &glen);
	uint8_t directed[4] = { 1, 0, 0, 0 };
	assert_int_equal(rset(t, 0x0001010E, directed, 4), 0);
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	f[0] = 0x01;
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	assert_false(hnext(t, &p));
	assert_int_equal(stats(t).rx_filtered, 3);
	/* Promiscuous takes another host's frame. */
	uint8_t promisc[4] = { 0x20, 0, 0, 0 };
	assert_int_equal(rset(t, 0x0001010E, promisc, 4), 0);
	memcpy(f, peer, 6);
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	rx_one(t, got, &glen);
	assert_memory_equal(got, peer, 6);
	/* A new MAC from the guest (rndis_filter_set_device_mac): directed follows it. */
	assert_int_equal(rset(t, 0x0001010E, directed, 4), 0);
	uint8_t cp[20 + 28 + 24] = { 0 };
	p32(cp, 0, 20);
	p32(cp, 4, 28);
	p32(cp, 8, 2);
	p32(cp, 12, 48);
	p32(cp, 16, 24);
	const char *key = "NetworkAddress", *val = "02aabbCCddee";
	for (int i = 0; i < 14; i++)
		cp[20 + 2 * i] = (uint8_t)key[i];
	for (int i = 0; i < 12; i++)
		cp[48 + 2 * i] = (uint8_t)val[i];
	uint8_t q[28 + 100] = { 0 }, resp[64];
	p32(q, 0, 5);
	p32(q, 4, 28 + sizeof(cp));
	p32(q, 8, 999);
	p32(q, 12, 0x0001021B);
	p32(q, 16, sizeof(cp));
	p32(q, 20, 20);
	memcpy(q + 28, cp, sizeof(cp));
	rndis_call(t, q, 28 + sizeof(cp), resp);
	assert_int_equal(g32(resp + 12), 0);
	const uint8_t newmac[6] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };
	memcpy(f, newmac, 6);
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	rx_one(t, got, &glen);
	memcpy(f, mac, 6);
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	assert_false(hnext(t, &p));
	/* A bad hex digit: refused, the MAC stays. */
	cp[48] = 'g';
	memcpy(q + 28, cp, sizeof(cp));
	rndis_call(t, q, 28 + sizeof(cp), resp);
	assert_int_equal(g32(resp + 12), 0xC0010015);
	memcpy(f, newmac, 6);
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	rx_one(t, got, &glen);
	free_t(t);
}

static void test_offload_params(void **state)
{
	(void)state;
	struct t *t = up_t();
	uint8_t p[28] = { 0x80, 3, 28, 0, 1, 4, 4, 0, 0, 0, 0, 2 };
	/* Bad forms: wrong object type, revision 0, size past the buffer or tiny. */
	p[0] = 0xA7;
	assert_int_equal(rset(t, 0xFC01020C, p, 28), 0xC0010015);
	p[0] = 0x80; p[1] = 0;
	assert_int_equal(rset(t, 0xFC01020C, p, 28), 0xC0010015);
	p[1] = 3; p[2] = 40;
	assert_int_equal(rset(t, 0xFC01020C, p, 28), 0xC0010014);
	p[2] = 12;
	assert_int_equal(rset(t, 0xFC01020C, p, 28), 0xC0010014);
	assert_int_equal(rset(t, 0xFC01020C, p, 12), 0xC0010014);
	p[2] = 28; p[5] = 9;                               /* no such setting */
	assert_int_equal(rset(t, 0xFC01020C, p, 28), 0xC0010015);
	p[5] = 4; p[7] = 4;                                /* TCP over IPv6 */
	assert_int_equal(rset(t, 0xFC01020C, p, 28), 0xC00000BB);
	p[7] = 0; p[12] = 2;                               /* LSO v2 IPv6 */
	assert_int_equal(rset(t, 0xFC01020C, p, 28), 0xC00000BB);
	/* The refused ones changed nothing: receive checksums still reported. */
	uint8_t f[2048], got[2048];
	uint32_t glen;
	size_t l3;
	uint32_t len = build(f, false, false, 0, 50, &l3);
	netvsp_tx_csum(f, len, TX_TCP4 | NDIS_CSUM_TX_IP_HEADER);
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	assert_int_equal(rx_one(t, got, &glen), NDIS_CSUM_RX_IP_OK | NDIS_CSUM_RX_TCP_OK);
	/* NVSP 4's 22-byte form, TCP transmit only: no receive checksum PPI. */
	uint8_t p4[22] = { 0x80, 2, 22, 0, 1, 2, 1, 0, 0, 0, 0, 1 };
	assert_int_equal(rset(t, 0xFC01020C, p4, 22), 0);
	assert_int_equal(netvsp_rx(t->nv, f, len), 0);
	assert_int_equal(rx_one(t, got, &glen), ~0u);
	assert_int_equal(stats(t).guest_errors, 0);
	free_t(t);
}

/* ---- RSS and sub-channels ---------------------------------------------------------- */

/* The Microsoft RSS specification's key and verification vectors (IPv4). */
static const uint8_t rss_key[40] = {
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
	0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
	0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};
static const struct {
	uint8_t dst[4], src[4];
	uint16_t dport, sport;
	uint32_t ip, tcp;
} vectors[] = {
	{ { 161, 142, 100, 80 }, { 66, 9, 149, 187 }, 1766, 2794, 0x323e8fc2, 0x51ccc178 },
	{ { 65, 69, 140, 83 }, { 199, 92, 111, 2 }, 4739, 14230, 0xd718262a, 0xc626b0ea },
	{ { 12, 22, 207, 184 }, { 24, 19, 198, 95 }, 38024, 12898, 0xd2d0a5de, 0x5c2b394a },
	{ { 209, 142, 163, 6 }, { 38, 27, 205, 30 }, 2217, 48228, 0x82989176, 0xafc7327f },
	{ { 202, 188, 127, 2 }, { 153, 39, 163, 191 }, 1303, 44251, 0x5d1809c5, 0x10e828a2 },
};

/* A TCP frame of vector v (to our MAC), checksums right. */
static uint32_t vector_frame(uint8_t *f, unsigned v)
{
	size_t l3;
	uint32_t len = build(f, false, false, 0, 20, &l3);
	memcpy(f + l3 + 12, vectors[v].src, 4);
	memcpy(f + l3 + 16, vectors[v].dst, 4);
	f[l3 + 20] = (uint8_t)(vectors[v].sport >> 8);
	f[l3 + 21] = (uint8_t)vectors[v].sport;
	f[l3 + 22] = (uint8_t)(vectors[v].dport >> 8);
	f[l3 + 23] = (uint8_t)vectors[v].dport;
	assert_int_equal(netvsp_tx_csum(f, len, TX_TCP4 | NDIS_CSUM_TX_IP_HEADER), 0);
	return len;
}

static void test_toeplitz(void **state)
{
	(void)state;
	for (unsigned v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		uint8_t in[12];
		memcpy(in, vectors[v].src, 4);
		memcpy(in + 4, vectors[v].dst, 4);
		in[8] = (uint8_t)(vectors[v].sport >> 8);
		in[9] = (uint8_t)vectors[v].sport;
		in[10] = (uint8_t)(vectors[v].dport >> 8);
		in[11] = (uint8_t)vectors[v].dport;
		assert_int_equal(netvsp_toeplitz(rss_key, 40, in, 8), vectors[v].ip);
		assert_int_equal(netvsp_toeplitz(rss_key, 40, in, 12), vectors[v].tcp);
		/* From a frame: 4-tuple for TCP when asked, else the addresses. */
		uint8_t f[256];
		uint32_t len = vector_frame(f, v), h = 0;
		assert_true(netvsp_rss_hash(rss_key, 40, 0x301, f, len, &h));
		assert_int_equal(h, vectors[v].tcp);
		assert_true(netvsp_rss_hash(rss_key, 40, 0x101, f, len, &h));
		assert_int_equal(h, vectors[v].ip);
		assert_false(netvsp_rss_hash(rss_key, 40, 0x001, f, len, &h));
		f[12] = 0x86;
		assert_false(netvsp_rss_hash(rss_key, 40, 0x301, f, len, &h));
	}
}

/* One sub-channel as the guest sees it. */
struct sub {
	uint32_t relid;
	struct gring out, in;
};

static void sub_open(struct t *t, struct sub *s, uint32_t gpadl_id, uint64_t pfn)
{
	memset(t->f->ram + pfn * 4096, 0, 4 * 4096);
	uint64_t pfns[4] = { pfn, pfn + 1, pfn + 2, pfn + 3 };
	guest_gpadl(t->f, s->relid, gpadl_id, pfns, 4);
	struct fake_msg *m = fake_next(t->f);
	assert_int_equal(m32(m, 0), 10);
	assert_int_equal(m32(m, 16), 0);
	guest_open(t->f, s->relid, gpadl_id, 0, 2);
	m = fake_next(t->f);
	assert_int_equal(m32(m, 0), 6);
	assert_int_equal(m32(m, 16), 0);
	s->out = (struct gring){ .hdr = t->f->ram + pfn * 4096, .size = 4096 };
	s->out.data[0] = t->f->ram + (pfn + 1) * 4096;
	s->in = (struct gring){ .hdr = t->f->ram + (pfn + 2) * 4096, .size = 4096 };
	s->in.data[0] = t->f->ram + (pfn + 3) * 4096;
}

/* The RSS parameters Linux sets (rndis_filter_set_rss_param): table, then key. */
static uint32_t set_rss(struct t *t, const uint32_t *table, uint32_t entries, uint16_t flag,
			uint32_t type, uint32_t keylen)
{
	static uint8_t q[28 + 40 + 512 + 40];
	uint32_t ilen = 40 + 4 * entries + keylen;
	memset(q, 0, sizeof(q));
	p32(q, 0, 5);
	p32(q, 4, 28 + ilen);
	p32(q, 8, ++t->req_id);
	p32(q, 12, 0x00010204);
	p32(q, 16, ilen);
	p32(q, 20, 20);
	uint8_t *p = q + 28;
	p[0] = (uint8_t)type;
	p[1] = 2;
	p16(p, 2, 40);
	p16(p, 4, flag);
	p32(p, 8, 0x1 | 0x100 | 0x200 | 0x400 | 0x1000);
	p16(p, 12, (uint16_t)(4 * entries));
	p32(p, 16, 40);
	p16(p, 20, (uint16_t)keylen);
	p32(p, 24, 40 + 4 * entries);
	for (uint32_t i = 0; i < entries; i++)
		p32(p, 40 + 4 * i, table[i]);
	memcpy(p + 40 + 4 * entries, rss_key, keylen < 40 ? keylen : 40);
	uint8_t resp[64];
	assert_int_equal(rndis_call(t, q, 28 + ilen, resp), 16);
	return g32(resp + 12);
}

static void test_subchannels_rss(void **state)
{
	(void)state;
	t_queues = 4;
	struct t *t = up_t();
	t_queues = 0;
	uint8_t r[512], m[40], c[40];
	uint32_t len;
	/* RSS capabilities: 4 queues, a 128-entry table. */
	assert_int_equal(rquery(t, 0x00010203, r, 18), 0);
	const uint8_t *cap = qinfo(r, &len);
	assert_int_equal(len, 18);
	assert_int_equal(cap[0], 0x88);
	assert_int_equal(g32(cap + 12), 4);
	assert_int_equal(d16(cap, 16), 128);
	/* Linux asks for 7 (its CPUs - 1): 3 granted, and offered. */
	nvsp4(m, 133, 1, 7, 0);
	nvsp_call(t, m, c);
	assert_int_equal(g32(c), 133);
	assert_int_equal(g32(c + 4), 1);
	assert_int_equal(g32(c + 8), 3);
	nvsp4(m, 133, 1, 2, 0);                       /* once per open */
	nvsp_call(t, m, c);
	assert_int_equal(g32(c + 4), 2);
	vmbus_server_flush(t->f->srv);
	struct sub subs[4];
	for (unsigned i = 1; i <= 3; i++) {
		struct fake_msg *o = fake_next(t->f);
		assert_non_null(o);
		assert_int_equal(m32(o, 0), 1);          /* OFFERCHANNEL */
		uint16_t idx;
		memcpy(&idx, o->b + 180, 2);
		assert_int_equal(idx, i);
		subs[i].relid = m32(o, 184);
	}
	struct hostpkt p;
	for (unsigned i = 1; i <= 3; i++) {
		sub_open(t, &subs[i], 0x300 + i, 400 + 4 * i);
		netvsp_poll(t->nv);
		/* The send table comes once all three are open, on the primary. */
		if (i < 3)
			assert_false(hnext(t, &p));
	}
	assert_true(hnext(t, &p));
	assert_int_equal(d16(p.d, 0), 6);                 /* inband */
	const uint8_t *tab = p.b + d16(p.d, 2) * 8 - 16;
	assert_int_equal(g32(tab), 134);
	assert_int_equal(g32(tab + 4), 16);
	assert_int_equal(g32(tab + 8), 12);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(g32(tab + 12 + 4 * i), i % 4);
	/* Bad RSS parameters are refused whole. */
	uint32_t table[128];
	for (unsigned i = 0; i < 128; i++)
		table[i] = (i * 7 + 1) % 4;
	assert_int_equal(set_rss(t, table, 128, 0, 0x80, 40), 0xC0010015);   /* type */
	assert_int_equal(set_rss(t, table, 0, 0, 0x89, 40), 0xC0010015);     /* no table */
	assert_int_equal(set_rss(t, table, 128, 0, 0x89, 8), 0xC0010015);    /* key too short */
	assert_int_equal(set_rss(t, table, 128, 0x4, 0x89, 40), 0xC0010015); /* "unchanged" of nothing */
	/* Without RSS everything arrives on the primary. */
	uint8_t f[256], msg[2048];
	uint64_t tid;
	uint32_t flen = vector_frame(f, 0);
	assert_int_equal(netvsp_rx(t->nv, f, flen), 0);
	expect_xfer(t, msg, sizeof(msg), NULL, &tid);
	gcomplete(t, tid, 1);
	netvsp_poll(t->nv);
	/* Linux's: a 128-entry table and the 40-byte key. */
	assert_int_equal(set_rss(t, table, 128, 0, 0x89, 40), 0);
	unsigned seen[4] = { 0 };
	for (unsigned v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		flen = vector_frame(f, v);
		unsigned q = table[vectors[v].tcp % 128];
		seen[q]++;
		assert_int_equal(netvsp_rx(t->nv, f, flen), 0);
		struct gring *in = q ? &subs[q].in : &t->in;
		uint64_t trailer;
		int n = gring_read(in, p.d, p.b, sizeof(p.b), &trailer);
		assert_true(n > 0);
		assert_int_equal(d16(p.d, 0), 7);          /* transfer pages, on channel q */
		uint32_t off = g32(p.b + 12);
		memcpy(msg, t->f->ram + RBUF_PFN * 4096 + off, g32(p.b + 8));
		/* Per-packet info: checksum, then the hash value. */
		uint32_t poff = g32(msg + 28), plen = g32(msg + 32);
		assert_int_equal(plen, 32);
		assert_int_equal(g32(msg + 8 + poff + 16 + 4), 8);  /* NBL_HASH_VALUE */
		assert_int_equal(g32(msg + 8 + poff + 16 + 12), vectors[v].tcp);
		assert_memory_equal(msg + 8 + g32(msg + 8), f, flen);
		/* The completion comes back on that channel and frees the section. */
		uint8_t cm[8];
		p32(cm, 0, 108);
		p32(cm, 4, 1);
		uint64_t ctid;
		memcpy(&ctid, p.d + 8, 8);
		uint8_t raw[24] = { 0 };
		p16(raw, 0, 11);
		p16(raw, 2, 2);
		p16(raw, 4, 3);
		p64(raw, 8, ctid);
		memcpy(raw + 16, cm, 8);
		struct gring *out = q ? &subs[q].out : &t->out;
		uint32_t w = gr32(out, 0);
		gring_copy(out, w, raw, 24, true);
		uint64_t tr = (uint64_t)w << 32;
		gring_copy(out, w + 24, &tr, 8, true);
		gw32(out, 0, (w + 32) % out->size);
		netvsp_poll(t->nv);
	}
	assert_true(seen[1] + seen[2] + seen[3] > 0);   /* some went to sub-channels */
	struct netvsp_stats st = stats(t);
	assert_int_equal(st.rx_frames, 1 + 5);
	assert_int_equal(st.guest_errors, 1);            /* the second request */
	/* Every section is back: NSECT frames fit again. */
	for (unsigned i = 0; i < NSECT; i++) {
		assert_int_equal(netvsp_rx(t->nv, f, flen), 0);
	}
	assert_int_equal(netvsp_rx(t->nv, f, flen), -EAGAIN);
	free_t(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_known),
		cmocka_unit_test(test_csum_malformed),
		cmocka_unit_test(test_lso_segments),
		cmocka_unit_test(test_filter_fn),
		cmocka_unit_test(test_tx_offload),
		cmocka_unit_test(test_rx_csum_and_filter),
		cmocka_unit_test(test_offload_params),
		cmocka_unit_test(test_toeplitz),
		cmocka_unit_test(test_subchannels_rss),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
