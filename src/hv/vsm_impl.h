/*
 * Private state of the VSM layer (src/hv/vsm*.c). See vsm.h for the
 * contract and the locking rule (vsm->lock held across a hypercall; ops
 * called with it held).
 */
#ifndef HVMM_HV_VSM_IMPL_H
#define HVMM_HV_VSM_IMPL_H

#include <pthread.h>

#include "hv/stimer_core.h"
#include "hv/vsm.h"

/* Synthetic state one VTL of one VP owns (TLFS: private per VTL). */
struct vsm_vp_vtl {
	uint64_t hypercall, vp_assist, guest_os_id;
	uint64_t scontrol, simp, siefp, sint[HV_SINT_COUNT];
	uint64_t vina;            /* HvRegisterVsmVina */
	uint64_t secure_config;   /* HvRegisterVsmVpSecureConfigVtlN, held for lower VTL N */
	uint64_t register_page;   /* HvX64RegisterPage (0x9001C), VTL2's only */
	struct stimer stimer[HV_STIMER_COUNT];   /* VTL > 0 only (VTL0's are hv's) */
};

struct vsm_vp {
	uint16_t enabled;         /* bit n: VTL n enabled on this VP */
	uint8_t active;           /* the VTL the VP runs */
	bool started;             /* out of startup suspend */
	struct vsm_vp_vtl vtl[VSM_NUM_VTLS];
};

struct vsm {
	struct vsm_config cfg;
	pthread_mutex_t lock;
	uint16_t enabled;                          /* partition's enabled VTL set */
	uint64_t partition_config[VSM_NUM_VTLS];   /* VsmPartitionConfig of VTL 1.. */
	/* InstallIntercept state (VTL2's requests about VTL0). */
	uint8_t io_read[65536 / 8], io_write[65536 / 8];
	uint32_t msr_access, synic_access, eoi_access, retarget_access;
	struct vsm_vp *vps;
};

static inline bool vsm_vtl_on(uint16_t set, unsigned vtl)
{
	return vtl < VSM_NUM_VTLS && (set >> vtl) & 1;
}

/*
 * vsm_regpage.c, lock held: VTL2's register page. fill: the lower VTL's
 * registers, valid (an intercept for VTL2); invalidate: not valid (other
 * entries); take: at VtlReturn to `to`, the page's dirty RIP, RFLAGS, RSP
 * and segments (true when any), and the page not valid; update_regs puts
 * them into r.
 */
struct vsm_regpage_update {
	uint32_t dirty;   /* the page's dirty flags hvmm applies */
	uint64_t rsp, rip, rflags;
	struct hv_x64_segment seg[6];   /* ES CS SS DS FS GS */
};
void vsm_regpage_fill_locked(struct vsm *vsm, uint32_t vp, unsigned lower);
void vsm_regpage_invalidate_locked(struct vsm *vsm, uint32_t vp);
bool vsm_regpage_take_locked(struct vsm *vsm, uint32_t vp, unsigned to,
			     struct vsm_regpage_update *u);
void vsm_regpage_update_regs(const struct vsm_regpage_update *u, struct vsm_regs *r);

/* vsm.c, lock held */
int vsm_vtl_call_locked(struct vsm *vsm, uint32_t vp);
int vsm_vtl_return_locked(struct vsm *vsm, uint32_t vp, bool fast);
int vsm_msr_read_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			uint64_t *val);
int vsm_msr_write_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			 uint64_t val);

/*
 * vsm_stimer.c: STIMER0-3 MSRs of (vp, vtl > 0) when ops->ref_time exists
 * (else -ENOENT, as for an index that is not a timer's). Lock held.
 */
bool vsm_stimer_msr(uint32_t index);
int vsm_stimer_read_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			   uint64_t *val);
int vsm_stimer_write_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			    uint64_t val);

/*
 * The SynIC of (vp, vtl > 0), which vsm keeps: a message into its SIMP slot
 * `sint` (busy: message_pending set, INSUFFICIENT_BUFFERS), an event flag
 * into its SIEF page; then the SINT's vector, unless masked, through
 * ops->interrupt (FIXED, destination APIC id = vp). 0 or an HV status.
 */
int vsm_synic_post_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, unsigned sint,
			  const uint8_t msg[HV_MESSAGE_SIZE]);
int vsm_synic_signal_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, unsigned sint,
			    unsigned flag, bool *newly);

/*
 * vsm_regs.c: loads (vp, vtl)'s register block into r once (*have) and then
 * the optional `parts` (VSM_REGS_*) it lacks. 0 or INVALID_VP_STATE.
 */
uint16_t vsm_regs_load(struct vsm *vsm, uint32_t vp, unsigned vtl, struct vsm_regs *r,
		       bool *have, uint32_t parts);
/*
 * vsm_regs.c: one register of (vp, vtl) for a caller running `caller`.
 * r/have_regs cache the VP's register block across a rep call; *dirty says
 * it must be written back. 0 or an HV status.
 */
uint16_t vsm_reg_get(struct vsm *vsm, uint32_t vp, unsigned caller, unsigned vtl,
		     uint32_t name, struct vsm_regs *r, bool *have_regs, uint8_t val[16]);
uint16_t vsm_reg_set(struct vsm *vsm, uint32_t vp, unsigned caller, unsigned vtl,
		     uint32_t name, struct vsm_regs *r, bool *have_regs, bool *dirty,
		     const uint8_t val[16]);

/* ---- Hypercall handlers (vsm_hcall.c dispatches; lock held) ---- */

struct vsm_hc_args {
	struct vsm *vsm;
	uint32_t vp;
	unsigned vtl;               /* the caller's active VTL */
	uint16_t rep_count, rep_start, reps_done;
	unsigned varhdr;            /* qwords */
	const uint8_t *in;          /* header, variable header, elements */
	uint8_t *out;
};

/* ---- Shared argument checks ---- */

static inline uint16_t vsm_hc_partition(uint64_t id)
{
	return id == HV_PARTITION_ID_SELF ? HV_STATUS_SUCCESS : HV_STATUS_INVALID_PARTITION_ID;
}

/* HV_INPUT_VTL: resolves to a VTL the caller may name (at most its own). */
static inline uint16_t vsm_hc_input_vtl(const struct vsm_hc_args *a, uint8_t v, unsigned *vtl)
{
	if (v & HV_INPUT_VTL_RESERVED)
		return HV_STATUS_INVALID_PARAMETER;
	if (!(v & HV_INPUT_VTL_USE_TARGET)) {
		*vtl = a->vtl;
		return HV_STATUS_SUCCESS;
	}
	unsigned t = HV_INPUT_VTL_TARGET(v);
	if (t > a->vsm->cfg.max_vtl)
		return HV_STATUS_INVALID_PARAMETER;
	if (t > a->vtl)
		return HV_STATUS_ACCESS_DENIED;
	*vtl = t;
	return HV_STATUS_SUCCESS;
}

/* A VP index (or HV_VP_INDEX_SELF) naming an existing VP. */
static inline uint16_t vsm_hc_vp_index(const struct vsm_hc_args *a, uint32_t in, uint32_t *vp)
{
	if (in == HV_VP_INDEX_SELF)
		in = a->vp;
	if (in >= a->vsm->cfg.nvps)
		return HV_STATUS_INVALID_VP_INDEX;
	*vp = in;
	return HV_STATUS_SUCCESS;
}

static inline bool vsm_hc_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

uint16_t vsm_hc_modify_vtl_protection_mask(struct vsm_hc_args *a);
uint16_t vsm_hc_install_intercept(struct vsm_hc_args *a);
uint16_t vsm_hc_translate(struct vsm_hc_args *a);
uint16_t vsm_hc_translate_ex(struct vsm_hc_args *a);
uint16_t vsm_hc_get_vp_index_from_apic_id(struct vsm_hc_args *a);
uint16_t vsm_hc_assert_virtual_interrupt(struct vsm_hc_args *a);
uint16_t vsm_hc_signal_event_direct(struct vsm_hc_args *a);
uint16_t vsm_hc_post_message_direct(struct vsm_hc_args *a);
uint16_t vsm_hc_flush(struct vsm_hc_args *a);
uint16_t vsm_hc_flush_ex(struct vsm_hc_args *a);

#endif
