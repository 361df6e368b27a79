/*
 * The accelerator interface: the one place hvmm talks to a hypervisor API.
 * A backend (KVM today; WHP and a per-VTL second address space later)
 * implements struct accel_ops. Devices never see it; the VM and the vCPU run
 * loop do.
 *
 * Threading: partition-level calls (memory, irq) may be made from any thread;
 * vCPU calls only from that vCPU's thread, except accel_vcpu_kick().
 */
#ifndef HVMM_ACCEL_ACCEL_H
#define HVMM_ACCEL_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86/regs.h"

struct accel;
struct accel_vcpu;

enum accel_exit_reason {
	ACCEL_EXIT_IO,          /* port I/O: io.* valid; for reads fill io.data */
	ACCEL_EXIT_MMIO,        /* mmio.* valid; for reads fill mmio.data */
	ACCEL_EXIT_MSR_READ,    /* msr.index; set msr.data and msr.error */
	ACCEL_EXIT_MSR_WRITE,   /* msr.index, msr.data; set msr.error to #GP */
	ACCEL_EXIT_HLT,         /* guest halted with no interrupt source */
	ACCEL_EXIT_SHUTDOWN,    /* triple fault */
	ACCEL_EXIT_RESET,       /* backend-detected reset request */
	ACCEL_EXIT_INTERRUPTED, /* accel_vcpu_kick() or a signal */
	ACCEL_EXIT_EOI,         /* split irqchip: the local APIC retired eoi.vector,
				 * one of a level-triggered route's vectors */
	ACCEL_EXIT_FAILURE,     /* unrecoverable: fail.* describes it */
};

struct accel_exit {
	enum accel_exit_reason reason;
	union {
		struct {
			uint16_t port;
			uint8_t size;     /* 1, 2, 4 */
			bool write;
			uint32_t count;   /* rep count, >= 1 */
			uint8_t *data;    /* count * size bytes, backend-owned */
		} io;
		struct {
			uint64_t gpa;
			uint8_t size;
			bool write;
			uint8_t *data;    /* 8 bytes, backend-owned */
		} mmio;
		struct {
			uint32_t index;
			uint64_t data;
			bool error;       /* set by the handler: inject #GP */
		} msr;
		struct {
			uint8_t vector;
		} eoi;
		struct {
			char what[96];    /* one-line description */
			uint8_t insn[16]; /* bytes at RIP, if known */
			uint8_t insn_len;
		} fail;
	};
};

/* Capabilities and quirks of the host hypervisor the core must know about. */
struct accel_info {
	/* Guest ring 0 runs through an instruction emulator (KVM on PVM). */
	bool ring0_emulated;
	bool has_hyperv;      /* in-kernel Hyper-V emulation available */
	const char *name;
};

struct accel_config {
	unsigned nvcpus;
	/* MSRs the core wants to see as ACCEL_EXIT_MSR_* (e.g. Hyper-V's). */
	const uint32_t *trap_msrs;
	size_t ntrap_msrs;
	/* Ranges of MSR indexes to trap, [first, last] pairs. */
	const uint32_t (*trap_msr_ranges)[2];
	size_t ntrap_msr_ranges;
	/*
	 * The core reads registers at frequent exits (Hyper-V hypercalls): keep
	 * a copy at every exit instead of a system call per read (KVM sync regs).
	 */
	bool fast_exit_regs;
	/*
	 * Split irqchip: local APICs in the hypervisor, no IOAPIC, PIC or PIT
	 * there (irq_line fails with -ENOTSUP). The core brings its own IOAPIC
	 * and mirrors each of its pins, and any other level-triggered message,
	 * into a route (set_msi_route, GSIs below ACCEL_SPLIT_ROUTES); EOIs of
	 * those routes' level-triggered vectors come back as ACCEL_EXIT_EOI.
	 */
	bool split_irqchip;
};
/* Routes reserved for the core's IOAPIC (GSI = pin) and level messages. */
#define ACCEL_SPLIT_IOAPIC_PINS 24
#define ACCEL_SPLIT_ROUTES 88

/* CPUID entry as programmed into a vCPU. */
struct accel_cpuid_entry {
	uint32_t function, index;
	bool index_significant;
	uint32_t eax, ebx, ecx, edx;
};

struct accel_ops {
	const char *name;
	/* Opens the hypervisor; 0 or -errno (-ENODEV when absent). */
	int (*create)(const struct accel_config *cfg, struct accel **out);
	void (*destroy)(struct accel *a);
	void (*get_info)(struct accel *a, struct accel_info *info);

	/* Maps host memory at a guest physical address. slot is caller-chosen. */
	int (*map_memory)(struct accel *a, unsigned slot, uint64_t gpa,
			  uint64_t size, void *hva, bool readonly);
	int (*unmap_memory)(struct accel *a, unsigned slot);

	/* Supported CPUID as the host hypervisor reports it. *n in/out. */
	int (*get_supported_cpuid)(struct accel *a, struct accel_cpuid_entry *e,
				   size_t *n);

	/* Sets a GSI's level on the in-kernel interrupt controller. */
	int (*irq_line)(struct accel *a, unsigned gsi, int level);
	/* Delivers an MSI (address/data as a device would write them). */
	int (*signal_msi)(struct accel *a, uint64_t addr, uint32_t data);
	/*
	 * Split irqchip: sets (valid) or removes route `gsi` (< ACCEL_SPLIT_ROUTES)
	 * to the message addr/data. A level-triggered message (data bit 15)
	 * makes its vector's EOIs exit on the vCPUs it targets. Any thread.
	 * 0 or -errno (-ENOTSUP without a split irqchip). Optional (NULL).
	 */
	int (*set_msi_route)(struct accel *a, unsigned gsi, uint64_t addr, uint32_t data,
			     bool valid);

	int (*vcpu_create)(struct accel *a, unsigned index, struct accel_vcpu **out);
	void (*vcpu_destroy)(struct accel_vcpu *v);
	int (*vcpu_set_cpuid)(struct accel_vcpu *v, const struct accel_cpuid_entry *e,
			      size_t n);
	/* Runs until an exit the core must handle. 0 or -errno. */
	int (*vcpu_run)(struct accel_vcpu *v, struct accel_exit *exit);
	int (*vcpu_get_regs)(struct accel_vcpu *v, struct x86_regs *r);
	int (*vcpu_set_regs)(struct accel_vcpu *v, const struct x86_regs *r);
	int (*vcpu_get_sregs)(struct accel_vcpu *v, struct x86_sregs *s);
	int (*vcpu_set_sregs)(struct accel_vcpu *v, const struct x86_sregs *s);
	int (*vcpu_get_msr)(struct accel_vcpu *v, uint32_t index, uint64_t *val);
	int (*vcpu_set_msr)(struct accel_vcpu *v, uint32_t index, uint64_t val);
	int (*vcpu_inject_nmi)(struct accel_vcpu *v);
	/* Injects exception `vector` (not #PF) before the next instruction. */
	int (*vcpu_inject_exception)(struct accel_vcpu *v, unsigned vector, bool has_err,
				     uint32_t err);
	/*
	 * From an exit handler, before the next vcpu_run: the general registers
	 * at the exit, the CPL and whether the vCPU is in 64-bit mode; and a new
	 * RAX for when it resumes. Cheap with accel_config.fast_exit_regs.
	 */
	int (*vcpu_get_exit_regs)(struct accel_vcpu *v, struct x86_regs *r, unsigned *cpl,
				  bool *long_mode);
	int (*vcpu_set_exit_rax)(struct accel_vcpu *v, uint64_t rax);
	/* The guest TSC frequency in kHz. 0 or -errno. */
	int (*vcpu_get_tsc_khz)(struct accel_vcpu *v, uint32_t *khz);
	/* Makes vcpu_run return ACCEL_EXIT_INTERRUPTED soon. Any thread. */
	void (*vcpu_kick)(struct accel_vcpu *v);
	/* Initial (power-on) register state for a BSP or AP. */
	int (*vcpu_reset)(struct accel_vcpu *v);
	/*
	 * Makes an AP that waits for INIT/SIPI runnable with the registers it
	 * has (a hypervisor-started VP: StartVirtualProcessor). Any thread while
	 * v is not running. 0 or -errno.
	 */
	int (*vcpu_set_runnable)(struct accel_vcpu *v);
	/*
	 * From an exit handler: finishes the exit now (an IN's data, the MSR
	 * result in `exit`) without running guest code (KVM: KVM_RUN with
	 * immediate_exit), so registers read next are the instruction's end
	 * state and the next vcpu_run completes nothing. 0; -EAGAIN when
	 * finishing made another exit (a string instruction); -errno.
	 * Optional (NULL).
	 */
	int (*vcpu_finish_exit)(struct accel_vcpu *v, struct accel_exit *exit);
	/*
	 * vcpu_set_regs for a vCPU of the calling thread that runs next: may
	 * take effect at its next vcpu_run (KVM sync regs: no system call);
	 * vcpu_get_regs on that thread sees the new values at once, other
	 * threads only after the run. Optional (NULL).
	 */
	int (*vcpu_set_regs_deferred)(struct accel_vcpu *v, const struct x86_regs *r);
	/*
	 * Whether the vCPU's local APIC has an interrupt requested (any IRR
	 * bit; KVM_GET_LAPIC). 1, 0 or -errno. Optional (NULL).
	 */
	int (*vcpu_irq_requested)(struct accel_vcpu *v);
	/*
	 * Whether the vCPU's local APIC took `vector` last as level-triggered
	 * (its TMR bit; KVM_GET_LAPIC). 1, 0 or -errno. Optional (NULL).
	 */
	int (*vcpu_vector_level)(struct accel_vcpu *v, uint8_t vector);
	/*
	 * n MSRs in one call (KVM: one KVM_GET_MSRS): the number read, which
	 * stops at the first MSR the host lacks (val[i..n) untouched), or
	 * -errno. Optional (NULL): vcpu_get_msr one by one.
	 */
	int (*vcpu_get_msrs)(struct accel_vcpu *v, const uint32_t *index, uint64_t *val,
			     unsigned n);
	/*
	 * vcpu_get_sregs from the copy KVM stored at the vCPU's last exit
	 * (sync regs: no system call) when called on its thread and nothing
	 * changed them since (SET_SREGS, an MSR write); else vcpu_get_sregs.
	 * Optional (NULL).
	 */
	int (*vcpu_get_sregs_synced)(struct accel_vcpu *v, struct x86_sregs *s);
	/*
	 * The debug registers: dr[0..3] = DR0-3, dr[4] = DR6, dr[5] = DR7 (KVM:
	 * KVM_GET/SET_DEBUGREGS). 0 or -errno. Optional (NULL).
	 */
	int (*vcpu_get_debugregs)(struct accel_vcpu *v, uint64_t dr[6]);
	int (*vcpu_set_debugregs)(struct accel_vcpu *v, const uint64_t dr[6]);
	/*
	 * The vCPU's XSAVE image (x87, MXCSR, XMM, YMM, ...: KVM_GET_XSAVE2 /
	 * KVM_SET_XSAVE, standard format, header at 512): its size in bytes
	 * (0: none), and get/set of a buffer that big. Optional (NULL).
	 */
	size_t (*vcpu_xsave_size)(struct accel_vcpu *v);
	int (*vcpu_get_xsave)(struct accel_vcpu *v, void *buf);
	int (*vcpu_set_xsave)(struct accel_vcpu *v, const void *buf);
};

extern const struct accel_ops accel_kvm_ops;

#endif
