/*
 * The VMBus server: the host side of the VMBus channel protocol (version
 * negotiation, offers, GPADLs, open/close, rescind, unload, modify-channel;
 * Linux drivers/hv/{connection,channel_mgmt,channel}.c, include/linux/hyperv.h)
 * and the channel ring buffers, for devices (utility devices, storvsp,
 * netvsp, hvsock) to build on.
 *
 * Portable core: this code uses only freestanding C plus the host interface
 * below. It does not know about KVM, SynIC pages, file descriptors or
 * threads, so the paravisor in VTL2 can reuse it. Guest memory, message
 * delivery, channel signalling and locking come through struct vmbus_host.
 *
 * Everything the guest sends is hostile: every message is length-checked,
 * every GPADL range and ring index bounds-checked; a bad request gets the
 * protocol's error reply (or is dropped with a rate-limited log line), never
 * a crash.
 */
#ifndef HVMM_VMBUS_VMBUS_H
#define HVMM_VMBUS_VMBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* VMBus protocol versions (major << 16 | minor). */
#define VMBUS_VERSION_WS2008    ((0u << 16) | 13u)
#define VMBUS_VERSION_WIN7      ((1u << 16) | 1u)
#define VMBUS_VERSION_WIN8      ((2u << 16) | 4u)
#define VMBUS_VERSION_WIN8_1    ((3u << 16) | 0u)
#define VMBUS_VERSION_WIN10     ((4u << 16) | 0u)
#define VMBUS_VERSION_WIN10_RS3 ((4u << 16) | 1u)
#define VMBUS_VERSION_WIN10_V5  ((5u << 16) | 0u)
#define VMBUS_VERSION_WIN10_V5_1 ((5u << 16) | 1u)
#define VMBUS_VERSION_WIN10_V5_2 ((5u << 16) | 2u)
#define VMBUS_VERSION_WIN10_V5_3 ((5u << 16) | 3u)

/* Guest-to-host message connection ids (TLFS "connection"). */
#define VMBUS_MESSAGE_CONNECTION_ID    1u /* before 5.0 */
#define VMBUS_MESSAGE_CONNECTION_ID_4  4u /* INITIATE_CONTACT at >= 5.0 */
/* The SINT VMBus uses for host-to-guest messages and channel events. */
#define VMBUS_MESSAGE_SINT 2u

/* Hypercall status codes the server answers with (TLFS HV_STATUS_*). */
#define VMBUS_HV_STATUS_SUCCESS               0u
#define VMBUS_HV_STATUS_INVALID_PARAMETER     5u
#define VMBUS_HV_STATUS_INSUFFICIENT_MEMORY   11u
#define VMBUS_HV_STATUS_INVALID_CONNECTION_ID 18u
#define VMBUS_HV_STATUS_INSUFFICIENT_BUFFERS  19u

/*
 * What the server needs from its host (hvmm's hv layer, or the paravisor).
 * All callbacks may be called with the server's lock held (see lock below);
 * they must not call back into the server.
 */
struct vmbus_host {
	void *opaque;
	/*
	 * Host pointer for guest physical [gpa, gpa+len) when all of it is
	 * guest RAM, else NULL. len is at most 4096 and the range never
	 * crosses a page boundary when the server asks.
	 */
	void *(*map)(void *opaque, uint64_t gpa, size_t len);
	/*
	 * Queues a VMBus message (type 1, len <= 240 bytes: the 8-byte VMBus
	 * header plus payload) to SINT VMBUS_MESSAGE_SINT of virtual processor
	 * vp. The host queues it if the message slot is busy and delivers it
	 * after the guest's EOM. 0, or -ENOSPC when the host's queue is full.
	 */
	int (*post_message)(void *opaque, uint32_t vp, const void *msg, size_t len);
	/*
	 * Sets event flag `relid` in the SIEF page of vp for SINT
	 * VMBUS_MESSAGE_SINT and interrupts vp (if the SINT is unmasked).
	 */
	void (*signal_event)(void *opaque, uint32_t vp, uint32_t relid);
	/*
	 * Optional lock around all server state (NULL: the host promises to
	 * call the server from one thread at a time). Not recursive.
	 */
	void (*lock)(void *opaque);
	void (*unlock)(void *opaque);
	/* Optional: a monotonic clock in ns, for timeouts. */
	uint64_t (*now_ns)(void *opaque);
	/*
	 * Optional (NULL: requests wait for the guest's next message or
	 * signal). A device asked for sub-channels (vmbus_channel_request_
	 * subchannels): call vmbus_server_flush() soon, from a thread that holds
	 * no device lock and that no device close() waits for (hvmm: the event
	 * loop). Called from any thread, possibly with the server lock held:
	 * must not call into the server or block.
	 */
	void (*request_flush)(void *opaque);
};

struct vmbus_server;

struct vmbus_server_config {
	/* Highest protocol version offered to the guest (0 = the newest). */
	uint32_t max_version;
	/* Number of virtual processors (valid VP indexes are < nvps). */
	uint32_t nvps;
};

/* 0 or -ENOMEM. The host structure is copied. */
int vmbus_server_create(const struct vmbus_host *host,
			const struct vmbus_server_config *cfg,
			struct vmbus_server **out);
void vmbus_server_destroy(struct vmbus_server *srv);

/*
 * A guest HvPostMessage to connection conn_id (VMBUS_MESSAGE_CONNECTION_ID
 * or _4), message type mtype, payload data[0..len) (len <= 240, as copied
 * out of the hypercall input page by the caller). Returns the hypercall
 * status: VMBUS_HV_STATUS_SUCCESS, _INVALID_CONNECTION_ID for a connection
 * the server does not listen on (the guest then tries an older version),
 * _INSUFFICIENT_BUFFERS when it cannot take the message now (the guest
 * retries). Protocol errors in an accepted message are answered by the
 * protocol, not by the status.
 */
uint16_t vmbus_server_post_message(struct vmbus_server *srv, uint32_t conn_id,
				   uint32_t mtype, const void *data, size_t len);

/*
 * A guest HvSignalEvent on connection conn_id (flag number 0). Returns
 * VMBUS_HV_STATUS_SUCCESS, or _INVALID_CONNECTION_ID when no open channel
 * uses conn_id. Calls the channel's device notify callback.
 */
uint16_t vmbus_server_signal_event(struct vmbus_server *srv, uint32_t conn_id);

/*
 * The VM was reset or the guest's VMBus connection is gone (the host saw
 * SynIC disabled, or the VM is being rebuilt): close every channel (device
 * close callbacks run), drop every GPADL, forget the negotiated version.
 * Offers stay and are sent again when the guest reconnects; sub-channels
 * are freed (the device asks again when the guest does).
 */
void vmbus_server_reset(struct vmbus_server *srv);

/*
 * Serves the devices' pending sub-channel requests (vmbus_channel.h):
 * offers the sub-channels of every still-open primary that asked. Takes the
 * server lock, so call it from a thread no device close() waits for (the
 * host's request_flush tells when). The server also does this itself at the
 * start of every guest message and signal.
 */
void vmbus_server_flush(struct vmbus_server *srv);

/* The negotiated version, or 0 when no guest is connected. */
uint32_t vmbus_server_version(struct vmbus_server *srv);

/*
 * Inspect view (core/inspect.h): the version, GPADLs, and "channels/<relid>"
 * with each offer's class and instance, state, target VP and ring indices.
 * Takes the server lock; any thread but one holding it.
 */
struct inspect;
void vmbus_server_inspect(struct vmbus_server *srv, struct inspect *in);

#endif
