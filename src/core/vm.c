/*
 * VM assembly and lifecycle. vm_run() builds a fresh partition (memory,
 * accelerator, devices, ACPI tables, kernel), starts one thread per vCPU and
 * waits for a lifecycle event. Power-off, reset and crash are then handled
 * per --guest-shutdown-action, --guest-reset-action and --guest-crash-action;
 * a reset tears the partition down and builds it again (serial backends and
 * their connections survive).
 */
#include "core/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "core/devices.h"
#include "core/inspect.h"
#include "core/log.h"
#include "core/network.h"
#include "core/storage.h"
#include "core/vmbus_glue.h"
#include "core/vtl.h"
#include "core/vtl_mem.h"
#include "dev/ioapic.h"
#include "hv/hv.h"
#include "x86/cpuid.h"
#include "x86/kcache.h"
#include "x86/linux_boot.h"

#define MAX_KERNEL_FILE (512u << 20)

static const char *const event_names[] = { "power-off", "reset", "crash" };

static int read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t r = read(fd, buf + done, n - done);
		if (r <= 0) {
			int e = r < 0 ? -errno : -EIO;
			free(buf);
			close(fd);
			return e;
		}
		done += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
}

static const char *file_error(int err)
{
	switch (err) {
	case -EINVAL: return "not a regular file";
	case -EFBIG: return "file too large";
	default: return strerror(-err);
	}
}

/* OpenVMM's Linux-direct command line: panic=-1, console, then -c. */
static char *build_cmdline(const struct vm *vm, const struct hvmm_config *cfg)
{
	char console[32] = "";
	for (unsigned i = 0; i < CLI_NUM_COM; i++) {
		if (devices_com_is_console(vm, i)) {
			snprintf(console, sizeof(console), " console=ttyS%u", i);
			break;
		}
	}
	const char *user = cfg->cmdline ? cfg->cmdline : "";
	size_t len = strlen("panic=-1") + strlen(console) + 1 + strlen(user) + 1;
	char *s = malloc(len);
	if (!s)
		return NULL;
	snprintf(s, len, "panic=-1%s%s%s", console, *user ? " " : "", user);
	return s;
}

/*
 * Reads the kernel and initrd. Done at every boot (the files are small next
 * to the guest and this keeps their copies out of hvmm's resident memory
 * while the guest runs); vm_prepare() does it once first to report errors
 * before any VM exists.
 */
static int load_images(struct vm *vm)
{
	const struct hvmm_config *cfg = vm->cfg;
	if (cfg->igvm) { /* the IGVM file's bytes stand in for the kernel's */
		int ret = read_file(cfg->igvm, UINT32_MAX, &vm->kernel, &vm->kernel_len);
		if (ret < 0)
			log_error("cannot read IGVM file '%s': %s", cfg->igvm, file_error(ret));
		return ret;
	}
	int ret = read_file(cfg->kernel, MAX_KERNEL_FILE, &vm->kernel, &vm->kernel_len);
	if (ret < 0) {
		log_error("cannot read kernel '%s': %s", cfg->kernel, file_error(ret));
		return ret;
	}
	if (cfg->initrd) {
		ret = read_file(cfg->initrd, cfg->memory, &vm->initrd, &vm->initrd_len);
		if (ret < 0) {
			log_error("cannot read initrd '%s': %s", cfg->initrd,
				  ret == -EFBIG ? "larger than guest memory" : file_error(ret));
			return ret;
		}
	}
	return 0;
}

static void free_images(struct vm *vm)
{
	free(vm->kernel);
	free(vm->initrd);
	vm->kernel = vm->initrd = NULL;
	vm->kernel_len = vm->initrd_len = 0;
}

int vm_prepare(struct vm *vm, const struct hvmm_config *cfg, struct evloop *loop,
	       struct chardev **com)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->loop = loop;
	vm->com = com;
	vm->ops = &accel_kvm_ops;
	vm->nvcpus = cfg->processors;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);

	int ret = load_images(vm);
	if (ret < 0)
		return ret;
	if (cfg->igvm) {
		char err[256];
		ret = igvm_load_check(vm->kernel, vm->kernel_len, cfg->vtl2, err, sizeof(err));
		if (ret < 0) {
			log_error("%s: %s", cfg->igvm, err);
			free_images(vm);
			return ret;
		}
	}
	free_images(vm); /* read again at each boot; see build() */
	ret = storage_open(cfg, &vm->storage);
	if (ret < 0)
		return ret;
	ret = network_open(cfg, &vm->network);
	if (ret < 0)
		return ret;
	vm->quit_status = -1;
	vm->cmdline = build_cmdline(vm, cfg);
	if (!vm->cmdline)
		return -ENOMEM;
	return 0;
}

void vm_release(struct vm *vm)
{
	network_close(vm->network);
	vm->network = NULL;
	storage_close(vm->storage);
	vm->storage = NULL;
	free_images(vm);
	free(vm->cmdline);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cond);
}

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++) {
		struct vm_vcpu *v = &vm->vcpus[i];
		if (v->av && v->started)
			vm->ops->vcpu_kick(v->av);
	}
}

void vm_request(struct vm *vm, enum vm_event ev)
{
	pthread_mutex_lock(&vm->lock);
	vm->pending |= 1u << ev;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void vm_quit(struct vm *vm, int status)
{
	pthread_mutex_lock(&vm->lock);
	vm->quit_status = status;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void vm_reset(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->host_reset = true;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

int vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (atomic_load(&vm->paused)) {
		pthread_mutex_unlock(&vm->lock);
		return -EALREADY;
	}
	atomic_store(&vm->paused, true);
	kick_all(vm);
	/* Wait (bounded) until every running vCPU has parked. */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	int ret = 0;
	while (vm->vcpus && vm->parked_vcpus < vm->running_vcpus && ret == 0) {
		kick_all(vm);
		ret = pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline);
	}
	pthread_mutex_unlock(&vm->lock);
	return ret ? -ETIMEDOUT : 0;
}

int vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool was = atomic_exchange(&vm->paused, false);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return was ? 0 : -EALREADY;
}

int vm_nmi(struct vm *vm, unsigned index)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->vcpus || index >= vm->nvcpus) {
		pthread_mutex_unlock(&vm->lock);
		return -EINVAL;
	}
	struct vm_vcpu *v = &vm->vcpus[index];
	atomic_store(&v->nmi_requested, true);
	if (v->av && v->started)
		vm->ops->vcpu_kick(v->av);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

/* vCPU thread: park while the VM is paused, then do requested injections. */
static void vcpu_service_requests(struct vm_vcpu *v)
{
	struct vm *vm = v->vm;
	if (atomic_load(&vm->paused)) {
		pthread_mutex_lock(&vm->lock);
		vm->parked_vcpus++;
		pthread_cond_broadcast(&vm->cond);
		while (atomic_load(&vm->paused) && !atomic_load(&vm->stopping))
			pthread_cond_wait(&vm->cond, &vm->lock);
		vm->parked_vcpus--;
		pthread_mutex_unlock(&vm->lock);
	}
	if (atomic_exchange(&v->nmi_requested, false)) {
		int ret = vm->ops->vcpu_inject_nmi(v->av);
		if (ret < 0)
			log_warn("vCPU %u: cannot inject NMI: %s", v->index, strerror(-ret));
	}
}

void vm_dump_vcpus(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++) {
		atomic_store(&vm->vcpus[i].dump_requested, true);
		if (vm->vcpus[i].av && vm->vcpus[i].started)
			vm->ops->vcpu_kick(vm->vcpus[i].av);
	}
	pthread_mutex_unlock(&vm->lock);
}

static void inspect_vcpu(struct inspect *in, void *opaque)
{
	struct vm_vcpu *v = opaque;
	inspect_bool(in, "started", v->started);
	inspect_u64(in, "exits_io", __atomic_load_n(&v->exits_io, __ATOMIC_RELAXED));
	inspect_u64(in, "exits_mmio", __atomic_load_n(&v->exits_mmio, __ATOMIC_RELAXED));
	inspect_u64(in, "exits_msr", __atomic_load_n(&v->exits_msr, __ATOMIC_RELAXED));
}

static void inspect_vcpus(struct inspect *in, void *opaque)
{
	struct vm *vm = opaque;
	pthread_mutex_lock(&vm->lock); /* vm->vcpus lives across the call */
	for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++)
		inspect_child_index(in, i, inspect_vcpu, &vm->vcpus[i]);
	pthread_mutex_unlock(&vm->lock);
}

static void inspect_storage(struct inspect *in, void *opaque)
{
	struct vm *vm = opaque;
	if (vm->storage)
		storage_inspect(vm->storage, in);
}

void vm_inspect(struct inspect *in, void *opaque)
{
	struct vm *vm = opaque;
	inspect_u64(in, "memory_bytes", vm->mem.size);
	inspect_u64(in, "processors", vm->nvcpus);
	inspect_bool(in, "paused", atomic_load(&vm->paused));
	inspect_bool(in, "hv", vm->cfg->hv);
	inspect_str(in, "cmdline", vm->cmdline ? vm->cmdline : "");
	inspect_child(in, "vcpu", inspect_vcpus, vm);
	inspect_child(in, "storage", inspect_storage, vm);
	if (vm->ioapic)   /* split irqchip (--vtl2): the IOAPIC is ours */
		inspect_child(in, "ioapic", ioapic_inspect, vm->ioapic);
	vmbus_glue_inspect(vm, in);
}

static void event_raise(void *opaque, enum vm_event ev)
{
	vm_request(opaque, ev);
}

static void irq_set(void *opaque, unsigned gsi, int level)
{
	struct vm *vm = opaque;
	if (vm->ioapic) {   /* its messages raise VINA (core/devices.c) */
		ioapic_set_irq(vm->ioapic, gsi, level);
		return;
	}
	int ret = vm->ops->irq_line(vm->accel, gsi, level);
	if (ret < 0)
		log_guest("cannot set GSI %u to %d: %s", gsi, level, strerror(-ret));
	else if (vm->vtl && level)
		vtl_lower_interrupt(vm->vtl, UINT64_MAX); /* VINA if VTL2 runs */
}

struct irq_line vm_irq_line(struct vm *vm, unsigned gsi)
{
	return (struct irq_line){ .set = irq_set, .opaque = vm, .gsi = gsi };
}

static void dump_vcpu(struct vm_vcpu *v, enum log_level lvl)
{
	struct x86_regs r;
	struct x86_sregs s;
	const struct accel_ops *ops = v->vm->ops;
	if (ops->vcpu_get_regs(v->av, &r) < 0 || ops->vcpu_get_sregs(v->av, &s) < 0) {
		log_msg(lvl, "vCPU %u: registers unavailable", v->index);
		return;
	}
	log_msg(lvl, "vCPU %u: rip=%016" PRIx64 " rsp=%016" PRIx64 " rflags=%08" PRIx64
		  " cs=%04x(dpl %u) ss=%04x", v->index, r.rip, r.rsp, r.rflags,
		  s.cs.selector, s.cs.dpl, s.ss.selector);
	log_msg(lvl, "  rax=%016" PRIx64 " rbx=%016" PRIx64 " rcx=%016" PRIx64
		  " rdx=%016" PRIx64, r.rax, r.rbx, r.rcx, r.rdx);
	log_msg(lvl, "  rsi=%016" PRIx64 " rdi=%016" PRIx64 " rbp=%016" PRIx64
		  " r8 =%016" PRIx64, r.rsi, r.rdi, r.rbp, r.r8);
	log_msg(lvl, "  r9 =%016" PRIx64 " r10=%016" PRIx64 " r11=%016" PRIx64
		  " r12=%016" PRIx64, r.r9, r.r10, r.r11, r.r12);
	log_msg(lvl, "  r13=%016" PRIx64 " r14=%016" PRIx64 " r15=%016" PRIx64,
		  r.r13, r.r14, r.r15);
	log_msg(lvl, "  cr0=%016" PRIx64 " cr2=%016" PRIx64 " cr3=%016" PRIx64
		  " cr4=%016" PRIx64 " efer=%" PRIx64, s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
	log_msg(lvl, "  gdt=%016" PRIx64 "/%x idt=%016" PRIx64 "/%x", s.gdt.base,
		  s.gdt.limit, s.idt.base, s.idt.limit);
}

/*
 * The hypercall page's `out HV_HYPERCALL_PORT, al`: KVM completes the
 * instruction when the vCPU resumes; RCX/RDX/R8 carry the call, RAX gets
 * the result (from the copy KVM keeps in kvm_run: no system call).
 */
static void handle_hypercall(struct vm_vcpu *v)
{
	struct vm *vm = v->vm;
	struct x86_regs r;
	struct hv_hypercall hc;
	if (vm->vtl && vtl_hypercall(vm->vtl, v))
		return;
	if (vm->ops->vcpu_get_exit_regs(v->av, &r, &hc.cpl, &hc.long_mode) < 0) {
		log_warn("vCPU %u: cannot read registers for a hypercall", v->index);
		return;
	}
	hc.control = r.rcx;
	hc.input = r.rdx;
	hc.output = r.r8;
	if (hv_hypercall(vm->hv, v->index, &hc) == HV_HYPERCALL_INJECT_UD) {
		if (vm->ops->vcpu_inject_exception(v->av, 6, false, 0) < 0)
			log_warn("vCPU %u: cannot inject #UD for a hypercall", v->index);
		return;
	}
	if (vm->vtl && vtl_unknown_connection(vm->vtl, v, hc.control, hc.result))
		return; /* VTL2 completes it */
	if (vm->ops->vcpu_set_exit_rax(v->av, hc.result) < 0)
		log_warn("vCPU %u: cannot write a hypercall result", v->index);
}

static void handle_io(struct vm_vcpu *v, struct accel_exit *e)
{
	struct vm *vm = v->vm;
	v->exits_io++;
	if (e->io.port == HV_HYPERCALL_PORT && vm->hv) {
		if (e->io.write && e->io.count == 1)
			handle_hypercall(v);
		return;
	}
	if (vm->vtl && vtl_io(vm->vtl, v, e))
		return;
	for (uint32_t i = 0; i < e->io.count; i++) {
		uint8_t *d = e->io.data + (size_t)i * e->io.size;
		bool ok = e->io.write ? iobus_write(&vm->pio, e->io.port, d, e->io.size)
				      : iobus_read(&vm->pio, e->io.port, d, e->io.size);
		if (!ok)
			log_guest_debug("vCPU %u: unhandled port %s 0x%x size %u", v->index,
				  e->io.write ? "write" : "read", e->io.port, e->io.size);
	}
}

/*
 * An EOI of a level-triggered route's vector (split irqchip): VTL2's APIC
 * EOI intercept if it installed one (vtl.c), else our IOAPIC's.
 */
static void handle_eoi(struct vm_vcpu *v, uint8_t vector)
{
	struct vm *vm = v->vm;
	if (vm->vtl && vtl_eoi(vm->vtl, v, vector))
		return;
	if (vm->ioapic)
		ioapic_eoi(vm->ioapic, vector);
}

static void handle_mmio(struct vm_vcpu *v, struct accel_exit *e)
{
	struct vm *vm = v->vm;
	v->exits_mmio++;
	if (e->mmio.size == 0 || e->mmio.size > 8) {
		log_guest("vCPU %u: MMIO access of %u bytes ignored", v->index, e->mmio.size);
		return;
	}
	/* VTL0 on RAM it may not access (--vtl2): an intercept, not a device. */
	if (vm->vtl && vtl_mmio(vm->vtl, v, e))
		return;
	bool ok = e->mmio.write ? iobus_write(&vm->mmio, e->mmio.gpa, e->mmio.data, e->mmio.size)
				: iobus_read(&vm->mmio, e->mmio.gpa, e->mmio.data, e->mmio.size);
	/* No device there: with --vtl2, VTL0's access is VTL2's to emulate. */
	if (!ok && vm->vtl && vtl_mmio_unmapped(vm->vtl, v, e))
		return;
	if (!ok)
		log_guest("vCPU %u: MMIO %s at unmapped 0x%" PRIx64 " (size %u)", v->index,
			  e->mmio.write ? "write" : "read", e->mmio.gpa, e->mmio.size);
}

static void handle_msr(struct vm_vcpu *v, struct accel_exit *e)
{
	v->exits_msr++;
	/* The shared MTRRs are the platform's (as Hyper-V's), never VTL2's intercepts. */
	if (v->vm->vtl && vtl_shared_msr(v->vm->vtl, v, e))
		return;
	if (v->vm->vtl && vtl_msr_intercept(v->vm->vtl, v, e))
		return;
	if (v->vm->vtl && hv_msr_owned(e->msr.index) && vtl_msr(v->vm->vtl, v, e))
		return;
	if (v->vm->hv && hv_msr_owned(e->msr.index)) {
		int ret = e->reason == ACCEL_EXIT_MSR_READ ?
			hv_msr_read(v->vm->hv, v->index, e->msr.index, &e->msr.data) :
			hv_msr_write(v->vm->hv, v->index, e->msr.index, e->msr.data);
		e->msr.error = ret < 0;
		return;
	}
	/* What KVM does not know is a #GP, as on hardware. */
	e->msr.error = true;
	if (e->reason == ACCEL_EXIT_MSR_READ)
		e->msr.data = 0;
	log_guest_debug("vCPU %u: %s of unknown MSR 0x%x: #GP", v->index,
		  e->reason == ACCEL_EXIT_MSR_READ ? "read" : "write", e->msr.index);
}

static void vcpu_failed(struct vm_vcpu *v, struct accel_exit *e)
{
	struct vm *vm = v->vm;
	log_error("vCPU %u stopped: %s", v->index, e->fail.what);
	if (e->fail.insn_len) {
		char hex[3 * 16 + 1] = "";
		for (unsigned i = 0; i < e->fail.insn_len && i < 16; i++)
			snprintf(hex + 3 * i, sizeof(hex) - 3 * i, "%02x ", e->fail.insn[i]);
		log_error("  instruction bytes at rip: %s", hex);
	}
	dump_vcpu(v, LOG_ERROR);
	pthread_mutex_lock(&vm->lock);
	vm->failed = true;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

/* Set up the BSP for the Linux 64-bit entry. */
static int setup_bsp(struct vm_vcpu *v, uint64_t entry)
{
	struct vm *vm = v->vm;
	struct x86_regs r;
	struct x86_sregs s;
	int ret = vm->ops->vcpu_get_sregs(v->av, &s);
	if (ret < 0)
		return ret;
	if (vm->igvm.have_ctx)
		igvm_native_to_regs(&vm->igvm.ctx, &r, &s);
	else
		ret = linux_boot_setup_cpu(&vm->mem, entry, &r, &s);
	if (ret < 0)
		return ret;
	ret = vm->ops->vcpu_set_sregs(v->av, &s);
	if (ret < 0)
		return ret;
	return vm->ops->vcpu_set_regs(v->av, &r);
}

static int setup_cpuid(struct vm_vcpu *v)
{
	struct vm *vm = v->vm;
	struct accel_cpuid_entry e[CPUID_MAX_ENTRIES];
	size_t n = CPUID_MAX_ENTRIES;
	int ret = vm->ops->get_supported_cpuid(vm->accel, e, &n);
	if (ret < 0)
		return ret;
	struct cpuid_config cc = {
		.vcpu_index = v->index,
		.nvcpus = vm->nvcpus,
		.ring0_emulated = vm->info.ring0_emulated,
		.hv = vm->hv != NULL,
	};
	cpuid_fixup(e, &n, &cc);
	if (vm->vtl)
		vtl_cpuid_fixup(vm->vtl, v, e, n);
	return vm->ops->vcpu_set_cpuid(v->av, e, n);
}

/* Guest TSC as the guest sees it, from any thread (hv reference time). */
static uint64_t vm_read_guest_tsc(void *opaque)
{
	struct vm *vm = opaque;
	return __rdtsc() + (uint64_t)vm->tsc_offset;
}

static int vm_signal_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct vm *vm = opaque;
	int ret = vm->ops->signal_msi(vm->accel, addr, data);
	if (ret >= 0 && vm->vtl)
		vtl_lower_interrupt(vm->vtl, addr); /* VINA if VTL2 runs */
	return ret;
}

/*
 * On vCPU 0 before anything runs: learn the guest TSC's frequency and its
 * offset from the host TSC, and start reference time at 0.
 */
static void hv_clock_setup(struct vm_vcpu *v)
{
	struct vm *vm = v->vm;
	uint32_t khz = 0;
	if (vm->ops->vcpu_get_tsc_khz(v->av, &khz) < 0 || !khz)
		log_warn("cannot read the guest TSC frequency; assuming 1 GHz");
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 5; i++) {
		uint64_t guest, t1 = __rdtsc();
		if (vm->ops->vcpu_get_msr(v->av, 0x10 /* IA32_TSC */, &guest) < 0)
			break;
		uint64_t t2 = __rdtsc();
		if (t2 - t1 < best) {
			best = t2 - t1;
			vm->tsc_offset = (int64_t)(guest - (t1 + (t2 - t1) / 2));
		}
	}
	hv_set_tsc_hz(vm->hv, (uint64_t)khz * 1000);
	log_debug("hv: guest TSC %u kHz, offset from host %" PRId64, khz, vm->tsc_offset);
}

struct vcpu_start {
	struct vm_vcpu *v;
	uint64_t entry;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int status; /* 1 = pending, 0 = ok, <0 = error */
};

static void *vcpu_thread(void *arg)
{
	struct vcpu_start *st = arg;
	struct vm_vcpu *v = st->v;
	struct vm *vm = v->vm;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);

	/* KVM vCPUs are kicked with a signal to the thread that runs them. */
	int ret = vm->ops->vcpu_create(vm->accel, v->index, &v->av);
	if (ret == 0)
		ret = setup_cpuid(v);
	if (ret == 0 && vm->vtl) /* VTL2 starts; VTL0 waits for VTL2 to set it up */
		ret = vtl_vcpu_init(vm->vtl, v, setup_cpuid);
	else if (ret == 0 && v->index == 0)
		ret = setup_bsp(v, st->entry);
	if (ret == 0 && v->index == 0 && vm->hv)
		hv_clock_setup(v);
	pthread_mutex_lock(&st->lock);
	st->status = ret;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
	if (ret < 0)
		return NULL;
	/* st is gone now; wait for the go signal. */
	pthread_mutex_lock(&vm->lock);
	while (!v->started && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);

	struct accel_exit e;
	memset(&e, 0, sizeof(e));
	while (!atomic_load(&vm->stopping)) {
		vcpu_service_requests(v);
		if (vm->vtl && !vtl_vcpu_service(vm->vtl, v))
			continue; /* an AP VTL2 has not started yet */
		if (atomic_load(&vm->stopping))
			break;
		ret = vm->ops->vcpu_run(v->av, &e);
		if (ret < 0) {
			snprintf(e.fail.what, sizeof(e.fail.what), "KVM_RUN failed: %s",
				 strerror(-ret));
			e.fail.insn_len = 0;
			vcpu_failed(v, &e);
			break;
		}
		switch (e.reason) {
		case ACCEL_EXIT_IO:
			handle_io(v, &e);
			break;
		case ACCEL_EXIT_MMIO:
			handle_mmio(v, &e);
			break;
		case ACCEL_EXIT_MSR_READ:
		case ACCEL_EXIT_MSR_WRITE:
			handle_msr(v, &e);
			break;
		case ACCEL_EXIT_EOI:
			handle_eoi(v, e.eoi.vector);
			break;
		case ACCEL_EXIT_HLT:
		case ACCEL_EXIT_INTERRUPTED:
			if (atomic_exchange(&v->dump_requested, false)) {
				log_info("vCPU %u: io exits %" PRIu64 ", mmio %" PRIu64
					 ", msr %" PRIu64, v->index, v->exits_io,
					 v->exits_mmio, v->exits_msr);
				dump_vcpu(v, LOG_INFO);
			}
			break;
		case ACCEL_EXIT_SHUTDOWN:
			log_warn("vCPU %u: triple fault", v->index);
			dump_vcpu(v, LOG_ERROR);
			vm_request(vm, VM_EVENT_CRASH);
			goto out;
		case ACCEL_EXIT_RESET:
			vm_request(vm, VM_EVENT_RESET);
			goto out;
		case ACCEL_EXIT_FAILURE:
			vcpu_failed(v, &e);
			goto out;
		}
	}
out:
	pthread_mutex_lock(&vm->lock);
	vm->running_vcpus--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

static int start_vcpu_thread(struct vm *vm, unsigned i, uint64_t entry)
{
	struct vm_vcpu *v = &vm->vcpus[i];
	struct vcpu_start st = { .v = v, .entry = entry, .status = 1 };
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.cond, NULL);
	v->vm = vm;
	v->index = i;
	int ret = pthread_create(&v->thread, NULL, vcpu_thread, &st);
	if (ret) {
		pthread_mutex_destroy(&st.lock);
		pthread_cond_destroy(&st.cond);
		return -ret;
	}
	pthread_mutex_lock(&st.lock);
	while (st.status == 1)
		pthread_cond_wait(&st.cond, &st.lock);
	pthread_mutex_unlock(&st.lock);
	ret = st.status;
	pthread_mutex_destroy(&st.lock);
	pthread_cond_destroy(&st.cond);
	if (ret < 0) {
		pthread_join(v->thread, NULL);
		v->thread = 0;
	}
	return ret;
}

/* Stops and joins every vCPU thread, destroys the partition. */
static void teardown(struct vm *vm)
{
	atomic_store(&vm->stopping, true);
	pthread_mutex_lock(&vm->lock);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	/* Kick until every thread has left KVM_RUN. */
	for (;;) {
		pthread_mutex_lock(&vm->lock);
		unsigned running = vm->running_vcpus;
		pthread_mutex_unlock(&vm->lock);
		if (!running)
			break;
		kick_all(vm);
		usleep(1000);
	}
	for (unsigned i = 0; vm->vcpus && i < vm->nvcpus; i++) {
		struct vm_vcpu *v = &vm->vcpus[i];
		if (v->thread)
			pthread_join(v->thread, NULL);
		if (vm->vtl)
			vtl_vcpu_fini(vm->vtl, v);
		if (v->av)
			vm->ops->vcpu_destroy(v->av);
	}
	/* Under the lock: console and signal requests look at vm->vcpus. */
	pthread_mutex_lock(&vm->lock);
	free(vm->vcpus);
	vm->vcpus = NULL;
	pthread_mutex_unlock(&vm->lock);
	if (vm->hv && !vm->cfg->no_vmbus)
		vmbus_glue_destroy(vm);
	hv_destroy(vm->hv);
	vm->hv = NULL;
	devices_destroy(vm);
	vtl_destroy(vm->vtl);
	vm->vtl = NULL;
	if (vm->accel)
		vm->ops->destroy(vm->accel);
	vm->accel = NULL;
	gmem_destroy(&vm->mem);
	memset(&vm->pio, 0, sizeof(vm->pio));
	memset(&vm->mmio, 0, sizeof(vm->mmio));
}

static int start_vcpus(struct vm *vm, uint64_t entry);

static int build(struct vm *vm)
{
	const struct hvmm_config *cfg = vm->cfg;
	char err[256];
	int ret;

	atomic_store(&vm->stopping, false);
	atomic_store(&vm->paused, false);
	vm->parked_vcpus = 0;
	vm->failed = false;
	vm->pending = 0;
	vm->events = (struct vm_event_sink){ .raise = event_raise, .opaque = vm };

	ret = gmem_init(&vm->mem, cfg->memory);
	if (ret < 0) {
		log_error("cannot allocate %" PRIu64 " bytes of guest memory: %s",
			  cfg->memory, strerror(-ret));
		return ret;
	}
	/* --vtl2 also traps the MSRs both VTLs share (vtl_shared_msr). */
	static const uint32_t hv_msrs[][2] = {
		{ HV_MSR_FIRST, HV_MSR_LAST },
		VTL_SHARED_MSR_RANGES,
	};
	/*
	 * --vtl2: VTL0's partition keeps only the local APICs in KVM, so that
	 * its level-triggered EOIs reach hvmm (APIC EOI intercepts, vtl.c).
	 */
	vm->split_irqchip = cfg->vtl2;
	struct accel_config ac = { .nvcpus = vm->nvcpus, .split_irqchip = vm->split_irqchip };
	if (cfg->hv) {
		ac.trap_msr_ranges = hv_msrs;
		ac.ntrap_msr_ranges = cfg->vtl2 ? sizeof(hv_msrs) / sizeof(hv_msrs[0]) : 1;
		ac.fast_exit_regs = true;
	}
	ret = vm->ops->create(&ac, &vm->accel);
	if (ret < 0) {
		if (ret == -ENOENT || ret == -ENODEV)
			log_error("/dev/kvm is not available: %s (is KVM enabled on this host?)",
				  strerror(-ret));
		else if (ret == -EACCES || ret == -EPERM)
			log_error("/dev/kvm: permission denied (add yourself to the kvm group)");
		else
			log_error("cannot create the KVM partition: %s", strerror(-ret));
		return ret;
	}
	vm->ops->get_info(vm->accel, &vm->info);
	log_debug("accelerator: %s%s", vm->info.name,
		  vm->info.ring0_emulated ? " (guest ring 0 emulated: PVM work-arounds on)" : "");
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		struct gmem_region *r = &vm->mem.regions[i];
		ret = vm->ops->map_memory(vm->accel, i, r->gpa, r->size, r->hva, false);
		if (ret < 0) {
			log_error("cannot map guest memory: %s", strerror(-ret));
			return ret;
		}
	}

	if (cfg->hv) {
		struct hv_platform hp = {
			.mem = &vm->mem, .nvps = vm->nvcpus,
			.read_tsc = vm_read_guest_tsc, .signal_msi = vm_signal_msi,
			.opaque = vm, .events = &vm->events, .timer_thread = true,
		};
		vm->tsc_offset = 0;
		ret = hv_create(&hp, &vm->hv);
		if (ret < 0) {
			log_error("cannot create the Hyper-V state: %s", strerror(-ret));
			return ret;
		}
	}

	uint64_t rsdp = 0;
	ret = devices_create(vm, &rsdp);
	if (ret < 0)
		return ret;

	ret = load_images(vm);
	if (ret < 0) {
		vm->config_error = true;
		return ret;
	}
	if (cfg->igvm) {
		struct igvm_load_config lc = {
			.nvcpus = vm->nvcpus, .cmdline = vm->cmdline, .rsdp_gpa = rsdp,
			.vmbus = cfg->hv && !cfg->no_vmbus, .vtl2 = cfg->vtl2,
			.reloc = (enum igvm_reloc_type)cfg->igvm_reloc,
			.reloc_addr = cfg->igvm_reloc_addr,
			.reloc_size = cfg->igvm_reloc_size,
		};
		ret = igvm_load(&vm->mem, vm->kernel, vm->kernel_len, &lc, &vm->igvm, err,
				sizeof(err));
		/* VTL2's range: the loader's (after relocation), else the file's declaration. */
		uint64_t vtl2_base = vm->igvm.vtl2_base, vtl2_size = vm->igvm.vtl2_size;
		if (ret == 0 && cfg->vtl2 && !vtl2_size)
			vtl_mem_igvm_range(vm->kernel, vm->kernel_len, &vtl2_base, &vtl2_size);
		free_images(vm);
		if (ret < 0) {
			log_error("%s: %s", cfg->igvm, err);
			vm->config_error = true;
			return ret;
		}
		if (cfg->vtl2 && (ret = vtl_create(vm, &ac, &vm->vtl)) < 0)
			return ret;
		if (vm->vtl && vtl2_size && (ret = vtl_hide(vm->vtl, vtl2_base, vtl2_size)) < 0)
			return ret;
		return start_vcpus(vm, 0);
	}
	struct linux_boot_config bc = {
		.kernel = vm->kernel, .kernel_len = vm->kernel_len,
		.initrd = vm->initrd, .initrd_len = vm->initrd_len,
		.cmdline = vm->cmdline, .rsdp_gpa = rsdp,
		.cache_dir = kcache_default_dir(),
	};
	struct linux_boot_info bi;
	ret = linux_boot_load(&vm->mem, &bc, &bi, err, sizeof(err));
	free_images(vm);
	/* Give the decompression buffers back to the system, not the heap. */
	malloc_trim(0);
	if (ret < 0) {
		log_error("%s", err);
		vm->config_error = true;
		return ret;
	}
	log_debug("kernel at 0x%" PRIx64 "-0x%" PRIx64 " entry 0x%" PRIx64
		  " (%s, payload %s%s), initrd %" PRIu64 " bytes (%s) at 0x%" PRIx64,
		  bi.kernel_start, bi.kernel_end, bi.entry, bi.bzimage ? "bzImage" : "ELF",
		  bi.kernel_compression, bi.from_cache ? " from cache" : "", bi.initrd_size, bi.initrd_compression, bi.initrd_gpa);

	return start_vcpus(vm, bi.entry);
}

/* Creates the vCPU threads (the BSP entering at `entry`) and VMBus, then lets them run. */
static int start_vcpus(struct vm *vm, uint64_t entry)
{
	const struct hvmm_config *cfg = vm->cfg;
	int ret;
	struct vm_vcpu *vcpus = calloc(vm->nvcpus, sizeof(*vm->vcpus));
	if (!vcpus)
		return -ENOMEM;
	pthread_mutex_lock(&vm->lock);
	vm->vcpus = vcpus;
	pthread_mutex_unlock(&vm->lock);
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		ret = start_vcpu_thread(vm, i, entry);
		if (ret < 0) {
			log_error("cannot create vCPU %u: %s", i, strerror(-ret));
			return ret;
		}
		pthread_mutex_lock(&vm->lock);
		vm->running_vcpus++;
		pthread_mutex_unlock(&vm->lock);
	}
	/* After vCPU 0 set up reference time, before any vCPU runs. */
	if (vm->hv && !cfg->no_vmbus) {
		ret = vmbus_glue_create(vm);
		if (ret < 0)
			return ret;
	}
	pthread_mutex_lock(&vm->lock);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vm->vcpus[i].started = true;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int vm_run(struct vm *vm)
{
	for (;;) {
		int ret = build(vm);
		if (ret < 0) {
			teardown(vm);
			return vm->config_error ? 2 : 1;
		}
		pthread_mutex_lock(&vm->lock);
		while (!vm->pending && !vm->failed && vm->running_vcpus &&
		       vm->quit_status < 0 && !vm->host_reset)
			pthread_cond_wait(&vm->cond, &vm->lock);
		bool host_reset = vm->host_reset;
		vm->host_reset = false;
		unsigned pending = vm->pending;
		bool failed = vm->failed;
		int quit = vm->quit_status;
		pthread_mutex_unlock(&vm->lock);
		teardown(vm);

		if (quit >= 0)
			return quit;
		if (failed)
			return 1;
		if (host_reset && !pending) {
			log_info("resetting the VM (host request)");
			continue;
		}
		if (!pending) {
			log_error("all vCPUs stopped");
			return 1;
		}
		enum vm_event ev = (pending & (1u << VM_EVENT_CRASH)) ? VM_EVENT_CRASH :
				   (pending & (1u << VM_EVENT_POWEROFF)) ? VM_EVENT_POWEROFF :
				   VM_EVENT_RESET;
		const struct guest_action *a = ev == VM_EVENT_CRASH ? &vm->cfg->crash_action :
			ev == VM_EVENT_POWEROFF ? &vm->cfg->shutdown_action :
			&vm->cfg->reset_action;
		switch (a->kind) {
		case GUEST_ACTION_RESET:
			log_info("guest %s: resetting the VM", event_names[ev]);
			continue;
		case GUEST_ACTION_EXIT:
			log_info("guest %s: exiting with status %d", event_names[ev], a->code);
			return a->code;
		case GUEST_ACTION_HALT:
			log_info("guest %s: VM halted", event_names[ev]);
			return ev == VM_EVENT_CRASH ? 1 : 0;
		}
	}
}
