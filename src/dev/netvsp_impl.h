/*
 * Internal to netvsp (netvsp.c: VMBus channel, NVSP, the guest's buffers,
 * the receive path; netvsp_rndis.c: RNDIS messages in both directions).
 * Wire formats follow Linux's drivers/net/hyperv/hyperv_net.h and
 * include/linux/rndis.h; all fields little-endian, offsets in bytes.
 */
#ifndef HVMM_DEV_NETVSP_IMPL_H
#define HVMM_DEV_NETVSP_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "dev/netvsp.h"
#include "vmbus/vmbus_channel.h"

/* NVSP message types (u32 at offset 0 of every 40-byte nvsp_message). */
#define NVSP_MSG_INIT 1
#define NVSP_MSG_INIT_COMPLETE 2
#define NVSP_MSG1_SEND_NDIS_VER 100
#define NVSP_MSG1_SEND_RECV_BUF 101
#define NVSP_MSG1_SEND_RECV_BUF_COMPLETE 102
#define NVSP_MSG1_REVOKE_RECV_BUF 103
#define NVSP_MSG1_SEND_SEND_BUF 104
#define NVSP_MSG1_SEND_SEND_BUF_COMPLETE 105
#define NVSP_MSG1_REVOKE_SEND_BUF 106
#define NVSP_MSG1_SEND_RNDIS_PKT 107
#define NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE 108
#define NVSP_MSG2_SEND_NDIS_CONFIG 125
#define NVSP_MSG4_SEND_VF_ASSOCIATION 128
#define NVSP_MSG4_SWITCH_DATA_PATH 129
#define NVSP_MSG5_SUBCHANNEL 133
#define NVSP_MSG5_SEND_INDIRECTION_TABLE 134

#define NVSP_SUBCHANNEL_ALLOCATE 1
#define NVSP_VERSION_5 0x50000u

#define NVSP_STAT_SUCCESS 1
#define NVSP_STAT_FAIL 2
#define NVSP_MSG_SIZE 40u
#define NVSP_INVALID_INDEX 0xFFFFFFFFu

/* RNDIS message types; completions have bit 31 set. */
#define RNDIS_MSG_PACKET 1
#define RNDIS_MSG_INIT 2
#define RNDIS_MSG_HALT 3
#define RNDIS_MSG_QUERY 4
#define RNDIS_MSG_SET 5
#define RNDIS_MSG_RESET 6
#define RNDIS_MSG_INDICATE 7
#define RNDIS_MSG_KEEPALIVE 8
#define RNDIS_MSG_COMPLETION 0x80000000u

#define RNDIS_STATUS_SUCCESS 0
#define RNDIS_STATUS_FAILURE 0xC0000001u
#define RNDIS_STATUS_NOT_SUPPORTED 0xC00000BBu
#define RNDIS_STATUS_INVALID_LENGTH 0xC0010014u
#define RNDIS_STATUS_INVALID_DATA 0xC0010015u
#define RNDIS_STATUS_MEDIA_CONNECT 0x4001000Bu
#define RNDIS_STATUS_MEDIA_DISCONNECT 0x4001000Cu

#define RNDIS_HEADER 8u         /* type, msg_len */
#define RNDIS_PACKET_BODY 36u   /* rndis_packet: data_offset .. reserved */
#define RNDIS_PPI_HEADER 12u    /* rndis_per_packet_info: size, type, offset */
#define RNDIS_PPI_CSUM 0u       /* TCPIP_CHKSUM_PKTINFO */
#define RNDIS_PPI_LSO 2u        /* TCP_LARGESEND_PKTINFO */
#define RNDIS_PPI_8021Q 6u      /* IEEE_8021Q_INFO */
#define RNDIS_PPI_HASH 8u       /* NBL_HASH_VALUE */

/* ndis_tcp_ip_checksum_info: transmit bits (guest asks), receive bits (we tell). */
#define NDIS_CSUM_TX_IPV4 (1u << 0)
#define NDIS_CSUM_TX_IPV6 (1u << 1)
#define NDIS_CSUM_TX_TCP (1u << 2)
#define NDIS_CSUM_TX_UDP (1u << 3)
#define NDIS_CSUM_TX_IP_HEADER (1u << 4)
#define NDIS_CSUM_RX_TCP_OK (1u << 3)
#define NDIS_CSUM_RX_UDP_OK (1u << 4)
#define NDIS_CSUM_RX_IP_OK (1u << 5)
/* ndis_tcp_lso_info, LSO v2 transmit: mss 0..19, tcp_header_offset 20..29, type 30, ipv6 31. */
#define NDIS_LSO_MSS(v) ((v) & 0xFFFFFu)
#define NDIS_LSO_V2_TYPE (1u << 30)
#define NDIS_LSO_IPV6 (1u << 31)
#define NETVSP_LSO_MAX 62780u   /* ndis_lsov2_offload.ip4_maxsz we report */

/* NDIS_RECEIVE_SCALE_PARAMETERS hashinfo bits. */
#define NDIS_HASH_FUNC_TOEPLITZ 0x00000001u
#define NDIS_HASH_IPV4 0x00000100u
#define NDIS_HASH_TCP_IPV4 0x00000200u
#define NETVSP_RSS_KEY_MAX 40u    /* NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE_REVISION_2 */
#define NETVSP_RSS_TABLE_MAX 128u /* entries: Linux's ITAB_NUM */
#define NETVSP_SEND_TABLE 16u     /* send indirection table entries (VRSS_SEND_TAB_SIZE) */
#define NETVSP_MAX_CHANNELS 16u   /* primary + sub-channels: NET_MAX_QUEUES */

/* OID_GEN_CURRENT_PACKET_FILTER bits. */
#define NDIS_PACKET_TYPE_DIRECTED 0x01u
#define NDIS_PACKET_TYPE_MULTICAST 0x02u
#define NDIS_PACKET_TYPE_ALL_MULTICAST 0x04u
#define NDIS_PACKET_TYPE_BROADCAST 0x08u
#define NDIS_PACKET_TYPE_PROMISCUOUS 0x20u

/* Sizes we choose. */
#define NETVSP_RECV_SECTION_MIN 1728u  /* Hyper-V's; holds 1514 + headers */
#define NETVSP_SEND_SECTION 6144u
#define NETVSP_MAX_SECTIONS 65536u     /* receive sections we track */
#define NETVSP_PKT_MAX 8192u           /* one guest-to-host ring packet */
#define NETVSP_TX_FRAME_MAX 65535u     /* an LSO frame: NETVSP_LSO_MAX + headers */
#define NETVSP_STREAM_MAX (NETVSP_SEND_SECTION + NETVSP_TX_FRAME_MAX + 2 * 4096u)
#define NETVSP_COMP_BACKLOG 4u         /* NVSP completions waiting for ring room */
#define NETVSP_CTL_QUEUE 8u            /* RNDIS responses waiting for a section */
#define NETVSP_CTL_MAX 256u            /* largest RNDIS response we build */
#define NETVSP_RX_TID_TAG (1ull << 63) /* our transfer-page packets' trans_ids */
#define NETVSP_RX_PPI_MAX 32u          /* per-packet info on a received frame */

/* One VMBus channel of the NIC: the primary (0) or a sub-channel (1..). */
struct netvsp_chan {
	struct vmbus_channel *ch;
	bool open;
	/* Replies that found no room in this channel's ring, in order. */
	struct {
		uint64_t trans_id;
		uint32_t len;
		uint8_t msg[NVSP_MSG_SIZE];
	} comp[NETVSP_COMP_BACKLOG];
	unsigned ncomp;
};

/* One guest buffer (receive or send), its pages mapped once at setup. */
struct netvsp_gbuf {
	bool valid;
	uint32_t gpadl;
	uint16_t id;          /* the guest's buffer id (0xCAFE, 0) */
	struct vmbus_gpadl_pages map;
	uint32_t section_size;
	uint32_t sections;
};

struct netvsp {
	struct netvsp_config cfg;
	struct netvsp_host host;
	struct vmbus_channel *ch;
	/* Everything below is under the device lock (host.lock). */
	bool open;
	uint32_t gen;         /* bumped at every open and close */
	struct netvsp_stats stats;
	uint32_t nvsp_version; /* 0 until INIT */
	struct netvsp_gbuf rbuf, sbuf;
	uint32_t *rfree;      /* free receive sections, a stack */
	uint32_t nfree;
	/*
	 * Per section: 0 free, else the sequence number in the trans_id of the
	 * packet that lent it to the guest; only that packet's completion frees
	 * it (a stale or repeated one does not).
	 */
	uint32_t *rseq;
	uint32_t rx_seq;      /* 1..2^31-1, wraps */
	uint32_t max_frame;   /* longest frame netvsp_rx() takes */
	/* RNDIS */
	bool rndis_ready;     /* INIT done, no HALT since */
	uint32_t filter;      /* RNDIS_OID_GEN_CURRENT_PACKET_FILTER */
	uint8_t mac[6];       /* receive filter's address (the guest may set it) */
	/* OID_TCP_OFFLOAD_PARAMETERS: what the guest turned on. */
	bool rx_csum_tcp4, rx_csum_udp4, tx_csum_tcp4, tx_csum_udp4, lso4;
	bool link_up;
	bool link_pending;    /* an INDICATE to send */
	/* Channels: chan[0] is the primary (ch above); the guest's sub-channels follow. */
	struct netvsp_chan chan[NETVSP_MAX_CHANNELS];
	struct netvsp_chan *cur;  /* the one poll is reading (device thread) */
	unsigned sub_granted;     /* sub-channels given at NVSP_MSG5_SUBCHANNEL */
	bool table_pending;       /* send indirection table to send on the primary */
	/* OID_GEN_RECEIVE_SCALE_PARAMETERS */
	bool rss_on;
	uint32_t rss_hashinfo, rss_keylen, rss_tabsize;
	uint8_t rss_key[NETVSP_RSS_KEY_MAX];
	uint32_t rss_table[NETVSP_RSS_TABLE_MAX];
	struct {
		uint32_t len;
		uint8_t msg[NETVSP_CTL_MAX];
	} ctl[NETVSP_CTL_QUEUE];
	unsigned nctl;
	/* Device thread only. */
	uint8_t pkt[NETVSP_PKT_MAX];
	uint8_t *stream;      /* NETVSP_STREAM_MAX: RNDIS bytes of one send */
	uint8_t *seg;         /* max_frame: one LSO segment */
};

static inline uint16_t nv_g16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t nv_g32(const uint8_t *p) { return nv_g16(p) | (uint32_t)nv_g16(p + 2) << 16; }
static inline uint64_t nv_g64(const uint8_t *p) { return nv_g32(p) | (uint64_t)nv_g32(p + 4) << 32; }
static inline void nv_p16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void nv_p32(uint8_t *p, uint32_t v)
{
	nv_p16(p, (uint16_t)v);
	nv_p16(p + 2, (uint16_t)(v >> 16));
}

/* netvsp.c */
/*
 * Copies one RNDIS message (a then b) into a free receive section and sends
 * the transfer-page packet. Lock held. 0, -EAGAIN (no section or ring
 * room), -ENETDOWN (no receive buffer or channel).
 */
int netvsp_rx_put(struct netvsp *nv, const void *a, uint32_t alen, const void *b,
		  uint32_t blen, bool control);
/* The same on channel q (0: the primary); -ENETDOWN if it is not open. */
int netvsp_rx_put_on(struct netvsp *nv, unsigned q, const void *a, uint32_t alen, const void *b,
		     uint32_t blen, bool control);
/* A malformed guest message: counted; the caller logs. */
void netvsp_guest_error(struct netvsp *nv);

/* netvsp_rndis.c (lock held; the device thread) */
/*
 * Handles the RNDIS messages in stream[0..len) (one send from the guest).
 * Frames go to host.tx with the lock released; returns false if the
 * channel closed meanwhile (stop touching it), else true; *bad tells of
 * malformed input.
 */
bool netvsp_rndis_stream(struct netvsp *nv, uint8_t *s, uint32_t len, bool *bad);
/* Sends queued RNDIS responses and a pending link indication. True when none waits. */
bool netvsp_rndis_flush(struct netvsp *nv);
/* Forgets RNDIS state (open, close, HALT). */
void netvsp_rndis_reset(struct netvsp *nv);

/* netvsp_offload.c: pure functions on frame bytes (any thread). */
struct netvsp_ipv4 {
	uint32_t l3, l4, end; /* IP header, transport header, end of datagram */
	uint8_t proto;
};
/*
 * Finds the IPv4 header of an Ethernet frame (optionally 802.1Q-tagged) and
 * its transport header: 0, or -EINVAL if it is not an unfragmented IPv4
 * datagram whose headers fit in len. lso: total length taken from the frame.
 */
int netvsp_parse_ipv4(const uint8_t *f, uint32_t len, bool lso, struct netvsp_ipv4 *o);
/* RFC 1071: adds p[0..len) as big-endian 16-bit words to sum (unfolded). */
uint32_t netvsp_csum_add(uint32_t sum, const uint8_t *p, uint32_t len);
/* Folds and complements: the checksum field's value. */
uint16_t netvsp_csum_fold(uint32_t sum);
/*
 * Computes in f the checksums a TCPIP_CHKSUM_PKTINFO value (NDIS_CSUM_TX_*)
 * asks for. 0, or -EINVAL (headers malformed or not what the info says; f
 * unchanged as far as it matters: the caller drops it).
 */
int netvsp_tx_csum(uint8_t *f, uint32_t len, uint32_t info);
typedef void (*netvsp_emit_fn)(void *ctx, const uint8_t *frame, uint32_t len);
/*
 * LSO v2 (IPv4): cuts the TCP frame f into frames of at most mss payload
 * bytes built in seg (segmax bytes), each with its IP id, total length,
 * sequence number, flags (FIN/PSH only on the last, CWR only on the first)
 * and checksums, and calls emit for each. Number of frames, or -EINVAL
 * (nothing emitted) if the headers are malformed or mss is below 48 or does
 * not fit segmax with the headers.
 */
int netvsp_lso(const uint8_t *f, uint32_t len, uint32_t mss, uint8_t *seg, uint32_t segmax,
	       netvsp_emit_fn emit, void *ctx);
/* NDIS_CSUM_RX_* bits for the checksums of f that verify (0 if none). */
uint32_t netvsp_rx_csum(const uint8_t *f, uint32_t len);
/*
 * Toeplitz hash (Microsoft's RSS specification) of in[0..n) under key
 * (keylen bytes; bits past the key count as 0).
 */
uint32_t netvsp_toeplitz(const uint8_t *key, uint32_t keylen, const uint8_t *in, uint32_t n);
/*
 * The RSS hash of a frame as hashinfo (NDIS_HASH_*) asks: IPv4 4-tuple
 * (addresses, TCP ports) or 2-tuple; false if the frame has no such header.
 */
bool netvsp_rss_hash(const uint8_t *key, uint32_t keylen, uint32_t hashinfo, const uint8_t *f,
		     uint32_t len, uint32_t *hash);
/* Whether the packet filter lets a frame to f's destination through to mac's owner. */
bool netvsp_filter_pass(uint32_t filter, const uint8_t mac[6], const uint8_t *f, uint32_t len);

#endif
