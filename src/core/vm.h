/*
 * A virtual machine: guest memory, the accelerator partition, vCPU threads,
 * the I/O buses and the devices on them, and the lifecycle (power-off,
 * reset, crash) driven by --guest-*-action.
 *
 * Threads: the main thread runs vm_run() and owns the lifecycle; one thread
 * per vCPU runs guest code and device trap handlers; the event loop thread
 * (core/evloop.h) owns host fds. Devices raise lifecycle events through
 * struct vm_event_sink, which only records the event and kicks the vCPUs.
 */
#ifndef HVMM_CORE_VM_H
#define HVMM_CORE_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "accel/accel.h"
#include "core/cli.h"
#include "core/evloop.h"
#include "core/gmem.h"
#include "core/igvm_load.h"
#include "core/irq.h"
#include "core/iobus.h"
#include "core/vmevent.h"

struct chardev;
struct hv;
struct vm_devices;
struct vmbus_glue;
struct storage;
struct network;

struct vm_vcpu {
	struct vm *vm;
	unsigned index;
	pthread_t thread;
	struct accel_vcpu *av;
	bool started;
	atomic_bool dump_requested; /* print registers at the next exit */
	atomic_bool nmi_requested;  /* inject an NMI at the next exit */
	uint64_t exits_io, exits_mmio, exits_msr;
};

struct vm {
	const struct hvmm_config *cfg;
	const struct accel_ops *ops;
	struct accel *accel;
	struct accel_info info;
	struct gmem mem;
	struct iobus pio, mmio;
	struct evloop *loop;
	struct chardev **com;      /* CLI_NUM_COM entries, NULL = no port */
	struct vm_devices *dev;
	struct vm_vcpu *vcpus;
	unsigned nvcpus;
	struct vm_event_sink events;
	struct hv *hv;             /* Hyper-V state (src/hv); NULL without --hv */
	struct vmbus_glue *vmbus;  /* owned by core/vmbus_glue.c; NULL without VMBus */
	struct vtl *vtl;           /* core/vtl.c; NULL without --vtl2 */
	bool split_irqchip;        /* --vtl2: KVM has only the LAPICs (VTL0's EOI intercepts) */
	struct ioapic *ioapic;     /* ours with split_irqchip (core/devices.c), else NULL */
	struct storage *storage;   /* --disk: opened once, survive resets */
	struct network *network;   /* --nic/--net backends: opened once, survive resets */
	int64_t tsc_offset;        /* guest TSC - host TSC (for hv's reference time) */

	/* Kernel and initrd file contents, read once and reused on reset. */
	uint8_t *kernel;
	size_t kernel_len;
	uint8_t *initrd;
	size_t initrd_len;
	char *cmdline;
	struct igvm_boot igvm;  /* --igvm: the BSP's state from the file */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned pending;       /* bitmask of 1 << enum vm_event */
	bool failed;            /* a vCPU hit an unrecoverable exit */
	bool config_error;      /* the guest image or configuration is bad */
	int quit_status;        /* >= 0: the host asked to quit with it */
	atomic_bool stopping;   /* vCPU threads must leave their loops */
	unsigned running_vcpus;
	bool host_reset;        /* the host asked for a reset (console) */
	atomic_bool paused;     /* vCPUs must park (console `p`) */
	unsigned parked_vcpus;  /* vCPUs parked while paused */
};

/* Reads the kernel/initrd files; chardevs are owned by the caller. */
int vm_prepare(struct vm *vm, const struct hvmm_config *cfg, struct evloop *loop,
	       struct chardev **com);

/* Boots and runs the VM until an action says to exit. Returns the exit status. */
int vm_run(struct vm *vm);

void vm_release(struct vm *vm);

/* Raises a lifecycle event as the guest would. Any thread. */
void vm_request(struct vm *vm, enum vm_event ev);

/* Stops the VM at once and makes vm_run() return status. Any thread. */
void vm_quit(struct vm *vm, int status);

/* Resets the VM whatever --guest-reset-action says (console). Any thread. */
void vm_reset(struct vm *vm);

/* Stops every vCPU until vm_resume(). 0, -EALREADY, -ETIMEDOUT. Any thread. */
int vm_pause(struct vm *vm);
/* 0 or -EALREADY when not paused. Any thread. */
int vm_resume(struct vm *vm);

/* Injects an NMI into vCPU `index`. 0 or -EINVAL. Any thread. */
int vm_nmi(struct vm *vm, unsigned index);

/*
 * The root of the inspect tree (an inspect_fn; opaque = the vm): memory,
 * vCPUs and their exit counters, storage, and with VMBus its channels,
 * NICs and vsock connections. Any thread but a vCPU's.
 */
struct inspect;
void vm_inspect(struct inspect *in, void *opaque);

/* Prints every vCPU's registers (host SIGQUIT). Any thread. */
void vm_dump_vcpus(struct vm *vm);

/* An interrupt line wired to the accelerator's GSI. */
struct irq_line vm_irq_line(struct vm *vm, unsigned gsi);

#endif
