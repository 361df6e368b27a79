/*
 * Private state of the VSM layer (src/hv/vsm*.c). See vsm.h for the
 * contract and the locking rule (vsm->lock held across a hypercall; ops
 * called with it held).
 */
#ifndef HVMM_HV_VSM_IMPL_H
#define HVMM_HV_VSM_IMPL_H

#include <pthread.h>

#include "hv/vsm.h"

/* Synthetic state one VTL of one VP owns (TLFS: private per VTL). */
struct vsm_vp_vtl {
	uint64_t hypercall, vp_assist, guest_os_id;
	uint64_t scontrol, simp, siefp, sint[HV_SINT_COUNT];
	uint64_t vina;            /* HvRegisterVsmVina */
	uint64_t secure_config;   /* HvRegisterVsmVpSecureConfigVtlN, held for lower VTL N */
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

/* vsm.c, lock held */
int vsm_vtl_call_locked(struct vsm *vsm, uint32_t vp);
int vsm_vtl_return_locked(struct vsm *vsm, uint32_t vp, bool fast);
int vsm_msr_read_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			uint64_t *val);
int vsm_msr_write_locked(struct vsm *vsm, uint32_t vp, unsigned vtl, uint32_t index,
			 uint64_t val);

#endif
