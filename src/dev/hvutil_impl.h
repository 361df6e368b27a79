/*
 * Internals of the utility devices (hvutil.h): the integration-component
 * wire format (include/linux/hyperv.h: vmbuspipe_hdr, icmsg_hdr,
 * icmsg_negotiate, shutdown_msg_data, heartbeat_msg_data, ictimesync_data,
 * ictimesync_ref_data; include/uapi/linux/hyperv.h: hv_kvp_msg) and the
 * state shared by hvutil_ic.c and the per-service files.
 */
#ifndef HVMM_DEV_HVUTIL_IMPL_H
#define HVMM_DEV_HVUTIL_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "dev/hvutil.h"

struct vmbus_channel;

struct vmbuspipe_hdr {
	uint32_t flags;
	uint32_t msgsize;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbuspipe_hdr) == 8, "vmbuspipe_hdr");

struct ic_version {
	uint16_t major, minor;
} __attribute__((packed));

struct icmsg_hdr {
	struct ic_version icverframe;
	uint16_t icmsgtype;
	struct ic_version icvermsg;
	uint16_t icmsgsize;
	uint32_t status;
	uint8_t ictransaction_id;
	uint8_t icflags;
	uint8_t reserved[2];
} __attribute__((packed));
_Static_assert(sizeof(struct icmsg_hdr) == 20, "icmsg_hdr");

/* Offset of a message body in a packet's payload (Linux ICMSG_HDR). */
#define ICMSG_HDR (sizeof(struct vmbuspipe_hdr) + sizeof(struct icmsg_hdr))

#define ICMSGTYPE_NEGOTIATE   0
#define ICMSGTYPE_HEARTBEAT   1
#define ICMSGTYPE_KVPEXCHANGE 2
#define ICMSGTYPE_SHUTDOWN    3
#define ICMSGTYPE_TIMESYNC    4

#define ICMSGHDRFLAG_TRANSACTION 1
#define ICMSGHDRFLAG_REQUEST     2
#define ICMSGHDRFLAG_RESPONSE    4

#define HV_S_OK    0x00000000u
#define HV_E_FAIL  0x80004005u

struct icmsg_negotiate {
	uint16_t icframe_vercnt;
	uint16_t icmsg_vercnt;
	uint32_t reserved;
	/* struct ic_version icversion_data[icframe_vercnt + icmsg_vercnt] */
} __attribute__((packed));
_Static_assert(sizeof(struct icmsg_negotiate) == 8, "icmsg_negotiate");
/* Linux IC_VERSION_NEGOTIATION_MAX_VER_COUNT: the guest rejects more. */
#define IC_VERSION_NEGOTIATION_MAX_VER_COUNT 100

struct shutdown_msg_data {
	uint32_t reason_code;
	uint32_t timeout_seconds;
	uint32_t flags;
	uint8_t display_message[2048];
} __attribute__((packed));
_Static_assert(sizeof(struct shutdown_msg_data) == 2060, "shutdown_msg_data");
/* shutdown_msg_data.flags as hv_util.c reads them */
#define HVUTIL_SHUTDOWN_FLAG_POWEROFF 0u
#define HVUTIL_SHUTDOWN_FLAG_REBOOT   2u
#define HVUTIL_SHUTDOWN_FLAG_FORCE    1u

struct heartbeat_msg_data {
	uint64_t seq_num;
	uint32_t reserved[8];
} __attribute__((packed));
_Static_assert(sizeof(struct heartbeat_msg_data) == 40, "heartbeat_msg_data");

/* Time sync service versions 1.0 and 3.0. */
struct ictimesync_data {
	uint64_t parenttime;   /* 100 ns since 1601 */
	uint64_t childtime;
	uint64_t roundtriptime;
	uint8_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct ictimesync_data) == 25, "ictimesync_data");

/* Time sync service version 4.0. */
struct ictimesync_ref_data {
	uint64_t parenttime;      /* 100 ns since 1601 */
	uint64_t vmreferencetime; /* the guest's TIME_REF_COUNT when parenttime was read */
	uint8_t flags;
	int8_t leapflags;
	int8_t stratum;
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct ictimesync_ref_data) == 22, "ictimesync_ref_data");

#define ICTIMESYNCFLAG_PROBE  0
#define ICTIMESYNCFLAG_SYNC   1
#define ICTIMESYNCFLAG_SAMPLE 2

/* KVP (include/uapi/linux/hyperv.h). */
#define HV_KVP_EXCHANGE_MAX_KEY_SIZE   512
#define HV_KVP_EXCHANGE_MAX_VALUE_SIZE 2048
#define KVP_OP_GET       0
#define KVP_OP_SET       1
#define KVP_OP_DELETE    2
#define KVP_OP_ENUMERATE 3
#define KVP_POOL_EXTERNAL      0
#define KVP_POOL_GUEST         1
#define KVP_POOL_AUTO          2
#define KVP_POOL_AUTO_EXTERNAL 3
#define KVP_POOL_AUTO_INTERNAL 4
#define KVP_POOL_COUNT         5
#define REG_SZ 1
#define REG_U32 4
#define REG_U64 8

struct hv_kvp_exchg_msg_value {
	uint32_t value_type;
	uint32_t key_size;   /* bytes, UTF-16LE, with the terminating 0 */
	uint32_t value_size;
	uint8_t key[HV_KVP_EXCHANGE_MAX_KEY_SIZE];
	uint8_t value[HV_KVP_EXCHANGE_MAX_VALUE_SIZE];
} __attribute__((packed));
_Static_assert(sizeof(struct hv_kvp_exchg_msg_value) == 2572, "hv_kvp_exchg_msg_value");

struct hv_kvp_msg_enumerate {
	uint32_t index;
	struct hv_kvp_exchg_msg_value data;
} __attribute__((packed));

/*
 * struct hv_kvp_msg: a 4-byte header {operation, pool, pad} (or error)
 * and a union whose largest member (hv_kvp_ipaddr_value) makes it 7430
 * bytes; the guest answers in the request's buffer, so requests carry all
 * of it.
 */
#define HV_KVP_MSG_SIZE 7430u
struct hv_kvp_msg {
	uint8_t operation;
	uint8_t pool;
	uint16_t pad;
	union {
		struct hv_kvp_msg_enumerate kvp_enum_data;
		uint8_t raw[HV_KVP_MSG_SIZE - 4];
	} body;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_kvp_msg) == HV_KVP_MSG_SIZE, "hv_kvp_msg");

/* The largest packet payload we send or accept (KVP). */
#define HVUTIL_PKT_MAX (ICMSG_HDR + HV_KVP_MSG_SIZE)
/* Receive buffer: a VMBus descriptor (16 bytes) and that payload padded to 8. */
#define HVUTIL_BUF_SIZE (16 + ((HVUTIL_PKT_MAX + 7) & ~(size_t)7))
#define HVUTIL_KVP_MAX_ITEMS 64

/* One integration-component channel. */
struct ic {
	struct hvutils *u;
	enum hvutil_service svc;
	struct vmbus_channel *ch;
	bool open;
	bool negotiated;
	bool nego_failed;           /* the guest refused: no retry until reopened */
	struct ic_version fw, msg;  /* negotiated versions */
	bool pending;               /* a request awaits its answer */
	uint64_t pending_xid;       /* its VMBus transaction id */
	bool late;                  /* late_xid timed out: its answer may still come */
	uint64_t late_xid;
	uint16_t pending_type;      /* its icmsgtype */
	uint32_t pending_len;       /* its payload length (the answer has the same) */
	uint64_t sent_ms;
	uint64_t next_xid;
};

struct kvp_item {
	uint8_t pool;
	char key[HV_KVP_EXCHANGE_MAX_KEY_SIZE / 2];
	char value[HV_KVP_EXCHANGE_MAX_VALUE_SIZE / 2];
};

struct hvutils {
	struct hvutil_host host;
	struct vmbus_server *srv;
	struct ic ic[HVUTIL_NSERVICES];
	bool dead;
	/* shutdown */
	int64_t shutdown_status;
	/* heartbeat */
	uint64_t hb_seq;
	uint64_t last_alive_ms;
	bool ever_alive;
	/* timesync */
	uint64_t last_sample_ms;
	/* KVP: enumeration state, guest-reported items */
	unsigned kvp_pool_idx;
	uint32_t kvp_index;
	bool kvp_done;           /* this round is over */
	uint64_t kvp_round_ms;   /* when the round started */
	struct kvp_item *kvp_items;
	unsigned kvp_nitems;
	/* packet buffer (the lock serialises its users) */
	uint8_t buf[HVUTIL_BUF_SIZE];
};

/* hvutil_ic.c */
void hvutil_lock(struct hvutils *u);
void hvutil_unlock(struct hvutils *u);
uint64_t hvutil_now_ms(struct hvutils *u);
/*
 * The body area of the packet buffer: build a request there, then send
 * it with hvutil_ic_send(ic, type, len). Lock held.
 */
uint8_t *hvutil_ic_body(struct ic *ic);
/* Sends the request built in the body area. Lock held. 0 or -errno. */
int hvutil_ic_send(struct ic *ic, uint16_t type, uint32_t len);

/* Per service, lock held: a response to the pending request of type `type`
 * (its length already checked to equal the request's). */
void hvutil_shutdown_response(struct ic *ic, const struct icmsg_hdr *h,
			      const uint8_t *body, uint32_t len);
void hvutil_heartbeat_response(struct ic *ic, const struct icmsg_hdr *h,
			       const uint8_t *body, uint32_t len);
void hvutil_timesync_response(struct ic *ic, const struct icmsg_hdr *h,
			      const uint8_t *body, uint32_t len);
void hvutil_kvp_response(struct ic *ic, const struct icmsg_hdr *h,
			 const uint8_t *body, uint32_t len);
/* Per service, lock held: the service just negotiated / the periodic tick. */
void hvutil_timesync_negotiated(struct ic *ic);
void hvutil_heartbeat_tick(struct ic *ic, uint64_t now);
void hvutil_timesync_tick(struct ic *ic, uint64_t now);
void hvutil_kvp_tick(struct ic *ic, uint64_t now);
/* Sends a time sync request with flags (SYNC or SAMPLE). Lock held. */
int hvutil_timesync_send(struct ic *ic, uint8_t flags);

#endif
