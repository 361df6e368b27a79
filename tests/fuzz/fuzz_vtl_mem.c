/*
 * libFuzzer harness: VTL0's memory map under --vtl2 (src/core/vtl_mem.c),
 * driven like ModifyVtlProtectionMask (guest-chosen pages and flags), and
 * the MOV and store decoders (with the undo) over guest instruction bytes.
 * After every change the
 * map must match a per-page shadow, stay sorted, disjoint and merged, and
 * its slot list must cover exactly the accessible pages within the cap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/vtl_mem.h"
#include "hv/hv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LOW_PAGES 512u
#define HIGH_PAGES 256u
#define HIGH_FIRST (GMEM_4G / 4096)

static uint8_t shadow_low[LOW_PAGES], shadow_high[HIGH_PAGES];

static uint8_t *shadow(uint64_t page)
{
	if (page < LOW_PAGES)
		return &shadow_low[page];
	if (page >= HIGH_FIRST && page < HIGH_FIRST + HIGH_PAGES)
		return &shadow_high[page - HIGH_FIRST];
	return NULL;
}

static void check(struct vtl_mem *m)
{
	for (unsigned i = 0; i < m->nr; i++) {
		if (m->r[i].first >= m->r[i].end || m->r[i].prot == VTL_MEM_FULL)
			abort();
		if (i && (m->r[i - 1].end > m->r[i].first ||
			  (m->r[i - 1].end == m->r[i].first && m->r[i - 1].prot == m->r[i].prot)))
			abort();
	}
	struct vtl_mem_slot s[VTL_MEM_MAX_SLOTS];
	int n = vtl_mem_slots(m, s, VTL_MEM_MAX_SLOTS);
	if (n < 0 || (unsigned)n > m->max_slots)
		abort();
	/* Every page: the lookup and the slots agree with the shadow. */
	for (uint64_t p = 0; p < HIGH_FIRST + HIGH_PAGES; p = p == LOW_PAGES - 1 ? HIGH_FIRST : p + 1) {
		unsigned want = *shadow(p), in_slot = VTL_MEM_NONE;
		if (vtl_mem_prot(m, p * 4096) != want)
			abort();
		for (int i = 0; i < n; i++)
			if (p * 4096 >= s[i].gpa && p * 4096 < s[i].gpa + s[i].size)
				in_slot = s[i].readonly ? VTL_MEM_RO : VTL_MEM_FULL;
		if (in_slot != want)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[4096];
	struct gmem g;
	memset(&g, 0, sizeof(g));
	g.fd = -1;
	g.nregions = 2;
	g.regions[0] = (struct gmem_region){ 0, LOW_PAGES * 4096ull, ram, 0, false };
	g.regions[1] = (struct gmem_region){ GMEM_4G, HIGH_PAGES * 4096ull, ram, 0, false };
	memset(shadow_low, VTL_MEM_FULL, sizeof(shadow_low));
	memset(shadow_high, VTL_MEM_FULL, sizeof(shadow_high));
	struct vtl_mem m;
	unsigned cap = size ? 2 + data[0] % (VTL_MEM_MAX_SLOTS - 1) : 8;
	if (vtl_mem_init(&m, &g, cap) < 0)
		abort();
	size_t i = 1;
	unsigned ops = 0;
	for (; i + 4 <= size && ops < 64; i += 4, ops++) {
		if (data[i] == 0xFF) { /* the rest is instruction bytes */
			i++;
			break;
		}
		uint64_t first = ((uint64_t)data[i] << 8 | data[i + 1]) % (LOW_PAGES + 64);
		if (data[i] & 0x80)
			first = HIGH_FIRST - 8 + first % (HIGH_PAGES + 16);
		uint64_t n = data[i + 2] % 96;
		unsigned prot = data[i + 3] % 4;   /* 3: invalid */
		uint16_t st = vtl_mem_set(&m, first, n, prot);
		if (st == HV_STATUS_SUCCESS) {
			for (uint64_t p = first; p < first + n; p++) {
				uint8_t *sh = shadow(p);
				if (!sh)
					abort(); /* accepted a page outside RAM */
				*sh = (uint8_t)prot;
			}
		} else if (st != HV_STATUS_INVALID_PARAMETER && st != HV_STATUS_INSUFFICIENT_MEMORY) {
			abort();
		}
		check(&m);
	}
	vtl_mem_fini(&m);
	/* The MOV decoder: lengths in bounds, EA only for what it decodes. */
	if (i < size) {
		unsigned at;
		int64_t disp;
		size_t n = size - i;
		unsigned len = vtl_mem_mov_len(data + i, (unsigned)(n > 15 ? 15 : n), &at, &disp);
		if (len > 15 || len > n || (len && at >= len))
			abort();
		uint64_t gpr[16], ea;
		memset(gpr, 0x5a, sizeof(gpr));
		if (vtl_mem_mov_ea(data + i, (unsigned)(n > 15 ? 15 : n), gpr, 0x1000, &ea) &&
		    len != (n > 15 ? 15 : n))
			abort();
		/* The store decoder: length, ModRM offset and size in bounds; the
		 * undo and the address never read past what it decoded. */
		struct vtl_mem_insn d;
		unsigned dl = vtl_mem_decode(data + i, (unsigned)(n > 15 ? 15 : n), &d);
		if (dl > 15 || dl > n || (dl && d.op != VTL_MEM_OP_STRING && d.modrm_at >= dl) ||
		    (dl && d.size != 1 && d.size != 2 && d.size != 4 && d.size != 8))
			abort();
		if (dl) {
			uint64_t fl = 0x202;
			(void)vtl_mem_undo(&d, gpr, &fl, 0x1122334455667788ull, 0x0102030405060708ull);
			(void)vtl_mem_insn_ea(&d, data + i, gpr, 0x1000, true, &ea);
		}
	}
	return 0;
}
