/*
 * netvsp's RNDIS side (Microsoft's Remote NDIS over VMBus; Linux's
 * drivers/net/hyperv/rndis_filter.c and include/linux/rndis.h): the
 * messages in one guest send (PACKET frames to the host, INIT, HALT,
 * QUERY/SET of the OIDs hv_netvsc asks for at probe and open, RESET,
 * KEEPALIVE), and the responses, which travel the receive path. The guest
 * waits without timeout for each response, so none is dropped for lack of
 * room: it waits in a queue (and the ring is not read while the queue is
 * full) until a receive section frees up.
 *
 * Offloads (NDIS 6 task offload, IPv4): TCP and UDP checksums and LSO v2
 * on transmit, checksum results on receive (netvsp_offload.c does the
 * work). 802.1Q tags handed over as per-packet info are put back into the
 * frame before any of it.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "dev/netvsp_impl.h"

/* OIDs (include/linux/rndis.h, hyperv_net.h). */
#define OID_GEN_SUPPORTED_LIST 0x00010101u
#define OID_GEN_HARDWARE_STATUS 0x00010102u
#define OID_GEN_MEDIA_SUPPORTED 0x00010103u
#define OID_GEN_MEDIA_IN_USE 0x00010104u
#define OID_GEN_MAXIMUM_LOOKAHEAD 0x00010105u
#define OID_GEN_MAXIMUM_FRAME_SIZE 0x00010106u
#define OID_GEN_LINK_SPEED 0x00010107u
#define OID_GEN_CURRENT_PACKET_FILTER 0x0001010Eu
#define OID_GEN_CURRENT_LOOKAHEAD 0x0001010Fu
#define OID_GEN_MAXIMUM_TOTAL_SIZE 0x00010111u
#define OID_GEN_MEDIA_CONNECT_STATUS 0x00010114u
#define OID_GEN_MAXIMUM_SEND_PACKETS 0x00010115u
#define OID_GEN_RECEIVE_SCALE_CAPABILITIES 0x00010203u
#define OID_GEN_RECEIVE_SCALE_PARAMETERS 0x00010204u
#define OID_GEN_RNDIS_CONFIG_PARAMETER 0x0001021Bu
#define OID_GEN_FRIENDLY_NAME 0x00020216u
#define OID_802_3_PERMANENT_ADDRESS 0x01010101u
#define OID_802_3_CURRENT_ADDRESS 0x01010102u
#define OID_802_3_MULTICAST_LIST 0x01010103u
#define OID_802_3_MAXIMUM_LIST_SIZE 0x01010104u
#define OID_TCP_OFFLOAD_PARAMETERS 0xFC01020Cu
#define OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES 0xFC01020Du

#define NDIS_OBJECT_TYPE_OFFLOAD 0xA7
#define NDIS_OFFLOAD_REVISION 3
#define NDIS_OFFLOAD_SIZE 156u   /* struct ndis_offload, NDIS 6.30 */
/* struct ndis_offload fields (offsets) and values we report. */
#define NDIS_OFF_IP4_TXENC 4u
#define NDIS_OFF_IP4_TXCSUM 8u
#define NDIS_OFF_IP4_RXENC 12u
#define NDIS_OFF_IP4_RXCSUM 16u
#define NDIS_OFF_LSOV2_IP4_ENCAP 80u
#define NDIS_OFF_LSOV2_IP4_MAXSZ 84u
#define NDIS_OFF_LSOV2_IP4_MINSG 88u
#define NDIS_OFFLOAD_ENCAP_8023 0x0002u
#define NDIS_CSUM_CAP_IP4OPT 0x001u
#define NDIS_CSUM_CAP_TCP4OPT 0x004u
#define NDIS_CSUM_CAP_TCP4 0x010u
#define NDIS_CSUM_CAP_UDP4 0x040u
#define NDIS_CSUM_CAP_IP4 0x100u
#define NDIS_LSO_MIN_SEGMENTS 2u
/* struct ndis_offload_params (set by the guest). */
#define NDIS_OBJECT_TYPE_DEFAULT 0x80
#define NDIS_OFFLOAD_PARAMS_MIN 20u  /* revision 1: up to and with flags */
#define NDIS_PARAM_NO_CHANGE 0
#define NDIS_PARAM_TX_RX_DISABLED 1
#define NDIS_PARAM_TX_ENABLED_RX_DISABLED 2
#define NDIS_PARAM_RX_ENABLED_TX_DISABLED 3
#define NDIS_PARAM_TX_RX_ENABLED 4
#define NDIS_PARAM_LSOV2_DISABLED 1
#define NDIS_PARAM_LSOV2_ENABLED 2
/* RSS: ndis_recv_scale_cap (packed, 18 bytes), ndis_recv_scale_param (40). */
#define NDIS_OBJECT_TYPE_RSS_CAPABILITIES 0x88
#define NDIS_OBJECT_TYPE_RSS_PARAMETERS 0x89
#define NDIS_RSS_CAPS_SIZE 18u
#define NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV4 0x00000100u
#define NDIS_RSS_PARAMS_SIZE 40u
#define NDIS_RSS_PARAM_FLAG_ITABLE_UNCHANGED 0x0004u
#define NDIS_RSS_PARAM_FLAG_HASH_KEY_UNCHANGED 0x0008u
#define NDIS_RSS_PARAM_FLAG_DISABLE_RSS 0x0010u
/* rndis_config_parameter_info, as rndis_filter_set_device_mac sends it. */
#define RNDIS_CONFIG_PARAM_TYPE_STRING 2
#define LINK_SPEED_100BPS 100000000u /* 10 Gbit/s, in units of 100 bit/s */
#define RNDIS_MAX_PKT_PER_MSG 8
#define RNDIS_ALIGN_SHIFT 3

static const uint32_t supported_oids[] = {
	OID_GEN_SUPPORTED_LIST, OID_GEN_HARDWARE_STATUS, OID_GEN_MEDIA_SUPPORTED,
	OID_GEN_MEDIA_IN_USE, OID_GEN_MAXIMUM_LOOKAHEAD, OID_GEN_MAXIMUM_FRAME_SIZE,
	OID_GEN_LINK_SPEED, OID_GEN_CURRENT_PACKET_FILTER, OID_GEN_CURRENT_LOOKAHEAD,
	OID_GEN_MAXIMUM_TOTAL_SIZE, OID_GEN_MEDIA_CONNECT_STATUS, OID_GEN_MAXIMUM_SEND_PACKETS,
	OID_GEN_FRIENDLY_NAME, OID_802_3_PERMANENT_ADDRESS, OID_802_3_CURRENT_ADDRESS,
	OID_802_3_MULTICAST_LIST, OID_802_3_MAXIMUM_LIST_SIZE,
	OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES,
};

/* ---- responses ------------------------------------------------------------ */

static void ctl_push(struct netvsp *nv, const uint8_t *msg, uint32_t len)
{
	if (!nv->nctl && netvsp_rx_put(nv, msg, len, NULL, 0, true) == 0)
		return;
	if (nv->nctl == NETVSP_CTL_QUEUE) {
		/* Only a guest with several requests in one send gets here. */
		log_guest("netvsp: RNDIS response dropped (too many at once)");
		netvsp_guest_error(nv);
		return;
	}
	nv->ctl[nv->nctl].len = len;
	memcpy(nv->ctl[nv->nctl].msg, msg, len);
	nv->nctl++;
}

bool netvsp_rndis_flush(struct netvsp *nv)
{
	unsigned sent = 0;
	while (sent < nv->nctl &&
	       netvsp_rx_put(nv, nv->ctl[sent].msg, nv->ctl[sent].len, NULL, 0, true) == 0)
		sent++;
	memmove(nv->ctl, nv->ctl + sent, (nv->nctl - sent) * sizeof(nv->ctl[0]));
	nv->nctl -= sent;
	if (!nv->nctl && nv->link_pending) {
		uint8_t m[RNDIS_HEADER + 12] = { 0 };
		nv_p32(m, RNDIS_MSG_INDICATE);
		nv_p32(m + 4, sizeof(m));
		nv_p32(m + 8, nv->link_up ? RNDIS_STATUS_MEDIA_CONNECT : RNDIS_STATUS_MEDIA_DISCONNECT);
		if (netvsp_rx_put(nv, m, sizeof(m), NULL, 0, true) == 0)
			nv->link_pending = false;
	}
	return nv->nctl == 0;
}

void netvsp_rndis_reset(struct netvsp *nv)
{
	nv->rndis_ready = false;
	nv->filter = 0;
	nv->link_pending = false;
	memcpy(nv->mac, nv->cfg.mac, 6);
	nv->rss_on = false;
	nv->rss_keylen = nv->rss_tabsize = 0;
	nv->rx_csum_tcp4 = nv->rx_csum_udp4 = false;
	nv->tx_csum_tcp4 = nv->tx_csum_udp4 = nv->lso4 = false;
}

/* ---- control messages -------------------------------------------------------- */

static void do_init(struct netvsp *nv, uint32_t req_id)
{
	uint8_t m[RNDIS_HEADER + 44] = { 0 };
	nv_p32(m, RNDIS_MSG_INIT | RNDIS_MSG_COMPLETION);
	nv_p32(m + 4, sizeof(m));
	nv_p32(m + 8, req_id);
	nv_p32(m + 12, RNDIS_STATUS_SUCCESS);
	nv_p32(m + 16, 1);                      /* major */
	nv_p32(m + 20, 0);                      /* minor */
	nv_p32(m + 24, 1);                      /* dev_flags: connectionless */
	nv_p32(m + 28, 0);                      /* medium: 802.3 */
	nv_p32(m + 32, RNDIS_MAX_PKT_PER_MSG);
	nv_p32(m + 36, NETVSP_SEND_SECTION);    /* max_xfer_size */
	nv_p32(m + 40, RNDIS_ALIGN_SHIFT);
	nv->rndis_ready = true;
	ctl_push(nv, m, sizeof(m));
}

/* The answer to QUERY oid: info into out (NETVSP_CTL_MAX - 24 bytes room). */
static uint32_t query(struct netvsp *nv, uint32_t oid, uint8_t *out, uint32_t *len)
{
	uint32_t v;
	switch (oid) {
	case OID_GEN_SUPPORTED_LIST:
		for (size_t i = 0; i < sizeof(supported_oids) / 4; i++)
			nv_p32(out + 4 * i, supported_oids[i]);
		*len = sizeof(supported_oids);
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_HARDWARE_STATUS: v = 0; break;  /* ready */
	case OID_GEN_MEDIA_SUPPORTED: case OID_GEN_MEDIA_IN_USE: v = 0; break; /* 802.3 */
	case OID_GEN_MAXIMUM_LOOKAHEAD: case OID_GEN_CURRENT_LOOKAHEAD:
	case OID_GEN_MAXIMUM_FRAME_SIZE: v = nv->cfg.mtu; break;
	case OID_GEN_MAXIMUM_TOTAL_SIZE: v = nv->cfg.mtu + 14u; break;
	case OID_GEN_LINK_SPEED: v = LINK_SPEED_100BPS; break;
	case OID_GEN_CURRENT_PACKET_FILTER: v = nv->filter; break;
	case OID_GEN_MEDIA_CONNECT_STATUS: v = nv->link_up ? 0 : 1; break;
	case OID_GEN_MAXIMUM_SEND_PACKETS: v = RNDIS_MAX_PKT_PER_MSG; break;
	case OID_802_3_MAXIMUM_LIST_SIZE: v = 32; break;
	case OID_802_3_PERMANENT_ADDRESS:
	case OID_802_3_CURRENT_ADDRESS:
		memcpy(out, nv->cfg.mac, 6);
		*len = 6;
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_FRIENDLY_NAME: {
		/* UTF-16 with its NUL; Linux ignores this default name. */
		static const char name[] = "Network Adapter";
		for (size_t i = 0; i < sizeof(name); i++)
			nv_p16(out + 2 * i, (uint8_t)name[i]);
		*len = 2 * sizeof(name);
		return RNDIS_STATUS_SUCCESS;
	}
	case OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES:
		/*
		 * ndis_offload: IPv4 checksums both ways (Linux turns on
		 * NETIF_F_IP_CSUM for TCP4 | TCP4OPT, and UDP with UDP4) and
		 * LSO v2 for IPv4 over Ethernet (NETIF_F_TSO). Nothing for IPv6.
		 */
		memset(out, 0, NDIS_OFFLOAD_SIZE);
		out[0] = NDIS_OBJECT_TYPE_OFFLOAD;
		out[1] = NDIS_OFFLOAD_REVISION;
		nv_p16(out + 2, NDIS_OFFLOAD_SIZE);
		v = NDIS_CSUM_CAP_IP4OPT | NDIS_CSUM_CAP_TCP4OPT | NDIS_CSUM_CAP_TCP4 |
		    NDIS_CSUM_CAP_UDP4 | NDIS_CSUM_CAP_IP4;
		nv_p32(out + NDIS_OFF_IP4_TXENC, NDIS_OFFLOAD_ENCAP_8023);
		nv_p32(out + NDIS_OFF_IP4_TXCSUM, v);
		nv_p32(out + NDIS_OFF_IP4_RXENC, NDIS_OFFLOAD_ENCAP_8023);
		nv_p32(out + NDIS_OFF_IP4_RXCSUM, v);
		nv_p32(out + NDIS_OFF_LSOV2_IP4_ENCAP, NDIS_OFFLOAD_ENCAP_8023);
		nv_p32(out + NDIS_OFF_LSOV2_IP4_MAXSZ, NETVSP_LSO_MAX);
		nv_p32(out + NDIS_OFF_LSOV2_IP4_MINSG, NDIS_LSO_MIN_SEGMENTS);
		*len = NDIS_OFFLOAD_SIZE;
		return RNDIS_STATUS_SUCCESS;
	case OID_GEN_RECEIVE_SCALE_CAPABILITIES:
		/* More than one queue only if configured (and NVSP 5 speaks sub-channels). */
		if (nv->cfg.queues < 2 || nv->nvsp_version < NVSP_VERSION_5) {
			*len = 0;
			return RNDIS_STATUS_NOT_SUPPORTED;
		}
		memset(out, 0, NDIS_RSS_CAPS_SIZE);
		out[0] = NDIS_OBJECT_TYPE_RSS_CAPABILITIES;
		out[1] = 2;
		nv_p16(out + 2, NDIS_RSS_CAPS_SIZE);
		nv_p32(out + 4, NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV4);
		nv_p32(out + 8, nv->cfg.queues);   /* num_int_msg */
		nv_p32(out + 12, nv->cfg.queues);  /* num_recv_que */
		nv_p16(out + 16, NETVSP_RSS_TABLE_MAX);
		*len = NDIS_RSS_CAPS_SIZE;
		return RNDIS_STATUS_SUCCESS;
	default:
		*len = 0;
		return RNDIS_STATUS_NOT_SUPPORTED;
	}
	nv_p32(out, v);
	*len = 4;
	return RNDIS_STATUS_SUCCESS;
}

static void do_query(struct netvsp *nv, const uint8_t *body)
{
	uint8_t m[NETVSP_CTL_MAX] = { 0 };
	uint32_t len = 0;
	uint32_t status = query(nv, nv_g32(body + 4), m + 24, &len);
	nv_p32(m, RNDIS_MSG_QUERY | RNDIS_MSG_COMPLETION);
	nv_p32(m + 4, 24 + len);
	nv_p32(m + 8, nv_g32(body));  /* req_id */
	nv_p32(m + 12, status);
	nv_p32(m + 16, len);
	nv_p32(m + 20, 16);           /* info_buf_offset, from the body */
	ctl_push(nv, m, 24 + len);
}

/* One checksum setting (NDIS_PARAM_*) applied to tx/rx; false if out of range. */
static bool csum_param(uint8_t v, bool *tx, bool *rx)
{
	switch (v) {
	case NDIS_PARAM_NO_CHANGE: return true;
	case NDIS_PARAM_TX_RX_DISABLED: *tx = *rx = false; return true;
	case NDIS_PARAM_TX_ENABLED_RX_DISABLED: *tx = true; *rx = false; return true;
	case NDIS_PARAM_RX_ENABLED_TX_DISABLED: *tx = false; *rx = true; return true;
	case NDIS_PARAM_TX_RX_ENABLED: *tx = *rx = true; return true;
	default: return false;
	}
}

/* OID_TCP_OFFLOAD_PARAMETERS: ndis_offload_params (p, ilen bytes). */
static uint32_t set_offload(struct netvsp *nv, const uint8_t *p, uint32_t ilen)
{
	if (ilen < NDIS_OFFLOAD_PARAMS_MIN || nv_g16(p + 2) < NDIS_OFFLOAD_PARAMS_MIN ||
	    nv_g16(p + 2) > ilen)
		return RNDIS_STATUS_INVALID_LENGTH;
	if (p[0] != NDIS_OBJECT_TYPE_DEFAULT || p[1] < 1)
		return RNDIS_STATUS_INVALID_DATA;
	/* All or nothing: validate on copies. */
	bool ttcp = nv->tx_csum_tcp4, rtcp = nv->rx_csum_tcp4;
	bool tudp = nv->tx_csum_udp4, rudp = nv->rx_csum_udp4, lso = nv->lso4;
	bool ipt = false, ipr = false;
	/* ip_v4_csum (4): Linux turns it off and checks IP headers itself. */
	if (!csum_param(p[4], &ipt, &ipr) || !csum_param(p[5], &ttcp, &rtcp) ||
	    !csum_param(p[6], &tudp, &rudp))
		return RNDIS_STATUS_INVALID_DATA;
	/* IPv6 (7, 8), LSO v1 (9), IPsec (10): not offered, must not be enabled. */
	for (unsigned i = 7; i <= 10; i++)
		if (p[i] > NDIS_PARAM_TX_RX_DISABLED)
			return RNDIS_STATUS_NOT_SUPPORTED;
	if (p[11] == NDIS_PARAM_LSOV2_ENABLED)
		lso = true;
	else if (p[11] == NDIS_PARAM_LSOV2_DISABLED)
		lso = false;
	else if (p[11] != NDIS_PARAM_NO_CHANGE)
		return RNDIS_STATUS_INVALID_DATA;
	if (p[12] > NDIS_PARAM_LSOV2_DISABLED)  /* LSO v2 IPv6 */
		return RNDIS_STATUS_NOT_SUPPORTED;
	nv->tx_csum_tcp4 = ttcp;
	nv->rx_csum_tcp4 = rtcp;
	nv->tx_csum_udp4 = tudp;
	nv->rx_csum_udp4 = rudp;
	nv->lso4 = lso;
	return RNDIS_STATUS_SUCCESS;
}

/*
 * OID_GEN_RECEIVE_SCALE_PARAMETERS: ndis_recv_scale_param, then the
 * indirection table (u32 channel numbers) and the Toeplitz key where its
 * offsets say. Taken whole or not at all.
 */
static uint32_t set_rss(struct netvsp *nv, const uint8_t *p, uint32_t ilen)
{
	if (ilen < NDIS_RSS_PARAMS_SIZE || nv_g16(p + 2) < NDIS_RSS_PARAMS_SIZE ||
	    nv_g16(p + 2) > ilen)
		return RNDIS_STATUS_INVALID_LENGTH;
	if (p[0] != NDIS_OBJECT_TYPE_RSS_PARAMETERS || p[1] < 1)
		return RNDIS_STATUS_INVALID_DATA;
	if (nv->cfg.queues < 2)
		return RNDIS_STATUS_NOT_SUPPORTED;
	uint32_t flag = nv_g16(p + 4), hashinfo = nv_g32(p + 8);
	uint32_t tsize = nv_g16(p + 12), toff = nv_g32(p + 16);
	uint32_t ksize = nv_g16(p + 20), koff = nv_g32(p + 24);
	if (flag & NDIS_RSS_PARAM_FLAG_DISABLE_RSS) {
		nv->rss_on = false;
		return RNDIS_STATUS_SUCCESS;
	}
	if ((hashinfo & 0xFF) != NDIS_HASH_FUNC_TOEPLITZ)
		return RNDIS_STATUS_INVALID_DATA;
	bool tnew = !(flag & NDIS_RSS_PARAM_FLAG_ITABLE_UNCHANGED);
	bool knew = !(flag & NDIS_RSS_PARAM_FLAG_HASH_KEY_UNCHANGED);
	if (tnew && (tsize == 0 || tsize % 4 || tsize > 4 * NETVSP_RSS_TABLE_MAX ||
		     toff > ilen || tsize > ilen - toff))
		return RNDIS_STATUS_INVALID_DATA;
	if (knew && (ksize < 16 || ksize > NETVSP_RSS_KEY_MAX || koff > ilen ||
		     ksize > ilen - koff))
		return RNDIS_STATUS_INVALID_DATA; /* 16: enough for the IPv4 4-tuple */
	if ((!tnew && !nv->rss_tabsize) || (!knew && !nv->rss_keylen))
		return RNDIS_STATUS_INVALID_DATA; /* "unchanged" with nothing set */
	if (tnew) {
		/* Entries past the granted channels fall back to the primary at receive. */
		for (uint32_t i = 0; i < tsize / 4; i++)
			nv->rss_table[i] = nv_g32(p + toff + 4 * i);
		nv->rss_tabsize = tsize / 4;
	}
	if (knew) {
		memcpy(nv->rss_key, p + koff, ksize);
		nv->rss_keylen = ksize;
	}
	nv->rss_hashinfo = hashinfo;
	nv->rss_on = true;
	return RNDIS_STATUS_SUCCESS;
}

static int hexval(uint16_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/*
 * OID_GEN_RNDIS_CONFIG_PARAMETER: the one Linux sends is "NetworkAddress",
 * a new MAC as 12 UTF-16 hex digits; it becomes the receive filter's
 * address. Other parameters are accepted and ignored.
 */
static uint32_t set_config(struct netvsp *nv, const uint8_t *p, uint32_t ilen)
{
	static const char key[] = "NetworkAddress";
	if (ilen < 20)
		return RNDIS_STATUS_INVALID_LENGTH;
	uint32_t noff = nv_g32(p), nlen = nv_g32(p + 4), type = nv_g32(p + 8);
	uint32_t voff = nv_g32(p + 12), vlen = nv_g32(p + 16);
	if (noff > ilen || nlen > ilen - noff || voff > ilen || vlen > ilen - voff)
		return RNDIS_STATUS_INVALID_DATA;
	if (nlen != 2 * (sizeof(key) - 1))
		return RNDIS_STATUS_SUCCESS;
	for (uint32_t i = 0; i < sizeof(key) - 1; i++)
		if (nv_g16(p + noff + 2 * i) != (uint8_t)key[i])
			return RNDIS_STATUS_SUCCESS;
	if (type != RNDIS_CONFIG_PARAM_TYPE_STRING || vlen < 24)
		return RNDIS_STATUS_INVALID_DATA;
	uint8_t mac[6];
	for (unsigned i = 0; i < 12; i++) {
		int h = hexval(nv_g16(p + voff + 2 * i));
		if (h < 0)
			return RNDIS_STATUS_INVALID_DATA;
		mac[i / 2] = (uint8_t)(i % 2 ? mac[i / 2] | h : h << 4);
	}
	memcpy(nv->mac, mac, 6);
	return RNDIS_STATUS_SUCCESS;
}

static void do_set(struct netvsp *nv, const uint8_t *body, uint32_t blen)
{
	uint32_t oid = nv_g32(body + 4), ilen = nv_g32(body + 8), ioff = nv_g32(body + 12);
	uint32_t status = RNDIS_STATUS_SUCCESS;
	if (ioff > blen || ilen > blen - ioff) {
		log_guest("netvsp: RNDIS SET %#x: info out of the message", oid);
		netvsp_guest_error(nv);
		status = RNDIS_STATUS_INVALID_DATA;
	} else {
		switch (oid) {
		case OID_GEN_CURRENT_PACKET_FILTER:
			if (ilen < 4)
				status = RNDIS_STATUS_INVALID_LENGTH;
			else
				nv->filter = nv_g32(body + ioff);
			break;
		case OID_TCP_OFFLOAD_PARAMETERS:
			status = set_offload(nv, body + ioff, ilen);
			break;
		case OID_GEN_RNDIS_CONFIG_PARAMETER:
			status = set_config(nv, body + ioff, ilen);
			break;
		case OID_GEN_RECEIVE_SCALE_PARAMETERS:
			status = set_rss(nv, body + ioff, ilen);
			break;
		case OID_802_3_MULTICAST_LIST:      /* not kept: see netvsp_filter_pass */
		case OID_GEN_CURRENT_LOOKAHEAD:
			break;
		default:
			status = RNDIS_STATUS_NOT_SUPPORTED;
			break;
		}
	}
	uint8_t m[RNDIS_HEADER + 8] = { 0 };
	nv_p32(m, RNDIS_MSG_SET | RNDIS_MSG_COMPLETION);
	nv_p32(m + 4, sizeof(m));
	nv_p32(m + 8, nv_g32(body));
	nv_p32(m + 12, status);
	ctl_push(nv, m, sizeof(m));
}

/* One control message; body is blen bytes after the 8-byte header. */
static void control(struct netvsp *nv, uint32_t type, const uint8_t *body, uint32_t blen)
{
	static const uint32_t min_body[] = {
		[RNDIS_MSG_INIT] = 16, [RNDIS_MSG_HALT] = 4, [RNDIS_MSG_QUERY] = 20,
		[RNDIS_MSG_SET] = 20, [RNDIS_MSG_RESET] = 4, [RNDIS_MSG_KEEPALIVE] = 4,
	};
	if (type >= sizeof(min_body) / 4 || !min_body[type]) {
		log_guest("netvsp: RNDIS message type %#x ignored", type);
		netvsp_guest_error(nv);
		return;
	}
	if (blen < min_body[type]) {
		log_guest("netvsp: RNDIS message %u of %u bytes", type, blen + RNDIS_HEADER);
		netvsp_guest_error(nv);
		return;
	}
	switch (type) {
	case RNDIS_MSG_INIT:
		do_init(nv, nv_g32(body));
		return;
	case RNDIS_MSG_HALT:
		/* No response: the guest does not wait for one. */
		netvsp_rndis_reset(nv);
		return;
	case RNDIS_MSG_QUERY:
		do_query(nv, body);
		return;
	case RNDIS_MSG_SET:
		do_set(nv, body, blen);
		return;
	case RNDIS_MSG_RESET: {
		uint8_t m[RNDIS_HEADER + 8] = { 0 };
		nv_p32(m, RNDIS_MSG_RESET | RNDIS_MSG_COMPLETION);
		nv_p32(m + 4, sizeof(m));
		nv_p32(m + 8, RNDIS_STATUS_SUCCESS);
		nv_p32(m + 12, 0); /* addressing_reset: the filter stays */
		ctl_push(nv, m, sizeof(m));
		return;
	}
	case RNDIS_MSG_KEEPALIVE: {
		uint8_t m[RNDIS_HEADER + 8] = { 0 };
		nv_p32(m, RNDIS_MSG_KEEPALIVE | RNDIS_MSG_COMPLETION);
		nv_p32(m + 4, sizeof(m));
		nv_p32(m + 8, nv_g32(body));
		nv_p32(m + 12, RNDIS_STATUS_SUCCESS);
		ctl_push(nv, m, sizeof(m));
		return;
	}
	}
}

/* ---- data: rndis_packet ------------------------------------------------------- */

/* What the per-packet info of one PACKET asks for (0: nothing). */
struct tx_info {
	uint16_t tci;   /* 802.1Q tag */
	uint32_t csum;  /* TCPIP_CHKSUM_PKTINFO value */
	uint32_t lso;   /* TCP_LARGESEND_PKTINFO value */
};

/* Walks the per-packet info of a PACKET body: false if malformed. */
static bool parse_ppi(const uint8_t *body, uint32_t blen, uint32_t off, uint32_t len,
		      struct tx_info *ti)
{
	memset(ti, 0, sizeof(*ti));
	if (!len)
		return true;
	if (off < RNDIS_PACKET_BODY || off > blen || len > blen - off)
		return false;
	/* Each element is at least 12 bytes: the walk ends. */
	while (len) {
		const uint8_t *p = body + off;
		if (len < RNDIS_PPI_HEADER)
			return false;
		uint32_t size = nv_g32(p), type = nv_g32(p + 4), poff = nv_g32(p + 8);
		if (size < RNDIS_PPI_HEADER || size > len || poff < RNDIS_PPI_HEADER || poff > size)
			return false;
		uint32_t v = size - poff >= 4 ? nv_g32(p + poff) : 0;
		if (type == RNDIS_PPI_8021Q) {
			/* ndis_pkt_8021q_info: pri 0..2, cfi 3, vlan id 4..15 */
			ti->tci = (uint16_t)((v & 7) << 13 | (v >> 3 & 1) << 12 | (v >> 4 & 0xFFF));
		} else if (type == RNDIS_PPI_CSUM) {
			ti->csum = v;
		} else if (type == RNDIS_PPI_LSO) {
			ti->lso = v;
		}
		off += size;
		len -= size;
	}
	return true;
}

struct lso_ctx {
	const struct netvsp_host *host;
	uint64_t bytes;
};

/* Hands one segment to the backend (the lock is released around netvsp_lso). */
static void emit_segment(void *ctx, const uint8_t *frame, uint32_t len)
{
	struct lso_ctx *c = ctx;
	c->bytes += len;
	c->host->tx(c->host->opaque, frame, len);
}

/*
 * The offloads a frame asks for: checksums computed in place, or an LSO
 * frame cut into segments and sent (*sent). False: malformed, drop it.
 * Lock held on entry and exit; released while segments go out.
 */
static bool offload(struct netvsp *nv, uint8_t *frame, uint32_t len, const struct tx_info *ti,
		    bool *sent)
{
	*sent = false;
	if (ti->lso) {
		if (!(ti->lso & NDIS_LSO_V2_TYPE) || (ti->lso & NDIS_LSO_IPV6))
			return false;
		/* frame (the stream) and seg are the device thread's own. */
		struct lso_ctx c = { .host = &nv->host, .bytes = 0 };
		nv->host.unlock(nv->host.opaque);
		int n = netvsp_lso(frame, len, NDIS_LSO_MSS(ti->lso), nv->seg, nv->max_frame,
				   emit_segment, &c);
		nv->host.lock(nv->host.opaque);
		if (n < 0)
			return false;
		nv->stats.tx_frames += (uint32_t)n;
		nv->stats.tx_bytes += c.bytes;
		nv->stats.tx_lso++;
		*sent = true;
		return true;
	}
	if (ti->csum & (NDIS_CSUM_TX_TCP | NDIS_CSUM_TX_UDP | NDIS_CSUM_TX_IP_HEADER)) {
		if (netvsp_tx_csum(frame, len, ti->csum) < 0)
			return false;
		nv->stats.tx_csum++;
	}
	return true;
}

/* One PACKET message at m (mlen bytes, in the stream). False: channel gone. */
static bool packet(struct netvsp *nv, uint8_t *m, uint32_t mlen, bool *bad)
{
	uint8_t *body = m + RNDIS_HEADER;
	uint32_t blen = mlen - RNDIS_HEADER;
	struct tx_info ti;
	if (blen < RNDIS_PACKET_BODY) {
		log_guest("netvsp: RNDIS packet of %u bytes", mlen);
		*bad = true;
		return true;
	}
	uint32_t doff = nv_g32(body), dlen = nv_g32(body + 4);
	uint32_t poff = nv_g32(body + 20), plen = nv_g32(body + 24);
	if (doff > blen || dlen > blen - doff || dlen < 14 || dlen > NETVSP_TX_FRAME_MAX ||
	    !parse_ppi(body, blen, poff, plen, &ti)) {
		log_guest("netvsp: RNDIS packet with bad data (%u at %u) or info", dlen, doff);
		*bad = true;
		return true;
	}
	uint8_t *frame = body + doff;
	uint16_t tci = ti.tci;
	if (tci) {
		/*
		 * Put the tag back after the MAC addresses. The 4 bytes before
		 * the frame are this message's header, already read.
		 */
		memmove(frame - 4, frame, 12);
		frame -= 4;
		frame[12] = 0x81;
		frame[13] = 0x00;
		frame[14] = (uint8_t)(tci >> 8);
		frame[15] = (uint8_t)tci;
		dlen += 4;
	}
	uint32_t gen = nv->gen;
	bool sent;
	if (!offload(nv, frame, dlen, &ti, &sent)) {
		/* The frame is dropped; the rest of the send is fine. */
		log_guest("netvsp: frame with malformed headers for its offload (%#x, %#x) dropped",
			  ti.csum, ti.lso);
		nv->stats.tx_offload_errors++;
		return true;
	}
	if (sent)
		return gen == nv->gen;
	nv->stats.tx_frames++;
	nv->stats.tx_bytes += dlen;
	nv->host.unlock(nv->host.opaque);
	nv->host.tx(nv->host.opaque, frame, dlen);
	nv->host.lock(nv->host.opaque);
	return gen == nv->gen;
}

bool netvsp_rndis_stream(struct netvsp *nv, uint8_t *s, uint32_t len, bool *bad)
{
	uint32_t off = 0;
	/* Every message is at least 8 bytes: the walk ends. */
	while (len - off >= RNDIS_HEADER) {
		uint32_t type = nv_g32(s + off), mlen = nv_g32(s + off + 4);
		if (mlen < RNDIS_HEADER || mlen > len - off) {
			log_guest("netvsp: RNDIS message length %u (%u left)", mlen, len - off);
			*bad = true;
			return true;
		}
		if (type == RNDIS_MSG_PACKET) {
			if (!packet(nv, s + off, mlen, bad))
				return false;
		} else {
			control(nv, type, s + off + RNDIS_HEADER, mlen - RNDIS_HEADER);
		}
		off += mlen;
	}
	if (off != len) {
		log_guest("netvsp: %u stray bytes after RNDIS messages", len - off);
		*bad = true;
	}
	return true;
}
