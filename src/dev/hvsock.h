/*
 * hv_sock: one Hyper-V socket connection carried by one VMBus channel, the
 * host side of what Linux's net/vmw_vsock/hyperv_transport.c speaks
 * (../shared/docs/hyperv-linux-guest.md §8). The channel is offered with
 * chn_flags 0x2000 (a "TLNPI provider" pipe), if_type = the service GUID
 * (for vsock port N: N in the first four bytes of the template
 * 00000000-facb-11e6-bd58-64006a7986d3), if_instance = a per-connection
 * endpoint GUID, and user_def[0] = 1 when the host initiates. The guest
 * opens it when a socket of its listens on (host-initiated) or waits in
 * connect() for (guest-initiated) that port. Data then flows both ways as
 * inband packets whose payload is a vmpipe_proto_header {pkt_type 1,
 * data_size} and data_size bytes; data_size 0 is FIN. The guest sends at
 * most 4088 bytes a packet and accepts at most HVSOCK_MTU. The connection
 * ends with a rescind from the host, after which the guest closes the
 * channel and releases the relid.
 *
 * Portable like the VMBus server: no OS calls. The owner (hvmm's vsock
 * relay, src/core/vsock_relay.c) runs the data path on its own thread and
 * is told through wake() that something changed (the guest opened, closed
 * or signalled the channel). Guest data is hostile: a packet that is not an
 * inband pipe-data packet of a sane size, or data after FIN, breaks the
 * connection (the owner sees -EPROTO and tears it down), with a
 * rate-limited log line.
 *
 * Locking: lock()/unlock() (given at create, typically one mutex for all of
 * an owner's connections) guard a connection's state between the owner's
 * thread and the VMBus callbacks. Lock order: the VMBus server lock, then
 * this lock. The owner must not hold this lock when it calls
 * hvsock_create() or hvsock_release() (they take the server lock).
 */
#ifndef HVMM_DEV_HVSOCK_H
#define HVMM_DEV_HVSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmbus/vmbus_channel.h"

/* VMBUS_CHANNEL_TLNPI_PROVIDER_OFFER: vmbus_match hands it to hv_sock. */
#define HVSOCK_CHN_FLAGS 0x2000u
/* Offer user area: u32 pipe_mode at 0 (byte pipe), user_def[0] at 4. */
#define HVSOCK_USER_PIPE_MODE 0
#define HVSOCK_USER_FROM_HOST 4
#define HVSOCK_PIPE_TYPE_BYTE 0u
/* HVS_MTU_SIZE: the largest payload the guest accepts in one packet. */
#define HVSOCK_MTU 16384u
/* The largest payload Linux sends in one packet (HVS_SEND_BUF_SIZE). */
#define HVSOCK_GUEST_SEND_MAX 4088u
/* vmpipe_proto_header.pkt_type of a data packet. */
#define HVSOCK_PIPE_PKT_DATA 1u
/* Ports the guest can listen on (MAX_LISTEN_PORT). */
#define HVSOCK_MAX_LISTEN_PORT 0x7FFFFFFFu

struct vmpipe_proto_header {
	uint32_t pkt_type;
	uint32_t data_size;
} __attribute__((packed));
_Static_assert(sizeof(struct vmpipe_proto_header) == 8, "vmpipe_proto_header");

/* The service GUID of vsock port `port` (the template, port in data1). */
void hvsock_port_guid(uint32_t port, struct vmbus_guid *g);
/* True when g is the template with some port in data1 (stored in *port). */
bool hvsock_guid_port(const struct vmbus_guid *g, uint32_t *port);
/* Formats g as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (lower case). */
void hvsock_guid_format(const struct vmbus_guid *g, char out[37]);

enum hvsock_state {
	HVSOCK_OFFERED, /* waiting for the guest to open the channel */
	HVSOCK_OPEN,    /* data flows */
	HVSOCK_CLOSED,  /* the guest closed the channel (or VMBus was reset) */
};

struct hvsock_params {
	struct vmbus_guid service;   /* offer if_type */
	struct vmbus_guid instance;  /* offer if_instance, unique */
	bool from_host;              /* user_def[0]: the host connects */
	/*
	 * Something changed (opened, closed, the guest signalled). Called with
	 * the VMBus server lock held, on a vCPU thread or inside hvsock calls:
	 * must not block or call into hvsock/VMBus. Not called after
	 * hvsock_release().
	 */
	void (*wake)(void *wake_opaque);
	void *wake_opaque;
	/*
	 * The lock guarding the connection's state, or NULL for one of its
	 * own. A shared lock must outlive the hvsock, which lives on after
	 * hvsock_release() until the guest closes the channel: a user that
	 * goes away first (the vsock relay at VM teardown, with channels the
	 * guest still holds open) must pass NULL.
	 */
	void (*lock)(void *lock_opaque);
	void (*unlock)(void *lock_opaque);
	void *lock_opaque;
};

struct hvsock;

/* Offers the channel. 0 or -errno (-ENOMEM, vmbus_offer's). */
int hvsock_create(struct vmbus_server *srv, const struct hvsock_params *p,
		  struct hvsock **out);

enum hvsock_state hvsock_state(struct hvsock *hs);

/*
 * Guest-to-host data: points *data at the next bytes the guest sent
 * (*len > 0) and returns 0; they stay until hvsock_recv_consume(). Returns
 * 1 once the guest sent FIN and everything before it was consumed,
 * -EAGAIN when nothing is there (wake() comes when the guest writes),
 * -EPIPE when the channel is not open, -EPROTO when the guest broke the
 * protocol (the connection is unusable).
 */
int hvsock_recv_peek(struct hvsock *hs, const uint8_t **data, size_t *len);
void hvsock_recv_consume(struct hvsock *hs, size_t n);

/*
 * Host-to-guest data: sends one packet with the first bytes of data[0..len)
 * (as many as fit now, at most HVSOCK_MTU). Returns the number of bytes
 * sent (> 0), -EAGAIN when the ring has no room (wake() comes when the
 * guest frees some), -EPIPE when the channel is not open or FIN was sent,
 * -EPROTO when the ring is broken. len must be > 0.
 */
int hvsock_send(struct hvsock *hs, const void *data, size_t len);
/* Sends FIN (once). 0, -EAGAIN (no room yet), -EPIPE, -EPROTO. */
int hvsock_send_fin(struct hvsock *hs);

/*
 * Ends the connection: rescinds the channel and frees hs (now, or when the
 * guest has closed the open channel). No wake() after this returns. Takes
 * the VMBus server lock.
 */
void hvsock_release(struct hvsock *hs);

/* Bytes moved so far (for logs and the inspect tree). */
void hvsock_counters(struct hvsock *hs, uint64_t *to_guest, uint64_t *from_guest);

#endif
