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
 * No offloads are advertised: the guest computes its checksums and sends
 * frames no longer than its MTU. 802.1Q tags handed over as per-packet
 * info are put back into the frame.
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
		/* ndis_offload: the header, then all-zero capabilities (none). */
		memset(out, 0, NDIS_OFFLOAD_SIZE);
		out[0] = NDIS_OBJECT_TYPE_OFFLOAD;
		out[1] = NDIS_OFFLOAD_REVISION;
		nv_p16(out + 2, NDIS_OFFLOAD_SIZE);
		*len = NDIS_OFFLOAD_SIZE;
		return RNDIS_STATUS_SUCCESS;
	default:
		/* RSS capabilities among them: single queue. */
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
		case OID_TCP_OFFLOAD_PARAMETERS:    /* nothing to switch on or off */
		case OID_GEN_RNDIS_CONFIG_PARAMETER: /* a MAC change: we do not filter */
		case OID_802_3_MULTICAST_LIST:
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

/*
 * Walks the per-packet info of a PACKET body: false if malformed; *tci
 * gets an 802.1Q tag if there is one (else 0).
 */
static bool parse_ppi(const uint8_t *body, uint32_t blen, uint32_t off, uint32_t len,
		      uint16_t *tci)
{
	*tci = 0;
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
		if (type == RNDIS_PPI_8021Q && size - poff >= 4) {
			/* ndis_pkt_8021q_info: pri 0..2, cfi 3, vlan id 4..15 */
			uint32_t v = nv_g32(p + poff);
			*tci = (uint16_t)((v & 7) << 13 | (v >> 3 & 1) << 12 | (v >> 4 & 0xFFF));
		}
		off += size;
		len -= size;
	}
	return true;
}

/* One PACKET message at m (mlen bytes, in the stream). False: channel gone. */
static bool packet(struct netvsp *nv, uint8_t *m, uint32_t mlen, bool *bad)
{
	uint8_t *body = m + RNDIS_HEADER;
	uint32_t blen = mlen - RNDIS_HEADER;
	uint16_t tci = 0;
	if (blen < RNDIS_PACKET_BODY) {
		log_guest("netvsp: RNDIS packet of %u bytes", mlen);
		*bad = true;
		return true;
	}
	uint32_t doff = nv_g32(body), dlen = nv_g32(body + 4);
	uint32_t poff = nv_g32(body + 20), plen = nv_g32(body + 24);
	if (doff > blen || dlen > blen - doff || dlen < 14 || dlen > NETVSP_TX_FRAME_MAX ||
	    !parse_ppi(body, blen, poff, plen, &tci)) {
		log_guest("netvsp: RNDIS packet with bad data (%u at %u) or info", dlen, doff);
		*bad = true;
		return true;
	}
	uint8_t *frame = body + doff;
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
	nv->stats.tx_frames++;
	nv->stats.tx_bytes += dlen;
	uint32_t gen = nv->gen;
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
