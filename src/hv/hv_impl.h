/*
 * Private state of the Hyper-V layer, shared by the files of src/hv. See
 * hv.h for the lock order (hv->lock before vp->lock; hv->timer.lock is a leaf
 * that only the timer thread's wake-up uses).
 */
#ifndef HVMM_HV_HV_IMPL_H
#define HVMM_HV_HV_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "hv/hv.h"
#include "hv/stimer_core.h"

#define HV_PAGE_SIZE 4096u
#define HV_PAGE_ENABLE 1ull
#define HV_PAGE_GPA(msr) ((uint64_t)(msr) & ~(uint64_t)0xfff)

/* SINTx register (TLFS 11.8.4). */
#define HV_SINT_VECTOR_MASK 0xffull
#define HV_SINT_MASKED      (1ull << 16)
#define HV_SINT_AUTO_EOI    (1ull << 17)
#define HV_SINT_POLLING     (1ull << 18)
#define HV_SINT_WRITABLE    (HV_SINT_VECTOR_MASK | HV_SINT_MASKED | HV_SINT_AUTO_EOI | \
			     HV_SINT_POLLING)

/* STIMERx_CONFIG (TLFS 12.5.1). */
#define HV_STIMER_ENABLE      (1ull << 0)
#define HV_STIMER_PERIODIC    (1ull << 1)
#define HV_STIMER_LAZY        (1ull << 2)
#define HV_STIMER_AUTOENABLE  (1ull << 3)
#define HV_STIMER_VECTOR(c)   (((c) >> 4) & 0xff)
#define HV_STIMER_DIRECT      (1ull << 12)
#define HV_STIMER_SINT(c)     (((c) >> 16) & 0xf)
#define HV_STIMER_WRITABLE    0xf1fffull

/* CRASH_CTL bits. */
#define HV_CRASH_CTL_CRASH_NOTIFY_MSG (1ull << 62)
#define HV_CRASH_CTL_CRASH_NOTIFY     (1ull << 63)
#define HV_CRASH_MSG_MAX 4096u

/*
 * The message slot in the SIMP page (TLFS 11.9, HV_MESSAGE). Naturally
 * aligned, so not packed: message_type and message_flags are accessed
 * atomically.
 */
struct hv_message_header {
	uint32_t message_type;
	uint8_t payload_size;
	uint8_t message_flags;   /* bit 0: msg_pending */
	uint8_t reserved[2];
	uint64_t sender;
};
_Static_assert(sizeof(struct hv_message_header) == 16, "HV_MESSAGE_HEADER");
_Static_assert(offsetof(struct hv_message_header, message_flags) == 5, "message_flags");
#define HV_MESSAGE_FLAG_PENDING 0x1

struct hv_message {
	struct hv_message_header hdr;
	uint8_t payload[HV_MESSAGE_PAYLOAD_MAX];
};
_Static_assert(sizeof(struct hv_message) == HV_MESSAGE_SIZE, "HV_MESSAGE");

/* HvMessageTimerExpired payload (TLFS 12.5.3). */
struct hv_timer_message_payload {
	uint32_t timer_index;
	uint32_t reserved;
	uint64_t expiration_time;
	uint64_t delivery_time;
};
_Static_assert(sizeof(struct hv_timer_message_payload) == 24, "timer message");

/* Messages waiting for one (VP, SINT) slot: a ring allocated on first use. */
struct hv_msgq {
	struct hv_message *ring; /* HV_SYNIC_QUEUE_MAX entries */
	unsigned head, count;
};

struct hv_vp {
	pthread_mutex_t lock;
	uint64_t vp_assist;
	uint64_t scontrol, siefp, simp;
	uint64_t sint[HV_SINT_COUNT];
	struct hv_msgq q[HV_SINT_COUNT];
	struct stimer stimer[HV_STIMER_COUNT];
	uint64_t msgs_posted, msgs_queued, msgs_dropped;
};

struct hv {
	struct hv_platform p;
	struct hv_vp *vps;

	pthread_mutex_t lock;
	uint64_t guest_os_id, hypercall, reference_tsc, tsc_invariant;
	uint64_t crash_p[5], crash_ctl;
	bool crash_reported;

	/* Reference time = ((tsc * tsc_scale) >> 64) + tsc_offset. Set before the
	 * guest runs; read lock-free afterwards. */
	uint64_t tsc_hz, tsc_scale;
	int64_t tsc_offset;

	hv_post_message_fn post;
	hv_signal_event_fn signal;
	void *conn_opaque;

	/* Timer thread (its lock is a leaf). */
	struct stimer_thread timer;
};

static inline bool hv_vp_valid(const struct hv *hv, uint32_t vp)
{
	return vp < hv->p.nvps;
}

/* ((a * b) >> 64) without overflow. */
static inline uint64_t hv_mul64_hi(uint64_t a, uint64_t b)
{
	__extension__ typedef unsigned __int128 u128;
	return (uint64_t)(((u128)a * b) >> 64);
}

/* hv_synic.c: with vp->lock held. */
int hv_synic_post_locked(struct hv *hv, uint32_t vp, uint32_t sint, uint32_t mtype,
			 const void *payload, uint32_t len);
/* Tries to deliver queued messages of every SINT of vp. vp->lock held. */
void hv_synic_drain_locked(struct hv *hv, uint32_t vp);
/* Interrupts vp with vector (fixed, edge MSI). */
void hv_synic_interrupt(struct hv *hv, uint32_t vp, uint8_t vector);

/* hv_stimer.c: MSR accesses (vp->lock held) and the timer thread. */
bool hv_stimer_msr_read(struct hv *hv, uint32_t vp, uint32_t index, uint64_t *val);
int hv_stimer_msr_write(struct hv *hv, uint32_t vp, uint32_t index, uint64_t val,
			bool *kick);
void hv_stimer_thread_init(struct hv *hv);
int hv_stimer_thread_start(struct hv *hv);
void hv_stimer_thread_stop(struct hv *hv);
void hv_stimer_kick(struct hv *hv);

/* hv_msr.c */
uint64_t hv_ref_from_tsc(const struct hv *hv, uint64_t tsc);

#endif
