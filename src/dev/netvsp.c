/*
 * netvsp (see netvsp.h): Hyper-V's synthetic NIC on one VMBus channel, as
 * Linux's hv_netvsc drives it (hyperv-linux-guest.md section 7.2). This
 * file has the channel and NVSP side: version negotiation, the guest's
 * receive buffer (cut into fixed sections that carry host-to-guest RNDIS
 * messages in transfer-page packets until the guest completes them) and
 * send buffer (sections holding the guest's RNDIS messages), completions,
 * and the receive path. RNDIS itself is in netvsp_rndis.c.
 *
 * Multiple queues (NVSP 5): the guest asks for sub-channels
 * (NVSP_MSG5_SUBCHANNEL); we grant up to queues - 1, have the VMBus server
 * offer them (vmbus_channel_request_subchannels), and once all are open
 * send the send indirection table (which channel the guest transmits on,
 * by its hash) on the primary. The buffers and RNDIS control stay with
 * the primary; frames and completions come on any channel, all read by
 * the one device thread; received frames go to the channel the guest's RSS
 * indirection table names for their Toeplitz hash.
 *
 * The guest's buffers are mapped once (vmbus_channel_gpadl_map) when the
 * guest announces them; after that no server lock is taken per packet.
 * Nothing is allocated per packet: the section tables are sized when the
 * receive buffer arrives, the reply queues are fixed.
 */
#include "dev/netvsp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "dev/netvsp_impl.h"

/* NVSP versions we speak (Linux tries 0x60001 first). */
static const uint32_t nvsp_versions[] = { 0x60001, 0x60000, 0x50000, 0x40000, 0x30002, 0x2 };

void netvsp_guest_error(struct netvsp *nv)
{
	nv->stats.guest_errors++;
}

static void nv_lock(struct netvsp *nv) { nv->host.lock(nv->host.opaque); }
static void nv_unlock(struct netvsp *nv) { nv->host.unlock(nv->host.opaque); }

/* ---- the guest's buffers ------------------------------------------------- */

static void gbuf_copy(const struct netvsp_gbuf *b, uint64_t off, void *p, uint32_t len, bool in)
{
	uint8_t *q = p;
	while (len) {
		uint64_t page = off / 4096, at = off % 4096;
		uint32_t n = 4096 - (uint32_t)at < len ? 4096 - (uint32_t)at : len;
		if (in)
			memcpy(b->map.pages[page] + at, q, n);
		else
			memcpy(q, b->map.pages[page] + at, n);
		q += n;
		off += n;
		len -= n;
	}
}

static void gbuf_drop(struct netvsp_gbuf *b)
{
	free(b->map.pages);
	memset(b, 0, sizeof(*b));
}

static void rbuf_drop(struct netvsp *nv)
{
	gbuf_drop(&nv->rbuf);
	free(nv->rfree);
	free(nv->rseq);
	nv->rfree = NULL;
	nv->rseq = NULL;
	nv->nfree = 0;
}

/* Back to a freshly offered NIC (open, close). Lock held. */
static void nv_reset(struct netvsp *nv)
{
	rbuf_drop(nv);
	gbuf_drop(&nv->sbuf);
	nv->nvsp_version = 0;
	memset(nv->chan, 0, sizeof(nv->chan));
	nv->chan[0].ch = nv->ch;
	nv->cur = &nv->chan[0];
	nv->sub_granted = 0;
	nv->table_pending = false;
	nv->nctl = 0;
	nv->gen++;
	netvsp_rndis_reset(nv);
}

/* ---- sending --------------------------------------------------------------- */

static bool send_comp(struct netvsp_chan *c, uint64_t trans_id, const uint8_t *msg, uint32_t len)
{
	int ret = vmbus_channel_send(c->ch, VMBUS_PACKET_COMP, 0, trans_id, NULL, 0, msg, len);
	if (ret == -EAGAIN)
		return false;
	if (ret < 0)
		log_guest("netvsp: completion lost: %s", strerror(-ret));
	return true;
}

/*
 * Completes the guest's packet with msg (an nvsp_message; NULL: no
 * payload), on the channel it came on (nv->cur).
 */
static void reply(struct netvsp *nv, const struct vmbus_packet_info *info, const uint8_t *msg)
{
	struct netvsp_chan *c = nv->cur;
	if (!(info->flags & VMBUS_PACKET_FLAG_COMPLETION_REQUESTED))
		return;
	uint32_t len = msg ? NVSP_MSG_SIZE : 0;
	if (!c->ncomp && send_comp(c, info->trans_id, msg, len))
		return;
	/* Ring full: the reply waits, and the ring is not read meanwhile. */
	if (c->ncomp == NETVSP_COMP_BACKLOG) {
		log_guest("netvsp: completion dropped (the guest does not read its ring)");
		return;
	}
	c->comp[c->ncomp].trans_id = info->trans_id;
	c->comp[c->ncomp].len = len;
	if (msg)
		memcpy(c->comp[c->ncomp].msg, msg, NVSP_MSG_SIZE);
	c->ncomp++;
}

static bool flush_comp(struct netvsp_chan *c)
{
	unsigned sent = 0;
	while (sent < c->ncomp &&
	       send_comp(c, c->comp[sent].trans_id, c->comp[sent].msg, c->comp[sent].len))
		sent++;
	memmove(c->comp, c->comp + sent, (c->ncomp - sent) * sizeof(c->comp[0]));
	c->ncomp -= sent;
	return c->ncomp == 0;
}

/*
 * NVSP_MSG5_SEND_INDIRECTION_TABLE on the primary: the guest transmits a
 * flow on channel table[hash % 16]; round robin over the open channels.
 */
static void send_table(struct netvsp *nv)
{
	if (!nv->table_pending)
		return;
	uint8_t m[12 + 4 * NETVSP_SEND_TABLE] = { 0 };
	nv_p32(m, NVSP_MSG5_SEND_INDIRECTION_TABLE);
	nv_p32(m + 4, NETVSP_SEND_TABLE);  /* count */
	nv_p32(m + 8, 12);                 /* offset, from the message start */
	for (uint32_t i = 0; i < NETVSP_SEND_TABLE; i++)
		nv_p32(m + 12 + 4 * i, i % (nv->sub_granted + 1));
	int ret = vmbus_channel_send(nv->ch, VMBUS_PACKET_DATA_INBAND, 0, 0, NULL, 0, m, sizeof(m));
	if (ret != -EAGAIN)
		nv->table_pending = false;
}

static void reply_status(struct netvsp *nv, const struct vmbus_packet_info *info,
			 uint32_t type, uint32_t status)
{
	uint8_t m[NVSP_MSG_SIZE] = { 0 };
	nv_p32(m, type);
	nv_p32(m + 4, status);
	reply(nv, info, m);
}

static uint32_t next_seq(struct netvsp *nv)
{
	nv->rx_seq = nv->rx_seq % 0x7FFFFFFFu + 1;
	return nv->rx_seq;
}

int netvsp_rx_put(struct netvsp *nv, const void *a, uint32_t alen, const void *b,
		  uint32_t blen, bool control)
{
	return netvsp_rx_put_on(nv, 0, a, alen, b, blen, control);
}

int netvsp_rx_put_on(struct netvsp *nv, unsigned q, const void *a, uint32_t alen, const void *b,
		     uint32_t blen, bool control)
{
	if (!nv->open || !nv->rbuf.valid || q >= NETVSP_MAX_CHANNELS || !nv->chan[q].open)
		return -ENETDOWN;
	uint32_t total = alen + blen;
	if (total > nv->rbuf.section_size)
		return -EMSGSIZE;
	if (!nv->nfree)
		return -EAGAIN;
	uint32_t idx = nv->rfree[--nv->nfree];
	uint64_t off = (uint64_t)idx * nv->rbuf.section_size;
	gbuf_copy(&nv->rbuf, off, (void *)a, alen, true);
	if (blen)
		gbuf_copy(&nv->rbuf, off + alen, (void *)b, blen, true);
	/* vmtransfer_page_packet_header after the descriptor: one range. */
	uint8_t hdr[16] = { 0 };
	nv_p16(hdr, nv->rbuf.id);
	nv_p32(hdr + 4, 1);
	nv_p32(hdr + 8, total);
	nv_p32(hdr + 12, (uint32_t)off);
	uint8_t m[NVSP_MSG_SIZE] = { 0 };
	nv_p32(m, NVSP_MSG1_SEND_RNDIS_PKT);
	nv_p32(m + 4, control ? 1 : 0);
	nv_p32(m + 8, NVSP_INVALID_INDEX);
	nv_p32(m + 12, total);
	uint32_t seq = next_seq(nv);
	int ret = vmbus_channel_send(nv->chan[q].ch, VMBUS_PACKET_DATA_USING_XFER_PAGES,
				     VMBUS_PACKET_FLAG_COMPLETION_REQUESTED,
				     NETVSP_RX_TID_TAG | (uint64_t)seq << 32 | idx,
				     hdr, sizeof(hdr), m, sizeof(m));
	if (ret < 0) {
		nv->rfree[nv->nfree++] = idx;
		return ret == -EAGAIN ? -EAGAIN : -ENETDOWN;
	}
	nv->rseq[idx] = seq;
	return 0;
}

/* ---- NVSP -------------------------------------------------------------------- */

static void do_init(struct netvsp *nv, const struct vmbus_packet_info *info, const uint8_t *m)
{
	uint32_t min = nv_g32(m + 4), max = nv_g32(m + 8), ver = 0;
	for (size_t i = 0; i < sizeof(nvsp_versions) / sizeof(nvsp_versions[0]) && !ver; i++)
		if (nvsp_versions[i] >= min && nvsp_versions[i] <= max)
			ver = nvsp_versions[i];
	if (ver)
		nv->nvsp_version = ver;
	else
		log_guest_debug("netvsp: NVSP versions %#x..%#x refused", min, max);
	uint8_t r[NVSP_MSG_SIZE] = { 0 };
	nv_p32(r, NVSP_MSG_INIT_COMPLETE);
	nv_p32(r + 4, ver);
	nv_p32(r + 8, 0);  /* max_mdl_chain_len: unused by Linux */
	nv_p32(r + 12, ver ? NVSP_STAT_SUCCESS : NVSP_STAT_FAIL);
	reply(nv, info, r);
}

/*
 * Maps the GPADL the guest names, with the device lock released (the
 * server lock is taken). False when the channel closed meanwhile.
 */
static bool map_gpadl(struct netvsp *nv, uint32_t gpadl, struct vmbus_gpadl_pages *gp, int *ret)
{
	uint32_t gen = nv->gen;
	nv_unlock(nv);
	*ret = vmbus_channel_gpadl_map(nv->ch, gpadl, gp);
	nv_lock(nv);
	if (gen == nv->gen)
		return true;
	if (*ret == 0)
		free(gp->pages);
	return false;
}

static bool do_recv_buf(struct netvsp *nv, const struct vmbus_packet_info *info, const uint8_t *m)
{
	uint32_t gpadl = nv_g32(m + 4);
	struct vmbus_gpadl_pages gp;
	int ret;
	if (!map_gpadl(nv, gpadl, &gp, &ret))
		return false;
	rbuf_drop(nv);
	uint32_t sec = (RNDIS_HEADER + RNDIS_PACKET_BODY + NETVSP_RX_PPI_MAX + nv->max_frame + 63) &
		       ~63u;
	if (sec < NETVSP_RECV_SECTION_MIN)
		sec = NETVSP_RECV_SECTION_MIN;
	uint64_t count = ret == 0 ? gp.len / sec : 0;
	if (count > NETVSP_MAX_SECTIONS)
		count = NETVSP_MAX_SECTIONS;
	if (ret == 0 && count) {
		nv->rfree = malloc(count * sizeof(*nv->rfree));
		nv->rseq = calloc(count, sizeof(*nv->rseq));
	}
	if (ret < 0 || !count || !nv->rfree || !nv->rseq) {
		log_guest("netvsp: receive buffer (GPADL %#x) refused", gpadl);
		netvsp_guest_error(nv);
		if (ret == 0)
			free(gp.pages);
		rbuf_drop(nv);
		reply_status(nv, info, NVSP_MSG1_SEND_RECV_BUF_COMPLETE, NVSP_STAT_FAIL);
		return true;
	}
	nv->rbuf = (struct netvsp_gbuf){ .valid = true, .gpadl = gpadl, .id = nv_g16(m + 8),
					 .map = gp, .section_size = sec,
					 .sections = (uint32_t)count };
	/* Lowest sections first: the stack pops from the end. */
	for (uint32_t i = 0; i < count; i++)
		nv->rfree[i] = (uint32_t)count - 1 - i;
	nv->nfree = (uint32_t)count;
	uint8_t r[NVSP_MSG_SIZE] = { 0 };
	nv_p32(r, NVSP_MSG1_SEND_RECV_BUF_COMPLETE);
	nv_p32(r + 4, NVSP_STAT_SUCCESS);
	nv_p32(r + 8, 1);                          /* num_sections */
	nv_p32(r + 12, 0);                         /* offset */
	nv_p32(r + 16, sec);                       /* sub_alloc_size */
	nv_p32(r + 20, (uint32_t)count);           /* num_sub_allocs */
	nv_p32(r + 24, (uint32_t)(count * sec));   /* end_offset */
	reply(nv, info, r);
	return true;
}

static bool do_send_buf(struct netvsp *nv, const struct vmbus_packet_info *info, const uint8_t *m)
{
	uint32_t gpadl = nv_g32(m + 4);
	struct vmbus_gpadl_pages gp;
	int ret;
	if (!map_gpadl(nv, gpadl, &gp, &ret))
		return false;
	gbuf_drop(&nv->sbuf);
	uint8_t r[NVSP_MSG_SIZE] = { 0 };
	nv_p32(r, NVSP_MSG1_SEND_SEND_BUF_COMPLETE);
	if (ret < 0 || gp.len < NETVSP_SEND_SECTION) {
		log_guest("netvsp: send buffer (GPADL %#x) refused", gpadl);
		netvsp_guest_error(nv);
		if (ret == 0)
			free(gp.pages);
		nv_p32(r + 4, NVSP_STAT_FAIL);
		reply(nv, info, r);
		return true;
	}
	nv->sbuf = (struct netvsp_gbuf){ .valid = true, .gpadl = gpadl, .id = nv_g16(m + 8),
					 .map = gp, .section_size = NETVSP_SEND_SECTION,
					 .sections = (uint32_t)(gp.len / NETVSP_SEND_SECTION) };
	nv_p32(r + 4, NVSP_STAT_SUCCESS);
	nv_p32(r + 8, NETVSP_SEND_SECTION);
	reply(nv, info, r);
	return true;
}

/* Appends the GPA-direct ranges of packet info to the stream. */
static bool gather_ranges(struct netvsp *nv, const struct vmbus_packet_info *info, uint32_t *n)
{
	const uint8_t *p = nv->pkt;
	uint32_t end = info->data_offset, at = 24;
	if (end < at)
		return false;
	uint32_t count = nv_g32(p + 20);
	for (uint32_t r = 0; r < count; r++) {
		if (end - at < 8)
			return false;
		uint32_t len = nv_g32(p + at), off = nv_g32(p + at + 4);
		at += 8;
		if (off >= 4096 || len == 0 || len > NETVSP_STREAM_MAX - *n)
			return false;
		uint32_t npages = (off + len + 4095) / 4096;
		if ((end - at) / 8 < npages)
			return false;
		for (uint32_t i = 0; i < npages; i++, at += 8) {
			uint64_t pfn = nv_g64(p + at);
			uint32_t in = i == 0 ? off : 0;
			uint32_t c = 4096 - in < len ? 4096 - in : len;
			const void *h = pfn >> 52 ? NULL : nv->host.map(nv->host.opaque, (pfn << 12) + in, c);
			if (!h)
				return false;
			memcpy(nv->stream + *n, h, c);
			*n += c;
			len -= c;
		}
	}
	return true;
}

/* SEND_RNDIS_PKT: RNDIS bytes in a send section, GPA-direct pages, or both. */
static bool do_rndis_pkt(struct netvsp *nv, const struct vmbus_packet_info *info, const uint8_t *m)
{
	uint32_t index = nv_g32(m + 8), size = nv_g32(m + 12), n = 0;
	bool bad = false;
	if (index != NVSP_INVALID_INDEX) {
		const struct netvsp_gbuf *b = &nv->sbuf;
		if (!b->valid || index >= b->sections || size > b->section_size) {
			log_guest("netvsp: send section %u (%u bytes) out of range", index, size);
			bad = true;
		} else {
			gbuf_copy(b, (uint64_t)index * b->section_size, nv->stream, size, false);
			n = size;
		}
	}
	if (!bad && info->type == VMBUS_PACKET_DATA_USING_GPA_DIRECT && !gather_ranges(nv, info, &n)) {
		log_guest("netvsp: bad GPA-direct ranges");
		bad = true;
	}
	if (!bad && n == 0) {
		log_guest("netvsp: empty RNDIS send");
		bad = true;
	}
	if (!bad && !netvsp_rndis_stream(nv, nv->stream, n, &bad))
		return false;
	if (bad)
		netvsp_guest_error(nv);
	reply_status(nv, info, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE,
		     bad ? NVSP_STAT_FAIL : NVSP_STAT_SUCCESS);
	return true;
}

static void do_revoke(struct netvsp *nv, bool recv, uint16_t id)
{
	struct netvsp_gbuf *b = recv ? &nv->rbuf : &nv->sbuf;
	if (!b->valid || b->id != id) {
		log_guest("netvsp: revoke of unknown %s buffer %#x", recv ? "receive" : "send", id);
		netvsp_guest_error(nv);
		return;
	}
	if (recv)
		rbuf_drop(nv);
	else
		gbuf_drop(b);
}

/*
 * NVSP_MSG5_SUBCHANNEL (op ALLOCATE, count): grants up to queues - 1, once
 * per open, on the primary, and has the server offer them. The guest waits
 * for exactly that many offers.
 */
static void do_subchannel(struct netvsp *nv, const struct vmbus_packet_info *info, const uint8_t *m)
{
	uint32_t op = nv_g32(m + 4), want = nv_g32(m + 8), grant = 0, status = NVSP_STAT_SUCCESS;
	uint32_t max = nv->cfg.queues > 1 ? nv->cfg.queues - 1 : 0;
	if (op != NVSP_SUBCHANNEL_ALLOCATE || nv->cur != &nv->chan[0] ||
	    nv->nvsp_version < NVSP_VERSION_5 || nv->sub_granted) {
		log_guest("netvsp: sub-channel request (op %u, %u wanted) refused", op, want);
		netvsp_guest_error(nv);
		status = NVSP_STAT_FAIL;
	} else {
		grant = want < max ? want : max;
		if (grant && vmbus_channel_request_subchannels(nv->ch, grant) < 0) {
			log_warn("netvsp: sub-channels could not be requested");
			grant = 0;
		}
		nv->sub_granted = grant;
	}
	uint8_t r[NVSP_MSG_SIZE] = { 0 };
	nv_p32(r, NVSP_MSG5_SUBCHANNEL);
	nv_p32(r + 4, status);
	nv_p32(r + 8, grant);
	reply(nv, info, r);
}

/* The smallest NVSP message of each type we read (type included). */
static uint32_t nvsp_min_len(uint32_t type)
{
	switch (type) {
	case NVSP_MSG_INIT: return 12;
	case NVSP_MSG1_SEND_RECV_BUF: case NVSP_MSG1_SEND_SEND_BUF: return 10;
	case NVSP_MSG1_REVOKE_RECV_BUF: case NVSP_MSG1_REVOKE_SEND_BUF: return 6;
	case NVSP_MSG1_SEND_RNDIS_PKT: return 16;
	case NVSP_MSG5_SUBCHANNEL: return 12;
	default: return 4;
	}
}

/* A guest request. False when the channel closed under us. */
static bool handle_nvsp(struct netvsp *nv, const struct vmbus_packet_info *info, uint32_t len)
{
	uint32_t mlen = len - info->data_offset;
	uint8_t m[NVSP_MSG_SIZE] = { 0 };
	memcpy(m, nv->pkt + info->data_offset, mlen < sizeof(m) ? mlen : sizeof(m));
	uint32_t type = nv_g32(m);
	if (mlen < 4 || mlen < nvsp_min_len(type)) {
		log_guest("netvsp: NVSP message %u of %u bytes", type, mlen);
		netvsp_guest_error(nv);
		reply_status(nv, info, type == NVSP_MSG1_SEND_RNDIS_PKT ?
			     NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE : type, NVSP_STAT_FAIL);
		return true;
	}
	if (info->type == VMBUS_PACKET_DATA_USING_GPA_DIRECT && type != NVSP_MSG1_SEND_RNDIS_PKT) {
		log_guest("netvsp: NVSP message %u with GPA ranges", type);
		netvsp_guest_error(nv);
		reply(nv, info, NULL);
		return true;
	}
	switch (type) {
	case NVSP_MSG_INIT:
		do_init(nv, info, m);
		return true;
	case NVSP_MSG2_SEND_NDIS_CONFIG:
	case NVSP_MSG1_SEND_NDIS_VER:
	case NVSP_MSG4_SWITCH_DATA_PATH:
		/* Nothing to answer but a bare completion if asked. */
		reply(nv, info, NULL);
		return true;
	case NVSP_MSG1_SEND_RECV_BUF:
		return do_recv_buf(nv, info, m);
	case NVSP_MSG1_SEND_SEND_BUF:
		return do_send_buf(nv, info, m);
	case NVSP_MSG1_REVOKE_RECV_BUF:
	case NVSP_MSG1_REVOKE_SEND_BUF:
		do_revoke(nv, type == NVSP_MSG1_REVOKE_RECV_BUF, nv_g16(m + 4));
		reply(nv, info, NULL);
		return true;
	case NVSP_MSG1_SEND_RNDIS_PKT:
		return do_rndis_pkt(nv, info, m);
	case NVSP_MSG5_SUBCHANNEL:
		do_subchannel(nv, info, m);
		return true;
	default:
		log_guest("netvsp: NVSP message type %u not supported", type);
		netvsp_guest_error(nv);
		reply(nv, info, NULL);
		return true;
	}
}

/* The guest's RNDIS_PKT_COMPLETE for one of our receive packets. */
static void handle_comp(struct netvsp *nv, const struct vmbus_packet_info *info, uint32_t len)
{
	uint32_t mlen = len - info->data_offset;
	const uint8_t *m = nv->pkt + info->data_offset;
	uint64_t tid = info->trans_id;
	uint32_t idx = (uint32_t)tid, seq = (uint32_t)(tid >> 32) & 0x7FFFFFFFu;
	if (mlen < 8 || nv_g32(m) != NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE || !(tid & NETVSP_RX_TID_TAG) ||
	    !nv->rbuf.valid || idx >= nv->rbuf.sections || !seq || nv->rseq[idx] != seq) {
		log_guest("netvsp: bogus completion (id %#llx)", (unsigned long long)tid);
		netvsp_guest_error(nv);
		return;
	}
	if (nv_g32(m + 4) != NVSP_STAT_SUCCESS)
		log_guest_debug("netvsp: the guest dropped a receive packet (status %u)", nv_g32(m + 4));
	nv->rseq[idx] = 0;
	nv->rfree[nv->nfree++] = idx;
}

static bool handle_packet(struct netvsp *nv, const struct vmbus_packet_info *info, uint32_t len)
{
	switch (info->type) {
	case VMBUS_PACKET_COMP:
		handle_comp(nv, info, len);
		return true;
	case VMBUS_PACKET_DATA_INBAND:
	case VMBUS_PACKET_DATA_USING_GPA_DIRECT:
		return handle_nvsp(nv, info, len);
	default:
		log_guest("netvsp: packet type %u ignored", info->type);
		netvsp_guest_error(nv);
		reply(nv, info, NULL);
		return true;
	}
}

/* ---- the device thread ------------------------------------------------------ */

/*
 * Reads up to 64 packets of channel c. False when a channel closed
 * meanwhile (stop: the caller looks again); *more when packets remain.
 */
static bool poll_chan(struct netvsp *nv, struct netvsp_chan *c, bool *more)
{
	if (!flush_comp(c))
		return true;
	nv->cur = c;
	for (unsigned n = 0;; n++) {
		/* Replies wait for the guest: read nothing that needs another. */
		if (c->ncomp || nv->nctl == NETVSP_CTL_QUEUE)
			return true;
		if (n == 64) {
			*more = true;
			return true;
		}
		struct vmbus_packet_info info;
		int ret = vmbus_channel_recv(c->ch, nv->pkt, sizeof(nv->pkt), &info);
		if (ret == -EMSGSIZE) {
			log_guest("netvsp: oversized packet (%u bytes) dropped", info.len);
			netvsp_guest_error(nv);
			vmbus_channel_skip(c->ch);
			if (info.type == VMBUS_PACKET_DATA_USING_GPA_DIRECT)
				reply_status(nv, &info, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE,
					     NVSP_STAT_FAIL);
			continue;
		}
		if (ret < 0)
			return true;
		if (!handle_packet(nv, &info, (uint32_t)ret)) {
			*more = true; /* closed (and maybe reopened) meanwhile: look again */
			return false;
		}
	}
}

bool netvsp_poll(struct netvsp *nv)
{
	nv_lock(nv);
	if (!nv->open) {
		nv_unlock(nv);
		return false;
	}
	netvsp_rndis_flush(nv);
	send_table(nv);
	bool more = false;
	for (unsigned q = 0; q < NETVSP_MAX_CHANNELS; q++)
		if (nv->chan[q].open && !poll_chan(nv, &nv->chan[q], &more))
			break;
	/* Completions just read may have freed sections for waiting responses. */
	if (nv->open)
		netvsp_rndis_flush(nv);
	nv_unlock(nv);
	return more;
}

int netvsp_rx(struct netvsp *nv, const void *frame, size_t len)
{
	nv_lock(nv);
	int ret;
	if (!nv->open || !nv->rbuf.valid || !nv->rndis_ready || !nv->filter) {
		ret = -ENETDOWN;
	} else if (len == 0 || len > nv->max_frame) {
		ret = -EMSGSIZE;
	} else if (!netvsp_filter_pass(nv->filter, nv->mac, frame, (uint32_t)len)) {
		nv->stats.rx_filtered++;
		nv_unlock(nv);
		return 0;
	} else if (!netvsp_rndis_flush(nv)) {
		ret = -EAGAIN; /* control responses go first */
	} else {
		uint8_t h[RNDIS_HEADER + RNDIS_PACKET_BODY + NETVSP_RX_PPI_MAX] = { 0 };
		uint32_t ppi = 0;
		uint32_t ok = nv->rx_csum_tcp4 || nv->rx_csum_udp4 ?
			      netvsp_rx_csum(frame, (uint32_t)len) : 0;
		if (!nv->rx_csum_tcp4)
			ok &= ~NDIS_CSUM_RX_TCP_OK;
		if (!nv->rx_csum_udp4)
			ok &= ~NDIS_CSUM_RX_UDP_OK;
		if (ok) {
			/* rndis_per_packet_info + ndis_tcp_ip_checksum_info */
			uint8_t *pi = h + RNDIS_HEADER + RNDIS_PACKET_BODY;
			nv_p32(pi, RNDIS_PPI_HEADER + 4);
			nv_p32(pi + 4, RNDIS_PPI_CSUM);
			nv_p32(pi + 8, RNDIS_PPI_HEADER);
			nv_p32(pi + 12, ok);
			ppi += RNDIS_PPI_HEADER + 4;
		}
		unsigned q = 0;
		uint32_t hash;
		if (nv->rss_on && netvsp_rss_hash(nv->rss_key, nv->rss_keylen, nv->rss_hashinfo,
						  frame, (uint32_t)len, &hash)) {
			/* NBL_HASH_VALUE: the guest's skb hash, no software hashing. */
			uint8_t *pi = h + RNDIS_HEADER + RNDIS_PACKET_BODY + ppi;
			nv_p32(pi, RNDIS_PPI_HEADER + 4);
			nv_p32(pi + 4, RNDIS_PPI_HASH);
			nv_p32(pi + 8, RNDIS_PPI_HEADER);
			nv_p32(pi + 12, hash);
			ppi += RNDIS_PPI_HEADER + 4;
			q = nv->rss_table[hash % nv->rss_tabsize];
			if (q >= NETVSP_MAX_CHANNELS || !nv->chan[q].open)
				q = 0;
		}
		uint32_t hlen = RNDIS_HEADER + RNDIS_PACKET_BODY + ppi;
		nv_p32(h, RNDIS_MSG_PACKET);
		nv_p32(h + 4, (uint32_t)(hlen + len));
		nv_p32(h + 8, RNDIS_PACKET_BODY + ppi); /* data_offset, from the body */
		nv_p32(h + 12, (uint32_t)len);          /* data_len */
		if (ppi) {
			nv_p32(h + 28, RNDIS_PACKET_BODY); /* per_pkt_info_offset */
			nv_p32(h + 32, ppi);
		}
		ret = netvsp_rx_put_on(nv, q, h, hlen, frame, (uint32_t)len, false);
	}
	if (ret == 0) {
		nv->stats.rx_frames++;
		nv->stats.rx_bytes += len;
	} else if (ret == -EAGAIN) {
		nv->stats.rx_dropped++;
	}
	nv_unlock(nv);
	return ret;
}

bool netvsp_rx_ready(struct netvsp *nv)
{
	nv_lock(nv);
	bool ok = nv->open && nv->rbuf.valid && nv->rndis_ready && nv->filter && nv->nfree &&
		  !nv->nctl && vmbus_channel_send_space(nv->ch) >= 128;
	nv_unlock(nv);
	return ok;
}

void netvsp_set_link(struct netvsp *nv, bool up)
{
	nv_lock(nv);
	if (nv->link_up != up) {
		nv->link_up = up;
		nv->link_pending = nv->open && nv->rndis_ready;
		netvsp_rndis_flush(nv);
	}
	nv_unlock(nv);
}

void netvsp_get_stats(struct netvsp *nv, struct netvsp_stats *st)
{
	nv_lock(nv);
	*st = nv->stats;
	nv_unlock(nv);
}

/* ---- VMBus callbacks (server lock held) ------------------------------------- */

static uint32_t nv_open(void *dev, struct vmbus_channel *ch)
{
	struct netvsp *nv = dev;
	unsigned q = vmbus_channel_subchannel_index(ch);
	nv_lock(nv);
	if (q == 0) {
		nv_reset(nv);
		nv->open = true;
		nv->chan[0].ch = ch;
		nv->chan[0].open = true;
	} else if (q < NETVSP_MAX_CHANNELS && q <= nv->sub_granted && nv->open) {
		nv->chan[q] = (struct netvsp_chan){ .ch = ch, .open = true };
		unsigned n = 0;
		for (unsigned i = 1; i <= nv->sub_granted; i++)
			n += nv->chan[i].open;
		/* All there: tell the guest how to spread its sends. */
		if (n == nv->sub_granted)
			nv->table_pending = nv->nvsp_version >= NVSP_VERSION_5;
	}
	nv_unlock(nv);
	nv->host.kick(nv->host.opaque);
	return 0;
}

static void nv_close(void *dev, struct vmbus_channel *ch)
{
	struct netvsp *nv = dev;
	unsigned q = vmbus_channel_subchannel_index(ch);
	nv_lock(nv);
	if (q == 0) {
		nv_reset(nv);
		nv->open = false;
	} else if (q < NETVSP_MAX_CHANNELS && nv->chan[q].ch == ch) {
		nv->chan[q].open = false;
		nv->chan[q].ncomp = 0;
		nv->gen++; /* a poll reading it stops */
	}
	nv_unlock(nv);
}

static void nv_notify(void *dev, struct vmbus_channel *ch)
{
	(void)ch;
	struct netvsp *nv = dev;
	nv->host.kick(nv->host.opaque);
}

/* A buffer's GPADL went away without a revoke: stop writing the guest's memory. */
static void nv_gpadl_torndown(void *dev, struct vmbus_channel *ch, uint32_t gpadl)
{
	(void)ch;
	struct netvsp *nv = dev;
	nv_lock(nv);
	if (nv->rbuf.valid && nv->rbuf.gpadl == gpadl)
		rbuf_drop(nv);
	if (nv->sbuf.valid && nv->sbuf.gpadl == gpadl)
		gbuf_drop(&nv->sbuf);
	nv_unlock(nv);
}

static const struct vmbus_device_ops nv_ops = {
	.open = nv_open, .close = nv_close, .notify = nv_notify,
	.gpadl_torndown = nv_gpadl_torndown,
};

int netvsp_create(struct vmbus_server *srv, const struct netvsp_config *cfg,
		  struct netvsp **out)
{
	const struct netvsp_host *h = &cfg->host;
	uint32_t mtu = cfg->mtu ? cfg->mtu : 1500;
	if (!h->map || !h->lock || !h->unlock || !h->kick || !h->tx || mtu < 68 ||
	    mtu + 18u > NETVSP_TX_FRAME_MAX)
		return -EINVAL;
	struct netvsp *nv = calloc(1, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	nv->cfg = *cfg;
	nv->cfg.mtu = (uint16_t)mtu;
	nv->host = *h;
	nv->max_frame = mtu + 18; /* Ethernet header and an 802.1Q tag */
	if (nv->cfg.queues > NETVSP_MAX_CHANNELS)
		nv->cfg.queues = NETVSP_MAX_CHANNELS;
	nv->cur = &nv->chan[0];
	nv->link_up = true;
	memcpy(nv->mac, cfg->mac, 6);
	nv->stream = malloc(NETVSP_STREAM_MAX);
	nv->seg = malloc(nv->max_frame);
	if (!nv->stream || !nv->seg) {
		free(nv->stream);
		free(nv->seg);
		free(nv);
		return -ENOMEM;
	}
	struct vmbus_offer offer;
	memset(&offer, 0, sizeof(offer));
	char inst[40];
	snprintf(inst, sizeof(inst), "f8615163-df3e-46c5-913f-f2d2%08x", cfg->instance);
	vmbus_guid_parse("f8615163-df3e-46c5-913f-f2d2f965ed0e", &offer.if_type);
	/* Our instance: the class GUID with the NIC number at the end. */
	vmbus_guid_parse(inst, &offer.if_instance);
	offer.if_instance.b[0] ^= 0x5a; /* never equal to the class GUID */
	int ret = vmbus_offer(srv, &offer, &nv_ops, nv, &nv->ch);
	if (ret < 0) {
		netvsp_destroy(nv);
		return ret;
	}
	nv->chan[0].ch = nv->ch;
	*out = nv;
	return 0;
}

void netvsp_destroy(struct netvsp *nv)
{
	if (!nv)
		return;
	rbuf_drop(nv);
	gbuf_drop(&nv->sbuf);
	free(nv->stream);
	free(nv->seg);
	free(nv);
}
