/*
 * hv_sock connections on VMBus channels (see hvsock.h; Linux
 * net/vmw_vsock/hyperv_transport.c, include/linux/hyperv.h): the offer, the
 * vmpipe framing of both directions, FIN, and the rescind that ends a
 * connection. Every guest packet is copied out of the ring and checked
 * before use.
 */
#include "dev/hvsock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* Descriptor, pipe header and the largest payload the guest may send. */
#define HVSOCK_RX_MAX (16u + 8u + HVSOCK_MTU)

static const uint8_t srv_id_tail[12] = {
	0xcb, 0xfa, 0xe6, 0x11, 0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3,
};

struct hvsock {
	struct vmbus_channel *ch;
	struct hvsock_params p;
	pthread_mutex_t mu;   /* the lock when p.lock is NULL */
	/* Guarded by p.lock (or mu). */
	bool open;
	bool closed;
	bool released;
	bool broken;      /* the guest broke the protocol */
	bool rx_fin;      /* FIN received */
	bool fin_sent;
	uint32_t relid;
	uint32_t rx_off;  /* unread payload: rx[rx_off, rx_off + rx_len) */
	uint32_t rx_len;
	uint64_t to_guest, from_guest;
	uint8_t rx[HVSOCK_RX_MAX];
	uint8_t tx[sizeof(struct vmpipe_proto_header) + HVSOCK_MTU];
};

void hvsock_port_guid(uint32_t port, struct vmbus_guid *g)
{
	g->b[0] = (uint8_t)port;
	g->b[1] = (uint8_t)(port >> 8);
	g->b[2] = (uint8_t)(port >> 16);
	g->b[3] = (uint8_t)(port >> 24);
	memcpy(g->b + 4, srv_id_tail, sizeof(srv_id_tail));
}

bool hvsock_guid_port(const struct vmbus_guid *g, uint32_t *port)
{
	if (memcmp(g->b + 4, srv_id_tail, sizeof(srv_id_tail)))
		return false;
	*port = (uint32_t)g->b[0] | (uint32_t)g->b[1] << 8 | (uint32_t)g->b[2] << 16 |
		(uint32_t)g->b[3] << 24;
	return true;
}

void hvsock_guid_format(const struct vmbus_guid *g, char out[37])
{
	vmbus_guid_format(g, out);
}

static void hs_lock(struct hvsock *hs)
{
	if (hs->p.lock)
		hs->p.lock(hs->p.lock_opaque);
	else
		pthread_mutex_lock(&hs->mu);
}

static void hs_unlock(struct hvsock *hs)
{
	if (hs->p.lock)
		hs->p.unlock(hs->p.lock_opaque);
	else
		pthread_mutex_unlock(&hs->mu);
}

static void hs_free(struct hvsock *hs)
{
	pthread_mutex_destroy(&hs->mu);
	free(hs);
}

/* ---- VMBus device callbacks (server lock held) ---------------------------- */

static uint32_t hs_open(void *dev, struct vmbus_channel *ch)
{
	(void)ch;
	struct hvsock *hs = dev;
	hs_lock(hs);
	/* One connection per channel: no reopening after a close or release. */
	bool ok = !hs->released && !hs->closed && !hs->open;
	if (ok)
		hs->open = true;
	hs_unlock(hs);
	if (!ok) {
		log_guest("hvsock: relid %u: open of a finished connection refused", hs->relid);
		return 1;
	}
	hs->p.wake(hs->p.wake_opaque);
	return 0;
}

static void hs_close(void *dev, struct vmbus_channel *ch)
{
	(void)ch;
	struct hvsock *hs = dev;
	hs_lock(hs);
	hs->open = false;
	hs->closed = true;
	bool orphan = hs->released;
	hs_unlock(hs);
	if (orphan)
		hs_free(hs); /* released while open: the close was all we waited for */
	else
		hs->p.wake(hs->p.wake_opaque);
}

static void hs_notify(void *dev, struct vmbus_channel *ch)
{
	(void)ch;
	struct hvsock *hs = dev;
	hs_lock(hs);
	bool released = hs->released;
	hs_unlock(hs);
	/* hvsock_release() waits for the server lock we hold: hs stays. */
	if (!released)
		hs->p.wake(hs->p.wake_opaque);
}

static const struct vmbus_device_ops hvsock_ops = {
	.open = hs_open, .close = hs_close, .notify = hs_notify,
};

int hvsock_create(struct vmbus_server *srv, const struct hvsock_params *p,
		  struct hvsock **out)
{
	struct hvsock *hs = calloc(1, sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	hs->p = *p;
	pthread_mutex_init(&hs->mu, NULL);
	struct vmbus_offer o = { 0 };
	o.if_type = p->service;
	o.if_instance = p->instance;
	o.chn_flags = HVSOCK_CHN_FLAGS;
	o.user_defined[HVSOCK_USER_PIPE_MODE] = HVSOCK_PIPE_TYPE_BYTE;
	o.user_defined[HVSOCK_USER_FROM_HOST] = p->from_host ? 1 : 0;
	/*
	 * The server may call hs_open() as soon as the offer is out; hs is
	 * complete by then (ch and relid are only for logs and release).
	 */
	struct vmbus_channel *ch;
	int ret = vmbus_offer(srv, &o, &hvsock_ops, hs, &ch);
	if (ret < 0) {
		hs_free(hs);
		return ret;
	}
	hs_lock(hs);
	hs->ch = ch;
	hs->relid = vmbus_channel_relid(ch);
	hs_unlock(hs);
	*out = hs;
	return 0;
}

enum hvsock_state hvsock_state(struct hvsock *hs)
{
	hs_lock(hs);
	enum hvsock_state s = hs->open ? HVSOCK_OPEN : hs->closed ? HVSOCK_CLOSED :
		HVSOCK_OFFERED;
	hs_unlock(hs);
	return s;
}

/* A guest packet that breaks the protocol: the connection is over. Lock held. */
static int hs_broken(struct hvsock *hs, const char *why)
{
	if (!hs->broken)
		log_guest("hvsock: relid %u: %s; connection closed", hs->relid, why);
	hs->broken = true;
	hs->rx_len = 0;
	return -EPROTO;
}

/* Loads the next guest packet into rx. Lock held, channel open. */
static int hs_fill(struct hvsock *hs)
{
	struct vmbus_packet_info info;
	int n = vmbus_channel_recv(hs->ch, hs->rx, sizeof(hs->rx), &info);
	if (n == -EAGAIN)
		return -EAGAIN;
	if (n == -EMSGSIZE)
		return hs_broken(hs, "packet larger than the hv_sock MTU");
	if (n < 0)
		return hs_broken(hs, "ring broken");
	if (info.type != VMBUS_PACKET_DATA_INBAND)
		return hs_broken(hs, "packet is not inband data");
	uint32_t len = (uint32_t)n;
	if (info.data_offset > len || len - info.data_offset < sizeof(struct vmpipe_proto_header))
		return hs_broken(hs, "packet shorter than its pipe header");
	struct vmpipe_proto_header h;
	memcpy(&h, hs->rx + info.data_offset, sizeof(h)); /* our copy: read once */
	uint32_t room = len - info.data_offset - (uint32_t)sizeof(h);
	if (h.pkt_type != HVSOCK_PIPE_PKT_DATA)
		return hs_broken(hs, "pipe packet of an unknown type");
	if (h.data_size > room || h.data_size > HVSOCK_MTU)
		return hs_broken(hs, "pipe data size beyond the packet");
	if (hs->rx_fin)
		return hs_broken(hs, "data after FIN");
	if (h.data_size == 0) {
		hs->rx_fin = true;
		return 0;
	}
	hs->rx_off = info.data_offset + (uint32_t)sizeof(h);
	hs->rx_len = h.data_size;
	return 0;
}

int hvsock_recv_peek(struct hvsock *hs, const uint8_t **data, size_t *len)
{
	int ret;
	hs_lock(hs);
	if (hs->broken) {
		ret = -EPROTO;
	} else if (!hs->open) {
		ret = -EPIPE;
	} else {
		ret = 0;
		if (!hs->rx_len && !hs->rx_fin)
			ret = hs_fill(hs);
		if (ret == 0 && hs->rx_len) {
			*data = hs->rx + hs->rx_off;
			*len = hs->rx_len;
		} else if (ret == 0) {
			ret = 1; /* FIN, everything before it consumed */
		}
	}
	hs_unlock(hs);
	return ret;
}

void hvsock_recv_consume(struct hvsock *hs, size_t n)
{
	hs_lock(hs);
	if (n > hs->rx_len)
		n = hs->rx_len;
	hs->rx_off += (uint32_t)n;
	hs->rx_len -= (uint32_t)n;
	hs->from_guest += n;
	hs_unlock(hs);
}

/* One pipe packet of len payload bytes already in tx[8..]. Lock held. */
static int hs_send_packet(struct hvsock *hs, uint32_t len)
{
	struct vmpipe_proto_header h = { HVSOCK_PIPE_PKT_DATA, len };
	memcpy(hs->tx, &h, sizeof(h));
	int ret = vmbus_channel_send(hs->ch, VMBUS_PACKET_DATA_INBAND, 0, 0, NULL, 0,
				     hs->tx, sizeof(h) + len);
	if (ret == -EPROTO)
		hs_broken(hs, "guest ring indexes out of range");
	return ret;
}

int hvsock_send(struct hvsock *hs, const void *data, size_t len)
{
	int ret;
	hs_lock(hs);
	if (hs->broken) {
		ret = -EPROTO;
	} else if (!hs->open || hs->fin_sent || !len) {
		ret = -EPIPE;
	} else {
		/*
		 * As much as fits now (send_space already leaves the descriptor
		 * and trailer out), so one packet fills the ring; when nothing
		 * fits, a packet of up to a page sets the guest's pending_send_sz
		 * and the guest signals once that much is free.
		 */
		size_t space = vmbus_channel_send_space(hs->ch);
		size_t fit = space > sizeof(struct vmpipe_proto_header) + 8 ?
			(space - sizeof(struct vmpipe_proto_header)) & ~(size_t)7 : 0;
		size_t n = len < HVSOCK_MTU ? len : HVSOCK_MTU;
		if (fit)
			n = n < fit ? n : fit;
		else if (n > 4096 - sizeof(struct vmpipe_proto_header))
			n = 4096 - sizeof(struct vmpipe_proto_header);
		memcpy(hs->tx + sizeof(struct vmpipe_proto_header), data, n);
		ret = hs_send_packet(hs, (uint32_t)n);
		if (ret == 0) {
			hs->to_guest += n;
			ret = (int)n;
		}
	}
	hs_unlock(hs);
	return ret;
}

int hvsock_send_fin(struct hvsock *hs)
{
	int ret;
	hs_lock(hs);
	if (hs->broken)
		ret = -EPROTO;
	else if (!hs->open)
		ret = -EPIPE;
	else if (hs->fin_sent)
		ret = 0;
	else if ((ret = hs_send_packet(hs, 0)) == 0)
		hs->fin_sent = true;
	hs_unlock(hs);
	return ret;
}

void hvsock_release(struct hvsock *hs)
{
	hs_lock(hs);
	hs->released = true;
	/*
	 * Open now: the guest closes the channel after the rescind (or a VMBus
	 * reset closes it), and hs_close() frees hs. Not open: hs_open()
	 * refuses from now on, so after the rescind nothing calls us.
	 */
	bool wait_close = hs->open;
	struct vmbus_channel *ch = hs->ch; /* hs may be gone once unlocked */
	hs_unlock(hs);
	vmbus_rescind(ch);
	if (!wait_close)
		hs_free(hs);
}

void hvsock_counters(struct hvsock *hs, uint64_t *to_guest, uint64_t *from_guest)
{
	hs_lock(hs);
	*to_guest = hs->to_guest;
	*from_guest = hs->from_guest;
	hs_unlock(hs);
}
