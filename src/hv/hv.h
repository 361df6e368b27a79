/*
 * The Hyper-V interface of one partition, emulated in user space (TLFS:
 * feature discovery, hypercall interface, partition properties / reference
 * time, inter-partition communication (SynIC), timers, crash MSRs). KVM here
 * has no Hyper-V support, so the CPUID leaves (hv_cpuid.c), the synthetic
 * MSRs (hv_msr.c), the hypercall page and dispatcher (hv_hypercall.c), the
 * SynIC message and event pages (hv_synic.c) and the synthetic timers
 * (hv_stimer.c) all live here, behind small platform callbacks so the unit
 * tests can drive them with fake guest memory and a fake clock.
 *
 * Locking. Lock order: hv->lock (partition state: guest OS id, hypercall
 * page, reference TSC page, crash MSRs) before vp->lock (one per VP: its
 * SynIC registers and message queues, its stimers). Nothing is called with
 * a lock held except gmem accesses and platform.signal_msi (which must not
 * call back into hv). The connection handlers (hv_post_message_fn,
 * hv_signal_event_fn) are called with no hv lock held, so they may call
 * hv_synic_post_message()/hv_synic_signal_event() directly. Guest memory
 * shared with the guest (SIMP slots, SIEF flags) is accessed with atomics.
 */
#ifndef HVMM_HV_HV_H
#define HVMM_HV_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accel/accel.h"
#include "core/gmem.h"
#include "core/vmevent.h"

struct hv;  /* the partition's Hyper-V state; vm->hv (NULL without --hv) */

/* ---- Status codes (TLFS hypercall interface, HV_STATUS) ---- */
#define HV_STATUS_SUCCESS                   0x0000
#define HV_STATUS_INVALID_HYPERCALL_CODE    0x0002
#define HV_STATUS_INVALID_HYPERCALL_INPUT   0x0003
#define HV_STATUS_INVALID_ALIGNMENT         0x0004
#define HV_STATUS_INVALID_PARAMETER         0x0005
#define HV_STATUS_ACCESS_DENIED             0x0006
#define HV_STATUS_INVALID_PARTITION_STATE   0x0007
#define HV_STATUS_OPERATION_DENIED          0x0008
#define HV_STATUS_INSUFFICIENT_MEMORY       0x000B
#define HV_STATUS_INVALID_PORT_ID           0x0011
#define HV_STATUS_INVALID_CONNECTION_ID     0x0012
#define HV_STATUS_INSUFFICIENT_BUFFERS      0x0013
#define HV_STATUS_INVALID_VP_STATE          0x0015
#define HV_STATUS_INVALID_SYNIC_STATE       0x0018
#define HV_STATUS_INVALID_DEVICE_ID         0x0057

/* ---- Hypercall codes ---- */
#define HVCALL_POST_MESSAGE   0x005C
#define HVCALL_SIGNAL_EVENT   0x005D
#define HVCALL_RETARGET_DEVICE_INTERRUPT 0x007E

/* ---- Synthetic MSRs (TLFS; Linux hyperv-tlfs.h names) ---- */
#define HV_X64_MSR_GUEST_OS_ID          0x40000000
#define HV_X64_MSR_HYPERCALL            0x40000001
#define HV_X64_MSR_VP_INDEX             0x40000002
#define HV_X64_MSR_RESET                0x40000003
#define HV_X64_MSR_VP_RUNTIME           0x40000010
#define HV_X64_MSR_TIME_REF_COUNT       0x40000020
#define HV_X64_MSR_REFERENCE_TSC        0x40000021
#define HV_X64_MSR_TSC_FREQUENCY        0x40000022
#define HV_X64_MSR_APIC_FREQUENCY       0x40000023
#define HV_X64_MSR_VP_ASSIST_PAGE       0x40000073
#define HV_X64_MSR_SCONTROL             0x40000080
#define HV_X64_MSR_SVERSION             0x40000081
#define HV_X64_MSR_SIEFP                0x40000082
#define HV_X64_MSR_SIMP                 0x40000083
#define HV_X64_MSR_EOM                  0x40000084
#define HV_X64_MSR_SINT0                0x40000090
#define HV_X64_MSR_SINT15               0x4000009F
#define HV_X64_MSR_STIMER0_CONFIG       0x400000B0
#define HV_X64_MSR_STIMER0_COUNT        0x400000B1
#define HV_X64_MSR_STIMER3_COUNT        0x400000B7
#define HV_X64_MSR_CRASH_P0             0x40000100
#define HV_X64_MSR_CRASH_P1             0x40000101
#define HV_X64_MSR_CRASH_P2             0x40000102
#define HV_X64_MSR_CRASH_P3             0x40000103
#define HV_X64_MSR_CRASH_P4             0x40000104
#define HV_X64_MSR_CRASH_CTL            0x40000105
#define HV_X64_MSR_TSC_INVARIANT_CONTROL 0x40000118

/* The synthetic MSR range hvmm traps (accel_config.trap_msr_ranges). */
#define HV_MSR_FIRST 0x40000000u
#define HV_MSR_LAST  0x400001FFu

#define HV_SINT_COUNT        16
#define HV_STIMER_COUNT      4
#define HV_MESSAGE_SIZE      256
#define HV_MESSAGE_PAYLOAD_MAX 240
/* Message types the guest may post; host types have bit 31 set. */
#define HV_MESSAGE_TYPE_NONE          0x00000000u
#define HV_MESSAGE_TIMER_EXPIRED      0x80000010u
/* Messages queued per (VP, SINT) while its slot is busy. */
#define HV_SYNIC_QUEUE_MAX   64

/* The port the hypercall page's `out imm8, al` writes (hvmm-private). */
#define HV_HYPERCALL_PORT    0x9E

/* APIC timer frequency reported to the guest: KVM's APIC bus runs at 1 GHz. */
#define HV_APIC_FREQUENCY_HZ 1000000000ull

/* How the platform (hvmm's VM, or a unit test) serves the Hyper-V layer. */
struct hv_platform {
	const struct gmem *mem;   /* guest RAM; must outlive the hv */
	unsigned nvps;            /* VP index i is APIC ID i */
	uint64_t tsc_hz;          /* guest TSC frequency (0: assume 1 GHz) */
	/* The guest's TSC as the guest reads it now. Any thread. */
	uint64_t (*read_tsc)(void *opaque);
	/* Delivers a fixed, edge MSI (0xFEE00000 | apic_id << 12, vector). */
	int (*signal_msi)(void *opaque, uint64_t addr, uint32_t data);
	void *opaque;
	/* Guest crash notification (crash MSRs) goes here as VM_EVENT_CRASH. */
	const struct vm_event_sink *events;
	/*
	 * Start a host thread that fires the synthetic timers. Unit tests
	 * leave it off and call hv_stimer_poll() with a fake clock.
	 */
	bool timer_thread;
};

/* 0 or -errno. The platform struct is copied. */
int hv_create(const struct hv_platform *p, struct hv **out);
/* Stops the timer thread and frees everything. No vCPU may run. */
void hv_destroy(struct hv *hv);

/*
 * Sets the guest TSC frequency once KVM knows it (KVM_GET_TSC_KHZ) and
 * restarts reference time at 0 from the current TSC. Call before the guest
 * runs.
 */
void hv_set_tsc_hz(struct hv *hv, uint64_t tsc_hz);

/* ---- CPUID (hv_cpuid.c) ---- */
/*
 * The Hyper-V leaves 0x40000000-0x4000000A for `nvps` processors, written
 * into e[] (at most *n entries; *n in: room, out: used). -ENOSPC if short.
 */
int hv_cpuid_leaves(unsigned nvps, struct accel_cpuid_entry *e, size_t *n);
#define HV_CPUID_NLEAVES 11

/* ---- Synthetic MSRs (hv_msr.c), on the vCPU's own thread ---- */
/* True when hv handles index (the whole trapped range: unknown → #GP). */
bool hv_msr_owned(uint32_t index);
/* 0, or -EINVAL when the guest must get a #GP. */
int hv_msr_read(struct hv *hv, uint32_t vp, uint32_t index, uint64_t *val);
int hv_msr_write(struct hv *hv, uint32_t vp, uint32_t index, uint64_t val);

/* ---- Hypercalls (hv_hypercall.c), on the calling vCPU's thread ---- */
struct hv_hypercall {
	/* in: the guest's registers at the hypercall page's exit */
	uint64_t control;     /* RCX */
	uint64_t input;       /* RDX: input GPA, or fast input data */
	uint64_t output;      /* R8: output GPA, or fast input data */
	unsigned cpl;         /* current privilege level */
	bool long_mode;       /* 64-bit code segment (others: #UD) */
	/* out */
	uint64_t result;      /* RAX: status | reps completed << 32 */
};
enum hv_hypercall_action {
	HV_HYPERCALL_DONE,      /* write result to RAX and resume */
	HV_HYPERCALL_INJECT_UD, /* leave registers, inject #UD */
};
enum hv_hypercall_action hv_hypercall(struct hv *hv, uint32_t vp, struct hv_hypercall *hc);

/*
 * One hypercall the dispatcher knows. The dispatcher checks the control word
 * (reserved bits, rep fields for simple calls, variable header only for
 * `variable` calls), alignment and page bounds of the input/output blocks
 * and copies the input (in_size bytes; fast: 16 bytes from RDX, R8) into
 * `in` before calling the handler. Handlers return an HV_STATUS_* code;
 * rep handlers also set *reps_done.
 */
struct hv_hypercall_args {
	struct hv *hv;
	uint32_t vp;
	uint64_t control;
	bool fast;
	uint16_t rep_count, rep_start;
	const uint8_t *in;    /* in_size bytes, copied from the guest */
	uint64_t out_gpa;     /* slow calls: validated output GPA (or 0) */
	uint16_t reps_done;
};
struct hv_hypercall_desc {
	uint16_t code;
	const char *name;
	bool allow_fast, allow_slow, rep, variable;
	uint32_t in_size;     /* fixed input header size (slow) */
	uint32_t out_size;    /* output block size (0: no output) */
	uint16_t (*handler)(struct hv_hypercall_args *a);
};
/* The table (hv_hypercall.c); later issues add entries. */
extern const struct hv_hypercall_desc hv_hypercall_table[];
extern const size_t hv_hypercall_table_len;

/* ---- Routing to the VMBus glue ---- */
/*
 * Routing of guest hypercalls HvPostMessage (0x5C) and HvSignalEvent (0x5D)
 * to the VMBus glue. Called on the calling vCPU's thread after hv validated
 * the hypercall input (alignment, page bounds, payload size <= 240, message
 * type > 0 and < 0x80000000). Return an HV_STATUS_* code (e.g.
 * HV_STATUS_INVALID_CONNECTION_ID = 18 for an unknown connection id).
 */
typedef uint16_t (*hv_post_message_fn)(void *opaque, uint32_t vp, uint32_t conn_id,
				       uint32_t mtype, const void *payload, uint32_t len);
typedef uint16_t (*hv_signal_event_fn)(void *opaque, uint32_t vp, uint32_t conn_id,
				       uint16_t flag);
/* Without handlers both hypercalls answer INVALID_CONNECTION_ID. Set before
 * the vCPUs run (or with them parked). */
void hv_set_connection_handlers(struct hv *hv, hv_post_message_fn post,
				hv_signal_event_fn signal, void *opaque);

/* ---- SynIC (hv_synic.c) ---- */
/*
 * Host -> guest SynIC message to (vp, sint): written into the SIMP slot now
 * if it is free (and the vCPU's SIMP and the SINT are enabled), else queued
 * and delivered after the guest's EOM (msg_pending protocol). payload <= 240
 * bytes. Any thread.
 * 0, -EINVAL (bad vp/sint/len/type), -ENOSPC (queue for that slot full),
 * -ENOMEM (the slot's queue could not be allocated).
 */
int hv_synic_post_message(struct hv *hv, uint32_t vp, uint32_t sint, uint32_t mtype,
			  const void *payload, uint32_t len);
/*
 * Sets event flag `flag` in the SIEF page of (vp, sint) with a locked OR and,
 * if the SINT is unmasked, interrupts vp with the SINT's vector
 * (KVM_SIGNAL_MSI to its APIC ID). Any thread.
 */
void hv_synic_signal_event(struct hv *hv, uint32_t vp, uint32_t sint, uint32_t flag);

/* ---- Time ---- */
/*
 * Fills the reference TSC page (TLFS 12.7.2: sequence, scale, offset of this
 * partition's reference time) at the page of gpa, as a REFERENCE_TSC write
 * does, without touching hv's own MSR (--vtl2: VTL2's page). 0 or -EFAULT
 * (not RAM).
 */
int hv_reference_tsc_page_write(struct hv *hv, uint64_t gpa);

/* The partition's reference time (TIME_REF_COUNT: 100 ns units since VM start). Any thread. */
uint64_t hv_time_ref_count(struct hv *hv);

/*
 * Fires the synthetic timers due at reference time `now` and returns the
 * reference time of the next expiry (UINT64_MAX: none). The timer thread
 * calls it; unit tests call it directly.
 */
uint64_t hv_stimer_poll(struct hv *hv, uint64_t now);

#endif
