/*
 * KVM backend of the accelerator interface (accel.h): a VM with an in-kernel
 * irqchip (LAPIC, IOAPIC, PIC) and PIT, or with a split irqchip (only the
 * LAPICs in the kernel, KVM_CAP_SPLIT_IRQCHIP; the core's IOAPIC sends MSIs
 * and mirrors its pins into MSI routes so that KVM_EXIT_IOAPIC_EOI reports
 * level-triggered EOIs), user-space MSR exits through an MSR
 * filter, and one struct kvm_run per vCPU. On a PVM host (module kvm_pvm,
 * guest ring 0 emulated) the quirks in kvm_pvm.c are handled here, inside
 * vcpu_run, so the core only ever sees ordinary exits.
 */
#include "accel/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

#define KVM_KICK_SIGNAL SIGUSR1

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN with EINTR */
}

static bool detect_pvm(void)
{
	struct stat st;
	if (getenv("HVMM_FORCE_PVM_QUIRKS"))
		return true;
	return stat("/sys/module/kvm_pvm", &st) == 0;
}

static int set_msr_filter(struct kvm_accel *k, const struct accel_config *cfg)
{
	static uint8_t deny_bitmap[1024]; /* all zero: every MSR in range denied */
	struct kvm_msr_filter f;
	unsigned n = 0;

	memset(&f, 0, sizeof(f));
	f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	for (size_t i = 0; i < cfg->ntrap_msrs && n < KVM_MSR_FILTER_MAX_RANGES; i++) {
		f.ranges[n++] = (struct kvm_msr_filter_range){
			.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			.nmsrs = 1,
			.base = cfg->trap_msrs[i],
			.bitmap = deny_bitmap,
		};
	}
	for (size_t i = 0; i < cfg->ntrap_msr_ranges && n < KVM_MSR_FILTER_MAX_RANGES; i++) {
		uint32_t first = cfg->trap_msr_ranges[i][0];
		uint32_t last = cfg->trap_msr_ranges[i][1];
		if (last < first || last - first + 1 > sizeof(deny_bitmap) * 8)
			return -EINVAL;
		f.ranges[n++] = (struct kvm_msr_filter_range){
			.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			.nmsrs = last - first + 1,
			.base = first,
			.bitmap = deny_bitmap,
		};
	}
	if (k->pvm && n < KVM_MSR_FILTER_MAX_RANGES) {
		/* Writes of LSTAR move the syscall breakpoint (kvm_pvm.c). */
		f.ranges[n++] = (struct kvm_msr_filter_range){
			.flags = KVM_MSR_FILTER_WRITE,
			.nmsrs = 1,
			.base = MSR_LSTAR,
			.bitmap = deny_bitmap,
		};
	}
	if (n == 0)
		return 0;
	if (ioctl(k->vm_fd, KVM_X86_SET_MSR_FILTER, &f) < 0)
		return -errno;
	return 0;
}

static int kvm_create(const struct accel_config *cfg, struct accel **out)
{
	struct kvm_accel *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	k->kvm_fd = k->vm_fd = -1;
	pthread_mutex_init(&k->route_lock, NULL);
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		ret = -errno;
		goto fail;
	}
	if (ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		log_error("/dev/kvm: unsupported KVM API version");
		ret = -ENOTSUP;
		goto fail;
	}
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		ret = -errno;
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	int sz = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz <= 0) {
		ret = -EINVAL;
		goto fail;
	}
	k->run_size = (size_t)sz;
	k->pvm = detect_pvm();
	k->has_hyperv = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_HYPERV) > 0;

	/* Needed by VMX; harmless elsewhere, so failures are not fatal. */
	(void)ioctl(k->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL);
	uint64_t idmap = 0xfffbc000;
	(void)ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);

	if (cfg->split_irqchip) {
		/* Routes [0, ACCEL_SPLIT_ROUTES) count as IOAPIC pins for EOI exits. */
		struct kvm_enable_cap split = {
			.cap = KVM_CAP_SPLIT_IRQCHIP, .args[0] = ACCEL_SPLIT_ROUTES,
		};
		if (ioctl(k->vm_fd, KVM_ENABLE_CAP, &split) < 0) {
			ret = -errno;
			log_error("KVM_CAP_SPLIT_IRQCHIP: %s", strerror(errno));
			goto fail;
		}
		k->split = true;
	} else {
		if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
			ret = -errno;
			log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
			goto fail;
		}
		struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
		if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
			ret = -errno;
			log_error("KVM_CREATE_PIT2: %s", strerror(errno));
			goto fail;
		}
	}

	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_X86_USER_SPACE_MSR,
		.args[0] = KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN,
	};
	if (ioctl(k->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		ret = -errno;
		log_error("KVM_CAP_X86_USER_SPACE_MSR: %s", strerror(errno));
		goto fail;
	}
	if (cfg->fast_exit_regs) {
		int sr = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
		unsigned want = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		k->sync_regs = sr > 0 && ((unsigned)sr & want) == want;
	}
	ret = set_msr_filter(k, cfg);
	if (ret < 0) {
		log_error("KVM_X86_SET_MSR_FILTER: %s", strerror(-ret));
		goto fail;
	}

	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	sigaction(KVM_KICK_SIGNAL, &sa, NULL);

	*out = (struct accel *)k;
	return 0;
fail:
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	free(k);
	return ret;
}

static void kvm_destroy(struct accel *a)
{
	struct kvm_accel *k = (struct kvm_accel *)a;
	close(k->vm_fd);
	close(k->kvm_fd);
	pthread_mutex_destroy(&k->route_lock);
	free(k);
}

static void kvm_get_info(struct accel *a, struct accel_info *info)
{
	struct kvm_accel *k = (struct kvm_accel *)a;
	info->ring0_emulated = k->pvm;
	info->has_hyperv = k->has_hyperv;
	info->name = k->pvm ? "kvm (pvm)" : "kvm";
}

static int kvm_map_memory(struct accel *a, unsigned slot, uint64_t gpa,
			  uint64_t size, void *hva, bool readonly)
{
	struct kvm_accel *k = (struct kvm_accel *)a;
	if (slot >= KVM_ACCEL_MAX_SLOTS)
		return -EINVAL;
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = readonly ? KVM_MEM_READONLY : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};
	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	k->slots[slot] = (struct kvm_slot){ gpa, size, hva, true };
	return 0;
}

static int kvm_unmap_memory(struct accel *a, unsigned slot)
{
	struct kvm_accel *k = (struct kvm_accel *)a;
	if (slot >= KVM_ACCEL_MAX_SLOTS)
		return -EINVAL;
	struct kvm_userspace_memory_region r = { .slot = slot };
	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	k->slots[slot].used = false;
	return 0;
}

void *kvm_gpa_to_hva(struct kvm_accel *k, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < KVM_ACCEL_MAX_SLOTS; i++) {
		struct kvm_slot *s = &k->slots[i];
		if (s->used && gpa >= s->gpa && gpa - s->gpa <= s->size &&
		    len <= s->size - (gpa - s->gpa))
			return (uint8_t *)s->hva + (gpa - s->gpa);
	}
	return NULL;
}

static int kvm_get_supported_cpuid(struct accel *a, struct accel_cpuid_entry *e,
				   size_t *n)
{
	struct kvm_accel *k = (struct kvm_accel *)a;
	const unsigned max = 256;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = max;
	if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int ret = -errno;
		free(c);
		return ret;
	}
	size_t cnt = c->nent < *n ? c->nent : *n;
	for (size_t i = 0; i < cnt; i++) {
		struct kvm_cpuid_entry2 *s = &c->entries[i];
		e[i] = (struct accel_cpuid_entry){
			.function = s->function, .index = s->index,
			.index_significant = s->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
			.eax = s->eax, .ebx = s->ebx, .ecx = s->ecx, .edx = s->edx,
		};
	}
	*n = cnt;
	free(c);
	return 0;
}

static int kvm_irq_line(struct accel *a, unsigned gsi, int level)
{
	struct kvm_accel *k = (struct kvm_accel *)a;
	if (k->split)
		return -ENOTSUP;
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };
	if (ioctl(k->vm_fd, KVM_IRQ_LINE, &l) < 0)
		return -errno;
	return 0;
}

static int kvm_signal_msi(struct accel *a, uint64_t addr, uint32_t data)
{
	struct kvm_accel *k = (struct kvm_accel *)a;
	struct kvm_msi msi = {
		.address_lo = (uint32_t)addr,
		.address_hi = (uint32_t)(addr >> 32),
		.data = data,
	};
	if (ioctl(k->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		return -errno;
	return 0;
}

static int kvm_set_msi_route(struct accel *a, unsigned gsi, uint64_t addr, uint32_t data,
			     bool valid)
{
	struct kvm_accel *k = (struct kvm_accel *)a;
	if (!k->split)
		return -ENOTSUP;
	if (gsi >= ACCEL_SPLIT_ROUTES)
		return -EINVAL;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + ACCEL_SPLIT_ROUTES * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	pthread_mutex_lock(&k->route_lock);
	k->routes[gsi] = (struct kvm_route){ .addr = addr, .data = data, .valid = valid };
	for (unsigned i = 0; i < ACCEL_SPLIT_ROUTES; i++) {
		const struct kvm_route *r = &k->routes[i];
		if (!r->valid)
			continue;
		struct kvm_irq_routing_entry *e = &t->entries[t->nr++];
		e->gsi = i;
		e->type = KVM_IRQ_ROUTING_MSI;
		e->u.msi.address_lo = (uint32_t)r->addr;
		e->u.msi.address_hi = (uint32_t)(r->addr >> 32);
		e->u.msi.data = r->data;
	}
	int ret = ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, t) < 0 ? -errno : 0;
	pthread_mutex_unlock(&k->route_lock);
	free(t);
	return ret;
}

static int kvm_vcpu_create(struct accel *a, unsigned index, struct accel_vcpu **out)
{
	struct kvm_accel *k = (struct kvm_accel *)a;
	struct kvm_vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->k = k;
	v->index = index;
	v->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		int ret = -errno;
		free(v);
		return ret;
	}
	v->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		int ret = -errno;
		close(v->fd);
		free(v);
		return ret;
	}
	v->thread = pthread_self();
	if (k->sync_regs) /* KVM copies them out at every exit from now on */
		v->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	if (k->pvm) {
		int ret = kvm_pvm_vcpu_init(v);
		if (ret < 0) {
			munmap(v->run, k->run_size);
			close(v->fd);
			free(v);
			return ret;
		}
	}
	*out = (struct accel_vcpu *)v;
	return 0;
}

static void kvm_vcpu_destroy(struct accel_vcpu *av)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	munmap(v->run, v->k->run_size);
	close(v->fd);
	free(v);
}

static int kvm_vcpu_set_cpuid(struct accel_vcpu *av, const struct accel_cpuid_entry *e,
			      size_t n)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		c->entries[i] = (struct kvm_cpuid_entry2){
			.function = e[i].function, .index = e[i].index,
			.flags = e[i].index_significant ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
			.eax = e[i].eax, .ebx = e[i].ebx, .ecx = e[i].ecx, .edx = e[i].edx,
		};
	}
	int ret = ioctl(v->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return ret;
}

/* The owner thread may use the sync-regs copy KVM left at the last exit. */
static bool regs_cached(const struct kvm_vcpu *v)
{
	return __atomic_load_n(&v->regs_synced, __ATOMIC_SEQ_CST) &&
	       pthread_equal(pthread_self(), v->thread);
}

int kvm_vcpu_get_regs(struct kvm_vcpu *v, struct x86_regs *r)
{
	struct kvm_regs kr;
	if (regs_cached(v))
		kr = v->run->s.regs.regs;
	else if (ioctl(v->fd, KVM_GET_REGS, &kr) < 0)
		return -errno;
	*r = (struct x86_regs){
		kr.rax, kr.rbx, kr.rcx, kr.rdx, kr.rsi, kr.rdi, kr.rsp, kr.rbp,
		kr.r8, kr.r9, kr.r10, kr.r11, kr.r12, kr.r13, kr.r14, kr.r15,
		kr.rip, kr.rflags,
	};
	return 0;
}

int kvm_vcpu_set_regs(struct kvm_vcpu *v, const struct x86_regs *r)
{
	struct kvm_regs kr = {
		r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
		r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15,
		r->rip, r->rflags,
	};
	if (ioctl(v->fd, KVM_SET_REGS, &kr) < 0)
		return -errno;
	/* Keep the sync-regs copy current (KVM loads it if marked dirty). */
	if (v->k->sync_regs && pthread_equal(pthread_self(), v->thread)) {
		v->run->s.regs.regs = kr;
		__atomic_store_n(&v->regs_synced, true, __ATOMIC_SEQ_CST);
	} else {
		__atomic_store_n(&v->regs_foreign, true, __ATOMIC_SEQ_CST);
		__atomic_store_n(&v->regs_synced, false, __ATOMIC_SEQ_CST);
	}
	return 0;
}

static void seg_from_kvm(struct x86_segment *d, const struct kvm_segment *s)
{
	*d = (struct x86_segment){
		.base = s->base, .limit = s->limit, .selector = s->selector,
		.type = s->type, .present = s->present, .dpl = s->dpl, .db = s->db,
		.s = s->s, .l = s->l, .g = s->g, .avl = s->avl, .unusable = s->unusable,
	};
}

static void seg_to_kvm(struct kvm_segment *d, const struct x86_segment *s)
{
	*d = (struct kvm_segment){
		.base = s->base, .limit = s->limit, .selector = s->selector,
		.type = s->type, .present = s->present, .dpl = s->dpl, .db = s->db,
		.s = s->s, .l = s->l, .g = s->g, .avl = s->avl, .unusable = s->unusable,
	};
}

int kvm_vcpu_get_sregs(struct kvm_vcpu *v, struct x86_sregs *s)
{
	struct kvm_sregs ks;
	if (ioctl(v->fd, KVM_GET_SREGS, &ks) < 0)
		return -errno;
	seg_from_kvm(&s->cs, &ks.cs);
	seg_from_kvm(&s->ds, &ks.ds);
	seg_from_kvm(&s->es, &ks.es);
	seg_from_kvm(&s->fs, &ks.fs);
	seg_from_kvm(&s->gs, &ks.gs);
	seg_from_kvm(&s->ss, &ks.ss);
	seg_from_kvm(&s->tr, &ks.tr);
	seg_from_kvm(&s->ldt, &ks.ldt);
	s->gdt = (struct x86_dtable){ ks.gdt.base, ks.gdt.limit };
	s->idt = (struct x86_dtable){ ks.idt.base, ks.idt.limit };
	s->cr0 = ks.cr0;
	s->cr2 = ks.cr2;
	s->cr3 = ks.cr3;
	s->cr4 = ks.cr4;
	s->cr8 = ks.cr8;
	s->efer = ks.efer;
	s->apic_base = ks.apic_base;
	return 0;
}

/*
 * After SET_SREGS/SET_MSRS: the sync-regs SREGS copy is stale; from another
 * thread, the next exit's copy may be too (as regs_foreign for the GPRs).
 */
static void sregs_changed(struct kvm_vcpu *v)
{
	if (!pthread_equal(pthread_self(), v->thread))
		__atomic_store_n(&v->regs_foreign, true, __ATOMIC_SEQ_CST);
	__atomic_store_n(&v->sregs_synced, false, __ATOMIC_SEQ_CST);
}

int kvm_vcpu_set_sregs(struct kvm_vcpu *v, const struct x86_sregs *s)
{
	struct kvm_sregs ks;
	/* Read first so the interrupt bitmap and anything we don't model stay. */
	if (ioctl(v->fd, KVM_GET_SREGS, &ks) < 0)
		return -errno;
	seg_to_kvm(&ks.cs, &s->cs);
	seg_to_kvm(&ks.ds, &s->ds);
	seg_to_kvm(&ks.es, &s->es);
	seg_to_kvm(&ks.fs, &s->fs);
	seg_to_kvm(&ks.gs, &s->gs);
	seg_to_kvm(&ks.ss, &s->ss);
	seg_to_kvm(&ks.tr, &s->tr);
	seg_to_kvm(&ks.ldt, &s->ldt);
	ks.gdt.base = s->gdt.base;
	ks.gdt.limit = s->gdt.limit;
	ks.idt.base = s->idt.base;
	ks.idt.limit = s->idt.limit;
	ks.cr0 = s->cr0;
	ks.cr2 = s->cr2;
	ks.cr3 = s->cr3;
	ks.cr4 = s->cr4;
	ks.cr8 = s->cr8;
	ks.efer = s->efer;
	ks.apic_base = s->apic_base;
	int ret = ioctl(v->fd, KVM_SET_SREGS, &ks) < 0 ? -errno : 0;
	sregs_changed(v);
	return ret;
}

/* struct kvm_msrs ends in a flexible array: one entry, laid out by hand. */
union kvm_one_msr {
	struct kvm_msrs hdr;
	uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
};

int kvm_vcpu_get_msr(struct kvm_vcpu *v, uint32_t index, uint64_t *val)
{
	union kvm_one_msr m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.hdr.entries[0].index = index;
	int n = ioctl(v->fd, KVM_GET_MSRS, &m);
	if (n < 0)
		return -errno;
	if (n != 1)
		return -EINVAL;
	*val = m.hdr.entries[0].data;
	return 0;
}

int kvm_vcpu_set_msr(struct kvm_vcpu *v, uint32_t index, uint64_t val)
{
	union kvm_one_msr m;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.hdr.entries[0].index = index;
	m.hdr.entries[0].data = val;
	int n = ioctl(v->fd, KVM_SET_MSRS, &m), err = errno;
	sregs_changed(v); /* EFER, APIC base */
	if (n < 0)
		return -err;
	if (n != 1)
		return -EINVAL;
	return 0;
}

static int kvm_vcpu_inject_nmi(struct accel_vcpu *av)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	if (ioctl(v->fd, KVM_NMI, 0) < 0)
		return -errno;
	return 0;
}

static int kvm_vcpu_inject_exception(struct accel_vcpu *av, unsigned vector, bool has_err,
				     uint32_t err)
{
	if (vector == 14 || vector > 31)
		return -EINVAL;
	return kvm_pvm_inject((struct kvm_vcpu *)av, vector, has_err, err, 0) ? 0 : -EIO;
}

static int kvm_vcpu_get_exit_regs(struct accel_vcpu *av, struct x86_regs *r, unsigned *cpl,
				  bool *long_mode)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	if (!v->k->sync_regs) {
		struct x86_sregs s;
		int ret = kvm_vcpu_get_regs(v, r);
		if (ret == 0)
			ret = kvm_vcpu_get_sregs(v, &s);
		if (ret < 0)
			return ret;
		*cpl = s.cs.selector & 3;
		*long_mode = s.cs.l && (s.efer & (1ull << 10)); /* EFER.LMA */
		return 0;
	}
	const struct kvm_regs *kr = &v->run->s.regs.regs;
	const struct kvm_sregs *ks = &v->run->s.regs.sregs;
	*r = (struct x86_regs){
		kr->rax, kr->rbx, kr->rcx, kr->rdx, kr->rsi, kr->rdi, kr->rsp, kr->rbp,
		kr->r8, kr->r9, kr->r10, kr->r11, kr->r12, kr->r13, kr->r14, kr->r15,
		kr->rip, kr->rflags,
	};
	*cpl = ks->cs.selector & 3;
	*long_mode = ks->cs.l && (ks->efer & (1ull << 10));
	return 0;
}

static int kvm_vcpu_set_exit_rax(struct accel_vcpu *av, uint64_t rax)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	if (!v->k->sync_regs) {
		struct x86_regs r;
		int ret = kvm_vcpu_get_regs(v, &r);
		if (ret < 0)
			return ret;
		r.rax = rax;
		return kvm_vcpu_set_regs(v, &r);
	}
	/* KVM loads the whole synced set at the next KVM_RUN. */
	v->run->s.regs.regs.rax = rax;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	return 0;
}

static int kvm_vcpu_get_tsc_khz(struct accel_vcpu *av, uint32_t *khz)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	int r = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (r <= 0)
		return r < 0 ? -errno : -ENODATA;
	*khz = (uint32_t)r;
	return 0;
}

static void kvm_vcpu_kick(struct accel_vcpu *av)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	/* immediate_exit covers the window before the thread enters KVM_RUN. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, KVM_KICK_SIGNAL);
}

static int kvm_vcpu_reset(struct accel_vcpu *av)
{
	(void)av; /* a fresh KVM vCPU is already in its power-on state */
	return 0;
}

static int kvm_vcpu_set_runnable(struct accel_vcpu *av)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	/* An INIT the AP's APIC latched meanwhile would reset these registers. */
	struct kvm_vcpu_events ev;
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) == 0 && ev.smi.latched_init) {
		ev.smi.latched_init = 0;
		ev.flags |= KVM_VCPUEVENT_VALID_SMM;
		if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
			return -errno;
	}
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	return ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0 ? -errno : 0;
}

/* Finish the exit the core handled last time (MSR results). */
static void complete_prev_exit(struct kvm_vcpu *v, const struct accel_exit *exit)
{
	struct kvm_run *run = v->run;
	if (!v->pending_msr)
		return;
	v->pending_msr = false;
	if (run->exit_reason == KVM_EXIT_X86_RDMSR) {
		run->msr.data = exit->msr.data;
		run->msr.error = exit->msr.error;
	} else if (run->exit_reason == KVM_EXIT_X86_WRMSR) {
		run->msr.error = exit->msr.error;
	}
}

static void fail_exit(struct kvm_vcpu *v, struct accel_exit *exit, const char *what)
{
	exit->reason = ACCEL_EXIT_FAILURE;
	snprintf(exit->fail.what, sizeof(exit->fail.what), "%s", what);
	exit->fail.insn_len = 0;
	struct kvm_run *run = v->run;
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
	    run->emulation_failure.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    run->emulation_failure.ndata >= 3 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		unsigned len = run->emulation_failure.insn_size;
		if (len > sizeof(run->emulation_failure.insn_bytes))
			len = sizeof(run->emulation_failure.insn_bytes);
		memcpy(exit->fail.insn, run->emulation_failure.insn_bytes, len);
		exit->fail.insn_len = (uint8_t)len;
	}
}

static int kvm_vcpu_run(struct accel_vcpu *av, struct accel_exit *exit)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	struct kvm_run *run = v->run;
	char what[96];

	complete_prev_exit(v, exit);
	for (;;) {
		__atomic_store_n(&v->regs_synced, false, __ATOMIC_SEQ_CST);
		__atomic_store_n(&v->sregs_synced, false, __ATOMIC_SEQ_CST);
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				exit->reason = ACCEL_EXIT_INTERRUPTED;
				return 0;
			}
			return -errno;
		}
		/* KVM stored them at the exit, unless another thread set them since. */
		bool foreign = __atomic_exchange_n(&v->regs_foreign, false, __ATOMIC_SEQ_CST);
		__atomic_store_n(&v->regs_synced, v->k->sync_regs && !foreign, __ATOMIC_SEQ_CST);
		__atomic_store_n(&v->sregs_synced, v->k->sync_regs && !foreign, __ATOMIC_SEQ_CST);
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			exit->reason = ACCEL_EXIT_IO;
			exit->io.port = run->io.port;
			exit->io.size = run->io.size;
			exit->io.write = run->io.direction == KVM_EXIT_IO_OUT;
			exit->io.count = run->io.count;
			exit->io.data = (uint8_t *)run + run->io.data_offset;
			if (run->io.count == 0 || (uint64_t)run->io.data_offset +
			    (uint64_t)run->io.count * run->io.size > v->k->run_size) {
				fail_exit(v, exit, "KVM reported an I/O exit outside kvm_run");
				return 0;
			}
			return 0;
		case KVM_EXIT_MMIO:
			exit->reason = ACCEL_EXIT_MMIO;
			exit->mmio.gpa = run->mmio.phys_addr;
			exit->mmio.size = (uint8_t)run->mmio.len;
			exit->mmio.write = run->mmio.is_write;
			exit->mmio.data = run->mmio.data;
			return 0;
		case KVM_EXIT_X86_RDMSR:
		case KVM_EXIT_X86_WRMSR:
			if (v->k->pvm && kvm_pvm_handle_msr(v))
				continue;
			exit->reason = run->exit_reason == KVM_EXIT_X86_RDMSR ?
				ACCEL_EXIT_MSR_READ : ACCEL_EXIT_MSR_WRITE;
			exit->msr.index = run->msr.index;
			exit->msr.data = run->msr.data;
			exit->msr.error = false;
			v->pending_msr = true;
			return 0;
		case KVM_EXIT_HLT:
			exit->reason = ACCEL_EXIT_HLT;
			return 0;
		case KVM_EXIT_SHUTDOWN:
			exit->reason = ACCEL_EXIT_SHUTDOWN;
			return 0;
		case KVM_EXIT_SYSTEM_EVENT:
			if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
				exit->reason = ACCEL_EXIT_RESET;
				return 0;
			}
			if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ||
			    run->system_event.type == KVM_SYSTEM_EVENT_CRASH) {
				exit->reason = ACCEL_EXIT_SHUTDOWN;
				return 0;
			}
			snprintf(what, sizeof(what), "KVM system event %u",
				 run->system_event.type);
			fail_exit(v, exit, what);
			return 0;
		case KVM_EXIT_DEBUG:
			if (v->k->pvm && kvm_pvm_handle_debug(v))
				continue;
			fail_exit(v, exit, "unexpected debug exit");
			return 0;
		case KVM_EXIT_INTERNAL_ERROR:
			if (v->k->pvm && kvm_pvm_handle_emulation_failure(v))
				continue;
			snprintf(what, sizeof(what),
				 "KVM internal error (suberror %u): instruction not emulated",
				 run->internal.suberror);
			fail_exit(v, exit, what);
			return 0;
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(what, sizeof(what), "VM entry failed (reason 0x%llx)",
				 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			fail_exit(v, exit, what);
			return 0;
		case KVM_EXIT_INTR:
		case KVM_EXIT_IRQ_WINDOW_OPEN:
			exit->reason = ACCEL_EXIT_INTERRUPTED;
			return 0;
		case KVM_EXIT_IOAPIC_EOI:
			exit->reason = ACCEL_EXIT_EOI;
			exit->eoi.vector = run->eoi.vector;
			return 0;
		default:
			snprintf(what, sizeof(what), "unhandled KVM exit reason %u",
				 run->exit_reason);
			fail_exit(v, exit, what);
			return 0;
		}
	}
}

static int kvm_vcpu_finish_exit(struct accel_vcpu *av, struct accel_exit *exit)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	struct kvm_run *run = v->run;
	complete_prev_exit(v, exit);
	/* KVM finishes the pending operation, then sees immediate_exit. */
	uint8_t kicked = __atomic_exchange_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&v->regs_synced, false, __ATOMIC_SEQ_CST);
	__atomic_store_n(&v->sregs_synced, false, __ATOMIC_SEQ_CST);
	int r = ioctl(v->fd, KVM_RUN, 0), err = errno;
	if (!kicked)
		__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	if (r == 0)
		return -EAGAIN;
	return err == EINTR || err == EAGAIN ? 0 : -err;
}

static int kvm_vcpu_set_regs_deferred(struct accel_vcpu *av, const struct x86_regs *r)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	if (!regs_cached(v))
		return kvm_vcpu_set_regs(v, r);
	/* KVM loads the synced set at the next KVM_RUN: no system call now. */
	v->run->s.regs.regs = (struct kvm_regs){
		r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp,
		r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15,
		r->rip, r->rflags,
	};
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	return 0;
}

static int kvm_vcpu_irq_requested(struct accel_vcpu *av)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	struct kvm_lapic_state l;
	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	for (unsigned i = 0; i < 8; i++) { /* IRR: 8 32-bit words at 0x200, 16 bytes apart */
		uint32_t w;
		memcpy(&w, l.regs + 0x200 + 0x10 * i, 4);
		if (w)
			return 1;
	}
	return 0;
}

static int kvm_vcpu_vector_level(struct accel_vcpu *av, uint8_t vector)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	struct kvm_lapic_state l;
	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return -errno;
	uint32_t w;   /* TMR: 8 32-bit words at 0x180, 16 bytes apart */
	memcpy(&w, l.regs + 0x180 + 0x10 * (vector / 32), 4);
	return (w >> (vector % 32)) & 1;
}

static int kvm_vcpu_get_sregs_synced(struct accel_vcpu *av, struct x86_sregs *s)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	if (!__atomic_load_n(&v->sregs_synced, __ATOMIC_SEQ_CST) ||
	    !pthread_equal(pthread_self(), v->thread))
		return kvm_vcpu_get_sregs(v, s);
	const struct kvm_sregs *ks = &v->run->s.regs.sregs;
	seg_from_kvm(&s->cs, &ks->cs);
	seg_from_kvm(&s->ds, &ks->ds);
	seg_from_kvm(&s->es, &ks->es);
	seg_from_kvm(&s->fs, &ks->fs);
	seg_from_kvm(&s->gs, &ks->gs);
	seg_from_kvm(&s->ss, &ks->ss);
	seg_from_kvm(&s->tr, &ks->tr);
	seg_from_kvm(&s->ldt, &ks->ldt);
	s->gdt = (struct x86_dtable){ ks->gdt.base, ks->gdt.limit };
	s->idt = (struct x86_dtable){ ks->idt.base, ks->idt.limit };
	s->cr0 = ks->cr0;
	s->cr2 = ks->cr2;
	s->cr3 = ks->cr3;
	s->cr4 = ks->cr4;
	s->cr8 = ks->cr8;
	s->efer = ks->efer;
	s->apic_base = ks->apic_base;
	return 0;
}

static int kvm_vcpu_get_msrs(struct accel_vcpu *av, const uint32_t *index, uint64_t *val,
			     unsigned n)
{
	struct kvm_vcpu *v = (struct kvm_vcpu *)av;
	enum { MAX = 32 };
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + MAX * sizeof(struct kvm_msr_entry)];
	} m;
	if (n > MAX)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = n;
	for (unsigned i = 0; i < n; i++)
		m.hdr.entries[i].index = index[i];
	int got = ioctl(v->fd, KVM_GET_MSRS, &m);
	if (got < 0)
		return -errno;
	for (int i = 0; i < got && i < (int)n; i++)
		val[i] = m.hdr.entries[i].data;
	return got;
}

static int kvm_vcpu_get_debugregs(struct accel_vcpu *av, uint64_t dr[6])
{
	struct kvm_debugregs d;
	if (ioctl(((struct kvm_vcpu *)av)->fd, KVM_GET_DEBUGREGS, &d) < 0)
		return -errno;
	memcpy(dr, d.db, sizeof(d.db));
	dr[4] = d.dr6;
	dr[5] = d.dr7;
	return 0;
}

static int kvm_vcpu_set_debugregs(struct accel_vcpu *av, const uint64_t dr[6])
{
	struct kvm_debugregs d;
	memset(&d, 0, sizeof(d));
	memcpy(d.db, dr, sizeof(d.db));
	d.dr6 = dr[4];
	d.dr7 = dr[5];
	return ioctl(((struct kvm_vcpu *)av)->fd, KVM_SET_DEBUGREGS, &d) < 0 ? -errno : 0;
}

static size_t kvm_vcpu_xsave_size(struct accel_vcpu *av)
{
	return kvm_pvm_xsave_size((struct kvm_vcpu *)av);
}

static int kvm_vcpu_get_xsave(struct accel_vcpu *av, void *buf)
{
	return kvm_pvm_get_xsave((struct kvm_vcpu *)av, buf);
}

static int kvm_vcpu_set_xsave(struct accel_vcpu *av, const void *buf)
{
	return kvm_pvm_set_xsave((struct kvm_vcpu *)av, buf);
}

static int op_get_regs(struct accel_vcpu *v, struct x86_regs *r)
{
	return kvm_vcpu_get_regs((struct kvm_vcpu *)v, r);
}
static int op_set_regs(struct accel_vcpu *v, const struct x86_regs *r)
{
	return kvm_vcpu_set_regs((struct kvm_vcpu *)v, r);
}
static int op_get_sregs(struct accel_vcpu *v, struct x86_sregs *s)
{
	return kvm_vcpu_get_sregs((struct kvm_vcpu *)v, s);
}
static int op_set_sregs(struct accel_vcpu *v, const struct x86_sregs *s)
{
	return kvm_vcpu_set_sregs((struct kvm_vcpu *)v, s);
}
static int op_get_msr(struct accel_vcpu *v, uint32_t i, uint64_t *val)
{
	return kvm_vcpu_get_msr((struct kvm_vcpu *)v, i, val);
}
static int op_set_msr(struct accel_vcpu *v, uint32_t i, uint64_t val)
{
	return kvm_vcpu_set_msr((struct kvm_vcpu *)v, i, val);
}

const struct accel_ops accel_kvm_ops = {
	.name = "kvm",
	.create = kvm_create,
	.destroy = kvm_destroy,
	.get_info = kvm_get_info,
	.map_memory = kvm_map_memory,
	.unmap_memory = kvm_unmap_memory,
	.get_supported_cpuid = kvm_get_supported_cpuid,
	.irq_line = kvm_irq_line,
	.set_msi_route = kvm_set_msi_route,
	.vcpu_vector_level = kvm_vcpu_vector_level,
	.signal_msi = kvm_signal_msi,
	.vcpu_create = kvm_vcpu_create,
	.vcpu_destroy = kvm_vcpu_destroy,
	.vcpu_set_cpuid = kvm_vcpu_set_cpuid,
	.vcpu_run = kvm_vcpu_run,
	.vcpu_get_regs = op_get_regs,
	.vcpu_set_regs = op_set_regs,
	.vcpu_get_sregs = op_get_sregs,
	.vcpu_set_sregs = op_set_sregs,
	.vcpu_get_msr = op_get_msr,
	.vcpu_set_msr = op_set_msr,
	.vcpu_inject_nmi = kvm_vcpu_inject_nmi,
	.vcpu_inject_exception = kvm_vcpu_inject_exception,
	.vcpu_get_tsc_khz = kvm_vcpu_get_tsc_khz,
	.vcpu_get_exit_regs = kvm_vcpu_get_exit_regs,
	.vcpu_set_exit_rax = kvm_vcpu_set_exit_rax,
	.vcpu_kick = kvm_vcpu_kick,
	.vcpu_reset = kvm_vcpu_reset,
	.vcpu_set_runnable = kvm_vcpu_set_runnable,
	.vcpu_finish_exit = kvm_vcpu_finish_exit,
	.vcpu_set_regs_deferred = kvm_vcpu_set_regs_deferred,
	.vcpu_irq_requested = kvm_vcpu_irq_requested,
	.vcpu_get_msrs = kvm_vcpu_get_msrs,
	.vcpu_get_sregs_synced = kvm_vcpu_get_sregs_synced,
	.vcpu_get_debugregs = kvm_vcpu_get_debugregs,
	.vcpu_set_debugregs = kvm_vcpu_set_debugregs,
	.vcpu_xsave_size = kvm_vcpu_xsave_size,
	.vcpu_get_xsave = kvm_vcpu_get_xsave,
	.vcpu_set_xsave = kvm_vcpu_set_xsave,
};
