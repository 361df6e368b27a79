/*
 * The Hyper-V CPUID leaves 0x40000000-0x4000000A (TLFS 2, "Feature and
 * Interface Discovery"), as a Linux 6.1 guest needs them
 * (shared/docs/hyperv-linux-guest.md §1 and §9): vendor "Microsoft Hv",
 * interface "Hv#1", the partition privileges hvmm implements, the EOI hint
 * (bit 9: KVM's in-kernel LAPIC cannot auto-EOI) and never a root-partition
 * privilege. Feature choices: §9 of that document, plus the synthetic
 * timers (hv_stimer.c) and without TSC_INVARIANT (see below).
 */
#include "hv/hv_impl.h"

#include <errno.h>

/* 0x40000003 EAX: partition privileges (HV_PARTITION_PRIVILEGE_MASK low). */
#define HV_MSR_VP_RUNTIME_AVAILABLE        (1u << 0)
#define HV_MSR_TIME_REF_COUNT_AVAILABLE    (1u << 1)
#define HV_MSR_SYNIC_AVAILABLE             (1u << 2)
#define HV_MSR_SYNTIMER_AVAILABLE          (1u << 3)
#define HV_MSR_APIC_ACCESS_AVAILABLE       (1u << 4)
#define HV_MSR_HYPERCALL_AVAILABLE         (1u << 5)
#define HV_MSR_VP_INDEX_AVAILABLE          (1u << 6)
#define HV_MSR_RESET_AVAILABLE             (1u << 7)
#define HV_MSR_STAT_PAGES_AVAILABLE        (1u << 8)
#define HV_MSR_REFERENCE_TSC_AVAILABLE     (1u << 9)
#define HV_MSR_GUEST_IDLE_AVAILABLE        (1u << 10)
#define HV_ACCESS_FREQUENCY_MSRS           (1u << 11)
#define HV_ACCESS_REENLIGHTENMENT          (1u << 13)
#define HV_ACCESS_TSC_INVARIANT            (1u << 15)
/* EBX: privileges, high half. */
#define HV_POST_MESSAGES                   (1u << 4)
#define HV_SIGNAL_EVENTS                   (1u << 5)
/* EDX: misc features. */
#define HV_FEATURE_FREQUENCY_MSRS_AVAILABLE (1u << 8)
#define HV_FEATURE_GUEST_CRASH_MSR_AVAILABLE (1u << 10)
#define HV_STIMER_DIRECT_MODE_AVAILABLE    (1u << 19)
/* 0x40000004 EAX: recommendations. */
#define HV_DEPRECATING_AEOI_RECOMMENDED    (1u << 9)

int hv_cpuid_leaves(unsigned nvps, struct accel_cpuid_entry *e, size_t *n)
{
	if (*n < HV_CPUID_NLEAVES)
		return -ENOSPC;
	for (unsigned i = 0; i < HV_CPUID_NLEAVES; i++)
		e[i] = (struct accel_cpuid_entry){ .function = 0x40000000u + i };
	/* "Microsoft Hv" */
	e[0].eax = 0x4000000A;
	e[0].ebx = 0x7263694D;
	e[0].ecx = 0x666F736F;
	e[0].edx = 0x76482074;
	e[1].eax = 0x31237648; /* "Hv#1" */
	/* 0x40000002: hypervisor version (build, major.minor); printed only. */
	e[2].eax = 17763;
	e[2].ebx = 10u << 16;
	e[3].eax = HV_MSR_TIME_REF_COUNT_AVAILABLE | HV_MSR_SYNIC_AVAILABLE |
		   HV_MSR_SYNTIMER_AVAILABLE | HV_MSR_HYPERCALL_AVAILABLE |
		   HV_MSR_VP_INDEX_AVAILABLE | HV_MSR_REFERENCE_TSC_AVAILABLE |
		   HV_ACCESS_FREQUENCY_MSRS;
	/*
	 * Not HV_ACCESS_TSC_INVARIANT: with it Linux demotes the TSC page
	 * clocksource below the raw TSC, and the raw TSC of a PVM guest is
	 * read in ring 3 and ring 0 by different means. The TSC page then
	 * is the clocksource and sched_clock (the TSC is marked unstable).
	 */
	/* Never CPU_MANAGEMENT (12: root), ACCESS_PARTITION_ID (1), 20, 22. */
	e[3].ebx = HV_POST_MESSAGES | HV_SIGNAL_EVENTS;
	e[3].edx = HV_FEATURE_FREQUENCY_MSRS_AVAILABLE |
		   HV_FEATURE_GUEST_CRASH_MSR_AVAILABLE | HV_STIMER_DIRECT_MODE_AVAILABLE;
	e[4].eax = HV_DEPRECATING_AEOI_RECOMMENDED;
	e[4].ebx = 0xffffffff; /* spinlock retries: never notify */
	e[5].eax = nvps;       /* max virtual processors */
	e[5].ebx = nvps;       /* max logical processors */
	/* 0x40000006-0x4000000A: no hardware features, no nested. */
	*n = HV_CPUID_NLEAVES;
	return 0;
}
