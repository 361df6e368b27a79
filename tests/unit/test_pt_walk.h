/*
 * A plain x64 4-level page walk for the unit tests that check page tables
 * a loader or relocator wrote (test_igvm_load, test_igvm_reloc): present
 * bit, 1 GiB / 2 MiB leaves (PS), nothing else (no permissions, no A/D).
 * `read` fetches the 8-byte entry at a GPA from wherever the test keeps
 * its tables (0, or nonzero when that GPA is outside them).
 */
#ifndef HVMM_TEST_PT_WALK_H
#define HVMM_TEST_PT_WALK_H

#include <stdint.h>

#define TEST_PTE_ADDR 0x000ffffffffff000ull

/* The physical address va maps to through the tables at cr3, or ~0. */
static inline uint64_t test_pt_walk(int (*read)(void *o, uint64_t gpa, uint64_t *e), void *o,
				    uint64_t cr3, uint64_t va)
{
	uint64_t table = cr3 & TEST_PTE_ADDR;
	for (int level = 3; level >= 0; level--) {
		uint64_t e;
		if (read(o, table + 8 * ((va >> (12 + 9 * level)) & 511), &e) || !(e & 1))
			return ~0ull;
		uint64_t sz = 1ull << (12 + 9 * level);
		if (level == 0 || (level < 3 && (e & 0x80)))
			return (e & TEST_PTE_ADDR & ~(sz - 1)) + (va & (sz - 1));
		table = e & TEST_PTE_ADDR;
	}
	return ~0ull;
}

#endif
