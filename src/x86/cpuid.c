/*
 * Guest CPUID (Intel SDM vol. 2A, CPUID). Starts from what KVM supports and
 * sets the topology so each vCPU's APIC ID matches the MADT. On PVM hosts
 * (shared/docs/pvm-notes.md) it hides features whose instructions KVM's
 * emulator cannot run in guest ring 0: a Linux guest then picks the code
 * paths that work (fxsave instead of xsave, no SMAP clac/stac, no
 * cmpxchg16b in SLUB, no SSE-accelerated crypto in the kernel).
 */
#include "x86/cpuid.h"

#include <string.h>

#include "hv/hv.h"

#define BIT(n) (1u << (n))

struct accel_cpuid_entry *cpuid_find(struct accel_cpuid_entry *e, size_t n,
				     uint32_t fn, uint32_t index)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].function == fn && (!e[i].index_significant || e[i].index == index))
			return &e[i];
	return NULL;
}

static void trim_for_emulated_ring0(struct accel_cpuid_entry *e, size_t *n)
{
	struct accel_cpuid_entry *l;

	if ((l = cpuid_find(e, *n, 1, 0))) {
		l->ecx &= ~(BIT(1) |  /* PCLMULQDQ */
			    BIT(9) |  /* SSSE3 */
			    BIT(12) | /* FMA */
			    BIT(13) | /* CMPXCHG16B */
			    BIT(19) | /* SSE4.1 */
			    BIT(20) | /* SSE4.2 (crc32) */
			    BIT(22) | /* MOVBE */
			    BIT(23) | /* POPCNT */
			    BIT(25) | /* AES */
			    BIT(26) | /* XSAVE */
			    BIT(27) | /* OSXSAVE */
			    BIT(28) | /* AVX */
			    BIT(29)); /* F16C */
	}
	for (size_t i = 0; i < *n; i++) {
		l = &e[i];
		if (l->function == 7 && l->index == 0) {
			l->ebx &= ~(BIT(0) |  /* FSGSBASE */
				    BIT(3) |  /* BMI1 */
				    BIT(5) |  /* AVX2 */
				    BIT(8) |  /* BMI2 */
				    BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) |
				    BIT(28) | BIT(30) | BIT(31) | /* AVX-512 */
				    BIT(19) | /* ADX */
				    BIT(20) | /* SMAP */
				    BIT(24) | /* CLWB */
				    BIT(29)); /* SHA */
			l->ecx &= ~(BIT(1) | BIT(6) | BIT(8) | BIT(9) | BIT(10) |
				    BIT(11) | BIT(12) | BIT(14) | /* AVX-512/GFNI/VAES */
				    BIT(22)); /* RDPID */
			l->edx &= ~(BIT(22) | BIT(24) | BIT(25)); /* AMX */
			l->eax = 0; /* no subleaf 1 features (AVX-VNNI, ...) */
		}
		if (l->function == 7 && l->index == 1)
			l->eax = l->ebx = l->ecx = l->edx = 0;
		if (l->function == 0x80000001)
			l->edx &= ~BIT(27); /* RDTSCP */
		if (l->function == 0xd) /* no XSAVE state components */
			l->eax = l->ebx = l->ecx = l->edx = 0;
		/*
		 * KVM paravirt features that make hypercalls: VMCALL hangs on
		 * PVM, so no PV unhalt (7), PV IPIs (11) or PV yield (13).
		 */
		if (l->function == 0x40000001)
			l->eax &= ~(BIT(7) | BIT(11) | BIT(13));
	}
}

/*
 * Hyper-V instead of KVM: Linux picks the detector with the highest score,
 * and KVM's finds "KVMKVMKVM" at any base 0x40000000-0x4000FF00, so every
 * hypervisor leaf goes before the Hyper-V ones are added.
 */
static void add_hyperv_leaves(struct accel_cpuid_entry *e, size_t *n,
			      const struct cpuid_config *cfg)
{
	size_t w = 0;
	for (size_t i = 0; i < *n; i++)
		if (e[i].function < 0x40000000u || e[i].function > 0x4000FFFFu)
			e[w++] = e[i];
	*n = w;
	size_t room = CPUID_MAX_ENTRIES > w ? CPUID_MAX_ENTRIES - w : 0;
	if (hv_cpuid_leaves(cfg->nvcpus, e + w, &room) == 0)
		*n = w + room;
}

void cpuid_fixup(struct accel_cpuid_entry *e, size_t *n, const struct cpuid_config *cfg)
{
	struct accel_cpuid_entry *l;
	uint32_t apic_id = cfg->vcpu_index;

	if ((l = cpuid_find(e, *n, 1, 0))) {
		l->ebx = (l->ebx & 0x0000ffff) | (apic_id << 24) |
			 ((cfg->nvcpus > 255 ? 255 : cfg->nvcpus) << 16);
		if (cfg->nvcpus > 1)
			l->edx |= BIT(28); /* HTT: the count field is valid */
		l->ecx |= BIT(31); /* running under a hypervisor */
	}
	for (size_t i = 0; i < *n; i++) {
		l = &e[i];
		/* Extended topology: one thread per core, all cores in a package. */
		if (l->function == 0xb || l->function == 0x1f) {
			l->edx = apic_id;
			if (l->index == 0) {
				l->eax = 0;
				l->ebx = 1;
				l->ecx = 0x100; /* SMT level */
			} else if (l->index == 1) {
				unsigned shift = 0;
				while ((1u << shift) < cfg->nvcpus)
					shift++;
				l->eax = shift;
				l->ebx = cfg->nvcpus;
				l->ecx = 0x201; /* core level */
			} else {
				l->eax = l->ebx = 0;
				l->ecx = l->index;
			}
		}
		if (l->function == 4) {
			/* Cores per package - 1 in EAX[31:26]. */
			l->eax = (l->eax & 0x03ffffff) |
				 (((cfg->nvcpus - 1) & 0x3f) << 26);
		}
	}
	if (cfg->ring0_emulated)
		trim_for_emulated_ring0(e, n);
	if (cfg->hv)
		add_hyperv_leaves(e, n, cfg);
}
