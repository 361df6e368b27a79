/*
 * --vtl2 wiring (TLFS "Virtual Secure Mode"; docs/ARCHITECTURE.md "Virtual
 * Trust Levels"): struct vsm_ops over the accel API, the VPs' VTL2 vCPUs,
 * VTL switches, interrupts for VTL2 (preemption, VINA), VTL2's timers and
 * the hypercall/MSR exit hooks of vm.c. VTL2 is a second accel partition
 * mapping the same guest RAM; a VP's thread owns one vCPU per VTL and
 * vm_vcpu.av is switched to the running VTL's. A switch (VtlCall,
 * VtlReturn) moves the shared general registers (all but RSP) through
 * KVM's sync-regs area and the XSAVE image when it changed. Intercepts of
 * VTL0's accesses are in vtl_intercept.c. Limits: see vtl.h.
 */
#include "core/vtl.h"
#include "core/vtl_impl.h"

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
int vtl_get_x86(struct vtl *t, uint32_t vp, unsigned vtl, struct vsm_regs *v)
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
 * intercepted instruction) are one deferred sync-regs write, no ioctl. The
 * private MSRs (one KVM_GET_MSRS) and the debug registers (one
 * KVM_GET_DEBUGREGS) are read only when vsm asks for them (op_get_regs_part:
 * a register of theirs was named).
 */
static int op_get_regs(void *o, uint32_t vp, unsigned vtl, struct vsm_regs *v)
{
	struct vtl *t = o;
	int st = vtl_get_x86(t, vp, vtl, v);
	if (st)
		return st;
	v->parts = 0;
	t->snap[vp].r = *v;
	t->snap[vp].vtl = vtl;
	t->snap[vp].valid = true;
	return HV_STATUS_SUCCESS;
}

static int op_get_regs_part(void *o, uint32_t vp, unsigned vtl, struct vsm_regs *v,
			    uint32_t parts)
{
	struct vtl *t = o;
	const struct accel_ops *ops = t->vm->ops;
	struct accel_vcpu *av = vcpu_of(t, vp, vtl);
	if (!av)
		return HV_STATUS_INVALID_PARAMETER;
	if (parts & VSM_REGS_MSRS) {
		uint32_t idx[N_PRIVATE_MSRS];
		uint64_t val[N_PRIVATE_MSRS] = { 0 };
		for (size_t i = 0; i < N_PRIVATE_MSRS; i++)
			idx[i] = private_msrs[i].msr;
		/* One KVM_GET_MSRS; an MSR the host lacks (e.g. TSC_AUX, last) reads as 0. */
		int got = ops->vcpu_get_msrs ? ops->vcpu_get_msrs(av, idx, val, N_PRIVATE_MSRS) : 0;
		for (size_t i = got < 0 ? 0 : (size_t)got; i < N_PRIVATE_MSRS; i++)
			if (ops->vcpu_get_msr(av, idx[i], &val[i]) < 0)
				val[i] = 0;
		for (size_t i = 0; i < N_PRIVATE_MSRS; i++)
			memcpy((uint8_t *)v + private_msrs[i].off, &val[i], 8);
	}
	if (parts & VSM_REGS_DEBUG) {
		uint64_t dr[6];
		if (!ops->vcpu_get_debugregs || ops->vcpu_get_debugregs(av, dr) < 0)
			return HV_STATUS_INVALID_PARAMETER;
		memcpy(v->dr, dr, sizeof(v->dr));
		v->dr6 = dr[4];
		v->dr7 = dr[5];
	}
	v->parts |= parts & VSM_REGS_ALL;
	/* The snapshot is the block vsm holds: keep it whole for op_set_regs. */
	if (t->snap[vp].valid && t->snap[vp].vtl == vtl) {
		uint32_t had = t->snap[vp].r.parts;
		t->snap[vp].r = *v;
		t->snap[vp].r.parts = had | (parts & VSM_REGS_ALL);
	}
	return HV_STATUS_SUCCESS;
}

/* v equals old outside the GPRs, RIP, RFLAGS and the optional parts. */
static bool same_sregs(const struct vsm_regs *v, const struct vsm_regs *old)
{
	struct vsm_regs a = *v;
	memcpy(a.gpr, old->gpr, sizeof(a.gpr));
	a.rip = old->rip;
	a.rflags = old->rflags;
	for (size_t i = 0; i < N_PRIVATE_MSRS; i++)
		memcpy((uint8_t *)&a + private_msrs[i].off,
		       (const uint8_t *)old + private_msrs[i].off, 8);
	memcpy(a.dr, old->dr, sizeof(a.dr));
	a.dr6 = old->dr6;
	a.dr7 = old->dr7;
	a.parts = old->parts;
	return memcmp(&a, old, sizeof(a)) == 0;
}

/* The private MSRs of v that differ from old's (or the vCPU's) are written. */
static int set_private_msrs(const struct accel_ops *ops, struct accel_vcpu *av,
			    const struct vsm_regs *v, const struct vsm_regs *old)
{
	for (size_t i = 0; i < N_PRIVATE_MSRS; i++) {
		uint64_t want, cur = 0;
		memcpy(&want, (const uint8_t *)v + private_msrs[i].off, 8);
		if (old && (old->parts & VSM_REGS_MSRS))
			memcpy(&cur, (const uint8_t *)old + private_msrs[i].off, 8);
		else if (ops->vcpu_get_msr(av, private_msrs[i].msr, &cur) < 0)
			cur = 0;
		if (cur != want) {
			int ret = ops->vcpu_set_msr(av, private_msrs[i].msr, want);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
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
	memset(&s, 0, sizeof(s));
	if (old && same_sregs(v, old)) {
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
	if (ret == 0 && (v->parts & VSM_REGS_MSRS))
		ret = set_private_msrs(ops, av, v, old);
	if (ret == 0 && (v->parts & VSM_REGS_DEBUG) &&
	    (!old || !(old->parts & VSM_REGS_DEBUG) || memcmp(v->dr, old->dr, sizeof(v->dr)) ||
	     v->dr6 != old->dr6 || v->dr7 != old->dr7)) {
		const uint64_t dr[6] = { v->dr[0], v->dr[1], v->dr[2], v->dr[3], v->dr6, v->dr7 };
		ret = ops->vcpu_set_debugregs ? ops->vcpu_set_debugregs(av, dr) : -ENOTSUP;
	}
	if (ret < 0) {
		log_guest("vtl: VP %u VTL%u: registers refused by the accelerator (%s; CR0 0x%" PRIx64
			  " CR4 0x%" PRIx64 " EFER 0x%" PRIx64 ")", vp, vtl, strerror(-ret), v->cr0,
			  v->cr4, v->efer);
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

/*
 * A route for a level-triggered message into VTL0 (vsm lock held), so that
 * its EOI exits (split irqchip; vtl_eoi). 0 or -errno.
 */
static int level_route(struct vtl *t, uint64_t addr, uint32_t data)
{
	const unsigned n = ACCEL_SPLIT_ROUTES - ACCEL_SPLIT_IOAPIC_PINS;
	for (unsigned i = 0; i < n; i++)
		if (t->level_route[i].used && t->level_route[i].addr == addr &&
		    t->level_route[i].data == data)
			return 0;
	unsigned i = t->level_next++ % n;
	const struct vm *vm = t->vm;
	int ret = vm->ops->set_msi_route ?
		vm->ops->set_msi_route(t->accel[0], ACCEL_SPLIT_IOAPIC_PINS + i, addr, data, true) :
		-ENOTSUP;
	t->level_route[i].used = ret == 0;
	t->level_route[i].addr = addr;
	t->level_route[i].data = data;
	return ret;
}

/* An MSI to an APIC (physical or logical destination), delivery mode dm. */
static int send_msi(struct vtl *t, unsigned vtl, uint64_t dest, bool logical, unsigned dm,
		    bool level, uint8_t vector)
{
	uint64_t addr = 0xFEE00000ull | (dest & 0xff) << 12 | (logical ? 1u << 2 : 0);
	uint32_t data = vector | dm << 8 | (level ? 1u << 14 | 1u << 15 : 0);
	if (level && vtl == 0 && t->vm->split_irqchip && level_route(t, addr, data) < 0)
		log_guest("vtl: no route for VTL0's level-triggered vector 0x%x: its EOI is not seen",
			  vector);
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
			bool level, uint8_t vector)
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
	    send_msi(t, vtl, dest, logical, dm, level && dm != 4, vector) < 0)
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
	/* VTL2's partition keeps the whole irqchip: nothing asks for its EOIs. */
	struct accel_config ac2 = *ac;
	ac2.split_irqchip = false;
	int ret = t->vcpu && t->pending && t->fpu && t->irq_pending && t->preempt_armed && t->snap ?
		vm->ops->create(&ac2, &t->accel[2]) : -ENOMEM;
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
	struct vsm_config vc = { .nvps = vm->nvcpus, .max_vtl = VSM_MAX_VTL,
		.eoi_intercepts = vm->split_irqchip, .ops = {
		.read_gpa = op_read_gpa, .write_gpa = op_write_gpa, .get_regs = op_get_regs,
		.get_regs_part = op_get_regs_part,
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
		  "alone, %lu APIC EOI intercepts", t->switches, t->fpu_copies, t->preempts, t->vinas,
		  t->regs_only_sets, t->eois_intercepted);
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
	if (got == 2 && send_msi(t, 2, vp, false, 0, false, vector) < 0)
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

bool vtl_shared_msr(struct vtl *t, struct vm_vcpu *v, struct accel_exit *e)
{
	static const uint32_t ranges[][2] = { VTL_SHARED_MSR_RANGES };
	bool shared = false;
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		shared = shared || (e->msr.index >= ranges[i][0] && e->msr.index <= ranges[i][1]);
	if (!shared)
		return false;
	const struct accel_ops *ops = t->vm->ops;
	unsigned vtl = vtl_active(t, v);
	struct accel_vcpu *cur = vcpu_of(t, v->index, vtl);
	if (e->reason == ACCEL_EXIT_MSR_READ) {
		e->msr.error = !cur || ops->vcpu_get_msr(cur, e->msr.index, &e->msr.data) < 0;
		if (e->msr.error)
			e->msr.data = 0;
		return true;
	}
	e->msr.error = !cur || ops->vcpu_set_msr(cur, e->msr.index, e->msr.data) < 0;
	if (e->msr.error)
		return true;
	/* The VP's other VTL (VTL0 <-> VTL2): its vCPU is run by this thread too. */
	struct accel_vcpu *other = vcpu_of(t, v->index, vtl == 0 ? 2 : 0);
	if (other && ops->vcpu_set_msr(other, e->msr.index, e->msr.data) < 0)
		log_warn("vCPU %u: shared MSR 0x%x not copied to VTL%u", v->index, e->msr.index,
			 vtl == 0 ? 2 : 0);
	return true;
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
