/*
 * TSC frequency for the test guests' benchmarks. The primary method is
 * Linux's pit_calibrate_tsc() (arch/x86/kernel/tsc.c): PIT channel 2 in
 * mode 0 with a 50 ms count, gate on via port 0x61, counting TSC ticks
 * until OUT2 (port 0x61 bit 5) rises. The polling loop runs in ring 3 when
 * possible so each iteration costs one port read and no emulated ring-0
 * instructions. If the PIT is absent (QEMU microvm has no port 0x61) or
 * implausible, these are tried in order: the Hyper-V frequency MSR (TLFS
 * 2.4.4, HV_X64_MSR_TSC_FREQUENCY), KVM's pvclock (Linux
 * pvclock_tsc_khz()), CPUID 0x15/0x16 and the hypervisor leaf 0x40000010.
 */
#include "guest.h"

#define PIT_TICK_RATE 1193182
#define CAL_MS 50
#define CAL_LATCH (PIT_TICK_RATE / (1000 / CAL_MS))
#define CAL_LOOP_MIN 20        /* fewer polls: OUT2 was high at once */
#define CAL_LOOP_MAX 10000000  /* OUT2 never rose */
#define KHZ_MIN 100000         /* 100 MHz */
#define KHZ_MAX 20000000       /* 20 GHz */

#define HV_CPUID_FEATURES 0x40000003
#define HV_ACCESS_FREQUENCY_MSRS (1u << 11)
#define HV_X64_MSR_TSC_FREQUENCY 0x40000022

#define KVM_CPUID_FEATURES 0x40000001
#define KVM_FEATURE_CLOCKSOURCE (1u << 0)
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define MSR_KVM_SYSTEM_TIME 0x12
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

/* Linux arch/x86/include/asm/pvclock-abi.h */
struct pvclock_vcpu_time_info {
	u32 version;
	u32 pad0;
	u64 tsc_timestamp;
	u64 system_time;
	u32 tsc_to_system_mul;
	s8 tsc_shift;
	u8 flags;
	u8 pad[2];
} __attribute__((packed));
_Static_assert(sizeof(struct pvclock_vcpu_time_info) == 32, "pvclock ABI");

struct pit_cal {
	u64 khz;
	u64 loops;
};

static bool calibrated;
static u64 cached_khz;
static const char *cached_source = "none";
static struct pvclock_vcpu_time_info pvclock __attribute__((aligned(64)));

static u64 pit_calibrate(u64 arg)
{
	struct pit_cal *cal = (struct pit_cal *)arg;
	u64 t1, t2, loops = 0;

	outb(0x61, (u8)((inb(0x61) & ~0x02) | 0x01)); /* gate high, speaker off */
	outb(0x43, 0xb0); /* channel 2, lobyte/hibyte, mode 0, binary */
	outb(0x42, CAL_LATCH & 0xff);
	outb(0x42, CAL_LATCH >> 8);
	t1 = t2 = rdtsc();
	while (!(inb(0x61) & 0x20) && loops < CAL_LOOP_MAX) {
		t2 = rdtsc();
		loops++;
	}
	cal->loops = loops;
	cal->khz = (loops >= CAL_LOOP_MIN && loops < CAL_LOOP_MAX) ?
			   (t2 - t1) / CAL_MS : 0;
	return 0;
}

static bool plausible(u64 khz)
{
	return khz >= KHZ_MIN && khz <= KHZ_MAX;
}

static u64 hv_msr_khz(void)
{
	u32 a, b, c, d;
	u64 hz;

	cpuid(0x40000000, 0, &a, &b, &c, &d);
	if (b != 0x7263694d || c != 0x666f736f || d != 0x76482074) /* Microsoft Hv */
		return 0;
	if (a < HV_CPUID_FEATURES)
		return 0;
	cpuid(HV_CPUID_FEATURES, 0, &a, &b, &c, &d);
	if (!(a & HV_ACCESS_FREQUENCY_MSRS))
		return 0;
	if (!rdmsr_safe(HV_X64_MSR_TSC_FREQUENCY, &hz))
		return 0;
	return hz / 1000;
}

static u64 kvmclock_khz(void)
{
	u32 a, b, c, d, msr;
	u64 khz = 0;

	cpuid(0x40000000, 0, &a, &b, &c, &d);
	if (b != 0x4b4d564b || c != 0x564b4d56 || d != 0x4d) /* KVMKVMKVM */
		return 0;
	cpuid(KVM_CPUID_FEATURES, 0, &a, &b, &c, &d);
	if (a & KVM_FEATURE_CLOCKSOURCE2)
		msr = MSR_KVM_SYSTEM_TIME_NEW;
	else if (a & KVM_FEATURE_CLOCKSOURCE)
		msr = MSR_KVM_SYSTEM_TIME;
	else
		return 0;
	memset(&pvclock, 0, sizeof(pvclock));
	if (!wrmsr_safe(msr, (u64)&pvclock | 1))
		return 0;
	barrier();
	if (pvclock.tsc_to_system_mul) {
		khz = (1000000ULL << 32) / pvclock.tsc_to_system_mul;
		if (pvclock.tsc_shift < 0)
			khz <<= -pvclock.tsc_shift;
		else
			khz >>= pvclock.tsc_shift;
	}
	wrmsr_safe(msr, 0);
	return khz;
}

static u64 cpuid_khz(const char **src)
{
	u32 max, a, b, c, d;

	cpuid(0, 0, &max, &b, &c, &d);
	if (max >= 0x15) {
		cpuid(0x15, 0, &a, &b, &c, &d);
		if (a && b && c && plausible((u64)c * b / a / 1000)) {
			*src = "cpuid15";
			return (u64)c * b / a / 1000;
		}
	}
	if (max >= 0x16) {
		cpuid(0x16, 0, &a, &b, &c, &d);
		if (plausible((u64)(a & 0xffff) * 1000)) {
			*src = "cpuid16";
			return (u64)(a & 0xffff) * 1000;
		}
	}
	cpuid(0x40000000, 0, &max, &b, &c, &d);
	if (max >= 0x40000010 && max < 0x40010000) {
		cpuid(0x40000010, 0, &a, &b, &c, &d);
		if (plausible(a)) {
			*src = "cpuid40000010";
			return a;
		}
	}
	return 0;
}

u64 tsc_khz(void)
{
	struct pit_cal cal = { 0, 0 };
	const char *src = "none";
	u64 khz;

	if (calibrated)
		return cached_khz;
	if (cpu_cpl() == 0)
		user_call(pit_calibrate, (u64)&cal, NULL);
	else
		pit_calibrate((u64)&cal);
	khz = cal.khz;
	if (plausible(khz)) {
		src = "pit";
	} else if (cpu_cpl() == 0) {
		if (plausible(khz = hv_msr_khz()))
			src = "hv-msr";
		else if (plausible(khz = kvmclock_khz()))
			src = "kvmclock";
		else
			khz = cpuid_khz(&src);
	}
	if (!plausible(khz))
		khz = 0;
	if (khz || cpu_cpl() == 0) /* ring 3 may retry later from ring 0 */
		calibrated = true;
	cached_khz = khz;
	cached_source = src;
	printf("INFO tsc_khz=%lu source=%s pit_polls=%lu\n", khz, src, cal.loops);
	return khz;
}

const char *tsc_source(void)
{
	return cached_source;
}

u64 mul_div(u64 a, u64 b, u64 c)
{
	return (a / c) * b + (a % c) * b / c;
}

u64 tsc_to_ns(u64 cycles)
{
	u64 khz = tsc_khz();

	return khz ? mul_div(cycles, 1000000, khz) : 0;
}

u64 tsc_to_ps_per(u64 cycles, u64 iters)
{
	u64 khz = tsc_khz();

	if (!khz || !iters)
		return 0;
	return mul_div(cycles, 1000000000, khz) / iters;
}
