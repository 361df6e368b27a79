/*
 * A fake platform for the VSM unit tests: 1 MiB of guest RAM at GPA 0, a
 * register block per (VP, VTL) with a switch that copies the shared
 * registers, and a record of every protection, VP start, interrupt, SynIC
 * message and event the VSM layer asked for.
 */
#ifndef HVMM_TEST_VSM_FAKE_H
#define HVMM_TEST_VSM_FAKE_H

#include <stdlib.h>
#include <string.h>

#include "hv/vsm.h"

#define VF_RAM   (1u << 20)
#define VF_VPS   4
#define VF_LOG   64

struct vf_protect { unsigned vtl; uint64_t page, n; uint32_t flags; };
struct vf_irq { unsigned vtl, type; uint64_t dest; bool logical, level; uint8_t vector; };
struct vf_msg { uint32_t vp; unsigned vtl, sint; uint8_t msg[HV_MESSAGE_SIZE]; };
struct vf_event { uint32_t vp; unsigned vtl, sint, flag; };

struct vfake {
	uint8_t *ram;
	struct vsm_regs regs[VF_VPS][VSM_NUM_VTLS];
	unsigned nswitch, switch_from, switch_to;
	unsigned nprotect;
	struct vf_protect protect[VF_LOG];
	unsigned nstart;
	uint32_t start_vp;
	unsigned start_vtl;
	unsigned nirq;
	struct vf_irq irq[VF_LOG];
	unsigned nmsg;
	struct vf_msg msg[8];
	unsigned nevent;
	struct vf_event event[VF_LOG];
	int status;   /* what the SynIC/interrupt/start ops answer */
	uint64_t now;         /* reference time ref_time answers */
	unsigned nstimer_changed;
	/*
	 * Lazy mode (vf_new_lazy): get_regs gives a block without the optional
	 * parts (their fields zero), get_regs_part adds them (counted), and
	 * set_regs stores only the parts the block names.
	 */
	bool lazy;
	unsigned npart_calls, nset;
	uint32_t parts_asked, set_parts;
	struct vsm *vsm;
};


static inline int vf_read(void *o, uint64_t gpa, void *buf, size_t len)
{
	struct vfake *f = o;
	if (gpa > VF_RAM || len > VF_RAM - gpa)
		return -1;
	memcpy(buf, f->ram + gpa, len);
	return 0;
}

static inline int vf_write(void *o, uint64_t gpa, const void *buf, size_t len)
{
	struct vfake *f = o;
	if (gpa > VF_RAM || len > VF_RAM - gpa)
		return -1;
	memcpy(f->ram + gpa, buf, len);
	return 0;
}

static inline int vf_get_regs(void *o, uint32_t vp, unsigned vtl, struct vsm_regs *r)
{
	struct vfake *f = o;
	if (vp >= VF_VPS || vtl >= VSM_NUM_VTLS)
		abort();
	*r = f->regs[vp][vtl];
	if (f->lazy) {
		struct vsm_regs zero;
		memset(&zero, 0, sizeof(zero));
		vsm_regs_copy_parts(r, &zero, VSM_REGS_ALL);
		r->parts = 0;
	}
	return 0;
}

static inline int vf_get_regs_part(void *o, uint32_t vp, unsigned vtl, struct vsm_regs *r,
				   uint32_t parts)
{
	struct vfake *f = o;
	if (vp >= VF_VPS || vtl >= VSM_NUM_VTLS)
		abort();
	f->npart_calls++;
	f->parts_asked |= parts;
	vsm_regs_copy_parts(r, &f->regs[vp][vtl], parts);
	r->parts |= parts;
	return 0;
}

static inline int vf_set_regs(void *o, uint32_t vp, unsigned vtl, const struct vsm_regs *r)
{
	struct vfake *f = o;
	if (vp >= VF_VPS || vtl >= VSM_NUM_VTLS)
		abort();
	f->nset++;
	if (!f->lazy) {
		f->regs[vp][vtl] = *r;
		return 0;
	}
	f->set_parts = r->parts;
	struct vsm_regs *d = &f->regs[vp][vtl], keep = *d;
	*d = *r;
	vsm_regs_copy_parts(d, &keep, VSM_REGS_ALL & ~r->parts);
	return 0;
}

static inline int vf_switch(void *o, uint32_t vp, unsigned from, unsigned to)
{
	struct vfake *f = o;
	if (vp >= VF_VPS || from >= VSM_NUM_VTLS || to >= VSM_NUM_VTLS || from == to)
		abort();
	vsm_regs_copy_shared(&f->regs[vp][to], &f->regs[vp][from]);
	f->nswitch++;
	f->switch_from = from;
	f->switch_to = to;
	return 0;
}

/* Pages at or above VF_RAM are not RAM. */
static inline int vf_protect(void *o, unsigned vtl, uint64_t page, uint64_t n, uint32_t flags)
{
	struct vfake *f = o;
	if (page + n > VF_RAM / 4096)
		return HV_STATUS_INVALID_PARAMETER;
	if (f->nprotect < VF_LOG)
		f->protect[f->nprotect] = (struct vf_protect){ vtl, page, n, flags };
	f->nprotect++;
	return 0;
}

static inline int vf_start(void *o, uint32_t vp, unsigned vtl)
{
	struct vfake *f = o;
	f->nstart++;
	f->start_vp = vp;
	f->start_vtl = vtl;
	return f->status;
}

static inline int vf_irq(void *o, unsigned vtl, unsigned type, uint64_t dest, bool logical,
			 bool level, uint8_t vector)
{
	struct vfake *f = o;
	if (f->nirq < VF_LOG)
		f->irq[f->nirq] = (struct vf_irq){ vtl, type, dest, logical, level, vector };
	f->nirq++;
	return f->status;
}

static inline int vf_post(void *o, uint32_t vp, unsigned vtl, unsigned sint, const void *msg)
{
	struct vfake *f = o;
	if (f->nmsg < 8) {
		f->msg[f->nmsg].vp = vp;
		f->msg[f->nmsg].vtl = vtl;
		f->msg[f->nmsg].sint = sint;
		memcpy(f->msg[f->nmsg].msg, msg, HV_MESSAGE_SIZE);
	}
	f->nmsg++;
	return f->status;
}

static inline int vf_event(void *o, uint32_t vp, unsigned vtl, unsigned sint, unsigned flag,
			   bool *newly)
{
	struct vfake *f = o;
	if (f->nevent < VF_LOG)
		f->event[f->nevent] = (struct vf_event){ vp, vtl, sint, flag };
	f->nevent++;
	*newly = flag & 1;
	return f->status;
}

static inline uint64_t vf_ref_time(void *o)
{
	return ((struct vfake *)o)->now;
}

static inline void vf_stimer_changed(void *o)
{
	((struct vfake *)o)->nstimer_changed++;
}

/*
 * Get/SetVpRegisters input for one register of this partition and the
 * calling VP: input VTL byte `vtl`, `name` at 16, `value` at 32 (a get
 * reads the first 20 bytes).
 */
static inline void vf_one_register(uint8_t in[48], uint8_t vtl, uint32_t name, uint64_t value)
{
	uint32_t self = HV_VP_INDEX_SELF;
	memset(in, 0, 48);
	memset(in, 0xff, 8);   /* HV_PARTITION_ID_SELF */
	memcpy(in + 8, &self, 4);
	in[12] = vtl;
	memcpy(in + 16, &name, 4);
	memcpy(in + 32, &value, 8);
}

static inline struct vfake *vf_new_mode(unsigned nvps, bool lazy, bool eoi)
{
	struct vfake *f = calloc(1, sizeof(*f));
	f->lazy = lazy;
	f->ram = calloc(1, VF_RAM);
	struct vsm_config c = {
		.nvps = nvps, .max_vtl = 2, .eoi_intercepts = eoi,
		.ops = {
			.read_gpa = vf_read, .write_gpa = vf_write, .get_regs = vf_get_regs,
			.set_regs = vf_set_regs, .switch_vtl = vf_switch, .protect = vf_protect,
			.start_vp = vf_start, .interrupt = vf_irq, .post_message = vf_post,
			.signal_event = vf_event, .ref_time = vf_ref_time,
			.stimer_changed = vf_stimer_changed, .opaque = f,
			.get_regs_part = lazy ? vf_get_regs_part : NULL,
		},
	};
	if (vsm_create(&c, &f->vsm))
		abort();
	return f;
}

static inline struct vfake *vf_new(unsigned nvps)
{
	return vf_new_mode(nvps, false, false);
}

/* A platform whose register parts cost a call each (like KVM's). */
static inline struct vfake *vf_new_lazy(unsigned nvps)
{
	return vf_new_mode(nvps, true, false);
}

/* A platform that reports VTL0's level-triggered EOIs (a split irqchip). */
static inline struct vfake *vf_new_eoi(unsigned nvps)
{
	return vf_new_mode(nvps, false, true);
}

static inline void vf_free(struct vfake *f)
{
	vsm_destroy(f->vsm);
	free(f->ram);
	free(f);
}

#endif
