/*
 * netvsp: the host side of Hyper-V's synthetic NIC on VMBus, as Linux's
 * hv_netvsc speaks it (drivers/net/hyperv/{netvsc.c,rndis_filter.c,
 * hyperv_net.h}; ../shared/docs/hyperv-linux-guest.md section 7.2): NVSP
 * version negotiation, the guest's receive and send buffers, RNDIS control
 * (INIT, QUERY/SET of the OIDs the guest needs at probe, link indications)
 * and Ethernet frames in both directions.
 *
 * Portable core, like the VMBus server: no OS calls, so the paravisor can
 * reuse it. The host supplies guest-memory mapping, a lock, a kick and a
 * frame sink, and runs netvsp_poll() and netvsp_rx() on one thread of its
 * choosing (in hvmm: the NIC's network thread, core/network.c).
 *
 * Threads and locks: the VMBus callbacks (open, close, notify) run on vCPU
 * threads with the VMBus server lock held; they take the device lock
 * (host.lock) briefly and never block. netvsp_poll()/netvsp_rx()/
 * netvsp_set_link() run on the device thread only. Lock order: VMBus server,
 * then device. host.tx is called with the device lock released, so a backend
 * may call netvsp_rx() from inside tx (libslirp answers ARP and DHCP inline).
 */
#ifndef HVMM_DEV_NETVSP_H
#define HVMM_DEV_NETVSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmbus_server;
struct netvsp;

struct netvsp_host {
	void *opaque;
	/* Maps guest physical [gpa, gpa+len) (within one page), or NULL. */
	void *(*map)(void *opaque, uint64_t gpa, uint64_t len);
	/* The device lock (not recursive). */
	void (*lock)(void *opaque);
	void (*unlock)(void *opaque);
	/*
	 * Something for the device thread to do (the guest signalled, the
	 * channel opened or closed): call netvsp_poll() soon. Any thread,
	 * possibly with the VMBus server lock held: must not block.
	 */
	void (*kick)(void *opaque);
	/*
	 * One frame the guest sent: Ethernet header first, no FCS, checksums
	 * complete (offloaded ones computed, large sends already segmented, so
	 * at most MTU + 18 bytes when the guest honours its MTU). The backend
	 * copies or drops it; nothing waits for it.
	 */
	void (*tx)(void *opaque, const void *frame, size_t len);
};

struct netvsp_config {
	unsigned instance;  /* NIC number: part of the instance GUID */
	uint8_t mac[6];
	uint16_t mtu;       /* 0: 1500 */
	/*
	 * Queues (channels) the guest may have: 0 or 1 one, up to 16 (the
	 * primary and queues - 1 sub-channels, granted at the guest's NVSP
	 * sub-channel request and used with its RSS indirection table).
	 */
	unsigned queues;
	struct netvsp_host host;
};

struct netvsp_stats {
	uint64_t tx_frames, tx_bytes;   /* guest -> host */
	uint64_t rx_frames, rx_bytes;   /* host -> guest */
	uint64_t rx_dropped;            /* netvsp_rx() refused for lack of room */
	uint64_t guest_errors;          /* malformed NVSP/RNDIS seen */
	uint64_t tx_csum;               /* guest frames whose checksums we computed */
	uint64_t tx_lso;                /* large sends cut into segments (tx_frames) */
	uint64_t tx_offload_errors;     /* frames dropped: headers unfit for their offload */
	uint64_t rx_filtered;           /* frames the guest's packet filter refused */
};

/* Offers the NIC on srv. 0 or -errno. */
int netvsp_create(struct vmbus_server *srv, const struct netvsp_config *cfg,
		  struct netvsp **out);

/*
 * Device thread: drains the guest-to-host ring (NVSP and RNDIS control,
 * guest frames to host.tx, completions of receive sections) and sends what
 * is pending. Returns true if it stopped with work left (call it again),
 * false when idle (the next guest signal kicks).
 */
bool netvsp_poll(struct netvsp *nv);

/*
 * Device thread: gives one Ethernet frame (no FCS) to the guest; copied, so
 * frame may be reused at once. 0 taken; -EAGAIN no free receive section or
 * ring room now, or RNDIS responses still wait for one (the frame is not
 * taken, and counted in rx_dropped; room appears after a later kick and
 * netvsp_poll()); -ENETDOWN the guest has not opened the NIC, given its
 * buffers, initialized RNDIS or set a non-zero packet filter (drop it);
 * -EMSGSIZE empty, or larger than the MTU (+ Ethernet header and 802.1Q tag).
 * A frame the guest's packet filter refuses (destination neither its MAC
 * nor a broadcast or multicast it takes) is dropped and counted in
 * rx_filtered, and 0 returned. IPv4 TCP/UDP checksums are verified here and
 * the guest is told of those that pass (if it enabled receive checksum
 * offload), so it skips them.
 */
int netvsp_rx(struct netvsp *nv, const void *frame, size_t len);

/* Device thread: true when netvsp_rx() can take a frame now. */
bool netvsp_rx_ready(struct netvsp *nv);

/* Device thread: link up/down, reported to the guest by RNDIS INDICATE. */
void netvsp_set_link(struct netvsp *nv, bool up);

void netvsp_get_stats(struct netvsp *nv, struct netvsp_stats *st);

/* Call after vmbus_server_destroy() and after the device thread stopped. */
void netvsp_destroy(struct netvsp *nv);

#endif
