/*
 * hvmm's side of the portable VMBus server (vmbus/vmbus.h): it implements
 * struct vmbus_host on top of the Hyper-V emulation (hv/hv.h: SynIC message
 * slots and event flags, hypercall routing) and guest memory, and creates the
 * VMBus devices hvmm offers (the utility devices, later storage, network and
 * vsock).
 *
 * Called by vm.c: vmbus_glue_create() after the Hyper-V state exists (only
 * with --hv and without --no-vmbus), vmbus_glue_destroy() at teardown, both
 * on the main thread with no vCPU running.
 */
#ifndef HVMM_CORE_VMBUS_GLUE_H
#define HVMM_CORE_VMBUS_GLUE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vm;

/* Creates vm->vmbus and the devices. 0 or -errno (message already logged). */
int vmbus_glue_create(struct vm *vm);
void vmbus_glue_destroy(struct vm *vm);

/*
 * Asks the guest to power off (or reboot; force: the forced variant) through
 * the shutdown utility device. Any thread. 0, -ENODEV when there is no VMBus or the guest's
 * shutdown driver has not connected, -EBUSY when a request is in flight.
 */
int vmbus_glue_request_shutdown(struct vm *vm, bool reboot, bool force);

/* True once the guest's heartbeat driver has answered recently. */
bool vmbus_glue_guest_alive(struct vm *vm);

/*
 * Connects to guest vsock port through the --vmbus-vsock-path relay (for
 * the console's `v PORT` and diagnostics): *fd is a Unix stream socket that
 * first reads "OK <n>\n" (connected) or end of stream (no listener), then
 * the guest's bytes. Any thread. 0, -ENODEV (no relay), or -errno.
 */
int vmbus_glue_vsock_connect(struct vm *vm, uint32_t port, int *fd);

/* Prints the KVP items the guest has reported, one "pool key=value" a line. */
void vmbus_glue_kvp_print(struct vm *vm, FILE *f);

/* Inspect children "vmbus", "net" and "vsock" while VMBus runs. Any thread. */
struct inspect;
void vmbus_glue_inspect(struct vm *vm, struct inspect *in);

#endif
