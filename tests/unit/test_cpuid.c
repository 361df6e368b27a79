/*
 * Unit tests: guest CPUID fix-ups: APIC IDs and topology per vCPU, the
 * hypervisor bit, and on PVM hosts the trimmed features (CX16 first of all)
 * and the KVM paravirt features that would use VMCALL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "x86/cpuid.h"

static size_t host(struct accel_cpuid_entry *e)
{
	size_t n = 0;
	e[n++] = (struct accel_cpuid_entry){ .function = 1, .ebx = 0x00010800,
		.ecx = 0xfffa3203, .edx = 0x078bfbff };
	e[n++] = (struct accel_cpuid_entry){ .function = 7, .index = 0,
		.index_significant = true, .ebx = 0xf1bf27ab, .ecx = 0x1a405f4e };
	e[n++] = (struct accel_cpuid_entry){ .function = 0xb, .index = 0,
		.index_significant = true };
	e[n++] = (struct accel_cpuid_entry){ .function = 0xb, .index = 1,
		.index_significant = true };
	e[n++] = (struct accel_cpuid_entry){ .function = 0xd, .index = 0,
		.index_significant = true, .eax = 0xe7 };
	e[n++] = (struct accel_cpuid_entry){ .function = 0x40000001,
		.eax = (1u << 3) | (1u << 7) | (1u << 11) | (1u << 13) };
	e[n++] = (struct accel_cpuid_entry){ .function = 0x80000001, .edx = 1u << 27 };
	return n;
}

static void test_topology(void **state)
{
	(void)state;
	struct accel_cpuid_entry e[16];
	size_t n = host(e);
	struct cpuid_config cfg = { .vcpu_index = 3, .nvcpus = 4 };
	cpuid_fixup(e, &n, &cfg);
	struct accel_cpuid_entry *l1 = cpuid_find(e, n, 1, 0);
	assert_int_equal(l1->ebx >> 24, 3);          /* initial APIC ID */
	assert_int_equal((l1->ebx >> 16) & 0xff, 4); /* logical count */
	assert_true(l1->ecx & (1u << 31));           /* hypervisor */
	assert_true(l1->ecx & (1u << 13));           /* CX16 kept off PVM */
	assert_int_equal(cpuid_find(e, n, 0xb, 0)->edx, 3);
	struct accel_cpuid_entry *b1 = cpuid_find(e, n, 0xb, 1);
	assert_int_equal(b1->eax, 2); /* 4 CPUs: 2 bits */
	assert_int_equal(b1->ebx, 4);
	assert_int_equal(cpuid_find(e, n, 0x40000001, 0)->eax & (1u << 11), 1u << 11);
}

static void test_pvm_trim(void **state)
{
	(void)state;
	struct accel_cpuid_entry e[16];
	size_t n = host(e);
	struct cpuid_config cfg = { .vcpu_index = 0, .nvcpus = 1, .ring0_emulated = true };
	cpuid_fixup(e, &n, &cfg);
	struct accel_cpuid_entry *l1 = cpuid_find(e, n, 1, 0);
	assert_false(l1->ecx & (1u << 13)); /* CX16 */
	assert_false(l1->ecx & (1u << 23)); /* POPCNT */
	assert_false(l1->ecx & (1u << 26)); /* XSAVE */
	assert_true(l1->ecx & (1u << 0));   /* SSE3 stays */
	assert_false(cpuid_find(e, n, 7, 0)->ebx & (1u << 20)); /* SMAP */
	assert_int_equal(cpuid_find(e, n, 0xd, 0)->eax, 0);
	assert_false(cpuid_find(e, n, 0x80000001, 0)->edx & (1u << 27)); /* RDTSCP */
	uint32_t pv = cpuid_find(e, n, 0x40000001, 0)->eax;
	assert_int_equal(pv, 1u << 3); /* no PV unhalt, PV IPI, PV yield */
}

static void test_hyperv_leaves(void **state)
{
	(void)state;
	struct accel_cpuid_entry e[CPUID_MAX_ENTRIES];
	size_t n = host(e);
	/* KVM's signature, also at a second base (Linux scans every 0x100). */
	e[n++] = (struct accel_cpuid_entry){ .function = 0x40000000, .eax = 0x40000001,
		.ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d };
	e[n++] = (struct accel_cpuid_entry){ .function = 0x40000100, .eax = 0x40000101,
		.ebx = 0x4b4d564b, .ecx = 0x564b4d56, .edx = 0x4d };
	size_t before = n;
	struct cpuid_config cfg = { .vcpu_index = 1, .nvcpus = 2, .hv = true,
				    .ring0_emulated = true };
	cpuid_fixup(e, &n, &cfg);
	assert_int_equal(n, before - 3 + 11); /* 3 KVM leaves out, 11 Hyper-V in */
	for (size_t i = 0; i < n; i++) {
		assert_false(e[i].ebx == 0x4b4d564b && e[i].ecx == 0x564b4d56);
		assert_false(e[i].function >= 0x4000000B && e[i].function <= 0x4000FFFF);
	}
	struct accel_cpuid_entry *l = cpuid_find(e, n, 0x40000000, 0);
	assert_int_equal(l->eax, 0x4000000A);
	assert_int_equal(l->ebx, 0x7263694D); /* "Micr" */
	assert_int_equal(cpuid_find(e, n, 0x40000001, 0)->eax, 0x31237648);
	assert_int_equal(cpuid_find(e, n, 0x40000005, 0)->eax, 2);
	assert_null(cpuid_find(e, n, 0x40000100, 0));
	/* The rest of the fix-ups still apply. */
	assert_int_equal(cpuid_find(e, n, 1, 0)->ebx >> 24, 1);
	assert_false(cpuid_find(e, n, 1, 0)->ecx & (1u << 13));

	/* Without --hv the KVM leaves stay. */
	n = host(e);
	cfg.hv = false;
	cpuid_fixup(e, &n, &cfg);
	assert_null(cpuid_find(e, n, 0x40000000, 0));
	assert_non_null(cpuid_find(e, n, 0x40000001, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_pvm_trim),
		cmocka_unit_test(test_hyperv_leaves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
