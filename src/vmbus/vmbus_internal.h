/*
 * Internal to src/vmbus: the channel-message wire formats (Linux
 * include/linux/hyperv.h, "vmbus_channel_*" structs; offsets count the
 * 8-byte message header), the server, GPADL and channel state, and the ring
 * helpers shared by vmbus_server.c and vmbus_ring.c.
 */
#ifndef HVMM_VMBUS_VMBUS_INTERNAL_H
#define HVMM_VMBUS_VMBUS_INTERNAL_H

#include <stdatomic.h>

#include "vmbus/vmbus.h"
#include "vmbus/vmbus_channel.h"

/* Channel message types (vmbus_channel_message_type). */
enum {
	CHANNELMSG_OFFERCHANNEL = 1,
	CHANNELMSG_RESCIND_CHANNELOFFER = 2,
	CHANNELMSG_REQUESTOFFERS = 3,
	CHANNELMSG_ALLOFFERS_DELIVERED = 4,
	CHANNELMSG_OPENCHANNEL = 5,
	CHANNELMSG_OPENCHANNEL_RESULT = 6,
	CHANNELMSG_CLOSECHANNEL = 7,
	CHANNELMSG_GPADL_HEADER = 8,
	CHANNELMSG_GPADL_BODY = 9,
	CHANNELMSG_GPADL_CREATED = 10,
	CHANNELMSG_GPADL_TEARDOWN = 11,
	CHANNELMSG_GPADL_TORNDOWN = 12,
	CHANNELMSG_RELID_RELEASED = 13,
	CHANNELMSG_INITIATE_CONTACT = 14,
	CHANNELMSG_VERSION_RESPONSE = 15,
	CHANNELMSG_UNLOAD = 16,
	CHANNELMSG_UNLOAD_RESPONSE = 17,
	CHANNELMSG_TL_CONNECT_REQUEST = 21,
	CHANNELMSG_MODIFYCHANNEL = 22,
	CHANNELMSG_TL_CONNECT_RESULT = 23,
	CHANNELMSG_MODIFYCHANNEL_RESPONSE = 24,
};

/* Sizes of the messages as Linux 6.1 sends and expects them. */
#define VMBUS_MSG_MAX 240u
#define MSG_HDR 8u
#define MSG_INITIATE_CONTACT 40u
#define MSG_VERSION_RESPONSE 16u
#define MSG_OFFERCHANNEL 196u
#define MSG_RESCIND 12u
#define MSG_OPENCHANNEL 148u
#define MSG_OPENCHANNEL_RESULT 20u
#define MSG_CLOSECHANNEL 12u
#define MSG_GPADL_HEADER_MIN 28u   /* header with one range, no PFNs */
#define MSG_GPADL_BODY_MIN 16u
#define MSG_GPADL_CREATED 20u
#define MSG_GPADL_TEARDOWN 16u
#define MSG_GPADL_TORNDOWN 12u
#define MSG_RELID_RELEASED 12u
#define MSG_MODIFYCHANNEL 16u
#define MSG_MODIFYCHANNEL_RESPONSE 16u
#define MSG_TL_CONNECT_REQUEST 40u

#define VMBUS_MAX_RELID 2047u          /* SIEF flags are 2048 bits; 0 unused */
#define VMBUS_CONN_ID_BASE 0x10000u    /* channel event connection = base + relid */
#define VMBUS_GPADL_MAX_PAGES 65536u   /* 256 MiB per GPADL */
#define VMBUS_GPADL_MAX_TOTAL 262144u  /* 1 GiB over all GPADLs */
#define VMBUS_MAX_GPADLS 1024u
#define VMBUS_PAGE 4096u

/* Ring buffer header (hv_ring_buffer), one page. */
#define RING_WRITE_INDEX 0
#define RING_READ_INDEX 4
#define RING_INTERRUPT_MASK 8
#define RING_PENDING_SEND_SZ 12
#define RING_FEATURE_BITS 64
#define VMBUS_PKT_DESC 16u
#define VMBUS_PKT_TRAILER 8u

struct vmbus_gpadl {
	struct vmbus_gpadl *next;
	uint32_t id;
	uint32_t relid;
	uint32_t byte_count;
	uint32_t npages;      /* expected */
	uint32_t got;         /* received so far */
	uint64_t *pfns;
	uint8_t **pages;      /* host pointers, once complete and valid */
	bool complete;
	bool in_use;          /* holds an open channel's rings */
};

/* One direction of a channel: header page and data pages. */
struct vmbus_ring {
	uint8_t *hdr;
	uint8_t **data;       /* npages host pointers */
	uint32_t npages;
	uint32_t size;        /* npages * 4096 */
	uint32_t priv_index;  /* our own copy of the index we own */
	bool broken;          /* a hostile index or packet was seen */
};

struct vmbus_channel {
	struct vmbus_channel *next;
	struct vmbus_server *srv;
	struct vmbus_offer offer;
	const struct vmbus_device_ops *ops;
	void *dev;
	uint32_t relid;
	uint32_t conn_id;
	uint32_t target_vp;
	bool offered;         /* OFFERCHANNEL sent in this connection */
	bool open;
	bool rescinded;
	/*
	 * Sub-channels: a sub-channel points at its primary until it is
	 * withdrawn (the primary closed); `sub` stays set. A primary holds the
	 * device's request for this open (0: none; written without the server
	 * lock by vmbus_channel_request_subchannels, consumed under it by
	 * vmbus_server_flush) and whether it has been served.
	 */
	bool sub;
	struct vmbus_channel *primary;
	_Atomic unsigned sub_request;
	bool subs_made;
	struct vmbus_gpadl *ring_gpadl;
	struct vmbus_ring in;  /* guest-to-host: host reads */
	struct vmbus_ring out; /* host-to-guest: host writes */
};

struct vmbus_server {
	struct vmbus_host host;
	struct vmbus_server_config cfg;
	uint32_t version;     /* negotiated; 0 = not connected */
	uint32_t target_vp;   /* where control messages go */
	struct vmbus_channel *channels;
	struct vmbus_gpadl *gpadls;
	unsigned ngpadls;
	uint64_t gpadl_pages; /* over all GPADLs */
	uint8_t relid_used[(VMBUS_MAX_RELID + 1 + 7) / 8];
	atomic_bool flush_needed; /* a sub-channel request waits (any thread sets it) */
	vmbus_tl_connect_fn tl_connect; /* hv_sock service, or NULL */
	void *tl_connect_opaque;
};

void vmbus_lock(struct vmbus_server *srv);
void vmbus_unlock(struct vmbus_server *srv);

/* Maps a complete GPADL's pages; false when a PFN is not guest RAM. */
bool vmbus_gpadl_map(struct vmbus_server *srv, struct vmbus_gpadl *g);
struct vmbus_gpadl *vmbus_gpadl_find(struct vmbus_server *srv, uint32_t id);

/* Sets up a channel's rings from its ring GPADL. 0 or -EINVAL. */
int vmbus_rings_attach(struct vmbus_channel *ch, struct vmbus_gpadl *g,
		       uint32_t downstream_pages);
void vmbus_rings_detach(struct vmbus_channel *ch);

/* Little-endian field access in message buffers. */
static inline uint32_t vmbus_get32(const uint8_t *p, size_t off)
{
	return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
	       (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
}
static inline uint16_t vmbus_get16(const uint8_t *p, size_t off)
{
	return (uint16_t)(p[off] | p[off + 1] << 8);
}
static inline uint64_t vmbus_get64(const uint8_t *p, size_t off)
{
	return vmbus_get32(p, off) | (uint64_t)vmbus_get32(p, off + 4) << 32;
}
static inline void vmbus_put32(uint8_t *p, size_t off, uint32_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
	p[off + 2] = (uint8_t)(v >> 16);
	p[off + 3] = (uint8_t)(v >> 24);
}
static inline void vmbus_put16(uint8_t *p, size_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}
static inline void vmbus_put64(uint8_t *p, size_t off, uint64_t v)
{
	vmbus_put32(p, off, (uint32_t)v);
	vmbus_put32(p, off + 4, (uint32_t)(v >> 32));
}

#endif
