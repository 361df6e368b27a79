/*
 * The device side of the VMBus server: how a device (utility devices,
 * storvsp, netvsp, hvsock) offers a channel, learns that the guest opened
 * or closed it, and moves packets through the channel's ring buffers
 * (Linux include/linux/hyperv.h: vmpacket_descriptor, hv_ring_buffer;
 * drivers/hv/ring_buffer.c).
 *
 * Portable like the server (vmbus.h): no OS calls. A device runs its ring
 * work wherever it likes (hvmm: a worker thread or the event loop); the
 * notify callback only tells it that the guest signalled.
 *
 * Threading: vmbus_channel_send()/recv() on one channel may be called from
 * one sending thread and one receiving thread at the same time (the two
 * rings are independent). Callbacks are called with the server lock held:
 * they must not call vmbus_offer(), vmbus_rescind(), vmbus_channel_gpadl_*()
 * or vmbus_set_tl_connect_handler() (the lock is not recursive) and must not
 * block; vmbus_channel_send()/recv()/skip()/send_space() and
 * vmbus_channel_request_subchannels() are fine.
 * vmbus_channel_gpadl_*() take the server lock: a device must not call them
 * while holding a lock its callbacks take (lock order: server, then device).
 */
#ifndef HVMM_VMBUS_VMBUS_CHANNEL_H
#define HVMM_VMBUS_VMBUS_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmbus/vmbus.h"

struct vmbus_channel;

/* A GUID in the wire (little-endian guid_t) byte order. */
struct vmbus_guid {
	uint8_t b[16];
};

/* Parses "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into wire order. 0 or -EINVAL. */
int vmbus_guid_parse(const char *s, struct vmbus_guid *g);
/* The inverse: 36 characters and a NUL. */
void vmbus_guid_format(const struct vmbus_guid *g, char out[37]);

/* Packet types (vmpacket_descriptor.type). */
#define VMBUS_PACKET_DATA_INBAND         6
#define VMBUS_PACKET_DATA_USING_XFER_PAGES 7
#define VMBUS_PACKET_DATA_USING_GPA_DIRECT 9
#define VMBUS_PACKET_COMP                11
#define VMBUS_PACKET_FLAG_COMPLETION_REQUESTED 1

struct vmbus_device_ops {
	/*
	 * The guest opened the channel; its rings are mapped and valid.
	 * Return 0 to accept, or a non-zero status for OPENCHANNEL_RESULT.
	 */
	uint32_t (*open)(void *dev, struct vmbus_channel *ch);
	/*
	 * The channel is closing (guest CLOSECHANNEL, UNLOAD, VM reset, or
	 * rescind completion). After this returns the device must not touch
	 * the channel's rings; the server waits for nothing else.
	 */
	void (*close)(void *dev, struct vmbus_channel *ch);
	/*
	 * The guest signalled the channel (HvSignalEvent): new packets in the
	 * guest-to-host ring, or room in the host-to-guest ring. Called on a
	 * vCPU thread: must not block.
	 */
	void (*notify)(void *dev, struct vmbus_channel *ch);
	/*
	 * Optional (NULL: not told). The guest tore down (or a reset dropped)
	 * GPADL gpadl_id that it had created on this channel. A device that
	 * kept the GPADL's pages (vmbus_channel_gpadl_map) stops using them:
	 * the guest may reuse that memory. Server lock held: must not block.
	 */
	void (*gpadl_torndown)(void *dev, struct vmbus_channel *ch, uint32_t gpadl_id);
};

struct vmbus_offer {
	struct vmbus_guid if_type;      /* the device class */
	struct vmbus_guid if_instance;  /* unique per channel */
	uint16_t chn_flags;             /* e.g. 0x2000 for hv_sock pipes */
	uint16_t mmio_megabytes;
	uint8_t user_defined[120];      /* offer's user area (pipe mode etc.) */
	uint16_t sub_channel_index;     /* 0 for a primary channel */
	/* VP the device would like to be signalled on (guest decides). */
};

/*
 * Adds a channel offer; it is sent now if a guest is connected (and again at
 * every reconnection). The server assigns relid and connection id.
 * 0, -ENOSPC (no relids left), -EEXIST (same type and instance).
 */
int vmbus_offer(struct vmbus_server *srv, const struct vmbus_offer *offer,
		const struct vmbus_device_ops *ops, void *dev,
		struct vmbus_channel **out);

/*
 * Withdraws an offer (RESCIND_CHANNELOFFER to the guest). If the channel is
 * open, close() is called once the guest has closed it or the connection is
 * reset. The channel is freed when the guest releases the relid (or at
 * reset); the device must not use ch after close() or after this call if the
 * channel was not open.
 */
void vmbus_rescind(struct vmbus_channel *ch);

/*
 * Sub-channels: extra channels of one device (more queues), offered with
 * the primary's if_type and if_instance and sub_channel_index 1..n, each
 * with its own relid, connection id, rings and target VP. The guest asks
 * the device for them in the device's own protocol (storvsc's
 * CREATE_SUB_CHANNELS, netvsc's NVSP subchannel request); the device then
 * calls this, from any thread (its worker, a callback), without the risk
 * of deadlock against its own close(): the request is only recorded here
 * (atomics, no lock) and served by vmbus_server_flush() (vmbus.h), which
 * the host runs from a safe thread, or at the guest's next message or
 * signal. The sub-channels use the primary's ops and dev: open(), close()
 * and notify() come per sub-channel (vmbus_channel_subchannel_index() says
 * which), exactly as for the primary.
 *
 * Lifecycle (the server owns it): sub-channels exist only while their
 * primary is open. When the primary closes (CLOSECHANNEL, its ring GPADL
 * torn down, rescind), its open sub-channels are closed first (close()
 * per sub-channel), then the primary's close() runs, then the sub-channels
 * are rescinded to the guest and freed at RELID_RELEASED. At UNLOAD, a new
 * INITIATE_CONTACT or vmbus_server_reset() they are closed and freed; they
 * are never offered again at a reconnection. A request is good for the
 * current open only: one per open (the next open may ask again). If the
 * primary closes before the request is served, it is dropped.
 *
 * primary must be a primary channel. 0, -EINVAL (a sub-channel, n == 0 or
 * n > VMBUS_MAX_SUBCHANNELS), -EALREADY (already asked during this open).
 * Offers that cannot be made later (no relids left) are logged; the guest
 * gets fewer channels, which Linux accepts.
 */
#define VMBUS_MAX_SUBCHANNELS 64u
int vmbus_channel_request_subchannels(struct vmbus_channel *primary, unsigned n);

/* 0 for a primary channel, 1..n for a sub-channel. Any thread. */
unsigned vmbus_channel_subchannel_index(const struct vmbus_channel *ch);

/* Information about a received packet. */
struct vmbus_packet_info {
	uint16_t type;       /* VMBUS_PACKET_* */
	uint16_t flags;      /* VMBUS_PACKET_FLAG_* */
	uint64_t trans_id;
	uint32_t data_offset; /* payload offset in the packet (offset8 * 8) */
	uint32_t len;         /* packet length without trailer (len8 * 8) */
};

/*
 * Copies the next guest-to-host packet (descriptor included, trailer not)
 * into buf and consumes it. Returns the packet length, -EAGAIN when the ring
 * is empty, -EMSGSIZE when it does not fit in buflen (the packet stays
 * unless the device calls vmbus_channel_skip()), -EPROTO when the ring or
 * the packet is malformed (the channel is then unusable until reopened; a
 * rate-limited message was logged). On -EAGAIN the guest's interrupt mask
 * was cleared and the ring re-checked, so a later guest write will signal.
 */
int vmbus_channel_recv(struct vmbus_channel *ch, void *buf, size_t buflen,
		       struct vmbus_packet_info *info);

/* Drops the next guest-to-host packet. 0, -EAGAIN, -EPROTO. */
int vmbus_channel_skip(struct vmbus_channel *ch);

/*
 * Writes one packet to the host-to-guest ring: a descriptor of `type` and
 * `flags` with trans_id, then hdr[0..hdrlen) (type-specific header, e.g.
 * transfer-page ranges; may be empty), then data[0..len), padded to 8 bytes,
 * then the trailer; signals the guest when it needs it. 0, -EAGAIN when the
 * ring is full (the guest-side pending_send_sz is set so the guest signals
 * when room appears), -EPIPE when the channel is not open.
 */
int vmbus_channel_send(struct vmbus_channel *ch, uint16_t type, uint16_t flags,
		       uint64_t trans_id, const void *hdr, size_t hdrlen,
		       const void *data, size_t len);

/* Bytes free in the host-to-guest ring (for devices that batch). */
size_t vmbus_channel_send_space(struct vmbus_channel *ch);

/*
 * A GPADL the guest created on this channel (netvsc's receive and send
 * buffers): its length in bytes and a way to copy into/out of it.
 * 0, -ENOENT. Offsets and lengths are checked against the GPADL.
 */
int vmbus_channel_gpadl_len(struct vmbus_channel *ch, uint32_t gpadl_id,
			    uint64_t *len);
int vmbus_channel_gpadl_read(struct vmbus_channel *ch, uint32_t gpadl_id,
			     uint64_t off, void *dst, size_t len);
int vmbus_channel_gpadl_write(struct vmbus_channel *ch, uint32_t gpadl_id,
			      uint64_t off, const void *src, size_t len);

/*
 * The host pages of a GPADL the guest created on this channel, for a device
 * that uses a buffer for long (netvsc's receive and send buffers) without
 * taking the server lock for every copy. On success pages is a malloc'd
 * array (the caller frees it) of npages pointers, each to VMBUS_PAGE bytes
 * of guest RAM, and len is the GPADL's byte count (<= npages * VMBUS_PAGE).
 * The pointers stay valid while guest RAM is mapped (hvmm: the VM's life),
 * so a teardown does not make them dangle; it only means the guest may
 * reuse the memory (see the gpadl_torndown op). Takes the server lock.
 * 0, -ENOENT (no complete GPADL of that id on this channel), -ENOMEM.
 */
struct vmbus_gpadl_pages {
	uint8_t **pages;
	uint32_t npages;
	uint64_t len;
};
int vmbus_channel_gpadl_map(struct vmbus_channel *ch, uint32_t gpadl_id,
			    struct vmbus_gpadl_pages *out);

/*
 * hv_sock: the guest's connect() to a host service arrives as
 * TL_CONNECT_REQUEST {guest endpoint GUID, host service GUID}. A service
 * answers by offering a channel (if_type = host_service, if_instance =
 * guest_endpoint, user_defined[4] = 0) or by doing nothing (the guest's
 * connect() times out). Called with the server lock held (see above).
 * fn NULL: requests are ignored (the default).
 */
typedef void (*vmbus_tl_connect_fn)(void *opaque, const struct vmbus_guid *guest_endpoint,
				    const struct vmbus_guid *host_service);
void vmbus_set_tl_connect_handler(struct vmbus_server *srv, vmbus_tl_connect_fn fn,
				  void *opaque);

/* The VP the guest targets this channel's interrupts at. */
uint32_t vmbus_channel_target_vp(const struct vmbus_channel *ch);
uint32_t vmbus_channel_relid(const struct vmbus_channel *ch);
/* The server this channel belongs to, and the host interface's opaque. */
struct vmbus_server *vmbus_channel_server(const struct vmbus_channel *ch);

#endif
