/*
 * Page-table rebuild for IGVM relocation (igvm-and-vsm.md B.3 step 5; the
 * semantics of the igvm crate's page-table relocation builder, read for
 * facts only): the x64 4-level tables of a PAGE_TABLE_RELOCATION_REGION are
 * moved by the region's offset and every leaf that maps a relocated range is
 * moved with it. The tables come from the file (hostile input): every
 * table reference is bounds-checked, a table may be reached only once, the
 * walk is 4 levels deep at most, and new tables come only from the region's
 * spare pages. Portable C, no KVM.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "igvm/igvm.h"

#define PTE_P (1ull << 0)
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000ffffffffff000ull
#define PAGE 4096ull

struct move {
	uint64_t va;    /* new virtual address */
	uint64_t entry; /* new entry value */
	int level;      /* 3 = PML4E .. 0 = PTE */
};

struct ptr {
	uint8_t *pt;
	uint64_t gpa, size, used, off;
	const struct igvm_reloc_range *r;
	unsigned nr;
	uint8_t *seen; /* one byte per used page */
	struct move *moves;
	size_t nmoves, cap;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int pfail(struct ptr *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (p->err && p->errlen)
		vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static uint64_t get(const uint8_t *t, unsigned i)
{
	uint64_t v = 0;
	for (int b = 7; b >= 0; b--)
		v = v << 8 | t[8 * i + (unsigned)b];
	return v;
}

static void put(uint8_t *t, unsigned i, uint64_t v)
{
	for (unsigned b = 0; b < 8; b++)
		t[8 * i + b] = (uint8_t)(v >> (8 * b));
}

static uint64_t level_size(int level)
{
	return 1ull << (12 + 9 * level);
}

/* Whether [va, va+size) overlaps one of the relocated ranges. */
static bool overlaps(const struct ptr *p, uint64_t va, uint64_t size)
{
	for (unsigned i = 0; i < p->nr; i++)
		if (va < p->r[i].gpa + p->r[i].size && p->r[i].gpa < va + size)
			return true;
	return false;
}

/* Pass 1: fix table references into the region, collect leaves to move. */
static int walk(struct ptr *p, uint64_t table_gpa, int level, uint64_t va)
{
	uint64_t idx = (table_gpa - p->gpa) / PAGE;
	if (p->seen[idx])
		return pfail(p, "page table page 0x%llx is referenced twice",
			     (unsigned long long)table_gpa);
	p->seen[idx] = 1;
	uint8_t *t = p->pt + idx * PAGE;
	uint64_t step = level_size(level);
	for (unsigned i = 0; i < 512; i++, va += step) {
		uint64_t e = get(t, i);
		if (!(e & PTE_P))
			continue;
		bool leaf = level == 0 || (level < 3 && (e & PTE_PS));
		if (!leaf) {
			uint64_t next = e & PTE_ADDR;
			if (next < p->gpa || next >= p->gpa + p->size)
				continue; /* a table outside the region stays as it is */
			if (next >= p->gpa + p->used)
				return pfail(p, "page table entry at VA 0x%llx points to 0x%llx, past the "
					     "region's used size", (unsigned long long)va,
					     (unsigned long long)next);
			put(t, i, e + p->off);
			int r = walk(p, next, level - 1, va);
			if (r)
				return r;
			continue;
		}
		if (!overlaps(p, va, step) || p->off < step)
			continue; /* not relocated, or moved within this one mapping */
		if (p->off % step)
			return pfail(p, "relocation offset 0x%llx is not a multiple of the 0x%llx-byte "
				     "page mapping VA 0x%llx", (unsigned long long)p->off,
				     (unsigned long long)step, (unsigned long long)va);
		if (p->nmoves == p->cap) {
			size_t cap = p->cap ? 2 * p->cap : 64;
			struct move *m = realloc(p->moves, cap * sizeof(*m));
			if (!m)
				return -ENOMEM;
			p->moves = m, p->cap = cap;
		}
		uint64_t amask = PTE_ADDR & ~(step - 1);
		uint64_t pa = (e & amask) + p->off;
		p->moves[p->nmoves++] = (struct move){ va + p->off, (e & ~amask) | (pa & amask), level };
		put(t, i, 0);
	}
	return 0;
}

/* Pass 2: enter one moved leaf into the relocated tables. */
static int place(struct ptr *p, const struct move *m, uint64_t cr3, uint64_t *next_free)
{
	uint64_t base = p->gpa + p->off, table = cr3;
	for (int level = 3;; level--) {
		if (table < base || table >= base + p->size)
			return pfail(p, "moving VA 0x%llx needs page table 0x%llx outside the region",
				     (unsigned long long)m->va, (unsigned long long)table);
		uint8_t *t = p->pt + (table - base) / PAGE * PAGE;
		unsigned i = (unsigned)((m->va >> (12 + 9 * level)) & 511);
		uint64_t e = get(t, i);
		if (level == m->level) {
			if ((e & PTE_P) && e != m->entry)
				return pfail(p, "moving VA 0x%llx collides with a different mapping there",
					     (unsigned long long)m->va);
			put(t, i, m->entry);
			return 0;
		}
		if (e & PTE_P) {
			if (level < 3 && (e & PTE_PS))
				return pfail(p, "moving VA 0x%llx collides with a large page there",
					     (unsigned long long)m->va);
			table = e & PTE_ADDR;
			continue;
		}
		if (*next_free >= p->size)
			return pfail(p, "not enough spare pages in the page table region (0x%llx bytes) "
				     "to move VA 0x%llx", (unsigned long long)p->size,
				     (unsigned long long)m->va);
		table = base + *next_free;
		memset(p->pt + *next_free, 0, PAGE);
		*next_free += PAGE;
		put(t, i, table | 0x3); /* present, writable: like the file's own tables */
	}
}

int igvm_pt_relocate(uint8_t *pt, uint64_t gpa, uint64_t size, uint64_t used, uint64_t cr3,
		     const struct igvm_reloc_range *r, unsigned nr, uint64_t off,
		     uint64_t *new_used, char *err, size_t errlen)
{
	struct ptr p = { .pt = pt, .gpa = gpa, .size = size, .used = used, .off = off, .r = r,
			 .nr = nr, .err = err, .errlen = errlen };
	*new_used = used;
	if (size % PAGE || used % PAGE || used > size || used == 0 || gpa % PAGE ||
	    size > IGVM_PT_RELOC_MAX || gpa + size < gpa)
		return pfail(&p, "page table region 0x%llx size 0x%llx used 0x%llx is not page "
			     "aligned, empty or larger than %llu MiB", (unsigned long long)gpa,
			     (unsigned long long)size, (unsigned long long)used,
			     (unsigned long long)(IGVM_PT_RELOC_MAX >> 20));
	cr3 &= PTE_ADDR;
	if (cr3 < gpa || cr3 >= gpa + used)
		return pfail(&p, "CR3 0x%llx is not in the page table region's used pages "
			     "0x%llx-0x%llx", (unsigned long long)cr3, (unsigned long long)gpa,
			     (unsigned long long)(gpa + used - 1));
	if (off == 0)
		return 0;
	p.seen = calloc(used / PAGE, 1);
	if (!p.seen)
		return -ENOMEM;
	int ret = walk(&p, cr3, 3, 0);
	uint64_t next_free = used;
	for (size_t i = 0; !ret && i < p.nmoves; i++)
		ret = place(&p, &p.moves[i], cr3 + off, &next_free);
	if (ret == -ENOMEM)
		pfail(&p, "out of memory rebuilding page tables");
	if (!ret)
		*new_used = next_free;
	free(p.seen);
	free(p.moves);
	return ret;
}
