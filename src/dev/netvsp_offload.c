/*
 * netvsp's task offloads, done on the host for the guest (NDIS 6 task
 * offload as hv_netvsc uses it: drivers/net/hyperv/hyperv_net.h
 * ndis_offload, ndis_tcp_ip_checksum_info, ndis_tcp_lso_info): IPv4
 * TCP/UDP and IP header checksums computed for frames the guest sends with
 * TCPIP_CHKSUM_PKTINFO (RFC 1071 sums, RFC 793/768 pseudo-headers), large
 * TCP sends cut into MSS-sized frames (NDIS LSO v2, IPv4), checksums of
 * received frames verified so the guest can skip it, and the receive packet
 * filter (OID_GEN_CURRENT_PACKET_FILTER). Pure functions on frame bytes: the
 * frame comes from the guest or the network, so every header is
 * bounds-checked before it is read; a malformed one is refused (-EINVAL),
 * never guessed at.
 */
#include <errno.h>
#include <string.h>

#include "dev/netvsp_impl.h"

#define ETH_HLEN 14u
#define ETH_P_IPV4 0x0800u
#define ETH_P_8021Q 0x8100u
#define IPPROTO_TCP_ 6u
#define IPPROTO_UDP_ 17u
#define IPV4_MF 0x2000u
#define IPV4_OFFMASK 0x1FFFu
#define TCP_FIN 0x01u
#define TCP_PSH 0x08u
#define TCP_CWR 0x80u
#define NETVSP_LSO_MIN_MSS 48u  /* Linux's TCP_MIN_SND_MSS: caps the segment loop */

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }
static void pbe16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void pbe32(uint8_t *p, uint32_t v) { pbe16(p, (uint16_t)(v >> 16)); pbe16(p + 2, (uint16_t)v); }

uint32_t netvsp_csum_add(uint32_t sum, const uint8_t *p, uint32_t len)
{
	/* 16-bit big-endian words; 64-bit accumulator folded at the end. */
	uint64_t s = sum;
	uint32_t i = 0;
	for (; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < len)
		s += (uint32_t)p[i] << 8;
	while (s >> 32)
		s = (s & 0xFFFFFFFFu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t netvsp_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xFFFFu) + (sum >> 16);
	return (uint16_t)~sum;
}

int netvsp_parse_ipv4(const uint8_t *f, uint32_t len, bool lso, struct netvsp_ipv4 *o)
{
	if (len < ETH_HLEN)
		return -EINVAL;
	uint32_t l3 = ETH_HLEN;
	uint16_t type = be16(f + 12);
	if (type == ETH_P_8021Q) {
		if (len < ETH_HLEN + 4)
			return -EINVAL;
		type = be16(f + 16);
		l3 += 4;
	}
	if (type != ETH_P_IPV4 || len - l3 < 20 || f[l3] >> 4 != 4)
		return -EINVAL;
	uint32_t ihl = (f[l3] & 15u) * 4;
	if (ihl < 20 || ihl > len - l3)
		return -EINVAL;
	/* LSO: Linux leaves tot_len 0 in the large frame; the frame says it. */
	uint32_t tot = lso ? len - l3 : be16(f + l3 + 2);
	if (tot < ihl || tot > len - l3)
		return -EINVAL;
	if (be16(f + l3 + 6) & (IPV4_MF | IPV4_OFFMASK))
		return -EINVAL; /* a fragment: no whole transport header */
	o->l3 = l3;
	o->l4 = l3 + ihl;
	o->end = l3 + tot;
	o->proto = f[l3 + 9];
	return 0;
}

static void ip_header_csum(uint8_t *f, const struct netvsp_ipv4 *ip)
{
	f[ip->l3 + 10] = f[ip->l3 + 11] = 0;
	pbe16(f + ip->l3 + 10, netvsp_csum_fold(netvsp_csum_add(0, f + ip->l3, ip->l4 - ip->l3)));
}

/* The transport checksum of [l4, end) with the pseudo-header; field zeroed first. */
static uint16_t l4_csum(uint8_t *f, const struct netvsp_ipv4 *ip, uint32_t field)
{
	uint32_t l4len = ip->end - ip->l4;
	uint8_t ph[4] = { 0, (uint8_t)ip->proto, (uint8_t)(l4len >> 8), (uint8_t)l4len };
	f[ip->l4 + field] = f[ip->l4 + field + 1] = 0;
	uint32_t s = netvsp_csum_add(0, f + ip->l3 + 12, 8); /* source, destination */
	s = netvsp_csum_add(s, ph, 4);
	s = netvsp_csum_add(s, f + ip->l4, l4len);
	return netvsp_csum_fold(s);
}

/* TCP header length at ip->l4, or 0 if it does not fit. */
static uint32_t tcp_hlen(const uint8_t *f, const struct netvsp_ipv4 *ip)
{
	if (ip->end - ip->l4 < 20)
		return 0;
	uint32_t h = (f[ip->l4 + 12] >> 4) * 4u;
	return h >= 20 && h <= ip->end - ip->l4 ? h : 0;
}

int netvsp_tx_csum(uint8_t *f, uint32_t len, uint32_t info)
{
	bool want_ip = info & NDIS_CSUM_TX_IP_HEADER;
	bool want_tcp = info & NDIS_CSUM_TX_TCP, want_udp = info & NDIS_CSUM_TX_UDP;
	if (!want_ip && !want_tcp && !want_udp)
		return 0;
	if (!(info & NDIS_CSUM_TX_IPV4) || (want_tcp && want_udp))
		return -EINVAL; /* IPv6 is not advertised */
	struct netvsp_ipv4 ip;
	if (netvsp_parse_ipv4(f, len, false, &ip) < 0)
		return -EINVAL;
	if (want_tcp) {
		if (ip.proto != IPPROTO_TCP_ || !tcp_hlen(f, &ip))
			return -EINVAL;
		pbe16(f + ip.l4 + 16, l4_csum(f, &ip, 16));
	} else if (want_udp) {
		if (ip.proto != IPPROTO_UDP_ || ip.end - ip.l4 < 8 || be16(f + ip.l4 + 4) != ip.end - ip.l4)
			return -EINVAL;
		uint16_t c = l4_csum(f, &ip, 6);
		pbe16(f + ip.l4 + 6, c ? c : 0xFFFF); /* 0 means "none" in UDP */
	}
	if (want_ip)
		ip_header_csum(f, &ip);
	return 0;
}

int netvsp_lso(const uint8_t *f, uint32_t len, uint32_t mss, uint8_t *seg, uint32_t segmax,
	       netvsp_emit_fn emit, void *ctx)
{
	struct netvsp_ipv4 ip;
	if (netvsp_parse_ipv4(f, len, true, &ip) < 0 || ip.proto != IPPROTO_TCP_)
		return -EINVAL;
	uint32_t th = tcp_hlen(f, &ip);
	if (!th)
		return -EINVAL;
	uint32_t hdr = ip.l4 + th, payload = ip.end - hdr;
	if (mss < NETVSP_LSO_MIN_MSS || hdr > segmax || mss > segmax - hdr)
		return -EINVAL;
	uint16_t id = be16(f + ip.l3 + 4);
	uint32_t seq = be32(f + ip.l4 + 4);
	uint8_t flags = f[ip.l4 + 13];
	int n = 0;
	/* The loop runs payload / mss <= 65535 / 48 times; once if no payload. */
	for (uint32_t off = 0; off < payload || n == 0; off += mss) {
		uint32_t chunk = payload - off < mss ? payload - off : mss;
		bool last = off + chunk >= payload;
		memcpy(seg, f, hdr);
		memcpy(seg + hdr, f + hdr + off, chunk);
		struct netvsp_ipv4 s = ip;
		s.end = hdr + chunk;
		pbe16(seg + ip.l3 + 2, (uint16_t)(s.end - ip.l3));
		pbe16(seg + ip.l3 + 4, (uint16_t)(id + n));
		pbe32(seg + ip.l4 + 4, seq + off);
		uint8_t fl = flags;
		if (!last)
			fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
		if (n)
			fl &= (uint8_t)~TCP_CWR;
		seg[ip.l4 + 13] = fl;
		ip_header_csum(seg, &s);
		pbe16(seg + ip.l4 + 16, l4_csum(seg, &s, 16));
		emit(ctx, seg, s.end);
		n++;
	}
	return n;
}

uint32_t netvsp_rx_csum(const uint8_t *cf, uint32_t len)
{
	/* Verifies without writing: sums include the stored checksums. */
	struct netvsp_ipv4 ip;
	if (netvsp_parse_ipv4(cf, len, false, &ip) < 0)
		return 0;
	if (netvsp_csum_fold(netvsp_csum_add(0, cf + ip.l3, ip.l4 - ip.l3)) != 0)
		return 0;
	uint32_t ok = NDIS_CSUM_RX_IP_OK;
	uint32_t l4len = ip.end - ip.l4;
	uint8_t ph[4] = { 0, (uint8_t)ip.proto, (uint8_t)(l4len >> 8), (uint8_t)l4len };
	if (ip.proto == IPPROTO_TCP_) {
		if (!tcp_hlen(cf, &ip))
			return ok;
	} else if (ip.proto == IPPROTO_UDP_) {
		if (l4len < 8 || be16(cf + ip.l4 + 4) != l4len || be16(cf + ip.l4 + 6) == 0)
			return ok; /* no checksum sent: nothing verified */
	} else {
		return ok;
	}
	uint32_t s = netvsp_csum_add(0, cf + ip.l3 + 12, 8);
	s = netvsp_csum_add(s, ph, 4);
	s = netvsp_csum_add(s, cf + ip.l4, l4len);
	if (netvsp_csum_fold(s) != 0)
		return ok;
	return ok | (ip.proto == IPPROTO_TCP_ ? NDIS_CSUM_RX_TCP_OK : NDIS_CSUM_RX_UDP_OK);
}

bool netvsp_filter_pass(uint32_t filter, const uint8_t mac[6], const uint8_t *f, uint32_t len)
{
	static const uint8_t bcast[6] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
	if (len < 6)
		return false;
	if (filter & NDIS_PACKET_TYPE_PROMISCUOUS)
		return true;
	if (!memcmp(f, bcast, 6))
		return filter & NDIS_PACKET_TYPE_BROADCAST;
	if (f[0] & 1) /* the multicast list is not kept: MULTICAST takes all */
		return filter & (NDIS_PACKET_TYPE_MULTICAST | NDIS_PACKET_TYPE_ALL_MULTICAST);
	return (filter & NDIS_PACKET_TYPE_DIRECTED) && !memcmp(f, mac, 6);
}

uint32_t netvsp_toeplitz(const uint8_t *key, uint32_t keylen, const uint8_t *in, uint32_t n)
{
	/* Microsoft RSS spec: for each input bit set (most significant first),
	 * XOR in the 32 key bits that start at that bit's position. */
	uint32_t res = 0, win = 0;
	for (uint32_t i = 0; i < 4; i++)
		win = win << 8 | (i < keylen ? key[i] : 0);
	for (uint32_t i = 0; i < n; i++) {
		for (int b = 7; b >= 0; b--) {
			if (in[i] >> b & 1)
				res ^= win;
			uint32_t kbit = 32 + i * 8 + (uint32_t)(7 - b); /* next key bit */
			uint32_t k = kbit / 8 < keylen ? key[kbit / 8] >> (7 - kbit % 8) & 1 : 0;
			win = win << 1 | k;
		}
	}
	return res;
}

bool netvsp_rss_hash(const uint8_t *key, uint32_t keylen, uint32_t hashinfo, const uint8_t *f,
		     uint32_t len, uint32_t *hash)
{
	struct netvsp_ipv4 ip;
	if (netvsp_parse_ipv4(f, len, false, &ip) < 0)
		return false;
	uint8_t in[12];
	memcpy(in, f + ip.l3 + 12, 8); /* source, destination address */
	if ((hashinfo & NDIS_HASH_TCP_IPV4) && ip.proto == IPPROTO_TCP_ && ip.end - ip.l4 >= 4) {
		memcpy(in + 8, f + ip.l4, 4); /* source, destination port */
		*hash = netvsp_toeplitz(key, keylen, in, 12);
		return true;
	}
	if (!(hashinfo & NDIS_HASH_IPV4))
		return false;
	*hash = netvsp_toeplitz(key, keylen, in, 8);
	return true;
}
