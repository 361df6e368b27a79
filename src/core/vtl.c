/*
 * --vtl2 wiring, phase 1 (TLFS "Virtual Secure Mode"; docs/ARCHITECTURE.md
 * "Virtual Trust Levels"): struct vsm_ops over the accel API and the exit
 * hooks of vm.c. VTL2 is a second accel partition mapping the same guest
 * RAM; a VP's thread owns one vCPU per VTL and vm_vcpu.av is switched to
 * the running VTL's. A switch (VtlCall, VtlReturn) copies the shared
 * general registers (all but RSP) into the target vCPU with GET/SET_REGS.
 * Limits: see vtl.h.
 */
#include "core/vtl.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/vm.h"
#include "core/vtl_mem.h"
#include "hv/hv.h"
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
};

static int op_read_gpa(void *o, uint64_t gpa, void *buf, size_t len)
{
	struct vtl *t = o;
	return gmem_read(&t->vm->mem, gpa, buf, len) < 0 ? -1 : 0;
}

static int op_write_gpa(void *o, uint64_t gpa, const void *buf, size_t len)
{
	struct vtl *t = o;
	return gmem_write(&t->vm->mem, gpa, buf, len) < 0 ? -1 : 0;
}

static struct accel_vcpu *vcpu_of(struct vtl *t, uint32_t vp, unsigned vtl)
{
	if (vp >= t->vm->nvcpus || vtl > VSM_MAX_VTL)
		return NULL;
	return t->vcpu[vp][vtl];
}

/* The private MSRs of struct vsm_regs, moved with vcpu_get/set_msr. */
static const struct { uint32_t msr; size_t off; } private_msrs[] = {
	{ 0xC0000102, offsetof(struct vsm_regs, kernel_gs_base) },
	{ 0x00000277, offsetof(struct vsm_regs, pat) },
	{ 0x00000174, offsetof(struct vsm_regs, sysenter_cs) },
	{ 0x00000176, offsetof(struct vsm_regs, sysenter_eip) },
	{ 0x00000175, offsetof(struct vsm_regs, sysenter_esp) },
	{ 0xC0000081, offsetof(struct vsm_regs, star) },
	{ 0xC0000082, offsetof(struct vsm_regs, lstar) },
	{ 0xC0000083, offsetof(struct vsm_regs, cstar) },
	{ 0xC0000084, offsetof(struct vsm_regs, sfmask) },
	{ 0xC0000103, offsetof(struct vsm_regs, tsc_aux) },
};
#define N_PRIVATE_MSRS (sizeof(private_msrs) / sizeof(private_msrs[0]))

/* Registers without the MSRs (intercept messages need no more). */
static int get_x86(struct vtl *t, uint32_t vp, unsigned vtl, struct vsm_regs *v)
{
	struct accel_vcpu *av = vcpu_of(t, vp, vtl);
	struct x86_regs r;
	struct x86_sregs s;
	memset(v, 0, sizeof(*v));
	/* On the VP's thread both usually come from the sync-regs area (no ioctl). */
	int (*get_sregs)(struct accel_vcpu *, struct x86_sregs *) =
		t->vm->ops->vcpu_get_sregs_synced ? t->vm->ops->vcpu_get_sregs_synced :
						    t->vm->ops->vcpu_get_sregs;
	if (!av || t->vm->ops->vcpu_get_regs(av, &r) < 0 || get_sregs(av, &s) < 0)
		return HV_STATUS_INVALID_PARAMETER;
	vsm_regs_from_x86(v, &r, &s);
	return HV_STATUS_SUCCESS;
}

/*
 * op_get_regs keeps what it read per VP (vsm's lock serializes the ops), so
 * the op_set_regs that follows in the same hypercall (vsm always loads the
 * block before changing it: SetVpRegisters, the slow VtlReturn's RAX/RCX)
 * writes only what changed: the GPRs alone (RIP advanced over an
 * intercepted instruction) are one deferred sync-regs write, no ioctl.
 */
static int op_get_regs(void *o, uint32_t vp, unsigned vtl, struct vsm_regs *v)
{
	struct vtl *t = o;
	int st = get_x86(t, vp, vtl, v);
	if (st)
		return st;
	struct accel_vcpu *av = vcpu_of(t, vp, vtl);
	uint32_t idx[N_PRIVATE_MSRS];
	uint64_t val[N_PRIVATE_MSRS] = { 0 };
	for (size_t i = 0; i < N_PRIVATE_MSRS; i++)
		idx[i] = private_msrs[i].msr;
	/* One KVM_GET_MSRS; an MSR the host lacks (e.g. TSC_AUX, last) reads as 0. */
	int got = t->vm->ops->vcpu_get_msrs ?
		t->vm->ops->vcpu_get_msrs(av, idx, val, N_PRIVATE_MSRS) : 0;
	for (size_t i = got < 0 ? 0 : (size_t)got; i < N_PRIVATE_MSRS; i++)
		if (t->vm->ops->vcpu_get_msr(av, idx[i], &val[i]) < 0)
			val[i] = 0;
	for (size_t i = 0; i < N_PRIVATE_MSRS; i++)
		memcpy((uint8_t *)v + private_msrs[i].off, &val[i], 8);
	t->snap[vp].r = *v;
	t->snap[vp].vtl = vtl;
	t->snap[vp].valid = true;
	return HV_STATUS_SUCCESS;
}

/* v equals old outside the GPRs, RIP, RFLAGS and the private MSRs. */
static bool same_sregs(const struct vsm_regs *v, const struct vsm_regs *old)
{
	struct vsm_regs a = *v;
	memcpy(a.gpr, old->gpr, sizeof(a.gpr));
	a.rip = old->rip;
	a.rflags = old->rflags;
	for (size_t i = 0; i < N_PRIVATE_MSRS; i++)
		memcpy((uint8_t *)&a + private_msrs[i].off,
		       (const uint8_t *)old + private_msrs[i].off, 8);
	return memcmp(&a, old, sizeof(a)) == 0;
}

static int op_set_regs(void *o, uint32_t vp, unsigned vtl, const struct vsm_regs *v)
{
	struct vtl *t = o;
	const struct accel_ops *ops = t->vm->ops;
	struct accel_vcpu *av = vcpu_of(t, vp, vtl);
	struct x86_regs r;
	struct x86_sregs s;
	if (!av)
		return HV_STATUS_INVALID_PARAMETER;
	const struct vsm_regs *old = t->snap[vp].valid && t->snap[vp].vtl == vtl ?
		&t->snap[vp].r : NULL;
	t->snap[vp].valid = false;
	int ret = 0;
	if (old && same_sregs(v, old)) {
		memset(&s, 0, sizeof(s));
		vsm_regs_to_x86(v, &r, &s);   /* only r is used */
		if (memcmp(v->gpr, old->gpr, sizeof(v->gpr)) || v->rip != old->rip ||
		    v->rflags != old->rflags) {
			ret = ops->vcpu_set_regs_deferred ? ops->vcpu_set_regs_deferred(av, &r)
							  : ops->vcpu_set_regs(av, &r);
			t->regs_only_sets++;
		}
	} else {
		if (ops->vcpu_get_sregs(av, &s) < 0)
			return HV_STATUS_INVALID_PARAMETER;
		vsm_regs_to_x86(v, &r, &s);
		ret = ops->vcpu_set_sregs(av, &s);
		if (ret == 0)
			ret = ops->vcpu_set_regs(av, &r);
	}
	/* Private MSRs: write the ones that changed (from what was read, or the vCPU's). */
	for (size_t i = 0; ret == 0 && i < N_PRIVATE_MSRS; i++) {
		uint64_t want, cur = 0;
		memcpy(&want, (const uint8_t *)v + private_msrs[i].off, 8);
		if (old)
			memcpy(&cur, (const uint8_t *)old + private_msrs[i].off, 8);
		else if (ops->vcpu_get_msr(av, private_msrs[i].msr, &cur) < 0)
			cur = 0;
		if (cur != want)
			ret = ops->vcpu_set_msr(av, private_msrs[i].msr, want);
	}
	if (ret < 0) {
		log_guest("vtl: VP %u VTL%u: registers refused by the accelerator (%s; CR0 0x%" PRIx64
			  " CR4 0x%" PRIx64 " EFER 0x%" PRIx64 ")", vp, vtl, strerror(-ret), s.cr0,
			  s.cr4, s.efer);
		return HV_STATUS_INVALID_PARAMETER;
	}
	return HV_STATUS_SUCCESS;
}

/* Carries the XMM/x87 state (shared between VTLs) from vCPU a to b: 0 or -1. */
static int carry_fpu(struct vtl *t, uint32_t vp, unsigned from, unsigned to,
		     struct accel_vcpu *a, struct accel_vcpu *b)
{
	const struct accel_ops *ops = t->vm->ops;
	if (!t->xsave_size)
		return 0;
	struct vtl_fpu *c = &t->fpu[vp];
	if (!c->cur) {
		for (unsigned i = 0; i < VSM_NUM_VTLS; i++)
			c->img[i] = calloc(1, t->xsave_size);
		c->cur = calloc(1, t->xsave_size);
		for (unsigned i = 0; i < VSM_NUM_VTLS; i++)
			if (!c->img[i])
				c->cur = (free(c->cur), NULL);
		if (!c->cur)
			return -1;
	}
	if (ops->vcpu_get_xsave(a, c->cur) < 0)
		return -1;
	if (!c->known[to] || memcmp(c->cur, c->img[to], t->xsave_size) != 0) {
		if (ops->vcpu_set_xsave(b, c->cur) < 0)
			return -1;
		memcpy(c->img[to], c->cur, t->xsave_size);
		c->known[to] = true;
		t->fpu_copies++;
	}
	memcpy(c->img[from], c->cur, t->xsave_size);
	c->known[from] = true;
	return 0;
}

static int op_switch_vtl(void *o, uint32_t vp, unsigned from, unsigned to)
{
	struct vtl *t = o;
	struct accel_vcpu *a = vcpu_of(t, vp, from), *b = vcpu_of(t, vp, to);
	struct x86_regs ra, rb;
	if (!a || !b || t->vm->ops->vcpu_get_regs(a, &ra) < 0 || t->vm->ops->vcpu_get_regs(b, &rb) < 0)
		return HV_STATUS_INVALID_PARAMETER;
	/* Shared: every GPR but RSP; RIP, RFLAGS are the target VTL's own. */
	uint64_t rsp = rb.rsp, rip = rb.rip, rflags = rb.rflags;
	rb = ra;
	rb.rsp = rsp;
	rb.rip = rip;
	rb.rflags = rflags;
	int (*set)(struct accel_vcpu *, const struct x86_regs *) =
		t->vm->ops->vcpu_set_regs_deferred ? t->vm->ops->vcpu_set_regs_deferred :
						     t->vm->ops->vcpu_set_regs;
	if (set(b, &rb) < 0 || carry_fpu(t, vp, from, to, a, b) < 0)
		return HV_STATUS_INVALID_PARAMETER;
	t->switches++;
	t->vm->vcpus[vp].av = b; /* vp's own thread: the run loop now runs `to` */
	return HV_STATUS_SUCCESS;
}

static int op_protect(void *o, unsigned vtl, uint64_t gpa_page, uint64_t npages, uint32_t flags)
{
	struct vtl *t = o;
	/* vsm checked vtl is the caller's; VTL0 is the only lower VTL with memory */
	uint16_t st = vtl_mem_set(&t->mem, gpa_page, npages, vtl_mem_prot_from_flags(flags));
	if (st == HV_STATUS_INSUFFICIENT_MEMORY)
		log_guest("vtl: VTL%u protection of pages 0x%" PRIx64 "+%" PRIu64 " refused: VTL0's "
			  "memory would need more than %d KVM slots", vtl, gpa_page, npages,
			  VTL_MEM_MAX_SLOTS);
	if (st)
		return st;
	/* VTL0's partition follows the map (vsm's lock serializes callers). */
	if (vtl_mem_apply(&t->mem, t->vm->ops, t->accel[0]) < 0)
		return HV_STATUS_INSUFFICIENT_MEMORY;
	return HV_STATUS_SUCCESS;
}

/*
 * StartVirtualProcessor (caller's thread, vsm lock held): vp's registers for
 * vtl are set; make that vCPU runnable and have vp's thread run it.
 */
static int op_start_vp(void *o, uint32_t vp, unsigned vtl)
{
	struct vtl *t = o;
	struct vm *vm = t->vm;
	struct accel_vcpu *av = vcpu_of(t, vp, vtl);
	if (!av || !vm->vcpus || vm->ops->vcpu_set_runnable(av) < 0)
		return HV_STATUS_INVALID_VP_STATE;
	__atomic_store_n(&t->pending[vp], (int)vtl, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&t->start_lock);
	pthread_cond_broadcast(&t->start_cond);
	pthread_mutex_unlock(&t->start_lock);
	struct accel_vcpu *cur = __atomic_load_n(&vm->vcpus[vp].av, __ATOMIC_SEQ_CST);
	if (cur)
		vm->ops->vcpu_kick(cur);
	return HV_STATUS_SUCCESS;
}

/* An MSI to an APIC (physical or logical destination), edge, delivery mode dm. */
static int send_msi(struct vtl *t, unsigned vtl, uint64_t dest, bool logical, unsigned dm,
		    uint8_t vector)
{
	uint64_t addr = 0xFEE00000ull | (dest & 0xff) << 12 | (logical ? 1u << 2 : 0);
	uint32_t data = vector | dm << 8;
	return t->vm->ops->signal_msi(t->accel[vtl], addr, data) < 0 ? -1 : 0;
}

/*
 * An interrupt for a VP's VTL (vsm lock held, any thread): into that VTL's
 * APIC now; the VP's thread then makes a higher VTL preempt a lower one,
 * or raises VINA in the running VTL for a lower one (vtl_vcpu_service).
 */
static void note_interrupt(struct vtl *t, uint32_t vp, unsigned vtl)
{
	if (vp >= t->vm->nvcpus)
		return;
	__atomic_or_fetch(&t->irq_pending[vp], 1u << vtl, __ATOMIC_SEQ_CST);
	struct accel_vcpu *cur = t->vm->vcpus ? __atomic_load_n(&t->vm->vcpus[vp].av,
								__ATOMIC_SEQ_CST) : NULL;
	if (cur)
		t->vm->ops->vcpu_kick(cur);
}

static int op_interrupt(void *o, unsigned vtl, unsigned type, uint64_t dest, bool logical,
			uint8_t vector)
{
	struct vtl *t = o;
	unsigned dm;
	switch (type) {
	case HV_INTERRUPT_TYPE_FIXED: dm = 0; break;
	case HV_INTERRUPT_TYPE_LOWEST: dm = 1; break;
	case HV_INTERRUPT_TYPE_NMI: dm = 4; break;
	default:
		log_guest("vtl: interrupt type %u for VTL%u is not supported", type, vtl);
		return HV_STATUS_INVALID_PARAMETER;
	}
	if ((vtl != 0 && vtl != 2) || !t->accel[vtl] || dest > 0xff ||
	    send_msi(t, vtl, dest, logical, dm, vector) < 0)
		return HV_STATUS_INVALID_PARAMETER;
	if (!logical)
		note_interrupt(t, (uint32_t)dest, vtl); /* APIC id = VP index */
	return HV_STATUS_SUCCESS;
}

/* VTL0's SynIC is hv's: PostMessageDirect/SignalEventDirect to VTL0 go there. */
static int op_post_message(void *o, uint32_t vp, unsigned vtl, unsigned sint, const void *msg)
{
	struct vtl *t = o;
	const uint8_t *m = msg;
	uint32_t type;
	memcpy(&type, m, 4);
	if (vtl != 0 || !t->vm->hv)
		return HV_STATUS_INVALID_PARAMETER;
	int ret = hv_synic_post_message(t->vm->hv, vp, sint, type, m + 16, m[4]);
	if (ret == -ENOSPC || ret == -ENOMEM)
		return HV_STATUS_INSUFFICIENT_BUFFERS;
	if (ret < 0)
		return HV_STATUS_INVALID_PARAMETER;
	note_interrupt(t, vp, 0);
	return HV_STATUS_SUCCESS;
}

static int op_signal_event(void *o, uint32_t vp, unsigned vtl, unsigned sint, unsigned flag,
			   bool *newly_signaled)
{
	struct vtl *t = o;
	*newly_signaled = false;
	if (vtl != 0 || !t->vm->hv)
		return HV_STATUS_INVALID_PARAMETER;
	hv_synic_signal_event(t->vm->hv, vp, sint, flag);
	*newly_signaled = true; /* hv does not say whether the flag was clear */
	note_interrupt(t, vp, 0);
	return HV_STATUS_SUCCESS;
}

static uint64_t op_ref_time(void *o)
{
	struct vtl *t = o;
	return hv_time_ref_count(t->vm->hv);
}

/* A VTL2 timer was armed (vsm lock held): wake the poller. */
static void op_stimer_changed(void *o)
{
	struct vtl *t = o;
	stimer_thread_kick(&t->timer);
}

/* The timer thread's poll: fires VTL2's due timers, returns the next expiry. */
static uint64_t timer_poll(void *o, uint64_t now)
{
	struct vtl *t = o;
	return vsm_stimer_poll(t->vsm, now);
}

int vtl_create(struct vm *vm, const struct accel_config *ac, struct vtl **out)
{
	struct vtl *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->vm = vm;
	t->accel[0] = vm->accel;
	t->vcpu = calloc(vm->nvcpus, sizeof(*t->vcpu));
	t->pending = calloc(vm->nvcpus, sizeof(*t->pending));
	t->fpu = calloc(vm->nvcpus, sizeof(*t->fpu));
	t->irq_pending = calloc(vm->nvcpus, sizeof(*t->irq_pending));
	t->preempt_armed = calloc(vm->nvcpus, sizeof(*t->preempt_armed));
	t->snap = calloc(vm->nvcpus, sizeof(*t->snap));
	pthread_mutex_init(&t->start_lock, NULL);
	pthread_cond_init(&t->start_cond, NULL);
	stimer_thread_init(&t->timer, "vtl2-stimer", op_ref_time, timer_poll, t);
	t->start_sync = true;
	for (unsigned i = 0; t->pending && i < vm->nvcpus; i++)
		t->pending[i] = -1;
	int ret = t->vcpu && t->pending && t->fpu && t->irq_pending && t->preempt_armed && t->snap ?
		vm->ops->create(ac, &t->accel[2]) : -ENOMEM;
	if (ret < 0) {
		log_error("cannot create the VTL2 partition: %s", strerror(-ret));
		goto fail;
	}
	/* VTL2 sees all RAM; so does VTL0 in phase 1 (no carve-out yet). */
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		struct gmem_region *r = &vm->mem.regions[i];
		ret = vm->ops->map_memory(t->accel[2], i, r->gpa, r->size, r->hva, false);
		if (ret < 0) {
			log_error("cannot map guest memory into VTL2: %s", strerror(-ret));
			goto fail;
		}
	}
	ret = vtl_mem_init(&t->mem, &vm->mem, VTL_MEM_MAX_SLOTS);
	if (ret < 0) {
		log_error("cannot set up VTL0's memory map: %s", strerror(-ret));
		goto fail;
	}
	t->mem_ok = true;
	struct vsm_config vc = { .nvps = vm->nvcpus, .max_vtl = VSM_MAX_VTL, .ops = {
		.read_gpa = op_read_gpa, .write_gpa = op_write_gpa, .get_regs = op_get_regs,
		.set_regs = op_set_regs, .switch_vtl = op_switch_vtl, .protect = op_protect,
		.start_vp = op_start_vp, .interrupt = op_interrupt, .post_message = op_post_message,
		.signal_event = op_signal_event,
		.ref_time = vm->hv ? op_ref_time : NULL, .stimer_changed = op_stimer_changed,
		.opaque = t } };
	t->ops = vc.ops;
	ret = vsm_create(&vc, &t->vsm);
	if (ret == 0)
		ret = vsm_boot_vtl2(t->vsm);
	if (ret < 0) {
		log_error("cannot create the VSM state: %s", strerror(ret < 0 ? -ret : EINVAL));
		goto fail;
	}
	if (vm->hv) {
		ret = stimer_thread_start(&t->timer);
		if (ret < 0) {
			log_error("cannot start VTL2's timer thread: %s", strerror(-ret));
			goto fail;
		}
	}
	*out = t;
	return 0;
fail:
	vtl_destroy(t);
	return ret < 0 ? ret : -EINVAL;
}

void vtl_destroy(struct vtl *t)
{
	if (!t)
		return;
	stimer_thread_stop(&t->timer);  /* before vsm_destroy: it polls vsm */
	if (t->vsm)
		vsm_destroy(t->vsm);
	if (t->accel[2])
		t->vm->ops->destroy(t->accel[2]);
	if (t->mem_ok)
		vtl_mem_fini(&t->mem);
	free(t->vcpu);
	log_debug("vtl: %lu VTL switches, %lu with an x87/XMM copy, %lu preemptions by VTL2 "
		  "interrupts, %lu VINAs for VTL0 APIC requests, %lu register writes of the GPRs "
		  "alone", t->switches, t->fpu_copies, t->preempts, t->vinas, t->regs_only_sets);
	free(t->pending);
	for (unsigned i = 0; t->fpu && i < t->vm->nvcpus; i++) {
		for (unsigned j = 0; j < VSM_NUM_VTLS; j++)
			free(t->fpu[i].img[j]);
		free(t->fpu[i].cur);
	}
	free(t->fpu);
	free(t->irq_pending);
	free(t->preempt_armed);
	free(t->snap);
	if (t->start_sync) {
		pthread_cond_destroy(&t->start_cond);
		pthread_mutex_destroy(&t->start_lock);
		stimer_thread_fini(&t->timer);
	}
	free(t);
}

int vtl_vcpu_init(struct vtl *t, struct vm_vcpu *v, int (*cpuid)(struct vm_vcpu *v))
{
	struct vm *vm = t->vm;
	struct accel_vcpu *a0 = v->av, *a2;
	int ret = vm->ops->vcpu_create(t->accel[2], v->index, &a2);
	if (ret < 0)
		return ret;
	t->vcpu[v->index][0] = a0;
	t->vcpu[v->index][2] = a2;
	if (vm->ops->vcpu_xsave_size && vm->ops->vcpu_get_xsave && vm->ops->vcpu_set_xsave) {
		size_t n = vm->ops->vcpu_xsave_size(a2);
		__atomic_store_n(&t->xsave_size, n >= 576 ? n : 0, __ATOMIC_SEQ_CST);
	}
	v->av = a2;
	ret = cpuid(v);
	if (ret == 0 && v->index == 0) {
		struct x86_sregs s;
		struct x86_regs r = vm->igvm.vbs_regs;
		ret = vm->ops->vcpu_get_sregs(a2, &s);
		if (ret == 0) {
			/* The file's registers; what it does not name stays at reset. */
			const struct x86_sregs *f = &vm->igvm.vbs_sregs;
			uint64_t apic_base = s.apic_base;
			s = *f;
			s.apic_base = apic_base;
			if (!f->tr.present) {
				/* A busy 64-bit TSS, as KVM needs in long mode. */
				s.tr = (struct x86_segment){ .limit = 0xffff, .type = 0xb,
							     .present = 1 };
			}
			if (!f->ldt.present)
				s.ldt = (struct x86_segment){ .limit = 0xffff, .type = 2, .present = 1,
							      .unusable = 1 };
			ret = vm->ops->vcpu_set_sregs(a2, &s);
		}
		if (ret == 0)
			ret = vm->ops->vcpu_set_regs(a2, &r);
		if (ret == 0 && vm->igvm.have_pat)
			ret = vm->ops->vcpu_set_msr(a2, 0x277 /* IA32_PAT */, vm->igvm.vbs_pat);
	}
	v->av = vsm_active_vtl(t->vsm, v->index) == 2 ? a2 : a0;
	return ret;
}

void vtl_vcpu_fini(struct vtl *t, struct vm_vcpu *v)
{
	struct accel_vcpu *a2 = t->vcpu[v->index][2];
	v->av = t->vcpu[v->index][0] ? t->vcpu[v->index][0] : v->av;
	t->vcpu[v->index][2] = NULL;
	if (a2 && a2 != v->av)
		t->vm->ops->vcpu_destroy(a2);
}

bool vtl_vcpu_service(struct vtl *t, struct vm_vcpu *v)
{
	struct vm *vm = t->vm;
	uint32_t vp = v->index;
	int to = __atomic_exchange_n(&t->pending[vp], -1, __ATOMIC_SEQ_CST);
	if (to >= 0 && to <= VSM_MAX_VTL && t->vcpu[vp][to])
		__atomic_store_n(&v->av, t->vcpu[vp][to], __ATOMIC_SEQ_CST);
	if (vp != 0 && to < 0 && vtl_active(t, v) == 0 && !vsm_vp_started(t->vsm, vp)) {
		/*
		 * An AP VTL2 has not started: VTL0's INIT/SIPI do not start it
		 * (its vCPU does not run; StartVirtualProcessor does). Wait a
		 * little, then let the run loop look at its requests.
		 */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&t->start_lock);
		if (__atomic_load_n(&t->pending[vp], __ATOMIC_SEQ_CST) < 0)
			pthread_cond_timedwait(&t->start_cond, &t->start_lock, &ts);
		pthread_mutex_unlock(&t->start_lock);
		return false;
	}
	unsigned irq = __atomic_load_n(&t->irq_pending[vp], __ATOMIC_SEQ_CST);
	if (!irq && vtl_active(t, v) != 2)
		return true;
	uint8_t vector;
	if ((irq & (1u << 2)) && vtl_active(t, v) == 0) {
		/*
		 * An interrupt went to VTL2 (kept while VTL2 ran): if VTL2's APIC
		 * still requests it, VTL2 preempts VTL0. VTL0's vCPU may still
		 * owe the completion of its last exit (an MSR result, an IN):
		 * one immediate-exit run first finishes it, no guest code runs.
		 */
		struct accel_vcpu *a2 = t->vcpu[vp][2];
		int req = a2 && vm->ops->vcpu_irq_requested ? vm->ops->vcpu_irq_requested(a2) : 1;
		if (req > 0 && !t->preempt_armed[vp]) {
			t->preempt_armed[vp] = true;
			vm->ops->vcpu_kick(v->av);
			return true;
		}
		t->preempt_armed[vp] = false;
		__atomic_and_fetch(&t->irq_pending[vp], ~(1u << 2), __ATOMIC_SEQ_CST);
		if (req > 0 && vsm_interrupt_pending(t->vsm, vp, 2, &vector) == 1)
			t->preempts++;
		return true;
	}
	/* VTL2's bit stays while VTL2 runs: it is looked at after the next return. */
	if (irq)
		irq = __atomic_fetch_and(&t->irq_pending[vp], 1u << 2, __ATOMIC_SEQ_CST);
	t->preempt_armed[vp] = false;
	if (vtl_active(t, v) != 2)
		return true;
	/*
	 * VINA (vector into VTL2, edge) for a VTL0 interrupt while VTL2 runs:
	 * one vsm sent (bit 0: it is pending), or, while VINA is armed, any
	 * interrupt VTL0's APIC requests (a device's MSI or GSI, hv's SynIC
	 * and stimers, another VP's IPI). Every VTL2 run looks while armed
	 * (vtl_lower_interrupt kicks VTL2 for hvmm's own injections; an IPI
	 * is seen at VTL2's next exit), one KVM_GET_LAPIC each time.
	 */
	int got = 0;
	if (irq & 1u) {
		got = vsm_interrupt_pending(t->vsm, vp, 0, &vector);
	} else if (vm->ops->vcpu_irq_requested && t->vcpu[vp][0] &&
		   vsm_vina_armed(t->vsm, vp) && vm->ops->vcpu_irq_requested(t->vcpu[vp][0]) > 0) {
		got = vsm_interrupt_pending(t->vsm, vp, 0, &vector);
		if (got == 2)
			t->vinas++;
	}
	if (got == 2 && send_msi(t, 2, vp, false, 0, vector) < 0)
		log_guest("vCPU %u: VINA vector 0x%x not delivered", vp, vector);
	return true;
}

void vtl_lower_interrupt(struct vtl *t, uint64_t msi_addr)
{
	struct vm *vm = t->vm;
	if (!vm->vcpus)
		return;
	/* A physical destination names one VP (APIC id = VP index); else any. */
	bool one = msi_addr != UINT64_MAX && !(msi_addr & (1u << 2)) &&
		   ((msi_addr >> 12) & 0xff) != 0xff;
	uint32_t dest = (uint32_t)((msi_addr >> 12) & 0xff);
	for (uint32_t vp = one ? dest : 0; vp < vm->nvcpus; vp++) {
		struct accel_vcpu *cur = __atomic_load_n(&vm->vcpus[vp].av, __ATOMIC_SEQ_CST);
		if (cur && cur == t->vcpu[vp][2])
			vm->ops->vcpu_kick(cur);
		if (one)
			break;
	}
}

unsigned vtl_io_insn_len(const uint8_t *insn, unsigned n, bool *string, bool *rep)
{
	*string = *rep = false;
	for (unsigned i = 0; i < n && i < 15; i++) {
		uint8_t b = insn[i];
		if (b == 0xF3 || b == 0xF2) {
			*rep = true;
			continue;
		}
		if (b == 0x66 || b == 0x67 || b == 0x2E || b == 0x36 || b == 0x3E || b == 0x26 ||
		    b == 0x64 || b == 0x65 || (b >= 0x40 && b <= 0x4F))
			continue;
		if (b >= 0xE4 && b <= 0xE7) /* IN/OUT with an imm8 port */
			return i + 2 <= 15 ? i + 2 : 0;
		if (b >= 0xEC && b <= 0xEF) /* IN/OUT with DX */
			return i + 1;
		if (b >= 0x6C && b <= 0x6F) { /* INS/OUTS */
			*string = true;
			return i + 1;
		}
		return 0;
	}
	return 0;
}

unsigned vtl_io_insn_back(const uint8_t b[16], uint16_t port, uint8_t size)
{
	unsigned n = 0;
	if (port < 256 && (b[14] == 0xE6 || b[14] == 0xE7) && b[15] == port)
		n = 2;   /* OUT imm8 */
	else if (b[15] == 0xEE || b[15] == 0xEF || b[15] == 0x6E || b[15] == 0x6F)
		n = 1;   /* OUT DX / OUTS */
	else
		return 0;
	if (size == 2 && b[15 - n] == 0x66)
		n++;
	if ((b[15] == 0x6E || b[15] == 0x6F) && b[15 - n] == 0xF3)
		n++;
	return n;
}

/* Up to 16 instruction bytes of VTL0 at r's RIP (count in c->insn_count). */
static void fetch_insn(struct vtl *t, const struct vsm_regs *r, struct vsm_intercept_ctx *c)
{
	uint64_t gpa;
	c->insn_count = 0;
	if (vsm_translate_gva(&t->ops, r, r->rip, 0, &gpa) == HV_TRANSLATE_GVA_SUCCESS &&
	    (gpa & 0xfff) <= 0x1000 - sizeof(c->insn) &&
	    gmem_read(&t->vm->mem, gpa, c->insn, sizeof(c->insn)) == 0)
		c->insn_count = sizeof(c->insn);
}

/*
 * A VTL0 IN/RDMSR/WRMSR exit VTL2 intercepts: KVM would complete it at
 * VTL0's next run (data into RAX/RDX, RIP past it) over what VTL2 sets, so
 * it is finished now and VTL0's registers put back as they were before the
 * instruction (RIP at its start; a ring-0 emulator that already moved RIP
 * is undone with `len` when the bytes there do not start the instruction).
 * *pre gets those registers. False (logged) when that cannot be done.
 */
static bool undo_exit(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e, struct x86_regs *pre,
		      bool (*starts)(const uint8_t *b, unsigned n), unsigned len)
{
	struct vm *vm = t->vm;
	struct x86_regs post;
	int ret = vm->ops->vcpu_finish_exit ? 0 : -ENOSYS;
	if (ret == 0)
		ret = vm->ops->vcpu_get_regs(v->av, pre);
	if (ret == 0)
		ret = vm->ops->vcpu_finish_exit(v->av, e);
	if (ret == 0)
		ret = vm->ops->vcpu_get_regs(v->av, &post);
	if (ret < 0) {
		log_guest("vCPU %u: VTL0 intercept: cannot finish the exit (%s)", v->index,
			  strerror(-ret));
		return false;
	}
	if (post.rip == pre->rip) {
		/* Nothing moved at completion: RIP was past the instruction already? */
		struct vsm_regs r;
		struct vsm_intercept_ctx c = { 0 };
		if (get_x86(t, v->index, 0, &r) == 0) {
			fetch_insn(t, &r, &c);
			if (!starts(c.insn, c.insn_count) && pre->rip >= len)
				pre->rip -= len;
		}
	}
	if (vm->ops->vcpu_set_regs(v->av, pre) < 0) {
		log_guest("vCPU %u: VTL0 intercept: cannot restore registers", v->index);
		return false;
	}
	return true;
}

/*
 * A port write (OUT/OUTS, also the hypercall page's `out`) under KVM's
 * instruction emulator (PVM ring 0), which has moved RIP past the
 * instruction already and completes nothing later: RIP is set back to its
 * start (r->rip too), so VTL0 resumes wherever VTL2 puts RIP, as on
 * hardware. False only when the registers cannot be written.
 */
static bool rewind_out(struct vtl *t, struct vm_vcpu *v, struct vsm_regs *r, uint16_t port,
		       uint8_t size)
{
	struct vm *vm = t->vm;
	if (!vm->info.ring0_emulated || (r->cs.selector & 3) != 0)
		return true;
	/* The bytes before RIP on its page (the instruction does not cross it). */
	uint8_t b[16] = { 0 };
	uint64_t gpa, n = r->rip & 0xfff;
	unsigned back = 0;
	if (n > sizeof(b))
		n = sizeof(b);
	if (n && vsm_translate_gva(&t->ops, r, r->rip - n, 0, &gpa) == HV_TRANSLATE_GVA_SUCCESS &&
	    gmem_read(&vm->mem, gpa, b + sizeof(b) - n, n) == 0)
		back = vtl_io_insn_back(b, port, size);
	struct x86_regs xr;
	if (back && vm->ops->vcpu_get_regs(v->av, &xr) == 0) {
		xr.rip -= back;
		if (vm->ops->vcpu_set_regs(v->av, &xr) < 0)
			return false;
		r->rip = xr.rip;
	} else {
		log_guest("vCPU %u: intercepted port 0x%x: instruction not found before RIP",
			  v->index, port);
	}
	return true;
}

static bool starts_in(const uint8_t *b, unsigned n)
{
	bool string, rep;
	return vtl_io_insn_len(b, n, &string, &rep) != 0;
}

static bool starts_msr(const uint8_t *b, unsigned n)
{
	return n >= 2 && b[0] == 0x0F && (b[1] == 0x30 || b[1] == 0x32);
}

bool vtl_io(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	if (vtl_active(t, v) != 0 || !vsm_intercepts_io(t->vsm, e->io.port, e->io.write))
		return false;
	uint64_t rax = 0;
	if (e->io.size <= 8)
		memcpy(&rax, e->io.data, e->io.size);
	if (!e->io.write) {
		/* INS and REP forms would need KVM to finish them in steps. */
		struct x86_regs pre;
		if (e->io.count != 1 ||
		    !undo_exit(t, v, e, &pre, starts_in, e->io.port < 256 ? 2 : 1))
			return false;
		rax = pre.rax;
	}
	struct vsm_regs r;
	if (get_x86(t, v->index, 0, &r))
		return false;
	struct vsm_intercept_ctx c = { .vp = v->index, .vtl = 0, .cpl = r.cs.selector & 3,
		.access = e->io.write ? HV_INTERCEPT_ACCESS_TYPE_WRITE : HV_INTERCEPT_ACCESS_TYPE_READ,
		.regs = &r };
	if (e->io.write && !rewind_out(t, v, &r, e->io.port, e->io.size))
		return false;
	fetch_insn(t, &r, &c);
	bool string, rep;
	c.insn_len = (uint8_t)vtl_io_insn_len(c.insn, c.insn_count, &string, &rep);
	uint8_t msg[HV_MESSAGE_SIZE];
	vsm_msg_io_port(msg, &c, e->io.port, e->io.size, string, rep, rax);
	int st = vsm_deliver_intercept(t->vsm, v->index, msg);
	if (st) {
		log_guest("vCPU %u: intercept of port 0x%x not delivered (status 0x%x)", v->index,
			  e->io.port, st);
		return false;
	}
	return true;
}

bool vtl_unknown_connection(struct vtl *t, struct vm_vcpu *v, uint64_t control, uint64_t result)
{
	uint16_t code = (uint16_t)control;
	if ((result & 0xffff) != HV_STATUS_INVALID_CONNECTION_ID || vtl_active(t, v) != 0 ||
	    (code != HVCALL_POST_MESSAGE && code != HVCALL_SIGNAL_EVENT) ||
	    !vsm_intercepts_unknown_synic(t->vsm))
		return false;
	struct vsm_regs r;
	if (get_x86(t, v->index, 0, &r) || !rewind_out(t, v, &r, HV_HYPERCALL_PORT, 1))
		return false;
	struct vsm_intercept_ctx c = { .vp = v->index, .vtl = 0, .cpl = r.cs.selector & 3,
		.access = HV_INTERCEPT_ACCESS_TYPE_EXECUTE, .regs = &r };
	fetch_insn(t, &r, &c);
	bool string, rep;
	c.insn_len = (uint8_t)vtl_io_insn_len(c.insn, c.insn_count, &string, &rep);
	/* Fast calls' XMM input: a fast HvPostMessage has none beyond RDX/R8 here. */
	uint8_t msg[HV_MESSAGE_SIZE];
	vsm_msg_hypercall(msg, &c, NULL);
	int st = vsm_deliver_intercept(t->vsm, v->index, msg);
	if (st) {
		log_guest("vCPU %u: unknown SynIC connection intercept not delivered (status 0x%x)",
			  v->index, st);
		return false;
	}
	return true;
}

bool vtl_msr_intercept(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	bool wr = e->reason == ACCEL_EXIT_MSR_WRITE;
	if (vtl_active(t, v) != 0 || hv_msr_owned(e->msr.index) || !vsm_intercepts_msr(t->vsm, wr))
		return false;
	struct x86_regs pre;
	e->msr.error = false;
	e->msr.data = 0;
	if (!undo_exit(t, v, e, &pre, starts_msr, 2))
		return false;
	struct vsm_regs r;
	if (get_x86(t, v->index, 0, &r))
		return false;
	struct vsm_intercept_ctx c = { .vp = v->index, .vtl = 0, .cpl = r.cs.selector & 3,
		.access = wr ? HV_INTERCEPT_ACCESS_TYPE_WRITE : HV_INTERCEPT_ACCESS_TYPE_READ,
		.regs = &r, .insn_len = 2 };
	uint8_t msg[HV_MESSAGE_SIZE];
	vsm_msg_msr(msg, &c, e->msr.index, pre.rdx, pre.rax);
	int st = vsm_deliver_intercept(t->vsm, v->index, msg);
	if (st) {
		log_guest("vCPU %u: intercept of MSR 0x%x not delivered (status 0x%x): #GP",
			  v->index, e->msr.index, st);
		if (t->vm->ops->vcpu_inject_exception(v->av, 13, true, 0) < 0)
			log_warn("vCPU %u: cannot inject #GP", v->index);
	}
	return true;
}

/* HV_PARTITION_PRIVILEGE_MASK high half (CPUID 0x40000003 EBX) and EDX features. */
#define HV_ACCESS_VSM                   (1u << 16)
#define HV_ACCESS_VP_REGISTERS          (1u << 17)
#define HV_HYPERCALL_XMM_INPUT_AVAILABLE  (1u << 4)
#define HV_HYPERCALL_XMM_OUTPUT_AVAILABLE (1u << 15)

void vtl_cpuid_fixup(struct vtl *t, const struct vm_vcpu *v, struct accel_cpuid_entry *e,
		     size_t n)
{
	if (vtl_active(t, v) != 2)
		return;
	for (size_t i = 0; i < n; i++) {
		if (e[i].function != 0x40000003u)
			continue;
		e[i].ebx |= HV_ACCESS_VSM | HV_ACCESS_VP_REGISTERS;
		e[i].edx |= HV_HYPERCALL_XMM_INPUT_AVAILABLE | HV_HYPERCALL_XMM_OUTPUT_AVAILABLE;
	}
}

unsigned vtl_active(struct vtl *t, const struct vm_vcpu *v)
{
	return t->vcpu[v->index][2] && v->av == t->vcpu[v->index][2] ? 2 : 0;
}

/* The VSM calls that may be fast with XMM input or output (vsm.h). */
static bool vsm_xmm_call(uint16_t code)
{
	switch (code) {
	case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE: case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST:
	case HVCALL_MODIFY_VTL_PROTECTION_MASK: case HVCALL_ENABLE_PARTITION_VTL:
	case HVCALL_ENABLE_VP_VTL: case HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX:
	case HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX: case HVCALL_INSTALL_INTERCEPT:
	case HVCALL_GET_VP_REGISTERS: case HVCALL_SET_VP_REGISTERS:
	case HVCALL_TRANSLATE_VIRTUAL_ADDRESS: case HVCALL_ASSERT_VIRTUAL_INTERRUPT:
	case HVCALL_START_VIRTUAL_PROCESSOR: case HVCALL_GET_VP_INDEX_FROM_APIC_ID:
	case HVCALL_TRANSLATE_VIRTUAL_ADDRESS_EX: case HVCALL_SIGNAL_EVENT_DIRECT:
	case HVCALL_POST_MESSAGE_DIRECT:
		return true;
	default:
		return false;
	}
}

bool vtl_hypercall(struct vtl *t, struct vm_vcpu *v)
{
	struct vm *vm = t->vm;
	struct x86_regs r;
	struct vsm_hypercall hc = { 0 };
	if (vm->ops->vcpu_get_exit_regs(v->av, &r, &hc.cpl, &hc.long_mode) < 0)
		return false;
	hc.control = r.rcx;
	hc.rax = r.rax;
	hc.rdx = r.rdx;
	hc.r8 = r.r8;
	unsigned vtl = vtl_active(t, v);
	/*
	 * Fast VSM calls: XMM0-5 carry input beyond RDX/R8 and the output, in
	 * the vCPU's real registers (its XSAVE image: one ioctl each way).
	 */
	uint8_t *img = NULL;
	if (((hc.control >> 16) & 1) && vsm_xmm_call((uint16_t)hc.control) && t->xsave_size) {
		img = malloc(t->xsave_size);
		if (img && vm->ops->vcpu_get_xsave(v->av, img) == 0)
			memcpy(hc.xmm, img + XSAVE_XMM_OFF, sizeof(hc.xmm));
		else
			img = (free(img), NULL);
	}
	bool handled = true, set_rax = true;
	switch (vsm_hypercall(t->vsm, v->index, &hc)) {
	case VSM_HC_NOT_VSM:
		handled = set_rax = vtl != 0;
		hc.result = HV_STATUS_INVALID_HYPERCALL_CODE;
		break;
	case VSM_HC_DONE:
		if (hc.xmm_dirty) {
			if (img) {
				memcpy(img + XSAVE_XMM_OFF, hc.xmm, sizeof(hc.xmm));
				img[XSAVE_XSTATE_BV] |= 2; /* SSE state: not its init value */
			}
			if (!img || vm->ops->vcpu_set_xsave(v->av, img) < 0)
				log_guest("vCPU %u: fast hypercall output not written to XMM", v->index);
		}
		break;
	case VSM_HC_INJECT_UD:
		set_rax = false;
		if (vm->ops->vcpu_inject_exception(v->av, 6, false, 0) < 0)
			log_warn("vCPU %u: cannot inject #UD for a hypercall", v->index);
		break;
	case VSM_HC_SWITCHED:
		set_rax = false; /* v->av is the other VTL's vCPU now */
		break;
	}
	free(img);
	if (set_rax && vm->ops->vcpu_set_exit_rax(v->av, hc.result) < 0)
		log_warn("vCPU %u: cannot write a hypercall result", v->index);
	return handled;
}

bool vtl_msr(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	struct vm *vm = t->vm;
	bool rd = e->reason == ACCEL_EXIT_MSR_READ;
	if (vtl_active(t, v) == 0) {
		if (rd || e->msr.index != HV_X64_MSR_HYPERCALL)
			return false;
		e->msr.error = hv_msr_write(vm->hv, v->index, e->msr.index, e->msr.data) < 0;
		if (!e->msr.error && (e->msr.data & 1)) {
			uint8_t page[HV_PAGE_SIZE_VSM];
			vsm_hypercall_page(page); /* the ordinary stub at 0, VTL call/return after */
			if (gmem_write(&vm->mem, e->msr.data & ~0xfffull, page, sizeof(page)) < 0)
				log_guest("vCPU %u: hypercall page is not RAM", v->index);
		}
		return true;
	}
	if (e->msr.index == HV_X64_MSR_REFERENCE_TSC) {
		/* VTL2's own reference TSC page (private per VTL), hv's time base. */
		e->msr.error = false;
		if (rd) {
			e->msr.data = __atomic_load_n(&t->vtl2_ref_tsc, __ATOMIC_SEQ_CST);
			return true;
		}
		uint64_t val = e->msr.data & ~0xffeull;
		__atomic_store_n(&t->vtl2_ref_tsc, val, __ATOMIC_SEQ_CST);
		if ((val & 1) && hv_reference_tsc_page_write(vm->hv, val) < 0)
			log_guest("vCPU %u: VTL2's reference TSC page 0x%" PRIx64 " is not RAM",
				  v->index, val & ~(uint64_t)0xfff);
		return true;
	}
	int ret = rd ? vsm_msr_read(t->vsm, v->index, 2, e->msr.index, &e->msr.data)
		     : vsm_msr_write(t->vsm, v->index, 2, e->msr.index, e->msr.data);
	if (ret == -ENOENT && rd)
		ret = hv_msr_read(vm->hv, v->index, e->msr.index, &e->msr.data);
	e->msr.error = ret < 0;
	if (ret < 0 && rd)
		e->msr.data = 0;
	return true;
}

/* n bytes of VTL0's virtual memory at gva (page tables of r): 0 or -1. */
static int read_gva(struct vtl *t, const struct vsm_regs *r, uint64_t gva, uint8_t *b, unsigned n)
{
	while (n) {
		uint64_t gpa;
		unsigned chunk = 0x1000 - (unsigned)(gva & 0xfff);
		if (chunk > n)
			chunk = n;
		if (vsm_translate_gva(&t->ops, r, gva, 0, &gpa) != HV_TRANSLATE_GVA_SUCCESS ||
		    gmem_read(&t->vm->mem, gpa, b, chunk) < 0)
			return -1;
		gva += chunk, b += chunk, n -= chunk;
	}
	return 0;
}

/* x86_regs <-> the encoding's order (RAX RCX RDX RBX RSP RBP RSI RDI R8..R15). */
static void regs_to_gpr(const struct x86_regs *x, uint64_t g[16])
{
	const uint64_t v[16] = { x->rax, x->rcx, x->rdx, x->rbx, x->rsp, x->rbp, x->rsi, x->rdi,
				 x->r8, x->r9, x->r10, x->r11, x->r12, x->r13, x->r14, x->r15 };
	memcpy(g, v, sizeof(v));
}

static void gpr_to_regs(const uint64_t g[16], struct x86_regs *x)
{
	x->rax = g[0], x->rcx = g[1], x->rdx = g[2], x->rbx = g[3];
	x->rsp = g[4], x->rbp = g[5], x->rsi = g[6], x->rdi = g[7];
	x->r8 = g[8], x->r9 = g[9], x->r10 = g[10], x->r11 = g[11];
	x->r12 = g[12], x->r13 = g[13], x->r14 = g[14], x->r15 = g[15];
}

/*
 * Whether b[0..k) is a store of `size` bytes that, with *x undone by it
 * (data written, old in memory), wrote gpa; next_rip for RIP-relative
 * forms. The undone registers in *g / *fl.
 */
static bool store_is(struct vtl *t, const struct vsm_regs *r, const uint8_t *b, unsigned k,
		     const struct x86_regs *x, uint64_t next_rip, uint64_t gpa, unsigned size,
		     uint64_t data, uint64_t old, uint64_t g[16], uint64_t *fl)
{
	struct vtl_mem_insn d;
	uint64_t ea, ea_gpa;
	if (vtl_mem_decode(b, k, &d) != k || d.size != size)
		return false;
	regs_to_gpr(x, g);
	*fl = x->rflags;
	return vtl_mem_undo(&d, g, fl, data, old) && vtl_mem_insn_ea(&d, b, g, next_rip, true, &ea) &&
	       vsm_translate_gva(&t->ops, r, ea, 0, &ea_gpa) == HV_TRANSLATE_GVA_SUCCESS &&
	       ea_gpa == gpa;
}

/*
 * The store KVM's emulator retired for VTL0's write of `size` bytes at
 * gpa (registers *x after it, page tables of r): a REP string store still
 * at RIP (RCX not 0: the iteration it did), else the instruction that ends
 * at RIP: the shortest suffix of the 15 bytes before it that decodes as a
 * store (vtl_mem_decode) of that size whose operand, with the registers
 * undone, translates to gpa, then grown over LOCK/REP prefixes before it.
 * *x becomes the state before it (vtl_mem_undo; RIP at its start); returns
 * its length, or 0 (x untouched).
 */
static unsigned store_back(struct vtl *t, const struct vsm_regs *r, struct x86_regs *x,
			   uint64_t gpa, unsigned size, uint64_t data, uint64_t old)
{
	uint8_t b[15];
	uint64_t g[16], fl;
	struct vtl_mem_insn d;
	unsigned n = sizeof(b);
	if (read_gva(t, r, x->rip, b, n) < 0) {
		n = 0x1000 - (unsigned)(x->rip & 0xfff);
		n = n < sizeof(b) && read_gva(t, r, x->rip, b, n) == 0 ? n : 0;
	}
	if (n && vtl_mem_decode(b, n, &d) && d.op == VTL_MEM_OP_STRING && d.rep &&
	    (d.addr32 ? (uint32_t)x->rcx : x->rcx) != 0 &&
	    store_is(t, r, b, d.len, x, x->rip + d.len, gpa, size, data, old, g, &fl)) {
		gpr_to_regs(g, x);
		x->rflags = fl;
		return d.len;
	}
	n = sizeof(b);
	if (x->rip < n || read_gva(t, r, x->rip - n, b, n) < 0) {
		n = (unsigned)(x->rip & 0xfff); /* the bytes before RIP on its page */
		if (n > sizeof(b))
			n = sizeof(b);
		if (!n || read_gva(t, r, x->rip - n, b + sizeof(b) - n, n) < 0)
			return 0;
	}
	const uint8_t *end = b + sizeof(b);
	for (unsigned k = 1; k <= n; k++) {
		if (!store_is(t, r, end - k, k, x, x->rip, gpa, size, data, old, g, &fl))
			continue;
		uint64_t g2[16], fl2;
		while (k < n && (end[-(int)k - 1] == 0xF0 || end[-(int)k - 1] == 0xF2 ||
				 end[-(int)k - 1] == 0xF3) &&
		       store_is(t, r, end - k - 1, k + 1, x, x->rip, gpa, size, data, old, g2, &fl2)) {
			k++;
			memcpy(g, g2, sizeof(g2));
			fl = fl2;
		}
		gpr_to_regs(g, x);
		x->rflags = fl;
		x->rip -= k;
		return k;
	}
	return 0;
}

static void deliver_memory(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e, bool unmapped);

bool vtl_mmio(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	struct vm *vm = t->vm;
	uint64_t gpa = e->mmio.gpa;
	unsigned size = e->mmio.size;
	if (vtl_active(t, v) != 0 || size == 0 || size > 8)
		return false;
	uint8_t *p = gmem_map(&vm->mem, gpa, size);
	if (!p)
		return false; /* not RAM: a device's, as without VTLs */
	unsigned prot = vtl_mem_prot(&t->mem, gpa), last = vtl_mem_prot(&t->mem, gpa + size - 1);
	if (last < prot)
		prot = last;
	if (prot >= (e->mmio.write ? VTL_MEM_FULL : VTL_MEM_RO)) {
		/* Allowed: a slot was being replaced (vtl_mem_apply). Do it on RAM. */
		if (e->mmio.write)
			memcpy(p, e->mmio.data, size);
		else
			memcpy(e->mmio.data, p, size);
		return true;
	}
	deliver_memory(t, v, e, false);
	return true;
}

bool vtl_mmio_unmapped(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	if (vtl_active(t, v) != 0 || e->mmio.size == 0 || e->mmio.size > 8)
		return false;
	deliver_memory(t, v, e, true);
	return true;
}

/*
 * A VTL0 MMIO exit VTL2 must see: finish the exit so nothing stays pending
 * (and any further exit the same instruction makes: an RMW's write after
 * its read, REP iterations; reads as zeros, writes dropped), then put VTL0
 * back at the instruction (a read: as before it; a write, which the
 * emulator already retired: the store found before RIP, or the REP
 * iteration at RIP, undone by store_back) and deliver the GPA_INTERCEPT or
 * UNMAPPED_GPA message.
 */
static void deliver_memory(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e, bool unmapped)
{
	struct vm *vm = t->vm;
	uint64_t gpa = e->mmio.gpa, data = 0, old = 0;
	unsigned size = e->mmio.size;
	bool write = e->mmio.write;
	struct x86_regs pre, post;
	if (write)
		memcpy(&data, e->mmio.data, size);
	else
		memset(e->mmio.data, 0, 8);
	if (gmem_read(&vm->mem, gpa, &old, size) < 0)
		old = 0;
	int ret = vm->ops->vcpu_finish_exit ? vm->ops->vcpu_get_regs(v->av, &pre) : -ENOSYS;
	if (ret == 0)
		ret = vm->ops->vcpu_finish_exit(v->av, e);
	for (unsigned i = 0; ret == -EAGAIN && i < 4096; i++) {
		memset(e->mmio.data, 0, 8); /* a read gets zeros, a write is dropped */
		ret = vm->ops->vcpu_finish_exit(v->av, e);
	}
	if (ret == 0)
		ret = vm->ops->vcpu_get_regs(v->av, &post);
	if (ret < 0) {
		log_guest("vCPU %u: VTL0 access to protected 0x%" PRIx64 ": cannot finish the exit",
			  v->index, gpa);
		return;
	}
	struct vsm_regs r;
	struct vtl_mem_insn d;
	uint8_t b[15];
	unsigned len = 0;
	if (!write && post.rip != pre.rip && post.rip - pre.rip <= 15) {
		len = (unsigned)(post.rip - pre.rip);
	} else if (!write && get_x86(t, v->index, 0, &r) == 0 &&
		   read_gva(t, &r, pre.rip, b, sizeof(b)) == 0 && vtl_mem_decode(b, 15, &d)) {
		len = d.len; /* RIP did not move: a REP iteration */
	} else if (write && get_x86(t, v->index, 0, &r) == 0 &&
		   (len = store_back(t, &r, &pre, gpa, size, data, old)) != 0) {
		/* pre is the state before the store */
	} else {
		log_guest("vCPU %u: VTL0 %s of protected 0x%" PRIx64 ": instruction not found, "
			  "RIP left after it", v->index, write ? "write" : "read", gpa);
	}
	if (vm->ops->vcpu_set_regs(v->av, &pre) < 0 || get_x86(t, v->index, 0, &r)) {
		log_guest("vCPU %u: VTL0 intercept: cannot restore registers", v->index);
		return;
	}
	struct vsm_intercept_ctx c = { .vp = v->index, .vtl = 0, .cpl = r.cs.selector & 3,
		.access = write ? HV_INTERCEPT_ACCESS_TYPE_WRITE : HV_INTERCEPT_ACCESS_TYPE_READ,
		.regs = &r, .insn_len = (uint8_t)len };
	fetch_insn(t, &r, &c);
	uint64_t gva = 0;
	bool gva_valid = false;
	if (len && len <= c.insn_count && vtl_mem_decode(c.insn, len, &d) == len)
		gva_valid = vtl_mem_insn_ea(&d, c.insn, r.gpr, r.rip + len, write, &gva);
	else if (len && len <= c.insn_count)
		gva_valid = vtl_mem_mov_ea(c.insn, len, r.gpr, r.rip + len, &gva);
	uint8_t msg[HV_MESSAGE_SIZE];
	vsm_msg_memory(msg, &c, unmapped, gpa, gva, gva_valid);
	int st = vsm_deliver_intercept(t->vsm, v->index, msg);
	if (st)
		log_guest("vCPU %u: intercept of VTL0's access to 0x%" PRIx64 " not delivered "
			  "(status 0x%x)", v->index, gpa, st);
}

int vtl_hide(struct vtl *t, uint64_t base, uint64_t size)
{
	uint16_t st = vtl_mem_hide(&t->mem, base, size);
	if (st) {
		log_error("VTL2's memory 0x%" PRIx64 "+0x%" PRIx64 " cannot be hidden from VTL0 "
			  "(not RAM or too fragmented)", base, size);
		return -EINVAL;
	}
	int ret = vtl_mem_apply(&t->mem, t->vm->ops, t->accel[0]);
	if (ret == 0)
		log_debug("vtl: VTL2's memory 0x%" PRIx64 "+0x%" PRIx64 " hidden from VTL0", base,
			  size);
	return ret;
}
