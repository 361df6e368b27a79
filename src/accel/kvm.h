/*
 * Private state of the KVM backend, shared by kvm.c and kvm_pvm.c.
 */
#ifndef HVMM_ACCEL_KVM_H
#define HVMM_ACCEL_KVM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accel/accel.h"

#define KVM_ACCEL_MAX_SLOTS 64   /* --vtl2: VTL0 splits RAM around protected pages */

struct kvm_slot {
	uint64_t gpa, size;
	void *hva;
	bool used;
};

struct kvm_route {
	uint64_t addr;
	uint32_t data;
	bool valid;
};

struct kvm_accel {
	int kvm_fd, vm_fd;
	size_t run_size;
	bool pvm;        /* kvm_pvm: guest ring 0 is emulated; quirks on */
	bool has_hyperv;
	bool sync_regs;  /* kvm_run carries REGS and SREGS at every exit */
	struct kvm_slot slots[KVM_ACCEL_MAX_SLOTS];
	bool split;      /* split irqchip: routes[] is the whole GSI table */
	pthread_mutex_t route_lock;
	struct kvm_route routes[ACCEL_SPLIT_ROUTES];
};

struct kvm_vcpu {
	struct kvm_accel *k;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;     /* the thread that created it runs it */
	bool pending_msr;     /* the last exit was an MSR exit to complete */
	bool regs_synced;     /* run->s.regs.regs is current (sync regs, owner thread) */
	bool regs_foreign;    /* another thread set the registers since the last run */
	bool sregs_synced;    /* run->s.regs.sregs is current: an exit stored it, no
			       * SET_SREGS/SET_MSRS since (vcpu_get_sregs_synced) */
	/* PVM syscall fix-up (kvm_pvm.c) */
	uint64_t lstar;
	uint64_t pf_handler;  /* where the breakpoint sits */
	bool bp_armed;
	bool stepping;        /* single-stepping over the #PF breakpoint */
	uint64_t pvm_syscalls, pvm_fixups;
	uint64_t pvm_simd_exits, pvm_simd_insns; /* kvm_pvm_simd.c */
};

void *kvm_gpa_to_hva(struct kvm_accel *k, uint64_t gpa, uint64_t len);
int kvm_vcpu_get_regs(struct kvm_vcpu *v, struct x86_regs *r);
int kvm_vcpu_set_regs(struct kvm_vcpu *v, const struct x86_regs *r);
int kvm_vcpu_get_sregs(struct kvm_vcpu *v, struct x86_sregs *s);
int kvm_vcpu_set_sregs(struct kvm_vcpu *v, const struct x86_sregs *s);
int kvm_vcpu_get_msr(struct kvm_vcpu *v, uint32_t index, uint64_t *val);
int kvm_vcpu_set_msr(struct kvm_vcpu *v, uint32_t index, uint64_t val);

/* kvm_pvm.c: each returns true when it handled the exit (resume the guest). */
int kvm_pvm_vcpu_init(struct kvm_vcpu *v);
bool kvm_pvm_handle_msr(struct kvm_vcpu *v);
bool kvm_pvm_handle_debug(struct kvm_vcpu *v);
bool kvm_pvm_handle_emulation_failure(struct kvm_vcpu *v);
/* Injects exception `vector` (with CR2 for #PF). */
bool kvm_pvm_inject(struct kvm_vcpu *v, unsigned vector, bool has_err, uint32_t err,
		    uint64_t cr2);
/*
 * Copies guest linear memory through the guest's page tables; -EFAULT with
 * the faulting address and #PF error code when a page is absent/read-only.
 */
int kvm_pvm_linear_access(struct kvm_vcpu *v, uint64_t la, void *buf, size_t len,
			  bool write, uint64_t *fault, uint32_t *pferr);
struct x86_insn;
/* Linear address of a decoded memory operand (FS/GS bases applied). */
bool kvm_pvm_insn_ea(struct kvm_vcpu *v, const struct x86_regs *r,
		     const struct x86_insn *in, uint64_t *ea);
/* kvm_pvm_insn.c: popcnt, lsl, cmpxchg16b at r->rip. */
bool kvm_pvm_emulate_insn(struct kvm_vcpu *v, struct x86_regs *r,
			  const uint8_t *insn, unsigned n);
/* kvm_pvm_xsave.c: xsave/xsaveopt/xrstor/xgetbv/xsetbv at r->rip. */
bool kvm_pvm_emulate_xsave(struct kvm_vcpu *v, struct x86_regs *r,
			   const uint8_t *insn, unsigned n);
/*
 * The vCPU's XSAVE image as KVM_GET_XSAVE(2) gives it (standard format):
 * its size (>= 4096), a component's offset from host CPUID 0xD (0 if none),
 * get/set, and XCR0.
 */
size_t kvm_pvm_xsave_size(struct kvm_vcpu *v);
uint32_t kvm_pvm_xsave_offset(struct kvm_vcpu *v, unsigned comp);
int kvm_pvm_get_xsave(struct kvm_vcpu *v, uint8_t *buf);
int kvm_pvm_set_xsave(struct kvm_vcpu *v, const uint8_t *buf);
int kvm_pvm_get_xcr0(struct kvm_vcpu *v, uint64_t *xcr0);
/*
 * kvm_pvm_simd.c: SSE/AVX/AVX-512 integer instructions at r->rip (those the
 * Linux kernel runs in ring 0: BLAKE2s), then any that directly follow
 * them, against the vCPU's XSAVE state. Returns false, changing nothing, if
 * the first instruction is not one it emulates.
 */
bool kvm_pvm_emulate_simd(struct kvm_vcpu *v, struct x86_regs *r,
			  const uint8_t *insn, unsigned n);

#endif
