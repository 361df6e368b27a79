/*
 * Work-arounds for KVM on PVM (module kvm_pvm), where guest ring 0 runs
 * through KVM's instruction emulator. Facts: shared/docs/pvm-notes.md.
 *
 *  - `syscall` from guest ring 3 lands at LSTAR with CS/SS still at the user
 *    selectors; the fetch then faults (#PF at LSTAR from ring 3). We trap
 *    writes of LSTAR, put a hardware execute breakpoint on the guest's #PF
 *    handler and, when the fault is that one, discard it and enter LSTAR in
 *    ring 0 with STAR's selectors and SFMASK applied, as the CPU should have.
 *  - Instructions the emulator lacks end in an emulation failure. The ones a
 *    Linux guest reaches even with CPUID trimmed (int3, clac/stac, fwait,
 *    rdtscp) are emulated here; the XSAVE family in kvm_pvm_xsave.c,
 *    popcnt/lsl/cmpxchg16b in kvm_pvm_insn.c, SSE/AVX/AVX-512 integer
 *    instructions (BLAKE2s) in kvm_pvm_simd.c.
 * None of this is active on hardware KVM.
 */
#include "accel/kvm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"

#define DR7_L0 (1ULL << 0)
#define DR7_FIXED_1 (1ULL << 10)

/*
 * Either the breakpoint on the #PF handler, or (stepping over it) a single
 * step with the breakpoint off.
 */
static int set_debug(struct kvm_vcpu *v, bool step)
{
	struct kvm_guest_debug dbg;
	memset(&dbg, 0, sizeof(dbg));
	dbg.control = KVM_GUESTDBG_ENABLE;
	if (step) {
		dbg.control |= KVM_GUESTDBG_SINGLESTEP;
	} else {
		dbg.control |= KVM_GUESTDBG_USE_HW_BP;
		dbg.arch.debugreg[0] = v->pf_handler;
		dbg.arch.debugreg[7] = DR7_FIXED_1 | DR7_L0; /* RW0=00 (exec), LEN0=00 */
	}
	if (ioctl(v->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0)
		return -errno;
	v->stepping = step;
	return 0;
}

/*
 * Arms an execute breakpoint on the guest's #PF handler (IDT vector 14).
 * Guest ring 0 runs through KVM's emulator, which honours breakpoints, so
 * every #PF delivery reaches hvmm first; kvm_pvm_handle_debug() recognises
 * the ones a broken syscall produced.
 */
static int arm_syscall_bp(struct kvm_vcpu *v)
{
	struct x86_sregs s;
	uint8_t gate[16];
	uint64_t fault;
	uint32_t pferr;
	int ret = kvm_vcpu_get_sregs(v, &s);
	if (ret < 0)
		return ret;
	if (s.idt.limit < 14 * 16 + 15)
		return -ENOENT;
	ret = kvm_pvm_linear_access(v, s.idt.base + 14 * 16, gate, sizeof(gate), false,
				    &fault, &pferr);
	if (ret < 0)
		return ret;
	uint64_t handler = (uint64_t)gate[0] | (uint64_t)gate[1] << 8 |
			   (uint64_t)gate[6] << 16 | (uint64_t)gate[7] << 24 |
			   (uint64_t)gate[8] << 32 | (uint64_t)gate[9] << 40 |
			   (uint64_t)gate[10] << 48 | (uint64_t)gate[11] << 56;
	v->pf_handler = handler;
	v->bp_armed = true;
	return set_debug(v, false);
}

int kvm_pvm_vcpu_init(struct kvm_vcpu *v)
{
	v->lstar = 0;
	v->bp_armed = false;
	return 0;
}

bool kvm_pvm_handle_msr(struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	if (run->exit_reason != KVM_EXIT_X86_WRMSR || run->msr.index != MSR_LSTAR)
		return false;
	uint64_t val = run->msr.data;
	/* Host-initiated writes bypass the filter. */
	if (kvm_vcpu_set_msr(v, MSR_LSTAR, val) < 0) {
		run->msr.error = 1;
		return true;
	}
	run->msr.error = 0;
	v->lstar = val;
	int ret = arm_syscall_bp(v);
	log_debug("vCPU %u: LSTAR = 0x%llx, #PF handler breakpoint %s (0x%llx)",
		  v->index, (unsigned long long)val, ret < 0 ? "failed" : "armed",
		  (unsigned long long)v->pf_handler);
	if (ret < 0)
		log_error("vCPU %u: cannot set the syscall breakpoint: %s", v->index,
			  strerror(-ret));
	return true;
}

static void kernel_seg(struct x86_segment *s, uint16_t sel, bool code)
{
	*s = (struct x86_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel,
		.type = code ? 0xb : 0x3, .present = 1, .dpl = 0,
		.db = code ? 0 : 1, .s = 1, .l = code ? 1 : 0, .g = 1,
	};
}

/*
 * A debug exit at the #PF handler. If the fault is the one a broken syscall
 * causes (ring-3 fetch at LSTAR, CR2 == LSTAR), undo the exception delivery
 * and finish the syscall as the CPU should have: kernel CS/SS from STAR,
 * RFLAGS masked by SFMASK, user RSP kept, RCX/R11 as syscall left them.
 * Other page faults continue into the handler.
 */
bool kvm_pvm_handle_debug(struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	if (v->stepping) /* stepped past the handler's first instruction */
		return set_debug(v, false) == 0;
	if (!v->bp_armed || run->debug.arch.pc != v->pf_handler) {
		log_debug("vCPU %u: debug exit at 0x%llx (exception %u)", v->index,
			  (unsigned long long)run->debug.arch.pc, run->debug.arch.exception);
		return false;
	}
	struct x86_regs r;
	struct x86_sregs s;
	if (kvm_vcpu_get_regs(v, &r) < 0 || kvm_vcpu_get_sregs(v, &s) < 0)
		return false;
	uint64_t frame[6]; /* error code, RIP, CS, RFLAGS, RSP, SS */
	uint64_t fault;
	uint32_t pferr;
	bool syscall = false;
	if (kvm_pvm_linear_access(v, r.rsp, frame, sizeof(frame), false, &fault,
				  &pferr) == 0)
		syscall = frame[1] == v->lstar && (frame[2] & 3) == 3 && s.cr2 == v->lstar;
	if (syscall) {
		uint64_t star = 0, sfmask = 0;
		if (kvm_vcpu_get_msr(v, MSR_STAR, &star) < 0 ||
		    kvm_vcpu_get_msr(v, MSR_SYSCALL_MASK, &sfmask) < 0)
			return false;
		uint16_t cs = (uint16_t)((star >> 32) & 0xfffc);
		kernel_seg(&s.cs, cs, true);
		kernel_seg(&s.ss, (uint16_t)(cs + 8), false);
		if (kvm_vcpu_set_sregs(v, &s) < 0)
			return false;
		r.rip = v->lstar;
		r.rsp = frame[4];
		r.rflags = (frame[3] & ~sfmask & ~X86_RFLAGS_RF) | 0x2;
		v->pvm_fixups++;
		if (v->pvm_fixups <= 3 || (v->pvm_fixups & (v->pvm_fixups - 1)) == 0)
			log_debug("vCPU %u: syscall #%llu fixed up (nr %llu, user rsp 0x%llx)",
				  v->index, (unsigned long long)v->pvm_fixups,
				  (unsigned long long)r.rax, (unsigned long long)frame[4]);
		return kvm_vcpu_set_regs(v, &r) == 0;
	}
	v->pvm_syscalls++;
	if ((v->pvm_syscalls & (v->pvm_syscalls - 1)) == 0)
		log_debug("vCPU %u: page fault #%llu at 0x%llx rip 0x%llx err 0x%llx",
			  v->index, (unsigned long long)v->pvm_syscalls,
			  (unsigned long long)s.cr2, (unsigned long long)frame[1],
			  (unsigned long long)frame[0]);
	/*
	 * A genuine #PF: step over the breakpoint, then re-arm it. (Resuming
	 * with RFLAGS.RF set through KVM_SET_REGS instead left kvm_pvm
	 * retrying a faulting `rep stos` forever.)
	 */
	return set_debug(v, true) == 0;
}

static int inject_exception(struct kvm_vcpu *v, unsigned vector)
{
	struct kvm_vcpu_events ev;
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	ev.exception.injected = 1;
	ev.exception.nr = (uint8_t)vector;
	ev.exception.has_error_code = 0;
	ev.exception.error_code = 0;
	ev.flags = 0;
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	return 0;
}

/* Copies up to 15 bytes at the guest's RIP. Returns the count, 0 if none. */
static unsigned fetch_insn(struct kvm_vcpu *v, uint64_t rip, uint8_t *buf)
{
	struct kvm_run *run = v->run;
	if (run->emulation_failure.ndata >= 3 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		unsigned n = run->emulation_failure.insn_size;
		if (n > 15)
			n = 15;
		memcpy(buf, run->emulation_failure.insn_bytes, n);
		return n;
	}
	struct kvm_translation tr = { .linear_address = rip };
	if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return 0;
	/* Stay within the page: the next one may map elsewhere. */
	unsigned n = 15;
	if ((tr.physical_address & 0xfff) + n > 0x1000)
		n = 0x1000 - (unsigned)(tr.physical_address & 0xfff);
	const void *p = kvm_gpa_to_hva(v->k, tr.physical_address, n);
	if (!p)
		return 0;
	memcpy(buf, p, n);
	return n;
}

bool kvm_pvm_handle_emulation_failure(struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	struct x86_regs r;
	uint8_t insn[15];

	if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION)
		return false;
	if (kvm_vcpu_get_regs(v, &r) < 0)
		return false;
	unsigned n = fetch_insn(v, r.rip, insn);
	if (n == 0)
		return false;

	if (insn[0] == 0xcc) { /* int3: a trap; #BP is reported after it */
		r.rip += 1;
		return kvm_vcpu_set_regs(v, &r) == 0 && inject_exception(v, 3) == 0;
	}
	if (insn[0] == 0x9b) { /* fwait: no unmasked x87 exceptions pending */
		r.rip += 1;
		return kvm_vcpu_set_regs(v, &r) == 0;
	}
	if (n >= 3 && insn[0] == 0x0f && insn[1] == 0x01) {
		switch (insn[2]) {
		case 0xca: /* clac */
			r.rflags &= ~X86_RFLAGS_AC;
			r.rip += 3;
			return kvm_vcpu_set_regs(v, &r) == 0;
		case 0xcb: /* stac */
			r.rflags |= X86_RFLAGS_AC;
			r.rip += 3;
			return kvm_vcpu_set_regs(v, &r) == 0;
		case 0xf9: { /* rdtscp */
			uint64_t tsc, aux = 0;
			if (kvm_vcpu_get_msr(v, 0x10, &tsc) < 0)
				return false;
			(void)kvm_vcpu_get_msr(v, 0xc0000103, &aux);
			r.rax = (uint32_t)tsc;
			r.rdx = (uint32_t)(tsc >> 32);
			r.rcx = (uint32_t)aux;
			r.rip += 3;
			return kvm_vcpu_set_regs(v, &r) == 0;
		}
		}
	}
	return kvm_pvm_emulate_xsave(v, &r, insn, n) ||
	       kvm_pvm_emulate_insn(v, &r, insn, n) ||
	       kvm_pvm_emulate_simd(v, &r, insn, n);
}
