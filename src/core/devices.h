/*
 * The machine's device table: which devices exist, where they sit and how
 * they are wired (ports, IRQs, backends). One explicit list, in
 * devices_create(); see docs/ARCHITECTURE.md "Adding a device".
 */
#ifndef HVMM_CORE_DEVICES_H
#define HVMM_CORE_DEVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/cli.h"

struct vm;

/* True when COM(i+1) is attached to the console (for console=ttySi). */
bool devices_com_is_console(const struct vm *vm, unsigned i);

/*
 * Creates the devices, registers their traps on vm->pio / vm->mmio, and
 * writes the ACPI tables into guest memory (*rsdp_gpa receives the RSDP's
 * address). 0 or -errno after logging.
 */
int devices_create(struct vm *vm, uint64_t *rsdp_gpa);

/* Destroys what devices_create() made; safe after a partial create. */
void devices_destroy(struct vm *vm);

#endif
