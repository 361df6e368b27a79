/*
 * Unit tests for igvm_pt_relocate (src/igvm/igvm_reloc.c), the page-table
 * rebuild of IGVM relocation (igvm-and-vsm.md B.3 step 5): the rebuilt
 * tables are walked like the MMU walks them and every translation is
 * checked: relocated ranges moved by the offset (VA and PA), everything
 * else unchanged, the old VAs of the relocated range gone; and each refusal
 * (hostile tables, impossible offsets) is one line naming the rule.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "igvm/igvm.h"
#include "test_pt_walk.h"

#define PG 4096ull
#define MB2 (2ull << 20)
#define GB (1ull << 30)

static uint64_t rd(const uint8_t *t, uint64_t i)
{
	uint64_t v;
	memcpy(&v, t + 8 * i, 8);
	return v;
}

static void wr(uint8_t *t, uint64_t i, uint64_t v)
{
	memcpy(t + 8 * i, &v, 8);
}

struct pt_view { const uint8_t *pt; uint64_t base, size; };

static int read_pt(void *o, uint64_t gpa, uint64_t *e)
{
	const struct pt_view *v = o;
	if (gpa < v->base || gpa + 8 > v->base + v->size)
		return -1;
	*e = rd(v->pt, (gpa - v->base) / 8);
	return 0;
}

/* The PA va maps to through the tables in pt (at GPA base), or ~0. */
static uint64_t xlate(const uint8_t *pt, uint64_t base, uint64_t size, uint64_t cr3, uint64_t va)
{
	struct pt_view v = { pt, base, size };
	return test_pt_walk(read_pt, &v, cr3, va);
}

/* hvmm-igvm build's tables: PML4, PDPT, 4 PDs of 2 MiB pages (identity 0-4 GiB) at gpa. */
static void identity_4g(uint8_t *pt, uint64_t gpa)
{
	wr(pt, 0, (gpa + PG) | 3);
	for (uint64_t i = 0; i < 4; i++) {
		wr(pt + PG, i, (gpa + (2 + i) * PG) | 3);
		for (uint64_t j = 0; j < 512; j++)
			wr(pt + (2 + i) * PG, j, (i * GB + j * MB2) | 0x83);
	}
}

/* The relocatable build: region 0x200000-0x3fffff, tables at 0x400000 (6 of 8 pages). */
static void test_identity_2m(void **state)
{
	(void)state;
	const uint64_t gpa = 0x400000, size = 8 * PG, used = 6 * PG;
	static const uint64_t offs[] = { 0x1000000, 0x7c00000, 0x20000000 };
	for (unsigned k = 0; k < 3; k++) {
		uint64_t off = offs[k];
		uint8_t *pt = calloc(1, size);
		identity_4g(pt, gpa);
		struct igvm_reloc_range r = { 0x200000, 0x200000 };
		uint64_t nu = 0;
		char err[200] = "";
		if (igvm_pt_relocate(pt, gpa, size, used, gpa, &r, 1, off, &nu, err, sizeof(err)))
			fail_msg("%s", err);
		assert_int_equal(nu, used); /* the targets existed: no new tables */
		uint64_t base = gpa + off, cr3 = gpa + off;
		/* Every 2 MiB of 0-4 GiB: old relocated VAs unmapped, the rest identity. */
		for (uint64_t va = 0; va < 4 * GB; va += MB2) {
			uint64_t pa = xlate(pt, base, size, cr3, va + 0x1234);
			if (va >= r.gpa && va < r.gpa + r.size)
				assert_int_equal(pa, ~0ull);
			else
				assert_int_equal(pa, va + 0x1234);
		}
		/* The relocated range: VA + off -> old PA + off. */
		for (uint64_t va = r.gpa; va < r.gpa + r.size; va += PG)
			assert_int_equal(xlate(pt, base, size, cr3, va + off), va + off);
		/* Table references inside the region moved, all of them. */
		assert_int_equal(rd(pt, 0) & ~0xfffull, gpa + off + PG);
		for (uint64_t i = 0; i < 4; i++)
			assert_int_equal(rd(pt + PG, i) & ~0xfffull, gpa + off + (2 + i) * PG);
		free(pt);
	}
}

/* 4 KiB pages, not identity, one table outside the region: leaves of the
 * relocated range move to VA + off -> PA + off through new tables from the
 * spare pages; the outside table and other mappings are kept. */
static void test_4k_new_tables(void **state)
{
	(void)state;
	const uint64_t gpa = 0x10000, size = 8 * PG, used = 4 * PG, off = 0x40000000;
	uint8_t *pt = calloc(1, size);
	/* PML4 -> PDPT -> PD -> PT (all in the region); PT maps VA 0x200000+i*4K -> 0x800000+i*4K. */
	wr(pt, 0, (gpa + PG) | 3);
	wr(pt + PG, 0, (gpa + 2 * PG) | 3);
	wr(pt + PG, 5, 0x7000000 | 3); /* a PD outside the region: kept as is */
	wr(pt + 2 * PG, 1, (gpa + 3 * PG) | 3);
	wr(pt + 2 * PG, 3, 0x600000 | 0x83); /* 2 MiB page, not relocated */
	for (uint64_t i = 0; i < 16; i++)
		wr(pt + 3 * PG, i, (0x800000 + i * PG) | 0x63);
	struct igvm_reloc_range r = { 0x200000, 8 * PG }; /* only the first 8 pages */
	uint64_t nu = 0;
	char err[200] = "";
	if (igvm_pt_relocate(pt, gpa, size, used, gpa | 0x18, &r, 1, off, &nu, err, sizeof(err)))
		fail_msg("%s", err);
	uint64_t base = gpa + off, cr3 = gpa + off;
	/* VA 0x40200000 is PDPT[1]: a new PD and a new PT from the spare pages. */
	assert_int_equal(nu, used + 2 * PG);
	for (uint64_t i = 0; i < 16; i++) {
		uint64_t va = 0x200000 + i * PG;
		if (i < 8) {
			assert_int_equal(xlate(pt, base, size, cr3, va), ~0ull);
			assert_int_equal(xlate(pt, base, size, cr3, va + off + 5), 0x800000 + i * PG + off + 5);
		} else {
			assert_int_equal(xlate(pt, base, size, cr3, va), 0x800000 + i * PG);
			assert_int_equal(xlate(pt, base, size, cr3, va + off), ~0ull);
		}
	}
	assert_int_equal(xlate(pt, base, size, cr3, 0x600000 + 9), 0x600009);
	assert_int_equal(rd(pt + PG, 5), 0x7000000 | 3);
	/* The moved entries keep their flags. */
	uint64_t pd = rd(pt + PG, 1) & ~0xfffull;
	assert_true(pd >= base + used && pd < base + size);
	uint64_t ptp = rd(pt + (pd - base), 1) & ~0xfffull;
	assert_int_equal(rd(pt + (ptp - base), 0), (0x800000 + off) | 0x63);
	free(pt);
}

static void expect_refusal(uint8_t *pt, uint64_t gpa, uint64_t size, uint64_t used, uint64_t cr3,
			   uint64_t off, const char *what)
{
	struct igvm_reloc_range r = { 0x200000, 0x200000 };
	uint64_t nu = 0;
	char err[200] = "";
	assert_int_equal(igvm_pt_relocate(pt, gpa, size, used, cr3, &r, 1, off, &nu, err,
					  sizeof(err)), -EINVAL);
	if (!strstr(err, what))
		fail_msg("'%s' lacks '%s'", err, what);
	assert_null(strchr(err, '\n'));
}

static void test_refusals(void **state)
{
	(void)state;
	const uint64_t gpa = 0x400000, size = 8 * PG, used = 6 * PG;
	uint8_t *pt = calloc(1, size);
	identity_4g(pt, gpa);
	/* An offset that is not a multiple of the 2 MiB pages mapping the range. */
	expect_refusal(pt, gpa, size, used, gpa, 0x201000, "not a multiple of the 0x200000-byte page");
	identity_4g(pt, gpa);
	expect_refusal(pt, gpa, size, used, gpa + used, 0x200000, "CR3 0x406000 is not in");
	expect_refusal(pt, gpa, size + 1, used, gpa, 0x200000, "not page aligned");
	expect_refusal(pt, gpa, size, size + PG, gpa, 0x200000, "not page aligned");
	/* Two PDPT entries naming the same PD. */
	wr(pt + PG, 1, (gpa + 2 * PG) | 3);
	expect_refusal(pt, gpa, size, used, gpa, 0x200000, "referenced twice");
	/* A table reference into the spare (unused) pages. */
	identity_4g(pt, gpa);
	wr(pt + PG, 1, (gpa + 7 * PG) | 3);
	expect_refusal(pt, gpa, size, used, gpa, 0x200000, "past the region's used size");
	/* A move onto a different mapping: VA 0x400000 maps something else. */
	identity_4g(pt, gpa);
	wr(pt + 2 * PG, 2, 0x1200000 | 0x83);
	expect_refusal(pt, gpa, size, used, gpa, 0x200000, "collides with a different mapping");
	/* A move that needs new tables with no spare page: 512 GiB up (PML4[1]). */
	identity_4g(pt, gpa);
	expect_refusal(pt, gpa, used, used, gpa, 512 * GB, "not enough spare pages");
	free(pt);
	/* Offset 0: nothing changes. */
	pt = calloc(1, size);
	identity_4g(pt, gpa);
	uint8_t *copy = malloc(size);
	memcpy(copy, pt, size);
	struct igvm_reloc_range r = { 0x200000, 0x200000 };
	uint64_t nu = 0;
	assert_int_equal(igvm_pt_relocate(pt, gpa, size, used, gpa, &r, 1, 0, &nu, NULL, 0), 0);
	assert_memory_equal(pt, copy, size);
	free(copy);
	free(pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_2m),
		cmocka_unit_test(test_4k_new_tables),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
