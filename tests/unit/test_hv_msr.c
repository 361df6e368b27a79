/*
 * Unit tests: Hyper-V synthetic MSRs against fake guest memory and a fake
 * TSC: guest OS id and hypercall page contents, VP index, reference time and
 * the reference TSC page's math, frequency MSRs, read-only and unknown MSRs,
 * synthetic timers (one-shot, periodic, direct and message mode,
 * auto-enable) and the crash MSRs raising a crash event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>

#include "test_hv_fake.h"

static void test_guest_os_id_and_hypercall_page(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	/* Without a guest OS id the page cannot be enabled. */
	wr(f, 0, HV_X64_MSR_HYPERCALL, 0x5000 | 1);
	assert_int_equal(rd(f, 0, HV_X64_MSR_HYPERCALL) & 1, 0);
	assert_int_equal(f->ram[0x5000], 0);
	wr(f, 0, HV_X64_MSR_GUEST_OS_ID, 0x8100000601000000ull);
	assert_int_equal(rd(f, 0, HV_X64_MSR_GUEST_OS_ID), 0x8100000601000000ull);
	wr(f, 0, HV_X64_MSR_HYPERCALL, 0x5000 | 1);
	assert_int_equal(rd(f, 0, HV_X64_MSR_HYPERCALL), 0x5001);
	static const uint8_t code[] = { 0xF3, 0x0F, 0x1E, 0xFA, 0xE6, HV_HYPERCALL_PORT, 0xC3 };
	assert_memory_equal(f->ram + 0x5000, code, sizeof(code));
	assert_int_equal(f->ram[0x5000 + sizeof(code)], 0xCC);
	/* A page outside RAM is not written (and nothing crashes). */
	wr(f, 0, HV_X64_MSR_HYPERCALL, 0x7fff000000ull | 1);
	fake_free(f);
}

static void test_vp_index_and_readonly(void **state)
{
	(void)state;
	struct fake *f = fake_new(3);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(rd(f, i, HV_X64_MSR_VP_INDEX), i);
	uint64_t v;
	assert_int_equal(hv_msr_write(f->hv, 0, HV_X64_MSR_VP_INDEX, 5), -EINVAL);
	assert_int_equal(hv_msr_write(f->hv, 0, HV_X64_MSR_TIME_REF_COUNT, 5), -EINVAL);
	assert_int_equal(hv_msr_read(f->hv, 3, HV_X64_MSR_VP_INDEX, &v), -EINVAL);
	/* Unknown MSRs of the range: #GP. */
	assert_int_equal(hv_msr_read(f->hv, 0, 0x40000070, &v), -EINVAL);
	assert_int_equal(hv_msr_write(f->hv, 0, 0x400001FF, 1), -EINVAL);
	assert_true(hv_msr_owned(0x40000000));
	assert_true(hv_msr_owned(0x400001FF));
	assert_false(hv_msr_owned(0x40000200));
	assert_false(hv_msr_owned(0x3FFFFFFF));
	assert_int_equal(rd(f, 0, HV_X64_MSR_TSC_FREQUENCY), 1000000000ull);
	assert_int_equal(rd(f, 0, HV_X64_MSR_APIC_FREQUENCY), 1000000000ull);
	assert_int_equal(rd(f, 0, HV_X64_MSR_SVERSION), 1);
	wr(f, 1, HV_X64_MSR_VP_ASSIST_PAGE, 0x9001);
	assert_int_equal(rd(f, 1, HV_X64_MSR_VP_ASSIST_PAGE), 0x9001);
	assert_int_equal(rd(f, 0, HV_X64_MSR_VP_ASSIST_PAGE), 0);
	wr(f, 0, HV_X64_MSR_TSC_INVARIANT_CONTROL, 1);
	assert_int_equal(rd(f, 0, HV_X64_MSR_TSC_INVARIANT_CONTROL), 1);
	fake_free(f);
}

struct tsc_page {
	uint32_t seq, rsvd;
	uint64_t scale;
	int64_t offset;
};

static uint64_t page_time(const struct tsc_page *p, uint64_t tsc)
{
	__extension__ typedef unsigned __int128 u128;
	return (uint64_t)(((u128)tsc * p->scale) >> 64) + (uint64_t)p->offset;
}

static void test_reference_time_and_tsc_page(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	/* Starts at 0 and counts 100 ns units of the 1 GHz TSC. */
	uint64_t t0 = rd(f, 0, HV_X64_MSR_TIME_REF_COUNT);
	assert_true(t0 <= 1);
	f->tsc += 1000000000ull; /* one second */
	uint64_t t1 = rd(f, 0, HV_X64_MSR_TIME_REF_COUNT);
	assert_in_range(t1 - t0, 9999999, 10000001);
	assert_int_equal(hv_time_ref_count(f->hv), t1);

	wr(f, 0, HV_X64_MSR_REFERENCE_TSC, 0x3000 | 1);
	assert_int_equal(rd(f, 0, HV_X64_MSR_REFERENCE_TSC), 0x3001);
	struct tsc_page p;
	memcpy(&p, f->ram + 0x3000, sizeof(p));
	assert_int_not_equal(p.seq, 0);
	assert_int_not_equal(p.seq, 0xFFFFFFFF);
	/* The page and the MSR agree at any TSC value. */
	for (uint64_t step = 1; step < (1ull << 40); step *= 7) {
		f->tsc += step;
		assert_int_equal(page_time(&p, f->tsc), rd(f, 0, HV_X64_MSR_TIME_REF_COUNT));
	}
	uint32_t seq = p.seq;
	wr(f, 0, HV_X64_MSR_REFERENCE_TSC, 0x3000 | 1);
	memcpy(&p, f->ram + 0x3000, sizeof(p));
	assert_int_not_equal(p.seq, seq);
	/* Disabled: the page is left alone. */
	wr(f, 0, HV_X64_MSR_REFERENCE_TSC, 0x4000);
	assert_int_equal(f->ram[0x4000], 0);
	fake_free(f);
}

static void test_set_tsc_hz(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	f->tsc = 5000000000ull;
	hv_set_tsc_hz(f->hv, 2500000000ull);
	assert_true(hv_time_ref_count(f->hv) <= 1);
	f->tsc += 2500000000ull;
	assert_in_range(hv_time_ref_count(f->hv), 9999999, 10000001);
	assert_int_equal(rd(f, 0, HV_X64_MSR_TSC_FREQUENCY), 2500000000ull);
	fake_free(f);
}

#define STIMER_CFG(n) (HV_X64_MSR_STIMER0_CONFIG + 2 * (n))
#define STIMER_CNT(n) (HV_X64_MSR_STIMER0_COUNT + 2 * (n))
#define CFG_ENABLE 1ull
#define CFG_PERIODIC 2ull
#define CFG_AUTO 8ull
#define CFG_VECTOR(v) ((uint64_t)(v) << 4)
#define CFG_DIRECT (1ull << 12)
#define CFG_SINT(s) ((uint64_t)(s) << 16)

static void advance(struct fake *f, uint64_t ref_units)
{
	f->tsc += ref_units * 100;
}

static void test_stimer_direct_oneshot(void **state)
{
	(void)state;
	struct fake *f = fake_new(2);
	/* Linux: config with auto-enable + direct, then an absolute count. */
	wr(f, 1, STIMER_CFG(0), CFG_AUTO | CFG_DIRECT | CFG_VECTOR(0xED));
	assert_int_equal(rd(f, 1, STIMER_CFG(0)) & CFG_ENABLE, 0);
	assert_int_equal(hv_stimer_poll(f->hv, hv_time_ref_count(f->hv)), UINT64_MAX);
	uint64_t now = hv_time_ref_count(f->hv);
	wr(f, 1, STIMER_CNT(0), now + 1000);
	assert_int_equal(rd(f, 1, STIMER_CFG(0)) & CFG_ENABLE, CFG_ENABLE);
	assert_int_equal(hv_stimer_poll(f->hv, hv_time_ref_count(f->hv)), now + 1000);
	assert_int_equal(f->nmsi, 0);
	advance(f, 999);
	hv_stimer_poll(f->hv, hv_time_ref_count(f->hv));
	assert_int_equal(f->nmsi, 0);
	advance(f, 1);
	assert_int_equal(hv_stimer_poll(f->hv, hv_time_ref_count(f->hv)), UINT64_MAX);
	assert_int_equal(f->nmsi, 1);
	assert_int_equal(f->msi_addr[0], 0xFEE00000ull | (1u << 12));
	assert_int_equal(f->msi_data[0], 0xED);
	/* One-shot: disabled after firing, never fires again. */
	assert_int_equal(rd(f, 1, STIMER_CFG(0)) & CFG_ENABLE, 0);
	advance(f, 100000);
	hv_stimer_poll(f->hv, hv_time_ref_count(f->hv));
	assert_int_equal(f->nmsi, 1);
	/* A count of 0 stops an armed timer. */
	wr(f, 1, STIMER_CNT(0), hv_time_ref_count(f->hv) + 10);
	wr(f, 1, STIMER_CNT(0), 0);
	advance(f, 100);
	hv_stimer_poll(f->hv, hv_time_ref_count(f->hv));
	assert_int_equal(f->nmsi, 1);
	fake_free(f);
}

static void test_stimer_periodic_message(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	fake_synic_on(f, 0, 0x10000, 0x11000, 2, 0xF3);
	/* Message mode needs a SINT != 0: SINT 0 keeps it disabled. */
	wr(f, 0, STIMER_CNT(3), 500);
	wr(f, 0, STIMER_CFG(3), CFG_ENABLE | CFG_PERIODIC | CFG_SINT(0));
	assert_int_equal(rd(f, 0, STIMER_CFG(3)) & CFG_ENABLE, 0);
	wr(f, 0, STIMER_CFG(3), CFG_ENABLE | CFG_PERIODIC | CFG_SINT(2));
	uint64_t start = hv_time_ref_count(f->hv);
	advance(f, 500);
	hv_stimer_poll(f->hv, hv_time_ref_count(f->hv));
	assert_int_equal(f->nmsi, 1);
	assert_int_equal(f->msi_data[0], 0xF3);
	uint8_t *slot = f->ram + 0x10000 + 2 * 256;
	uint32_t type, idx;
	uint64_t exp;
	memcpy(&type, slot, 4);
	assert_int_equal(type, HV_MESSAGE_TIMER_EXPIRED);
	assert_int_equal(slot[4], 24);
	memcpy(&idx, slot + 16, 4);
	memcpy(&exp, slot + 24, 8);
	assert_int_equal(idx, 3);
	assert_int_equal(exp, start + 500);
	/* Periodic: still enabled; the next one queues behind the busy slot. */
	assert_int_equal(rd(f, 0, STIMER_CFG(3)) & CFG_ENABLE, CFG_ENABLE);
	advance(f, 500);
	uint64_t next = hv_stimer_poll(f->hv, hv_time_ref_count(f->hv));
	assert_int_equal(next, start + 1500);
	assert_int_equal(f->nmsi, 1);
	assert_int_equal(slot[5] & 1, 1); /* msg_pending */
	/* The guest frees the slot and writes EOM: the second expiry arrives. */
	memset(slot, 0, 4);
	wr(f, 0, HV_X64_MSR_EOM, 0);
	assert_int_equal(f->nmsi, 2);
	memcpy(&exp, slot + 24, 8);
	assert_int_equal(exp, start + 1000);
	fake_free(f);
}

static void test_stimer_min_period(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	/* A 100 ns periodic timer fires at most every 50 us. */
	wr(f, 0, STIMER_CNT(0), 1);
	wr(f, 0, STIMER_CFG(0), CFG_ENABLE | CFG_PERIODIC | CFG_DIRECT | CFG_VECTOR(0x40));
	for (unsigned i = 0; i < 100; i++) {
		advance(f, 10);
		hv_stimer_poll(f->hv, hv_time_ref_count(f->hv));
	}
	assert_int_equal(f->nmsi, 2); /* 1000 units: two periods of 500 */
	fake_free(f);
}

static void test_stimer_bad_direct_vector(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	wr(f, 0, STIMER_CNT(1), 100);
	wr(f, 0, STIMER_CFG(1), CFG_ENABLE | CFG_DIRECT | CFG_VECTOR(3));
	assert_int_equal(rd(f, 0, STIMER_CFG(1)) & CFG_ENABLE, 0);
	advance(f, 1000);
	hv_stimer_poll(f->hv, hv_time_ref_count(f->hv));
	assert_int_equal(f->nmsi, 0);
	fake_free(f);
}

static void test_crash_msrs(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	assert_int_equal(rd(f, 0, HV_X64_MSR_CRASH_CTL), (1ull << 63) | (1ull << 62));
	const char text[] = "Kernel panic - not syncing: test\nsecond line\x01";
	memcpy(f->ram + 0x8000, text, sizeof(text));
	for (unsigned i = 0; i < 3; i++)
		wr(f, 0, HV_X64_MSR_CRASH_P0 + i, 0x1000 + i);
	wr(f, 0, HV_X64_MSR_CRASH_P3, 0x8000);
	wr(f, 0, HV_X64_MSR_CRASH_P4, sizeof(text));
	assert_int_equal(rd(f, 0, HV_X64_MSR_CRASH_P2), 0x1002);
	assert_int_equal(f->crashes, 0);
	/* Bit 62 alone is not a notification. */
	wr(f, 0, HV_X64_MSR_CRASH_CTL, 1ull << 62);
	assert_int_equal(f->crashes, 0);
	wr(f, 0, HV_X64_MSR_CRASH_CTL, (1ull << 63) | (1ull << 62));
	assert_int_equal(f->crashes, 1);
	/* Reported once per VM. */
	wr(f, 0, HV_X64_MSR_CRASH_CTL, 1ull << 63);
	assert_int_equal(f->crashes, 1);
	fake_free(f);
}

static void test_crash_hostile_message(void **state)
{
	(void)state;
	struct fake *f = fake_new(1);
	/* Outside RAM, and an absurd length: capped, reported, no crash of hvmm. */
	wr(f, 0, HV_X64_MSR_CRASH_P3, FAKE_RAM - 16);
	wr(f, 0, HV_X64_MSR_CRASH_P4, UINT64_MAX);
	wr(f, 0, HV_X64_MSR_CRASH_CTL, (1ull << 63) | (1ull << 62));
	assert_int_equal(f->crashes, 1);
	fake_free(f);
}

static void test_cpuid_leaves(void **state)
{
	(void)state;
	struct accel_cpuid_entry e[HV_CPUID_NLEAVES];
	size_t n = 5;
	assert_int_equal(hv_cpuid_leaves(4, e, &n), -ENOSPC);
	n = HV_CPUID_NLEAVES;
	assert_int_equal(hv_cpuid_leaves(4, e, &n), 0);
	assert_int_equal(n, HV_CPUID_NLEAVES);
	assert_int_equal(e[0].function, 0x40000000);
	assert_int_equal(e[0].eax, 0x4000000A);
	char vendor[13];
	memcpy(vendor, &e[0].ebx, 4);
	memcpy(vendor + 4, &e[0].ecx, 4);
	memcpy(vendor + 8, &e[0].edx, 4);
	vendor[12] = 0;
	assert_string_equal(vendor, "Microsoft Hv");
	assert_int_equal(e[1].eax, 0x31237648);
	/* Hypercall (5) and VP index (6) are what Linux requires. */
	assert_int_equal(e[3].eax & 0x60, 0x60);
	assert_int_equal(e[3].eax & (1u << 3), 1u << 3);   /* SYNTIMER */
	assert_int_equal(e[3].eax & (1u << 9), 1u << 9);   /* REFERENCE_TSC */
	assert_int_equal(e[3].eax & (1u << 15), 0);       /* TSC page wins */
	assert_int_equal(e[3].ebx, 0x30);                  /* never root bits */
	assert_int_equal(e[3].edx & 0x80500, 0x80500);     /* freq, crash, direct */
	assert_int_equal(e[4].eax & (1u << 9), 1u << 9);   /* EOI hint */
	assert_int_equal(e[4].eax & (1u << 3), 0);         /* no APIC MSRs */
	assert_int_equal(e[5].eax, 4);
	assert_int_equal(e[10].function, 0x4000000A);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_os_id_and_hypercall_page),
		cmocka_unit_test(test_vp_index_and_readonly),
		cmocka_unit_test(test_reference_time_and_tsc_page),
		cmocka_unit_test(test_set_tsc_hz),
		cmocka_unit_test(test_stimer_direct_oneshot),
		cmocka_unit_test(test_stimer_periodic_message),
		cmocka_unit_test(test_stimer_min_period),
		cmocka_unit_test(test_stimer_bad_direct_vector),
		cmocka_unit_test(test_crash_msrs),
		cmocka_unit_test(test_crash_hostile_message),
		cmocka_unit_test(test_cpuid_leaves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
