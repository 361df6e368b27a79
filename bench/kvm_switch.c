/*
 * bench/kvm_switch.c: what a VTL switch costs when each VTL is its own KVM
 * VM over one memfd (docs/ARCHITECTURE.md, "Virtual Trust Levels"). It
 * reports the host's capabilities that matter for that design (read-only
 * slots, guest_memfd memory attributes, slot and VM counts) and times, on
 * this machine's KVM:
 *   - the register ioctls a switch needs (GET/SET_REGS, GET/SET_SREGS,
 *     GET/SET_FPU for XMM, GET/SET_MSRS for the private MSRs);
 *   - a "shared state copy" (what a switch does: REGS+FPU from one vCPU fd
 *     to the other's);
 *   - a bare exit (KVM_RUN round trip on an `out`) and a simulated
 *     VTL0 -> VTL2 -> VTL0 round trip: VM A exits, shared state copied to
 *     VM B, B runs to its own `out`, copied back;
 *   - the whole intercepted port write as --vtl2 handles it (the message's
 *     GET_SREGS, VTL2's SetVpRegisters(RIP) exit and its register ops,
 *     the VtlReturn exit), with phase 3's and phase 2's register ops;
 *   - splitting a RAM slot into three (read-only page in the middle) and
 *     merging it back with KVM_SET_USER_MEMORY_REGION.
 * The guests are a real-mode `out 0x10, al; jmp $-2` loop.
 *
 * Build and run (not part of the meson build; needs /dev/kvm):
 *   cc -O2 -Wall -o /tmp/kvm_switch bench/kvm_switch.c && /tmp/kvm_switch [iters]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RAM (64ull << 20)
#define CODE 0x1000

#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif

struct vmx {
	int vm, vcpu;
	struct kvm_run *run;
};

static int kvm;

static void die(const char *what)
{
	fprintf(stderr, "kvm_switch: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void make_vm(struct vmx *x, void *ram)
{
	x->vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (x->vm < 0)
		die("KVM_CREATE_VM");
	if (ioctl(x->vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP");
	struct kvm_userspace_memory_region r = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = RAM,
		.userspace_addr = (uintptr_t)ram,
	};
	if (ioctl(x->vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	x->vcpu = ioctl(x->vm, KVM_CREATE_VCPU, 0);
	if (x->vcpu < 0)
		die("KVM_CREATE_VCPU");
	int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	x->run = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, x->vcpu, 0);
	if (x->run == MAP_FAILED)
		die("mmap kvm_run");
	struct kvm_sregs s;
	if (ioctl(x->vcpu, KVM_GET_SREGS, &s) < 0)
		die("KVM_GET_SREGS");
	s.cs.base = 0;
	s.cs.selector = 0;
	if (ioctl(x->vcpu, KVM_SET_SREGS, &s) < 0)
		die("KVM_SET_SREGS");
	struct kvm_regs g = { .rip = CODE, .rflags = 2 };
	if (ioctl(x->vcpu, KVM_SET_REGS, &g) < 0)
		die("KVM_SET_REGS");
}

static void run_to_out(struct vmx *x)
{
	for (;;) {
		if (ioctl(x->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN");
		}
		if (x->run->exit_reason == KVM_EXIT_IO)
			return;
		fprintf(stderr, "kvm_switch: unexpected exit %u\n", x->run->exit_reason);
		exit(1);
	}
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define REPS 5
/* Median of REPS batches of `iters`, ns per iteration. */
#define TIME(label, iters, ...)                                                 \
	do {                                                                  \
		double t_[REPS];                                              \
		for (int r_ = 0; r_ < REPS; r_++) {                           \
			double s_ = now_ns();                                 \
			for (long i_ = 0; i_ < (iters); i_++) {               \
				__VA_ARGS__;                                  \
			}                                                     \
			t_[r_] = (now_ns() - s_) / (iters);                   \
		}                                                             \
		qsort(t_, REPS, sizeof(double), cmp);                         \
		printf("%-44s %10.0f ns\n", label, t_[REPS / 2]);             \
	} while (0)

static const uint32_t private_msrs[] = {
	0x174, 0x175, 0x176,                    /* SYSENTER_CS/ESP/EIP */
	0xC0000081, 0xC0000082, 0xC0000083, 0xC0000084, /* STAR..SFMASK */
	0xC0000102,                             /* KERNEL_GS_BASE */
	0x277,                                  /* PAT */
	0xC0000103,                             /* TSC_AUX */
};
#define NMSR (sizeof(private_msrs) / sizeof(private_msrs[0]))
/* A KVM_GET/SET_MSRS buffer for up to NMSR entries. */
union msr_buf {
	struct kvm_msrs h;
	uint8_t bytes[sizeof(struct kvm_msrs) + NMSR * sizeof(struct kvm_msr_entry)];
};

/*
 * A VTL switch as hvmm does it: the shared GPRs through sync regs (RIP,
 * RSP, RFLAGS stay the target's), the leaving vCPU's XSAVE image read and
 * written into the target only when it differs from what the target holds.
 */
struct sw {
	struct vmx *a, *b;
	unsigned long xget;
	size_t xsz;
	uint8_t *cur, *img_a, *img_b;
};

static void switch_to(struct sw *w, struct vmx *from, struct vmx *to, uint8_t *to_img)
{
	struct kvm_regs *rf = &from->run->s.regs.regs, *rt = &to->run->s.regs.regs;
	uint64_t rip = rt->rip, rsp = rt->rsp, fl = rt->rflags;
	*rt = *rf;
	rt->rip = rip;
	rt->rsp = rsp;
	rt->rflags = fl;
	to->run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
	ioctl(from->vcpu, w->xget, w->cur);
	if (memcmp(w->cur, to_img, w->xsz)) {
		ioctl(to->vcpu, KVM_SET_XSAVE, w->cur);
		memcpy(to_img, w->cur, w->xsz);
	}
}

#define REGS_SREGS_IOCTL 0x1 /* the message's segments by GET_SREGS, not sync regs */
#define REGS_MSRS        0x2 /* SetVpRegisters reads the private MSRs (one GET_MSRS) */
#define REGS_PHASE2      0x4 /* phase 2's register ops (single-MSR ioctls, SET_SREGS) */

/*
 * The whole intercepted port write as --vtl2 handles it: A (VTL0) exits;
 * the message needs A's segments; the switch; B (VTL2) runs to its
 * SetVpRegisters(RIP) exit, which reads A's register block and writes the
 * new RIP back through A's sync regs; B runs again to its VtlReturn exit;
 * the switch back. Phase 2's register ops: GET_SREGS + 10 KVM_GET_MSRS (one
 * MSR each) to read, GET_SREGS, SET_SREGS (which reads first), SET_REGS and
 * 10 GET_MSRS to write.
 */
static void intercept_round_trip(struct sw *w, unsigned how, struct kvm_msrs *msrs)
{
	struct vmx *a = w->a, *b = w->b;
	struct kvm_sregs sregs;
	run_to_out(a);
	if (how & (REGS_SREGS_IOCTL | REGS_PHASE2))
		ioctl(a->vcpu, KVM_GET_SREGS, &sregs);      /* the message */
	else
		sregs = a->run->s.regs.sregs;
	switch_to(w, a, b, w->img_b);
	run_to_out(b);                                      /* SetVpRegisters(RIP) */
	if (how & REGS_PHASE2) {
		union msr_buf one;
		memset(&one, 0, sizeof(one));
		one.h.nmsrs = 1;
		ioctl(a->vcpu, KVM_GET_SREGS, &sregs);
		for (size_t m = 0; m < NMSR; m++) {
			one.h.entries[0].index = private_msrs[m];
			ioctl(a->vcpu, KVM_GET_MSRS, &one);
		}
		ioctl(a->vcpu, KVM_GET_SREGS, &sregs);
		ioctl(a->vcpu, KVM_GET_SREGS, &sregs);
		ioctl(a->vcpu, KVM_SET_SREGS, &sregs);
		struct kvm_regs regs = a->run->s.regs.regs;
		ioctl(a->vcpu, KVM_SET_REGS, &regs);
		for (size_t m = 0; m < NMSR; m++) {
			one.h.entries[0].index = private_msrs[m];
			ioctl(a->vcpu, KVM_GET_MSRS, &one);
		}
	} else {
		if (how & REGS_SREGS_IOCTL)
			ioctl(a->vcpu, KVM_GET_SREGS, &sregs);
		else
			sregs = a->run->s.regs.sregs;
		if (how & REGS_MSRS)
			ioctl(a->vcpu, KVM_GET_MSRS, msrs);
		a->run->kvm_dirty_regs = KVM_SYNC_X86_REGS; /* the new RIP */
	}
	run_to_out(b);                                      /* VtlReturn */
	switch_to(w, b, a, w->img_a);
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 20000;
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");

	static const struct { int cap; const char *name; } caps[] = {
		{ KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM" },
		{ KVM_CAP_USER_MEMORY2, "KVM_CAP_USER_MEMORY2" },
		{ KVM_CAP_MEMORY_ATTRIBUTES, "KVM_CAP_MEMORY_ATTRIBUTES" },
		{ KVM_CAP_GUEST_MEMFD, "KVM_CAP_GUEST_MEMFD" },
		{ KVM_CAP_VM_TYPES, "KVM_CAP_VM_TYPES" },
		{ KVM_CAP_NR_MEMSLOTS, "KVM_CAP_NR_MEMSLOTS" },
		{ KVM_CAP_MAX_VCPUS, "KVM_CAP_MAX_VCPUS" },
		{ KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS" },
		{ KVM_CAP_X86_USER_SPACE_MSR, "KVM_CAP_X86_USER_SPACE_MSR" },
		{ KVM_CAP_HYPERV, "KVM_CAP_HYPERV" },
		{ KVM_CAP_HYPERV_VP_INDEX, "KVM_CAP_HYPERV_VP_INDEX" },
		{ KVM_CAP_SET_GUEST_DEBUG, "KVM_CAP_SET_GUEST_DEBUG" },
		{ KVM_CAP_DIRTY_LOG_RING, "KVM_CAP_DIRTY_LOG_RING" },
	};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		printf("%-44s %10d\n", caps[i].name,
		       ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].cap));

	int mfd = memfd_create("vtl-ram", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, RAM) < 0)
		die("memfd");
	/* One memfd, one mapping per VM, as the design has it. */
	uint8_t *ram0 = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	uint8_t *ram2 = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (ram0 == MAP_FAILED || ram2 == MAP_FAILED)
		die("mmap");
	static const uint8_t loop[] = { 0xE6, 0x10, 0xEB, 0xFC }; /* out 0x10,al; jmp $-2 */
	memcpy(ram0 + CODE, loop, sizeof(loop));

	struct vmx a, b;
	make_vm(&a, ram0);
	make_vm(&b, ram2);

	/* How many VMs can one process hold (each a VTL of a partition)? */
	int extra[64], nextra = 0;
	while (nextra < 64 && (extra[nextra] = ioctl(kvm, KVM_CREATE_VM, 0)) >= 0)
		nextra++;
	printf("%-44s %10d\n", "extra VMs created (cap 64)", nextra);
	for (int i = 0; i < nextra; i++)
		close(extra[i]);

	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	union msr_buf msrs;
	memset(&msrs, 0, sizeof(msrs));
	msrs.h.nmsrs = NMSR;
	for (size_t i = 0; i < NMSR; i++)
		msrs.h.entries[i].index = private_msrs[i];
	int got = ioctl(a.vcpu, KVM_GET_MSRS, &msrs);
	printf("%-44s %10d of %zu\n", "private MSRs KVM_GET_MSRS returns", got, NMSR);
	msrs.h.nmsrs = got > 0 ? (uint32_t)got : 0;

	/* The floor every ioctl pays on this host. */
	TIME("getppid (a trivial system call)", iters, syscall(SYS_getppid));
	TIME("KVM_GET_REGS", iters, ioctl(a.vcpu, KVM_GET_REGS, &regs));
	TIME("KVM_SET_REGS", iters, ioctl(a.vcpu, KVM_SET_REGS, &regs));
	TIME("KVM_GET_SREGS", iters, ioctl(a.vcpu, KVM_GET_SREGS, &sregs));
	TIME("KVM_SET_SREGS", iters, ioctl(a.vcpu, KVM_SET_SREGS, &sregs));
	TIME("KVM_GET_FPU", iters, ioctl(a.vcpu, KVM_GET_FPU, &fpu));
	TIME("KVM_SET_FPU", iters, ioctl(a.vcpu, KVM_SET_FPU, &fpu));
	TIME("KVM_GET_MSRS (private set)", iters, ioctl(a.vcpu, KVM_GET_MSRS, &msrs.h));
	TIME("KVM_SET_MSRS (private set)", iters, ioctl(a.vcpu, KVM_SET_MSRS, &msrs.h));
	/* A switch: shared GPRs and XMM from the leaving VTL to the entering one. */
	TIME("shared copy REGS+FPU A->B (5 ioctls)", iters, {
		ioctl(a.vcpu, KVM_GET_REGS, &regs);
		ioctl(a.vcpu, KVM_GET_FPU, &fpu);
		struct kvm_regs rb;
		ioctl(b.vcpu, KVM_GET_REGS, &rb);
		regs.rip = rb.rip; regs.rsp = rb.rsp; regs.rflags = rb.rflags;
		ioctl(b.vcpu, KVM_SET_REGS, &regs);
		ioctl(b.vcpu, KVM_SET_FPU, &fpu);
	});

	long run_iters = iters / 4 ? iters / 4 : 1;
	TIME("bare exit (KVM_RUN to out, VM A)", run_iters, run_to_out(&a));
	TIME("VTL round trip: A out, copy, B out, copy", run_iters, {
		run_to_out(&a);
		ioctl(a.vcpu, KVM_GET_REGS, &regs);
		ioctl(a.vcpu, KVM_GET_FPU, &fpu);
		struct kvm_regs rb;
		ioctl(b.vcpu, KVM_GET_REGS, &rb);
		regs.rip = rb.rip; regs.rsp = rb.rsp; regs.rflags = rb.rflags;
		ioctl(b.vcpu, KVM_SET_REGS, &regs);
		ioctl(b.vcpu, KVM_SET_FPU, &fpu);
		run_to_out(&b);
		ioctl(b.vcpu, KVM_GET_REGS, &rb);
		ioctl(b.vcpu, KVM_GET_FPU, &fpu);
		ioctl(a.vcpu, KVM_GET_REGS, &regs);
		rb.rip = regs.rip; rb.rsp = regs.rsp; rb.rflags = regs.rflags;
		ioctl(a.vcpu, KVM_SET_REGS, &rb);
		ioctl(a.vcpu, KVM_SET_FPU, &fpu);
	});

	/*
	 * The same with KVM_CAP_SYNC_REGS: the GPRs travel in kvm_run (no
	 * GET/SET_REGS ioctls), leaving the FPU (XMM) copy as the only ioctls,
	 * and then without the FPU copy (a VTL that has not touched XMM).
	 */
	a.run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	b.run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	run_to_out(&a);
	run_to_out(&b);
	TIME("VTL round trip, sync regs + FPU copy", run_iters, {
		run_to_out(&a);
		struct kvm_regs *ra = &a.run->s.regs.regs, *rb = &b.run->s.regs.regs;
		uint64_t rip = rb->rip, rsp = rb->rsp, fl = rb->rflags;
		*rb = *ra; rb->rip = rip; rb->rsp = rsp; rb->rflags = fl;
		b.run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
		ioctl(a.vcpu, KVM_GET_FPU, &fpu);
		ioctl(b.vcpu, KVM_SET_FPU, &fpu);
		run_to_out(&b);
		rip = ra->rip; rsp = ra->rsp; fl = ra->rflags;
		*ra = *rb; ra->rip = rip; ra->rsp = rsp; ra->rflags = fl;
		a.run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
		ioctl(b.vcpu, KVM_GET_FPU, &fpu);
		ioctl(a.vcpu, KVM_SET_FPU, &fpu);
	});
	TIME("VTL round trip, sync regs, no FPU copy", run_iters, {
		run_to_out(&a);
		struct kvm_regs *ra = &a.run->s.regs.regs, *rb = &b.run->s.regs.regs;
		uint64_t rip = rb->rip, rsp = rb->rsp, fl = rb->rflags;
		*rb = *ra; rb->rip = rip; rb->rsp = rsp; rb->rflags = fl;
		b.run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
		run_to_out(&b);
		rip = ra->rip; rsp = ra->rsp; fl = ra->rflags;
		*ra = *rb; ra->rip = rip; ra->rsp = rsp; ra->rflags = fl;
		a.run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
	});
	TIME("bare exit with sync regs", run_iters, run_to_out(&a));
	/*
	 * hvmm's scheme for x87/XMM (src/core/vtl.c carry_fpu): the whole XSAVE
	 * image of the leaving vCPU (one ioctl), written into the target only
	 * when it differs from what the target holds (here it never does: the
	 * guests touch no FPU state). First with the GPRs in sync regs, then
	 * with the GPRs by GET/SET_REGS ioctls as the wiring does today.
	 */
	int xs = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	size_t xsz = xs > 4096 ? (size_t)xs : 4096;
	unsigned long xget = xs > 4096 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
	uint8_t *xcur = calloc(1, xsz), *ximg_a = calloc(1, xsz), *ximg_b = calloc(1, xsz);
	if (!xcur || !ximg_a || !ximg_b)
		die("calloc");
	ioctl(a.vcpu, xget, ximg_a);
	ioctl(b.vcpu, xget, ximg_b);
	TIME("KVM_GET_XSAVE(2)", iters, ioctl(a.vcpu, xget, xcur));
	TIME("KVM_SET_XSAVE", iters, ioctl(a.vcpu, KVM_SET_XSAVE, xcur));
	struct sw sw = { .a = &a, .b = &b, .xget = xget, .xsz = xsz, .cur = xcur,
			 .img_a = ximg_a, .img_b = ximg_b };
	TIME("VTL round trip, sync regs + XSAVE GET, SET on change", run_iters, {
		run_to_out(&a);
		switch_to(&sw, &a, &b, ximg_b);
		run_to_out(&b);
		switch_to(&sw, &b, &a, ximg_a);
	});
	/*
	 * The whole intercepted port write as --vtl2 handles it: A (VTL0)
	 * exits; the message needs A's segments (GET_SREGS); the switch reads
	 * A's XSAVE; B (VTL2) runs to its SetVpRegisters(RIP) exit, which reads
	 * A's register block and writes the new RIP back; B runs again to its
	 * VtlReturn exit; the switch reads B's XSAVE. Phase 3's register ops:
	 * GET_SREGS + one KVM_GET_MSRS, the RIP through A's sync regs. Phase
	 * 2's: GET_SREGS + 10 KVM_GET_MSRS (one MSR each) to read, GET_SREGS,
	 * SET_SREGS (which reads first), SET_REGS and 10 GET_MSRS to write.
	 */
	/* hvmm has KVM store REGS and SREGS at every exit (kvm.c): so do these. */
	a.run->kvm_valid_regs = b.run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	TIME("bare exit with sync regs + sregs", run_iters, run_to_out(&a));
	TIME("intercept round trip, phase 3, GET_SREGS ioctls", run_iters,
	     intercept_round_trip(&sw, REGS_SREGS_IOCTL | REGS_MSRS, &msrs.h));
	TIME("intercept round trip, phase 3 + synced sregs", run_iters,
	     intercept_round_trip(&sw, REGS_MSRS, &msrs.h));
	TIME("intercept round trip, registers on demand", run_iters,
	     intercept_round_trip(&sw, 0, &msrs.h));
	TIME("intercept round trip, phase 2 register ops", run_iters,
	     intercept_round_trip(&sw, REGS_PHASE2, &msrs.h));
	TIME("the same 3 exits alone (A out, B out, B out)", run_iters, {
		run_to_out(&a);
		run_to_out(&b);
		run_to_out(&b);
	});
	a.run->kvm_valid_regs = b.run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	a.run->kvm_valid_regs = 0;
	b.run->kvm_valid_regs = 0;
	TIME("VTL round trip, REGS ioctls + XSAVE GET, SET on change", run_iters, {
		run_to_out(&a);
		struct kvm_regs rb;
		ioctl(a.vcpu, KVM_GET_REGS, &regs);
		ioctl(b.vcpu, KVM_GET_REGS, &rb);
		regs.rip = rb.rip; regs.rsp = rb.rsp; regs.rflags = rb.rflags;
		ioctl(b.vcpu, KVM_SET_REGS, &regs);
		ioctl(a.vcpu, xget, xcur);
		if (memcmp(xcur, ximg_b, xsz)) {
			ioctl(b.vcpu, KVM_SET_XSAVE, xcur);
			memcpy(ximg_b, xcur, xsz);
		}
		run_to_out(&b);
		ioctl(b.vcpu, KVM_GET_REGS, &rb);
		ioctl(a.vcpu, KVM_GET_REGS, &regs);
		rb.rip = regs.rip; rb.rsp = regs.rsp; rb.rflags = regs.rflags;
		ioctl(a.vcpu, KVM_SET_REGS, &rb);
		ioctl(b.vcpu, xget, xcur);
		if (memcmp(xcur, ximg_a, xsz)) {
			ioctl(a.vcpu, KVM_SET_XSAVE, xcur);
			memcpy(ximg_a, xcur, xsz);
		}
	});
	free(xcur);
	free(ximg_a);
	free(ximg_b);

	/* Protect one page in the middle of VTL0's slot: split into three
	 * (the middle read-only), then merge back. */
	long split_iters = iters / 20 ? iters / 20 : 1;
	uint64_t mid = 32ull << 20;
	TIME("memslot split (1 -> 3, RO page) + merge", split_iters, {
		struct kvm_userspace_memory_region r = { .slot = 0 };
		ioctl(a.vm, KVM_SET_USER_MEMORY_REGION, &r); /* delete */
		r = (struct kvm_userspace_memory_region){ .slot = 0,
			.guest_phys_addr = 0, .memory_size = mid,
			.userspace_addr = (uintptr_t)ram0 };
		if (ioctl(a.vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("split lo");
		r = (struct kvm_userspace_memory_region){ .slot = 1,
			.flags = KVM_MEM_READONLY, .guest_phys_addr = mid,
			.memory_size = 4096, .userspace_addr = (uintptr_t)ram0 + mid };
		if (ioctl(a.vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("split ro");
		r = (struct kvm_userspace_memory_region){ .slot = 2,
			.guest_phys_addr = mid + 4096, .memory_size = RAM - mid - 4096,
			.userspace_addr = (uintptr_t)ram0 + mid + 4096 };
		if (ioctl(a.vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("split hi");
		for (unsigned s = 0; s < 3; s++) {
			r = (struct kvm_userspace_memory_region){ .slot = s };
			ioctl(a.vm, KVM_SET_USER_MEMORY_REGION, &r);
		}
		r = (struct kvm_userspace_memory_region){ .slot = 0,
			.guest_phys_addr = 0, .memory_size = RAM,
			.userspace_addr = (uintptr_t)ram0 };
		if (ioctl(a.vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("merge");
	});
	/* The guest still runs after all that. */
	run_to_out(&a);
	printf("ok\n");
	return 0;
}
