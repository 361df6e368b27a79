/*
 * The --vtl2 wiring's private state (src/core/vtl.c and vtl_intercept.c;
 * not for other modules): struct vtl, each VP's carried XSAVE images and
 * register snapshot, and the helpers the two files share.
 */
#ifndef HVMM_CORE_VTL_IMPL_H
#define HVMM_CORE_VTL_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/vtl.h"
#include "core/vtl_mem.h"
#include "hv/stimer_core.h"
#include "hv/vsm.h"

/*
 * The XSAVE image (x87, MXCSR, XMM, YMM, ...) each VTL's vCPU of one VP held
 * when it last stopped running (read at the switch away from it, or set at
 * the switch to it): a switch reads the leaving VTL's image (one ioctl) and
 * writes it into the target only when it differs from what the target
 * holds. Buffers are allocated at the VP's first switch, on its thread.
 */
struct vtl_fpu {
	uint8_t *img[VSM_NUM_VTLS];
	bool known[VSM_NUM_VTLS];
	uint8_t *cur;
};
#define XSAVE_XMM_OFF  160   /* legacy area: XMM0-15 */
#define XSAVE_XSTATE_BV 512  /* header: XSTATE_BV; bit 1 = SSE state present */

/* A VP's registers as op_get_regs last read them (one VTL). */
struct vtl_snap {
	struct vsm_regs r;
	unsigned vtl;
	bool valid;
};

struct vtl {
	struct vm *vm;
	struct accel *accel[VSM_NUM_VTLS];    /* [0] is vm->accel; [1] unused */
	struct accel_vcpu *(*vcpu)[VSM_NUM_VTLS];
	struct vsm *vsm;
	int *pending;   /* per VP: VTL its thread must switch to, or -1 (atomic) */
	struct vtl_fpu *fpu;  /* per VP: x87/SSE each VTL's vCPU holds (switch_vtl) */
	unsigned *irq_pending;  /* per VP: bit n, an interrupt went to VTL n (atomic) */
	bool *preempt_armed;    /* per VP, its thread: a preempting switch waits one run */
	pthread_mutex_t start_lock;  /* with start_cond: APs held until VTL2 starts them */
	pthread_cond_t start_cond;
	bool start_sync;             /* start_lock/start_cond initialized */
	/* VTL2's synthetic timers: a thread polls vsm_stimer_poll (timer_poll). */
	struct stimer_thread timer;
	uint64_t vtl2_ref_tsc;       /* VTL2's REFERENCE_TSC MSR (partition-wide, atomic) */
	struct vsm_ops ops;
	struct vtl_snap *snap;  /* per VP: the block op_get_regs read (vsm lock) */
	struct vtl_mem mem;   /* VTL0's memory map: protections, VTL2's range */
	bool mem_ok;
	unsigned long switches, fpu_copies, preempts, vinas;  /* statistics (log_debug at destroy) */
	unsigned long regs_only_sets;         /* op_set_regs that wrote the GPRs alone */
	size_t xsave_size;                    /* of a vCPU's XSAVE image; 0: not carried */
	/*
	 * Level-triggered messages VTL2 asserted into VTL0 (split irqchip):
	 * each has a route past the IOAPIC's pins so that KVM reports its
	 * EOI; reused by message, replaced round robin (vsm lock).
	 */
	struct { uint64_t addr; uint32_t data; bool used; }
		level_route[ACCEL_SPLIT_ROUTES - ACCEL_SPLIT_IOAPIC_PINS];
	unsigned level_next;
	unsigned long eois_intercepted;
};

/*
 * VP vp's registers of one VTL without the private MSRs (what intercept
 * messages need); on the VP's thread both usually come from KVM's
 * sync-regs area (no ioctl). HV_STATUS_SUCCESS or INVALID_PARAMETER.
 */
int vtl_get_x86(struct vtl *t, uint32_t vp, unsigned vtl, struct vsm_regs *v);

#endif
