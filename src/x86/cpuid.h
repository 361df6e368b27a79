/*
 * The CPUID a vCPU presents: the host hypervisor's supported set, with
 * per-vCPU topology (APIC IDs) and, on a host whose guest ring 0 is emulated
 * (PVM), without the features that emulator cannot run.
 */
#ifndef HVMM_X86_CPUID_H
#define HVMM_X86_CPUID_H

#include <stdbool.h>
#include <stddef.h>

#include "accel/accel.h"

#define CPUID_MAX_ENTRIES 256

struct cpuid_config {
	unsigned vcpu_index, nvcpus;
	bool ring0_emulated; /* trim features the PVM emulator lacks */
	bool hv;             /* --hv: Hyper-V leaves, no KVM signature */
};

/*
 * Adjusts the supported set e[0..*n) in place for one vCPU. *n may shrink,
 * or grow with cfg->hv (e[] must then hold CPUID_MAX_ENTRIES).
 */
void cpuid_fixup(struct accel_cpuid_entry *e, size_t *n, const struct cpuid_config *cfg);

/* Finds a leaf/subleaf, or NULL. */
struct accel_cpuid_entry *cpuid_find(struct accel_cpuid_entry *e, size_t n,
				     uint32_t fn, uint32_t index);

#endif
