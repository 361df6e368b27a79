/*
 * Requests from devices to the VM's lifecycle: guest power-off, reset and
 * crash. Devices call vm_event_raise(); the VM decides what to do according
 * to --guest-shutdown-action / --guest-reset-action / --guest-crash-action.
 * Safe from any thread; never blocks.
 */
#ifndef HVMM_CORE_VMEVENT_H
#define HVMM_CORE_VMEVENT_H

enum vm_event {
	VM_EVENT_POWEROFF, /* ACPI S5, orderly guest shutdown */
	VM_EVENT_RESET,    /* guest-requested reboot (ACPI reset, 0xCF9, i8042) */
	VM_EVENT_CRASH,    /* triple fault, guest panic notification */
};

struct vm_event_sink {
	void (*raise)(void *opaque, enum vm_event ev);
	void *opaque;
};

static inline void vm_event_raise(const struct vm_event_sink *s, enum vm_event ev)
{
	if (s && s->raise)
		s->raise(s->opaque, ev);
}

#endif
